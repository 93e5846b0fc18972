"""Optional TensorBoard scalars (``--log tensorboard``): the per-epoch loss, train PSNR and learning
rate, and the evaluation PSNR/SSIM/MS-SSIM, with the epoch as the step.

The ``tensorboard`` package is optional: asking for it without it installed is a one-line
:class:`~nervkit.errors.ConfigError` from :meth:`~nervkit.train.TrainConfig.validate` (before any video
is decoded) and from the :class:`~nervkit.train.Trainer` (before training starts). A resumed run purges
the events past its checkpoint's epoch, as the epoch-log file does.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: entry key of the epoch log → TensorBoard tag
TAGS = {"loss": "train/loss", "psnr": "train/psnr", "lr": "train/lr", "eval_psnr": "eval/psnr",
        "eval_ssim": "eval/ssim", "eval_ms_ssim": "eval/ms_ssim"}


_MISSING = "--log tensorboard needs the tensorboard package, which is not installed: pip install tensorboard"


def check_tensorboard_installed() -> None:
    """``ConfigError`` (one line) when the ``tensorboard`` package is missing; cheap (nothing imported),
    so that :meth:`~nervkit.train.TrainConfig.validate` can run it before any video is decoded."""
    try:
        found = importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(_MISSING)


def require_tensorboard() -> type:
    """torch's ``SummaryWriter``; ``ConfigError`` when the ``tensorboard`` package is missing."""
    check_tensorboard_installed()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(_MISSING) from None
    return SummaryWriter


class TensorBoardLog:
    """Writes epoch entries as scalars into the event files of ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self._writer_class = require_tensorboard()
        self.folder = Path(folder)
        self._writer: Any = None
        self._purge_step: int | None = None

    def start(self, completed_epochs: int) -> None:
        """Training goes on after ``completed_epochs``: later events of an earlier session are purged."""
        self._purge_step = completed_epochs + 1 if completed_epochs else None

    def append(self, entry: dict[str, Any]) -> None:
        if self._writer is None:  # opened lazily: a finished run resumed writes no empty event file
            self._writer = self._writer_class(log_dir=str(self.folder), purge_step=self._purge_step)
        for key, tag in TAGS.items():
            if entry.get(key) is not None:
                self._writer.add_scalar(tag, entry[key], entry["epoch"])
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
