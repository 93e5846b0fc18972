"""Where a finished epoch is reported: the progress output, the epoch-log file and TensorBoard.

One entry per epoch, the same for all three (:mod:`.epoch_log` describes its keys); only the main
process of a distributed run reports.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .epoch_log import EpochLog
from .progress import ProgressBar, epoch_line, estimate_line, long_run_warning
from .tensorboard import TensorBoardLog


class TrainingLogs:
    """The reports of one :meth:`~nervkit.train.Trainer.fit` (files ``None``: not written)."""

    def __init__(self, *, epochs: int, progress: bool, epoch_log: str | os.PathLike[str] | None = None,
                 tensorboard_dir: str | os.PathLike[str] | None = None, estimate: bool = False,
                 epochs_set: bool = True) -> None:
        self.epochs = epochs
        self.progress = progress
        # the expected time per epoch and of the run, once after the first steps (and a warning for a
        # run over an hour whose epochs the user did not choose)
        self.estimate, self.epochs_set = estimate and progress, epochs_set
        self._timing: tuple[float, int, int, int] | None = None  # (start, steps, left, per epoch)
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
        if self.estimate and total_iters > done_iters:
            self._timing = (time.monotonic(), 0, total_iters - done_iters, max(1, total_iters // max(self.epochs, 1)))
        return self.bar

    #: the estimate comes after this many steps, or after :attr:`ESTIMATE_SECONDS`, whichever is first
    ESTIMATE_STEPS, ESTIMATE_SECONDS = 3, 5.0

    def step(self) -> None:
        """One training step done: after the first few, print the run's expected duration (once)."""
        if self._timing is None:
            return
        start, steps, left, per_epoch = self._timing
        steps += 1
        elapsed = time.monotonic() - start
        if steps < min(self.ESTIMATE_STEPS, left) and elapsed < self.ESTIMATE_SECONDS:
            self._timing = (start, steps, left, per_epoch)
            return
        self._timing = None
        per_step = elapsed / steps
        total = per_step * left
        self.bar.message(estimate_line(per_step * per_epoch, total, self.epochs))
        warning = long_run_warning(total, self.epochs_set, self.epochs)
        if warning:
            self.bar.message(warning)

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
