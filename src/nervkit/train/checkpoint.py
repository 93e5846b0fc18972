"""Checkpoints: everything needed to rebuild the model and continue training exactly.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``: plain tensors and Python
values only) written atomically, so a run killed at any moment — even by SIGKILL — leaves either the
previous checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import RunDirError
from ..io.atomic import atomic_path

FORMAT = "nervkit-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "method", "config", "geometry", "model")


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write ``state`` (gets ``format``/``version`` keys) to ``path``."""
    state = {"format": FORMAT, "version": VERSION, **state}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            writer = _ErrorKeepingWriter(f)
            try:
                torch.save(state, writer)
                f.flush()
            except RuntimeError:
                # torch reports a failed write (disk full, quota) as an opaque RuntimeError ("unexpected
                # pos"); re-raise the OS error behind it, which atomic_path turns into a one-line error
                if writer.error is not None:
                    raise writer.error from None
                raise
            os.fsync(f.fileno())


class _ErrorKeepingWriter:
    """A file wrapper for ``torch.save`` that remembers the OSError of a failed write."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as exc:
            self.error = exc
            raise


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
                    mmap: bool = False) -> dict[str, Any]:
    """Read and validate a checkpoint (RunDirError, one line, if missing or corrupt); ``mmap`` maps the
    tensors instead of reading them (cheap when only the metadata is needed)."""
    p = Path(path)
    if not p.is_file():
        raise RunDirError(f"no checkpoint at {p}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for corrupt files
        raise RunDirError(f"checkpoint {p} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunDirError(f"{p} is not a nervkit checkpoint")
    if state.get("version", 0) > VERSION:
        raise RunDirError(f"{p} was written by a newer nervkit (checkpoint version {state['version']})")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise RunDirError(f"checkpoint {p} lacks {', '.join(missing)}")
    return state
