"""The training engine: one loop for every method.

Per iteration: take a batch — frame indices (seeded per-epoch order, :mod:`nervkit.data.sampling`)
for ``batch_kind = "frames"``, or seeded random pixel samples (:mod:`nervkit.data.pixels`) for
``"pixels"`` (NVP) — predict, crop to the true frame size, compute the loss, Adam/AdamW step, set the
learning rate from the schedule. The engine knows nothing about a particular method — only the
:class:`~nervkit.models.Representation` contract. Stored per-frame side information that a method
computes from the frames (``refresh_side_info``, e.g. HNeRV's embeddings) is refreshed before every
evaluation and at the end of training, so evaluations, the final checkpoint and what ``decode`` gives
reflect the current weights (a checkpoint written between evaluations keeps the last refreshed one).

Robustness: checkpoints are written atomically every ``checkpoint_every`` epochs, at least every
``checkpoint_seconds`` (also mid-epoch, with the position inside the epoch), on SIGINT/SIGTERM and at
the end; a resumed run continues from the exact iteration and finishes with the same number of
epochs. A non-finite loss stops training with :class:`~nervkit.errors.TrainingError` and leaves the
last good checkpoint untouched.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..data import FrameStore, epoch_batches
from ..data.pixels import PixelSampler
from ..errors import ConfigError, TrainingError
from ..models import FrameBatch, Representation
from ..models.config import config_to_dict
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .distributed import DistContext
from .evaluate import evaluate_model
from .losses import ReconstructionLoss
from .progress import ProgressBar
from .schedule import lr_factor


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    psnr: float
    lr: float
    seconds: float


@dataclass
class TrainState:
    """Where training stands: completed epochs, position inside the current one, history."""

    epoch: int = 0  # completed epochs
    iteration: int = 0  # iterations done inside the current epoch
    partial: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "psnr": 0.0, "n": 0, "seconds": 0.0})
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds, across resumes


class _StopRequested(Exception):
    pass


class Trainer:
    """Fit ``model`` to the frames of ``store`` (see module docstring)."""

    def __init__(
        self,
        model: Representation,
        store: FrameStore,
        config: TrainConfig,
        *,
        device: torch.device,
        train_indices: list[int] | None = None,
        checkpoint_path: str | Path | None = None,
        dist: DistContext | None = None,
        progress: bool = True,
        after_step: Callable[[], None] | None = None,
        loss_mask: torch.Tensor | None = None,
        checkpoint_extra: dict[str, Any] | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.store = store
        self.device = device
        self.model = model.to(device)
        self.dist = dist or DistContext()
        self.train_indices = list(range(len(store))) if train_indices is None else list(train_indices)
        if not self.train_indices:
            raise ConfigError("no training frames selected")
        self.loss_fn = ReconstructionLoss.parse(config.loss)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(
            model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
        )
        self.net: torch.nn.Module = model
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_extra = dict(checkpoint_extra or {})  # e.g. the run's run_id, repeated in every checkpoint
        self.state = TrainState()
        self.progress = progress and self.dist.is_main
        self._stop_signal: int | None = None
        self._side_info_stale = True  # the weights changed since refresh_side_info last ran
        self.after_step = after_step  # e.g. re-apply pruning masks after every optimizer step
        # loss weights (1 or N, 1, H, W), 1 = counted (inpainting: 0 in the holes); None = every pixel
        self.loss_mask = None if loss_mask is None else loss_mask.to(torch.float32)
        self.pixels: PixelSampler | None = None
        if model.batch_kind == "pixels":
            if not self.loss_fn.pixelwise:
                raise ConfigError(f"{model.method} trains on pixel samples: --loss must be l2, l1 or a sum of "
                                  f"them, got {config.loss!r}")
            self.pixels = PixelSampler(store, self.train_indices, config.pixels_per_batch, seed=config.seed,
                                       loss_mask=self.loss_mask, rank=self.dist.rank,
                                       world_size=self.dist.world_size, pixels_per_epoch=config.pixels_per_epoch)
        self._last_save = time.monotonic()

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "method": model.method,
            "config": config_to_dict(model.config),
            "geometry": asdict(model.geometry),
            "train": config_to_dict(self.config),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.state.epoch,
            "iteration": self.state.iteration,
            "partial": dict(self.state.partial),
            "history": list(self.state.history),
            "evals": list(self.state.evals),
            "elapsed": self.state.elapsed,
            "train_indices": list(self.train_indices),
            **self.checkpoint_extra,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore model, optimizer and progress from a checkpoint dict."""
        self.model.load_state_dict(state["model"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.state = TrainState(
            epoch=int(state.get("epoch", 0)),
            iteration=int(state.get("iteration", 0)),
            partial=dict(state.get("partial") or TrainState().partial),
            history=list(state.get("history", [])),
            evals=list(state.get("evals", [])),
            elapsed=float(state.get("elapsed", 0.0)),
        )

    def save(self) -> None:
        if self.checkpoint_path is not None and self.dist.is_main:
            save_checkpoint(self.checkpoint_path, self.state_dict())
        self._last_save = time.monotonic()

    # -- training ------------------------------------------------------------------------------------
    def _set_lr(self, progress: float) -> float:
        lr = self.config.lr * lr_factor(progress, schedule=self.config.lr_schedule, warmup=self.config.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _epoch_plan(self, epoch: int) -> list[torch.Tensor] | range:
        """The batches of ``epoch``: frame-index tensors, or iteration numbers of pixel samples."""
        if self.pixels is not None:
            return range(self.pixels.batches_per_epoch)
        return epoch_batches(self.train_indices, self.config.batch_size, epoch=epoch, seed=self.config.seed,
                             rank=self.dist.rank, world_size=self.dist.world_size)

    def _pixel_step(self, epoch: int, iteration: int) -> tuple[float, float]:
        assert self.pixels is not None
        batch = self.pixels.batch(epoch, iteration).to(self.device)
        mask = None if batch.weight is None else batch.weight[:, None]
        pred = self.net(batch)
        loss = self.loss_fn(pred, batch.target, mask)
        self._optimize(loss)
        with torch.no_grad():
            err = (pred.detach().clamp(0, 1) - batch.target).square()
            mse = err.mean() if mask is None else (err * mask).sum() / (3 * mask.sum()).clamp_min(1)
            psnr = (-10.0 * torch.log10(mse.clamp_min(1e-10))).item()
        return loss.item(), psnr

    def _optimize(self, loss: torch.Tensor) -> None:
        """Check the loss, backward, clip, optimizer step, after-step hook."""
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss.item()} at epoch {self.state.epoch + 1}, iteration "
                f"{self.state.iteration + 1}; the last good checkpoint is kept — try a lower --lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self._side_info_stale = True
        if self.after_step is not None:
            self.after_step()

    def _step(self, indices: torch.Tensor) -> tuple[float, float]:
        target = self.store.get(indices).to(self.device, non_blocking=True)
        batch = FrameBatch(indices.to(self.device), target)
        if self.model.needs_neighbours:  # e.g. DNeRV: the frame differences need both neighbours
            batch.neighbours = self.store.neighbours(indices).to(self.device, non_blocking=True)
        if self.loss_mask is not None:
            rows = self.loss_mask if self.loss_mask.shape[0] == 1 else self.loss_mask[indices]
            batch.mask = rows.expand(len(indices), -1, -1, -1).to(self.device, non_blocking=True)
        pred = self.model.crop(self.net(batch))
        loss = self.loss_fn(pred, target, batch.mask)
        self._optimize(loss)
        with torch.no_grad():
            err = (pred.detach().clamp(0, 1) - target).square()
            if batch.mask is None:
                mse = err.flatten(1).mean(1)
            else:  # the counted pixels only
                w = batch.mask.expand_as(err)
                mse = (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
            psnr = (-10.0 * torch.log10(mse.clamp_min(1e-10))).mean().item()
        return loss.item(), psnr

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    def fit(self) -> TrainState:
        """Train until ``config.epochs`` are complete; returns the final state."""
        cfg = self.config
        self.model.train()
        batches_per_epoch = len(self._epoch_plan(0))
        if batches_per_epoch == 0:
            raise ConfigError("fewer batches than processes: use fewer processes or a smaller --batch-size")
        total_iters = cfg.epochs * batches_per_epoch
        eval_epochs = cfg.eval_epochs()
        done = self.state.epoch * batches_per_epoch + self.state.iteration
        bar = ProgressBar(total_iters, initial=done, enabled=self.progress, unit="it")
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
            if self.dist.is_main and _main_thread() else {}
        self._last_save = time.monotonic()
        try:
            while self.state.epoch < cfg.epochs:
                self._run_epoch(batches_per_epoch, total_iters, bar)
                if self.state.epoch == cfg.epochs:
                    self._finish()
                if self.state.epoch in eval_epochs:
                    self._evaluate()
                if self.state.epoch % cfg.checkpoint_every == 0 or self.state.epoch == cfg.epochs:
                    self.save()
            self._refresh_side_info()  # e.g. a resumed run that had already finished
        except _StopRequested:
            self.save()
            raise KeyboardInterrupt from None
        finally:
            bar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        return self.state

    def _run_epoch(self, batches_per_epoch: int, total_iters: int, bar: ProgressBar) -> None:
        cfg, st = self.config, self.state
        batches = self._epoch_plan(st.epoch)
        lr = 0.0
        for it in range(st.iteration, len(batches)):
            t0 = time.perf_counter()
            lr = self._set_lr((st.epoch * batches_per_epoch + it) / total_iters)
            loss, psnr = self._pixel_step(st.epoch, it) if self.pixels is not None else self._step(batches[it])
            dt = time.perf_counter() - t0
            p = st.partial
            p["loss"] += loss
            p["psnr"] += psnr
            p["n"] += 1
            p["seconds"] += dt
            st.elapsed += dt
            st.iteration = it + 1
            bar.update(1, epoch=f"{st.epoch + 1}/{cfg.epochs}", loss=f"{loss:.4f}", psnr=f"{p['psnr'] / p['n']:.2f}")
            if self._stop_signal is not None:
                raise _StopRequested
            if st.iteration < len(batches) and time.monotonic() - self._last_save > cfg.checkpoint_seconds:
                self.save()
        p = st.partial
        n = max(p["n"], 1)
        record = EpochRecord(st.epoch + 1, p["loss"] / n, p["psnr"] / n, lr, p["seconds"])
        st.history.append(asdict(record))
        st.epoch += 1
        st.iteration = 0
        st.partial = TrainState().partial

    def _finish(self) -> None:
        """End of training: held-out frames' untrained state filled (NVP), side information refreshed."""
        if len(self.train_indices) < len(self.store):
            with torch.no_grad():
                self.model.fill_untrained_frames(self.train_indices)
            self._side_info_stale = True
        self._refresh_side_info()

    def _refresh_side_info(self) -> None:
        """Recompute the model's stored per-frame side information if the weights changed."""
        if self._side_info_stale:
            was_training = self.model.training
            self.model.eval()
            self.model.refresh_side_info(self.store)
            self.model.train(was_training)
            self._side_info_stale = False

    def _evaluate(self) -> None:
        if self.dist.is_main:
            self._refresh_side_info()
            report = evaluate_model(self.model, self.store, self.train_indices)
            self.state.evals.append(
                {"epoch": self.state.epoch, "psnr": report.psnr, "psnr_global": report.psnr_global,
                 "ssim": report.ssim, "ms_ssim": report.ms_ssim, "train_seconds": self.state.elapsed}
            )
            if self.progress:
                ProgressBar.write(
                    f"epoch {self.state.epoch}: PSNR {report.psnr:.2f} dB, MS-SSIM {report.ms_ssim:.4f}"
                )
        self.dist.barrier()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


