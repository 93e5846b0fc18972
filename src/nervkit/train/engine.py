"""The training engine: one loop, and one step, for every method.

The model's batch kind picks a sampler (:mod:`nervkit.data.samplers`: whole frames in a seeded
per-epoch order, seeded random pixel samples for NVP, …); every iteration then runs the same step::

    pred = batch.crop(net(batch))
    loss = loss_fn(pred, batch.target, batch.weight)

followed by an Adam/AdamW step and the learning rate of the schedule. The engine knows nothing about a
particular method or batch kind — only the :class:`~nervkit.models.Representation` contract and the
batch protocol (:mod:`nervkit.data.batches`). Stored per-frame side information that a method computes
from the frames (``refresh_side_info``, e.g. HNeRV's embeddings) is refreshed before every evaluation
and at the end of training, so evaluations, the final checkpoint and what ``decode`` gives reflect the
current weights (a checkpoint written between evaluations keeps the last refreshed one).

Rate–distortion training (``config.rate_lambda`` / ``config.target_bpp``, :mod:`nervkit.compress.learned_quant`)
is an option of this loop, not another loop: a :class:`~nervkit.compress.learned_quant.RateModel` (given,
e.g. by ``compress`` for a fine-tune, or made here) holds the learned quantizers; each step then runs the
forward pass on the quantized weights (``functional_call``) and adds ``λ · bits / (N·H·W)`` to the loss;
evaluations measure the quantized model, and the end of training commits the quantized values. Its state
goes into every checkpoint (``"rate"``).

Speed (``--precision``, ``--compile``; :mod:`nervkit.precision`): in ``bf16``/``fp16`` the forward pass
runs under ``torch.autocast`` and the prediction is cast to float32 before the loss, so losses (SSIM,
MS-SSIM), the batch PSNR and evaluation metrics are always float32; ``fp16`` adds a
:class:`torch.amp.GradScaler` (unscaled before gradient clipping, its state in every checkpoint; a step
it skips for overflowing gradients is normal, not a failure — a scale that collapses is). ``--compile``
wraps the forward module in :func:`torch.compile` (after DDP, as PyTorch recommends); ``self.model``
stays the plain module, so checkpoints hold the usual keys. Rate–distortion steps run eagerly and in
float32 (the learned quantizers, the entropy models and ``functional_call`` on quantized weights need
neither the compiled graph nor half precision), and so do the evaluations once the rate term is on and
the refresh of stored side information (what the file keeps). A method that declares
``prefers_channels_last`` is trained channels-last on CUDA (and handed back contiguous). On a GPU the
frames live on the device when they fit (:meth:`FrameStore.on_device`), evaluation decodes under the
training precision and accumulates its metrics there, copying them to the host once, and each step
copies its loss, batch PSNR (and rate) to the host together, once. ``fp32`` without ``--compile`` is
the deterministic reference: a resumed run ends bit-identical to an uninterrupted one.

Robustness: checkpoints are written atomically every ``checkpoint_every`` epochs, at least every
``checkpoint_seconds`` (also mid-epoch, with the position inside the epoch), on SIGINT/SIGTERM and at
the end; a resumed run continues from the exact iteration and finishes with the same number of
epochs. A non-finite loss stops training with :class:`~nervkit.errors.TrainingError` and leaves the
last good checkpoint untouched.

Observability (:mod:`.logs`): a progress bar on a terminal or one plain line per epoch elsewhere
(:mod:`.progress`), an optional JSON-lines file with one entry per epoch written as training goes
(:mod:`.epoch_log`), and optional TensorBoard scalars (``--log tensorboard``, :mod:`.tensorboard`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call
from torch.nn.parallel import DistributedDataParallel

from ..compress.learned_quant import Phase, RateModel
from ..compress.model_codec import smallest_file_bits
from ..data import FrameStore, make_sampler
from ..errors import ConfigError, TrainingError
from ..metrics import psnr_from_mse
from ..models import Representation
from ..precision import autocast, check_precision
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .distributed import DistContext
from .evaluate import evaluate_model
from .logs import TrainingLogs
from .losses import ReconstructionLoss
from .progress import ProgressBar
from .schedule import lr_factor
from .signals import StopFlag, StopRequested, catch_stop_signals
from .state import EpochRecord, TrainState, checkpoint_state

__all__ = ["EpochRecord", "TrainState", "Trainer"]

#: learning-rate multiplier of the learned quantization steps and entropy models (log₂ values: at the
#: weights' rate a step would take thousands of iterations to double)
RATE_LR_SCALE = 10.0
#: an fp16 gradient scale below this means the gradients overflow float16 even unscaled: training diverged
MIN_GRAD_SCALE = 2.0**-10


def check_rate_target(model: Representation, config: TrainConfig, rate: RateModel | None = None) -> None:
    """ConfigError when ``config.target_bpp`` (or ``rate``'s) is below the smallest file ``model`` can be
    written to, before any training; ``rate`` then counts that file's overhead in the rate λ follows."""
    options = rate.options if rate is not None else config.rate_options()
    if options.target_bpp:
        rate = rate or RateModel(model, options)
        rate.set_file_floor(smallest_file_bits(model, rate))


class Trainer:
    """Fit ``model`` to the frames of ``store`` (see module docstring).

    ``train_indices``: the frames trained on (default all); ``loss_mask``: loss weights (1 or N, 1, H, W),
    1 = counted (inpainting: 0 in the holes); ``after_step``: called after every optimizer step (e.g.
    re-applying pruning masks); ``checkpoint_extra``: repeated in every checkpoint (the run's run_id).
    ``progress``: a bar on a terminal, one line per epoch otherwise, nothing when False.
    ``epoch_log``: a JSON-lines file that gets one line per finished epoch (:mod:`.epoch_log`); a resumed
    run continues it. ``tensorboard_dir``: where ``config.log = "tensorboard"`` writes its event files
    (default: ``tensorboard/`` beside the checkpoint; with neither, no TensorBoard logs are written).
    ``estimate``: with ``progress``, one line with the expected time per epoch and of the run after the
    first steps, and a warning when the run exceeds an hour and ``epochs_set`` is False (``nervkit fit``).
    """

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
        epoch_log: str | os.PathLike[str] | None = None,
        tensorboard_dir: str | os.PathLike[str] | None = None,
        rate: RateModel | None = None,
        estimate: bool = False,
        epochs_set: bool = True,
    ) -> None:
        config.validate()
        check_precision(config.precision, device)
        self.config = config
        self.store = store
        self.device = device
        self.model = model.to(device)
        self.dist = dist or DistContext()
        self.train_indices = list(range(len(store))) if train_indices is None else list(train_indices)
        if not self.train_indices:
            raise ConfigError("no training frames selected")
        self.loss_fn = ReconstructionLoss.parse(config.loss)
        #: the frames batches and evaluations read: on the GPU when they fit there (else ``store`` itself);
        #: ``refresh_side_info`` gets ``store``, as every caller gives it
        self.data_store = store.on_device(device)
        sampling = config.sampling(loss_mask=loss_mask, rank=self.dist.rank, world_size=self.dist.world_size)
        self.sampler = make_sampler(model, self.data_store, self.train_indices, sampling)
        if not self.sampler.whole_frames and not self.loss_fn.pixelwise:
            raise ConfigError(f"{model.method} trains on {self.sampler.description}: --loss must be l2, l1 or a "
                              f"sum of them, got {config.loss!r}")
        options = config.rate_options()
        if rate is None and options.enabled:
            rate = RateModel(model, options)
        if rate is not None:
            check_rate_target(model, config, rate)
        self.rate = rate.to(device) if rate is not None else None
        #: channels-last on CUDA for a method that prefers it (converted back when fit() returns)
        self.channels_last = device.type == "cuda" and model.prefers_channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        groups = [{"params": list(model.parameters()), "lr_scale": 1.0}]
        if self.rate is not None:  # the steps and entropy models learn faster than the weights, no decay
            groups.append({"params": list(self.rate.parameters()), "lr_scale": RATE_LR_SCALE, "weight_decay": 0.0})
        self.optimizer = optimizer(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                                   weight_decay=config.weight_decay)
        #: the module of the forward pass: the model, in DDP under torchrun; ``eager_net`` is it uncompiled
        self.net: torch.nn.Module = model
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)
        self.eager_net = self.net
        if config.compile:  # after DDP (its buckets become graph breaks); self.model keeps plain state-dict keys
            self.net = torch.compile(self.net)
        #: fp16's gradient scaler (None in fp32 and bf16, whose range needs none)
        self.scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_extra = dict(checkpoint_extra or {})
        self.state = TrainState()
        self.after_step = after_step
        self._side_info_stale = True  # the weights changed since refresh_side_info last ran
        self._stop = StopFlag()
        if config.log == "tensorboard" and tensorboard_dir is None and self.checkpoint_path is not None:
            tensorboard_dir = self.checkpoint_path.parent / "tensorboard"
        main = self.dist.is_main  # only the main process reports
        self.logs = TrainingLogs(epochs=config.epochs, progress=progress and main,
                                 epoch_log=epoch_log if main else None,
                                 tensorboard_dir=tensorboard_dir if main and config.log == "tensorboard" else None,
                                 estimate=estimate, epochs_set=epochs_set)
        self._last_save = time.monotonic()

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rate = {"rate": self.rate.state()} if self.rate is not None else {}
        scaler = {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}
        return checkpoint_state(self.model, self.config, self.optimizer, self.state, self.train_indices,
                                {**self.checkpoint_extra, **rate, **scaler})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore model, optimizer and progress from a checkpoint dict."""
        self.model.load_state_dict(state["model"])
        if self.rate is not None and state.get("rate"):
            self.rate.load_state_dict(state["rate"]["state"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):  # fp16: the scale where the run stopped
            self.scaler.load_state_dict(state["scaler"])
        self.state = TrainState.from_dict(state)

    def save(self) -> None:
        if self.checkpoint_path is not None and self.dist.is_main:
            save_checkpoint(self.checkpoint_path, self.state_dict())
        self._last_save = time.monotonic()

    # -- training ------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until ``config.epochs`` are complete; returns the final state."""
        cfg = self.config
        self.model.train()
        per_epoch = self.sampler.batches_per_epoch
        if per_epoch == 0:
            raise ConfigError("fewer batches than processes: use fewer processes or a smaller --batch-size")
        total_iters = cfg.epochs * per_epoch
        eval_epochs = cfg.eval_epochs()
        if self.model.side_info_feeds_training:  # e.g. D-NeRV's key-frames, coded before training (a no-op
            self.model.refresh_side_info(self.store)  # when a resumed checkpoint holds them already)
        with catch_stop_signals(self.dist.is_main) as self._stop:
            bar = self.logs.start(self.state.epoch, total_iters, self._iteration())
            self._last_save = time.monotonic()
            try:
                while self.state.epoch < cfg.epochs:
                    record = self._run_epoch(bar)
                    if self.state.epoch == cfg.epochs:
                        self._finish()
                    evaluation = self._evaluate() if self.state.epoch in eval_epochs else None
                    self.logs.epoch(record, evaluation, self.state.elapsed)
                    if self.state.epoch % cfg.checkpoint_every == 0 or self.state.epoch == cfg.epochs:
                        self.save()
                self._refresh_side_info()  # e.g. a resumed run that had already finished
            except StopRequested:
                self.save()
                raise KeyboardInterrupt from None
            finally:
                self.logs.close()
                if self.channels_last:  # hand the module back as it came: contiguous
                    self.model.to(memory_format=torch.contiguous_format)
        return self.state

    def _run_epoch(self, bar: ProgressBar) -> dict[str, Any]:
        """Train the rest of the current epoch; returns its record."""
        st = self.state
        keys = self.sampler.plan(st.epoch)
        lr = 0.0
        for it in range(st.iteration, len(keys)):
            t0 = time.perf_counter()
            progress = self._progress()
            lr = self._set_lr(progress)
            loss, psnr, bpp = self._step(keys[it], progress)
            st.add_iteration(loss, psnr, time.perf_counter() - t0, bpp)
            bar.update(1, epoch=f"{st.epoch + 1}/{self.config.epochs}", loss=f"{loss:.4f}",
                       psnr=f"{st.partial['psnr'] / st.partial['n']:.2f}")
            self.logs.step()
            self._stop.check()
            if st.iteration < len(keys) and time.monotonic() - self._last_save > self.config.checkpoint_seconds:
                self.save()
        self._check_grad_scale()
        return st.end_epoch(lr)

    def _set_lr(self, progress: float) -> float:
        lr = self.config.lr * lr_factor(progress, schedule=self.config.lr_schedule, warmup=self.config.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _step(self, key: Any, progress: float = 0.0) -> tuple[float, float, float | None]:
        """One iteration on the batch of ``key`` (from the sampler's plan) at ``progress`` ∈ [0, 1] of
        training; returns (loss, batch PSNR, the rate term's bits per pixel or None)."""
        batch = self.sampler.load(key).to(self.device)
        phase = self._phase(progress)
        rate_bpp = None
        if phase.mode == "off":
            with autocast(self.config.precision, self.device):
                out = self._forward(batch)
            pred = batch.crop(out).float()  # the loss in float32 (a no-op in fp32)
            loss = self.loss_fn(pred, batch.target, batch.weight)
        else:  # rate training: the forward pass sees the quantized weights; loss = D + λ · bpp (eager, fp32)
            assert self.rate is not None
            with self._step_rng(), self.rate.applied(self.model, phase) as quantized:
                prefix = "module." if self.eager_net is not self.model else ""
                params = {prefix + k: v for k, v in quantized["params"].items()}
                pred = batch.crop(functional_call(self.eager_net, params, (batch,), strict=False))
                rate_bpp = quantized["bits"]() / self.rate.pixels
            loss = self.loss_fn(pred, batch.target, batch.weight) + self.rate.lam * rate_bpp
        with torch.no_grad():
            psnr = psnr_from_mse(batch.mse(pred.detach().clamp(0, 1))).mean()
            # the step's one copy to the host: loss, batch PSNR (and the rate), together
            values = torch.stack([t.detach().double() for t in (loss, psnr, rate_bpp) if t is not None]).tolist()
        self._optimize(loss, values[0])
        bpp = values[2] if rate_bpp is not None else None
        if bpp is not None and phase.mode != "ste":  # λ is held for the final, hard-rounded phase
            self.rate.adapt_lambda(bpp)  # type: ignore[union-attr]
        return values[0], values[1], bpp

    def _forward(self, batch: Any) -> torch.Tensor:
        """The network's prediction for ``batch`` (compiled with ``--compile``: a compiler that fails on
        this machine is a one-line ConfigError)."""
        if not self.config.compile:
            return self.net(batch)
        from torch._dynamo.exc import BackendCompilerFailed

        try:
            return self.net(batch)
        except BackendCompilerFailed as exc:
            inner = exc.inner_exception
            reason = f"{type(inner).__name__}: {(str(inner).splitlines() or [''])[0]}"[:200]
            raise ConfigError(f"--compile: torch.compile failed on this machine ({reason}); fit without --compile "
                              "(a run resumes with --compile false)") from None

    @contextmanager
    def _step_rng(self) -> Iterator[None]:
        """Within: the global RNG (the rounding noise of rate training) seeded by the seed, the step and the
        rank, restored afterwards, so that a resumed run draws the noise the uninterrupted one did."""
        cuda = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
            if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            step = self._iteration()
            torch.manual_seed(((self.config.seed * 1_000_003 + step) * 4099 + self.dist.rank) % (1 << 63))
            yield

    def _phase(self, progress: float) -> Phase:
        """Rate training's phase at ``progress`` (``off`` without a rate model)."""
        return Phase("off") if self.rate is None else Phase.at(progress, self.rate.options)

    def _rate_on(self) -> bool:
        """Whether the rate model has started (its quantizers hold learned values)."""
        return self.rate is not None and self._phase(self._progress()).mode != "off"

    def _iteration(self) -> int:
        """Iterations done since the start of training (resumes included): the current step's index."""
        return self.state.epoch * self.sampler.batches_per_epoch + self.state.iteration

    def _progress(self) -> float:
        """Where training is, in [0, 1]: the current step's index over all steps."""
        return min(1.0, self._iteration() / (self.config.epochs * self.sampler.batches_per_epoch))

    def _optimize(self, loss: torch.Tensor, value: float) -> None:
        """Check the loss (``value``: it on the host), backward, clip, optimizer step, after-step hook.

        fp16: the loss is scaled for the backward pass, the gradients unscaled before clipping, and the
        scaler skips a step whose gradients overflowed (normal while it finds its scale)."""
        if not math.isfinite(value):
            raise TrainingError(
                f"the loss became {value} at epoch {self.state.epoch + 1}, iteration "
                f"{self.state.iteration + 1}; the last good checkpoint is kept — try a lower --lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        scaler = self.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()
        if self.rate is not None:
            self.dist.average_gradients(self.rate.parameters())
        if self.config.grad_clip > 0:
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()
        self._side_info_stale = True
        if self.after_step is not None:
            self.after_step()

    def _check_grad_scale(self) -> None:
        """fp16: TrainingError when the gradient scale collapsed (the gradients overflow float16 even
        unscaled, so every step is skipped); checked once per epoch (it costs a host copy)."""
        if self.scaler is not None and self.scaler.get_scale() < MIN_GRAD_SCALE:
            raise TrainingError(
                f"fp16 gradients overflow at every step (gradient scale {self.scaler.get_scale():.3g} at epoch "
                f"{self.state.epoch + 1}); the last good checkpoint is kept — try --precision bf16 or a lower --lr"
            )

    def _finish(self) -> None:
        """End of training: held-out frames' untrained state filled (NVP), side information refreshed."""
        if len(self.train_indices) < len(self.store):
            with torch.no_grad():
                self.model.fill_untrained_frames(self.train_indices)
            self._side_info_stale = True
        self._refresh_side_info()
        if self.rate is not None:  # the model now holds exactly what the file will
            self.rate.commit(self.model)

    def _refresh_side_info(self) -> None:
        """Recompute the model's stored per-frame side information if the weights changed."""
        if self._side_info_stale:
            was_training = self.model.training
            self.model.eval()
            self.model.refresh_side_info(self.store)
            self.model.train(was_training)
            self._side_info_stale = False

    def _evaluate(self) -> dict[str, Any] | None:
        """Evaluate on the main process (the others wait); returns the entry added to ``state.evals``."""
        entry = None
        if self.dist.is_main:
            self._refresh_side_info()
            # once the rate term is on: what the file would decode to, the quantized weights and side information
            rate_on = self._rate_on()
            quantized = self.rate.hard_weights(self.model) if rate_on else contextlib.nullcontext()
            # in the training precision, but what the file decodes to (rate on) in float32, as decoding does
            precision = "fp32" if rate_on else self.config.precision
            with quantized:
                report = evaluate_model(self.model, self.data_store, self.train_indices, precision=precision)
            entry = {"epoch": self.state.epoch, "psnr": report.psnr, "psnr_global": report.psnr_global,
                     "ssim": report.ssim, "ms_ssim": report.ms_ssim, "train_seconds": self.state.elapsed}
            self.state.evals.append(entry)
        self.dist.barrier()
        return entry
