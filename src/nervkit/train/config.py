"""Training options (one dataclass; its field help is the ``nervkit fit`` help)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..compress.learned_quant import RateOptions, rate_option
from ..data.batches import SamplingOptions
from ..errors import ConfigError
from ..models.config import option
from ..precision import PRECISIONS
from .losses import ReconstructionLoss
from .schedule import SCHEDULES
from .tensorboard import check_tensorboard_installed

_FLOAT32_MAX = 3.4028234663852886e38
#: ``--log`` choices: where the training scalars also go (besides the progress output and the epoch log)
LOGS = ("none", "tensorboard")


@dataclass(frozen=True)
class TrainConfig:
    """How a representation is fitted. Defaults are NeRV's README recipe (spec §2.3)."""

    epochs: int = option(300, "training epochs (passes over the training frames)")
    lr: float = option(5e-4, "peak learning rate")
    optimizer: str = option("adam", "optimizer: adam (L2 weight decay) or adamw (decoupled weight decay; NVP)",
                            choices=("adam", "adamw"))
    beta1: float = option(0.5, "Adam beta1 (NeRV uses 0.5)")
    beta2: float = option(0.999, "Adam beta2")
    weight_decay: float = option(0.0, "Adam weight decay")
    lr_schedule: str = option("cosine", "learning-rate schedule", choices=SCHEDULES)
    warmup: float = option(0.2, "warm-up fraction of training (linear 0.1 -> 1)")
    batch_size: int = option(1, "frames per iteration")
    pixels_per_batch: int = option(65536, "pixel samples per iteration of pixel-sample methods (NVP)")
    pixels_per_epoch: int = option(0, "pixel samples per epoch of pixel-sample methods (0 = as many as the training "
                                      "frames have pixels)")
    patch_size: int = option(0, "side in pixels of the square training patches of patch-trained methods (HiNeRV); "
                                "a batch is --batch-size frames' worth of patches (0 = the method's default: about 9x16 patches "
                                "per frame, the paper's; a side >= the frame's trains on whole frames, the same function "
                                "without the patches' padding: 4x faster per epoch on a CPU at 180x320)")
    loss: str = option("l1+ssim", "loss: l2 | l1 | ssim | ms-ssim, or weighted sums like 0.7*l1+0.3*ssim")
    grad_clip: float = option(0.0, "clip the gradient norm to this value (0 = off)")
    seed: int = option(1, "random seed (initialisation and frame order)")
    eval_every: int = option(0, "evaluate PSNR/MS-SSIM every N epochs (0 = at 25/50/75/100 %)")
    checkpoint_every: int = option(5, "save a checkpoint every N epochs (and at least every minute)")
    checkpoint_seconds: float = option(60.0, "also save when this many seconds passed since the last save")
    device: str = option("auto", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N")
    threads: int = option(0, "CPU threads for PyTorch (0 = all cores)")
    precision: str = option("fp32", "arithmetic of the forward pass: fp32 (the deterministic reference), bf16 or "
                                    "fp16 (autocast; fp16 with a gradient scaler); losses and metrics stay in fp32. "
                                    "Faster on GPUs with tensor cores; on CPUs without native bf16/fp16 it is "
                                    "emulated and slower", choices=PRECISIONS)
    compile: bool = option(False, "torch.compile the network's training forward pass (the first steps compile, "
                                  "for a minute or more; needs a C++ compiler on the CPU, Triton on CUDA)")
    log: str = option("none", "also log the training scalars for TensorBoard (in the run's tensorboard/ folder; "
                              "needs pip install tensorboard)", choices=LOGS)
    # rate-distortion training (nervkit.compress.learned_quant): off while rate_lambda and target_bpp are 0
    rate_lambda: float = rate_option("rate_lambda")
    target_bpp: float = rate_option("target_bpp")
    rate_start: float = rate_option("rate_start")
    rounding: str = rate_option("rounding")
    ste_fraction: float = rate_option("ste_fraction")
    step_axes: str = rate_option("step_axes")
    entropy_model: str = rate_option("entropy_model")
    context: bool = rate_option("context")
    learn_steps: bool = rate_option("learn_steps")

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            # the optimizer computes in float32: a larger rate overflows there instead of failing here
            (0 < self.lr <= _FLOAT32_MAX, f"--lr must be a positive float32 number (<= 3.4e38), got {self.lr}"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "--beta1/--beta2 must be in [0, 1)"),
            (0 <= self.weight_decay <= 10, f"--weight-decay must be in [0, 10], got {self.weight_decay}"),
            (0 <= self.warmup < 1, f"--warmup must be in [0, 1), got {self.warmup}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.pixels_per_batch >= 1, f"--pixels-per-batch must be >= 1, got {self.pixels_per_batch}"),
            (self.patch_size >= 0, f"--patch-size must be >= 0, got {self.patch_size}"),
            (self.pixels_per_epoch >= 0, f"--pixels-per-epoch must be >= 0, got {self.pixels_per_epoch}"),
            (self.optimizer in ("adam", "adamw"), f"--optimizer must be adam or adamw, got {self.optimizer!r}"),
            (0 <= self.grad_clip < float("inf"), "--grad-clip must be a finite number >= 0"),
            (self.eval_every >= 0, "--eval-every must be >= 0"),
            (self.checkpoint_every >= 1, "--checkpoint-every must be >= 1"),
            (self.checkpoint_seconds > 0, "--checkpoint-seconds must be positive"),
            (0 <= self.threads <= 4096, f"--threads must be in 0..4096, got {self.threads}"),
            (self.lr_schedule in SCHEDULES, f"--lr-schedule must be one of {', '.join(SCHEDULES)}"),
            (self.log in LOGS, f"--log must be one of {', '.join(LOGS)}, got {self.log!r}"),
            (self.precision in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (isinstance(self.compile, bool), f"--compile must be true or false, got {self.compile!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        ReconstructionLoss.parse(self.loss)
        self.rate_options().validate()
        if self.log == "tensorboard":
            check_tensorboard_installed()

    def rate_options(self) -> RateOptions:
        """The rate-distortion training these options ask for (``enabled`` False: distortion only)."""
        return RateOptions.of(self)

    def sampling(self, *, loss_mask: torch.Tensor | None = None, rank: int = 0,
                 world_size: int = 1) -> SamplingOptions:
        """How the samplers draw batches under these options (:mod:`nervkit.data.batches`)."""
        return SamplingOptions(seed=self.seed, batch_size=self.batch_size, pixels_per_batch=self.pixels_per_batch,
                               pixels_per_epoch=self.pixels_per_epoch, patch_size=self.patch_size, loss_mask=loss_mask, rank=rank,
                               world_size=world_size)

    def eval_epochs(self) -> set[int]:
        """1-based epochs after which the model is evaluated."""
        if self.eval_every:
            return {e for e in range(1, self.epochs + 1) if e % self.eval_every == 0} | {self.epochs}
        return {max(1, round(self.epochs * q / 4)) for q in (1, 2, 3, 4)}
