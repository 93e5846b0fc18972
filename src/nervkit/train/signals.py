"""SIGINT/SIGTERM during training: remembered, so the trainer stops between iterations (after a
checkpoint) instead of dying in the middle of an optimizer step."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StopRequested(Exception):
    """Raised by the trainer between iterations after SIGINT/SIGTERM."""


class StopFlag:
    """The signal received while :func:`catch_stop_signals` was active (None: none yet)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def check(self) -> None:
        """:class:`StopRequested` once a stop signal has arrived."""
        if self.signum is not None:
            raise StopRequested


@contextmanager
def catch_stop_signals(enabled: bool = True) -> Iterator[StopFlag]:
    """Catch SIGINT/SIGTERM into the yielded flag (only in the main thread, when ``enabled``); the
    previous handlers come back on exit."""
    flag = StopFlag()
    old = {}
    if enabled and threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, flag) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
