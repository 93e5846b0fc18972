"""The per-epoch metrics file: one JSON line per finished epoch, written as training goes.

Each line is written and flushed when its epoch ends (after its evaluation, before its checkpoint),
so ``tail -f`` follows a live run::

    {"epoch": 3, "loss": 0.1234, "psnr": 24.31, "lr": 0.00042, "seconds": 12.3, "elapsed": 37.0}
    {"epoch": 4, ..., "eval_psnr": 25.02, "eval_ssim": 0.81, "eval_ms_ssim": 0.93}

``seconds`` is the epoch's training time, ``elapsed`` the training time since the run started (across
resumes); the ``eval_*`` keys appear on epochs that evaluate. A resumed run continues the same file:
lines past the checkpoint's epoch (epochs finished after the last checkpoint, which will be trained
again) and any line cut short by a killed process are dropped first, so no epoch appears twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import output_error
from ..io.atomic import write_bytes_atomic


class EpochLog:
    """Appends epoch entries to the JSON-lines file ``path`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def start(self, completed_epochs: int) -> None:
        """Keep the lines of epochs ≤ ``completed_epochs`` (0: a fresh file), then follow on from there."""
        try:
            text: str | None = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = None
        except OSError as exc:
            raise output_error(exc, self.path) from None
        kept = ""
        for line in (text or "").splitlines(keepends=True):
            try:
                epoch = json.loads(line)["epoch"] if line.endswith("\n") else None
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(epoch, int) and epoch <= completed_epochs:
                kept += line
        if text != kept:  # also creates the file, so that it can be followed from the start
            write_bytes_atomic(self.path, kept.encode())

    def append(self, entry: dict[str, Any]) -> None:
        """Write one line and flush it."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
        except OSError as exc:
            raise output_error(exc, self.path) from None
