"""Where a finished epoch is reported: the progress output, the epoch-log file and TensorBoard.

One entry per epoch, the same for all three (:mod:`.epoch_log` describes its keys); only the main
process of a distributed run reports.
"""

from __future__ import annotations

import os
from typing import Any

from .epoch_log import EpochLog
from .progress import ProgressBar, epoch_line
from .tensorboard import TensorBoardLog


class TrainingLogs:
    """The reports of one :meth:`~nervkit.train.Trainer.fit` (files ``None``: not written)."""

    def __init__(self, *, epochs: int, progress: bool, epoch_log: str | os.PathLike[str] | None = None,
                 tensorboard_dir: str | os.PathLike[str] | None = None) -> None:
        self.epochs = epochs
        self.progress = progress
        self.files: list[Any] = []
        if epoch_log is not None:
            self.files.append(EpochLog(epoch_log))
        if tensorboard_dir is not None:
            self.files.append(TensorBoardLog(tensorboard_dir))  # ConfigError now if tensorboard is missing
        self.bar = ProgressBar(0, enabled=False)

    def start(self, completed_epochs: int, total_iters: int, done_iters: int) -> ProgressBar:
        """Training (re)starts after ``completed_epochs``: files drop later epochs; returns the bar."""
        for log in self.files:
            log.start(completed_epochs)
        self.bar = ProgressBar(total_iters, initial=done_iters, enabled=self.progress, unit="it")
        return self.bar

    def epoch(self, record: dict[str, Any], evaluation: dict[str, Any] | None, elapsed: float) -> None:
        """Report a finished epoch (``record``: its history entry) and its evaluation, if any."""
        epoch = record["epoch"]
        eta = elapsed / max(epoch, 1) * (self.epochs - epoch)
        self.bar.epoch_done(epoch_line(epoch, self.epochs, record["loss"], record["psnr"], record["lr"],
                                       record["seconds"], eta))
        entry = {**record, "elapsed": elapsed}
        if evaluation is not None:
            self.bar.message(f"epoch {epoch}: PSNR {evaluation['psnr']:.2f} dB, MS-SSIM {evaluation['ms_ssim']:.4f}")
            entry.update({f"eval_{k}": evaluation[k] for k in ("psnr", "ssim", "ms_ssim")})
        for log in self.files:
            log.append(entry)

    def close(self) -> None:
        self.bar.close()
        for log in self.files:
            if hasattr(log, "close"):
                log.close()
