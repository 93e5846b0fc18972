"""HNeRV: A Hybrid Neural Representation for Videos (Chen et al., CVPR 2023).

A frame is decoded from a small *content-adaptive embedding* that an encoder computed from the frame
itself (HNeRV paper §3.1, Fig. 3; spec §3)::

    frame ─ pad ─ ConvNeXt encoder (strides s₁…s_k) ─ embedding E×h×w          (training only)
    embedding_t ─ 1×1 conv E→C₀ + act ("FC") ─ HNeRV block ×k ─ 3×3 conv → 3 ─ tanh·0.5+0.5 → frame

What is stored is the decoder plus one embedding per frame; the encoder is only used to fit (and to
refresh the embeddings, :meth:`HNeRV.refresh_side_info`) and is never stored or counted.

* HNeRV block i (paper §3.2, "HNeRV block"; spec §1.2): conv k_i×k_i → PixelShuffle(s_i) → act, with
  k_i = min(k_min + 2i, k_max) (1, 3, 5, 5, 5 for the paper's ``--ks 0_1_5``) and the channels reduced
  by r per stage, C_{i+1} = max(round(C_i / r), lower_width) with r = 1.2 (the paper's balanced
  parameter distribution, §3.2).
* Encoder and decoder use the same strides, so the embedding has h×w = ⌈H/Πs⌉×⌈W/Πs⌉ cells (2×4 for
  the paper's 640×1280 and 960×1920 configs, 9×16 for the 180×320 baseline); frames are padded
  (bottom/right, edge pixels repeated) to the network size and the output is cropped back.
* Budget (spec §3.3): C₀ = ⌊largest root of a·x² + b·x − D⌋ with D = budget − N·E·h·w,
  a = Σᵢ r^{−(2i+1)}·sᵢ²·kᵢ² and b = 9E (the official solver prices the 1×1 FC conv as 3×3).
  The paper's count ("Total") is the decoder without the 3×3 head plus the embeddings; the encoder is
  not counted. ``--params 1.5M`` at 180×320 (132 frames) gives C₀ = 119, widths 99/82/68 and
  1,149,471 + 304,128 = 1,453,599 parameters, the official 180×320 baseline.

Presets are the paper's configurations (spec §3.3): 0.35/0.75/1.5/3 M at 640×1280 (strides 5,4,4,2,2),
3 M at 960×1920 (5,4,4,3,2) and at 480×960 (5,4,3,2,2, the DNeRV paper's UVG 480×960 setting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError
from .base import ParameterCounts
from .blocks import ACTIVATIONS, NORMS, make_activation, output_activation
from .config import VideoGeometry, option
from .convnext import ConvNeXtEncoder
from .frame_conditioned import FrameConditioned, FrameConditionedConfig
from .hybrid import module_size, pad_frames, upsample_stages
from .registry import register_method
from .sizing import stage_widths

DEFAULT_BUDGET_M = 1.5
#: the official FC layer is priced as a 3×3 conv by the budget solver (spec §3.3, §9.6)
FC_PRICE_KERNEL = 9


@dataclass(frozen=True)
class HNeRVConfig(FrameConditionedConfig):
    """HNeRV architecture. Zero/empty sizes are derived from the frame size and the budget."""

    strides: tuple[int, ...] = option((), "encoder and decoder strides, e.g. 5,4,4,2,2 (empty = derive)",
                                      derived=True)
    embed_height: int = option(0, "embedding height h (0 = derive: frame height / product of strides)",
                               min=0, derived=True)
    embed_width: int = option(0, "embedding width w (0 = derive: frame width / product of strides)",
                              min=0, derived=True)
    embed_channels: int = option(16, "embedding channels E (values per cell stored for every frame)", min=1)
    encoder_width: int = option(64, "channels of the ConvNeXt encoder stages before the last", min=1)
    channels: int = option(0, "decoder width C0 after the FC layer (0 = solved for --params or --model-size)",
                           min=0, derived=True)
    model_size: float = option(DEFAULT_BUDGET_M, "budget in millions for the official solver when neither "
                                                 "--channels nor --params is given (official --modelsize)",
                               positive=True)
    kernel_min: int = option(1, "kernel of the first decoder block; block i uses min(kmin + 2i, kmax)",
                             min=1, odd=True)
    kernel_max: int = option(5, "largest decoder kernel", min="kernel_min", odd=True)
    reduction: float = option(1.2, "each decoder block divides the width by this (rounded)", positive=True)
    lower_width: int = option(12, "minimum channels of a decoder block", min=1)
    activation: str = option("gelu", "activation", choices=ACTIVATIONS)
    norm: str = option("none", "normalisation after each pixel shuffle", choices=NORMS)
    output: str = option("tanh", "output activation: tanh*0.5+0.5 or sigmoid", choices=("tanh", "sigmoid"))

    @property
    def widths(self) -> list[int]:
        """Output channels of each decoder block: C_{i+1} = max(round(C_i / r), lower_width) (paper
        §3.2; spec §1.2; Python's round, half to even, as the official code: 82.5 → 82)."""
        return stage_widths(self.channels, len(self.strides), self.reduction, lower=self.lower_width,
                            rounding="round")

    def solve_channels(self, geometry: VideoGeometry, budget: int) -> int:
        """The official C₀ for a budget (spec §3.3): ⌊largest root of a·x² + b·x − D⌋.

        D = budget − P_e is what is left for the decoder, P_e = N·E·h·w the stored embedding values;
        stage i maps C₀/rⁱ to C₀/r^{i+1}·sᵢ² channels with a kᵢ×kᵢ kernel, hence
        a = Σᵢ r^{−(2i+1)}·sᵢ²·kᵢ²; b = 9E prices the FC layer (as a 3×3 conv). Biases, the head and the
        rounding of the widths are left out, as in the official solver, so the realised count differs
        from the budget by a few per cent.
        """
        r = self.reduction
        a = sum(r ** -(2 * i + 1) * s * s * k * k for i, (s, k) in enumerate(zip(self.strides, self.kernels)))
        b = FC_PRICE_KERNEL * self.embed_channels
        embeddings = geometry.num_frames * self.embed_channels * self.embed_height * self.embed_width
        room = budget - embeddings
        root = (-b + math.sqrt(b * b + 4 * a * room)) / (2 * a) if room > 0 else 0.0
        if root < 1:
            raise ModelError(
                f"a budget of {budget:,} parameters is too small for HNeRV at {geometry.height}x"
                f"{geometry.width} with {geometry.num_frames} frames (the embeddings alone take "
                f"{embeddings:,}); use a larger budget, fewer --embed-channels or larger strides"
            )
        return math.floor(root)


PAPER_STRIDES = {"640x1280": (5, 4, 4, 2, 2), "960x1920": (5, 4, 4, 3, 2), "480x960": (5, 4, 3, 2, 2)}
PRESETS = {
    **{f"640x1280-{m}M": {"strides": PAPER_STRIDES["640x1280"], "model_size": m}
       for m in (0.35, 0.75, 1.5, 3)},
    "960x1920-3M": {"strides": PAPER_STRIDES["960x1920"], "model_size": 3.0},
    "480x960-3M": {"strides": PAPER_STRIDES["480x960"], "model_size": 3.0},
}


@register_method(
    "hnerv",
    HNeRVConfig,
    description="HNeRV (CVPR 2023): frame -> ConvNeXt encoder -> stored embedding -> conv decoder",
    presets=PRESETS,
    default_preset=None,  # no preset: strides derived from the frame size, budget --model-size (1.5 M)
    paper="Chen et al., HNeRV: A Hybrid Neural Representation for Videos, CVPR 2023",
    # the README recipe (spec §3.5): L2 loss, Adam (0.9, 0.999), lr 1e-3, batch 2, 10 % warm-up + cosine
    train_defaults={"loss": "l2", "lr": 1e-3, "beta1": 0.9, "batch_size": 2, "warmup": 0.1},
)
class HNeRV(FrameConditioned):
    """Frame → encoder → embedding (stored) → decoder → frame (see module docstring).

    The embeddings are the side information (:class:`~nervkit.models.frame_conditioned.FrameConditioned`:
    refreshed over the whole video, stored per frame, interpolated for fractional positions)."""

    # the head as in NeRV; the encoder is not stored, so pruning it would save nothing
    prune_exclude = ("head", "encoder")
    side_info_buffers = ("embeddings",)

    def __init__(self, config: HNeRVConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c = config
        self.encoder: ConvNeXtEncoder | None = ConvNeXtEncoder(
            c.strides, width=c.encoder_width, embed_channels=c.embed_channels
        )
        self.stem = nn.Sequential(nn.Conv2d(c.embed_channels, c.channels, 1), make_activation(c.activation))
        widths = c.widths
        self.blocks = nn.Sequential(*upsample_stages(c.channels, c.strides, c.kernels, widths,
                                                     activation=c.activation, norm=c.norm))
        self.head = nn.Conv2d(widths[-1], 3, 3, padding=1)
        shape = (geometry.num_frames, c.embed_channels, c.embed_height, c.embed_width)
        self.register_buffer("embeddings", torch.zeros(shape))

    def encode(self, frames: torch.Tensor, neighbours: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings (n, E, h, w) of true-size frames (n, 3, H, W) in [0, 1] (paper §3.1, Fig. 3)."""
        self.check_inputs(frames)
        return self.encoder(pad_frames(frames, self.output_size))

    def decode_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Frames (n, 3, H_out, W_out) from embeddings (n, E, h, w) (paper §3.2, Fig. 3)."""
        x = self.blocks(self.stem(embeddings))
        return output_activation(self.config.output, self.head(x))

    def parameter_counts(self) -> ParameterCounts:
        """Official: decoder without the 3×3 head + embeddings (spec §3.3); total: every stored
        value (head included). The encoder is listed in ``parts`` but neither stored nor counted."""
        parts = {
            "fc": module_size(self.stem),
            "blocks": module_size(self.blocks),
            "head": module_size(self.head),
            "embeddings": self.embeddings.numel(),
            "encoder": module_size(self.encoder),
        }
        official = parts["fc"] + parts["blocks"] + parts["embeddings"]
        return ParameterCounts(official=official, total=official + parts["head"], parts=parts)
