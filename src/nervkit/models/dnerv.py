"""DNeRV: Modeling Inherent Dynamics via Difference Neural Representation for Videos (Zhao et al.,
CVPR 2023). Not D-NeRV (He et al., CVPR 2023, many videos), a different method.

Two streams per frame y_t (paper §4, Fig. 3/4, Eq. 4–6; spec §5)::

    content:  y_t ─ ConvNeXt encoder ─ b^C (16×h×w)                                    (stored)
    diff:     concat[y_t − y_{t−1}, y_{t+1} − y_t] ─ ConvNeXt encoder ─ b^D (2×h'×w')   (stored)
    decoder:  b^C ─ 1×1 conv ─ block 1 ─ block 2 ─ block 3 ─ b̃^C ┐
              b^D ─ 1×1 conv ─ diff block(s) (3×3, PS, GELU) ─ z^D ┴ fusion ─ block 4 ─ block 5 ─ head ─ σ

* Decoder blocks as HNeRV's (conv k_i×k_i → PixelShuffle(s_i) → GELU, k = 1, 3, 5, 5, 5) with widths
  C_{i+1} = ⌊C_i / 1.2⌋ (floor, no lower bound; appendix Table 8). The diff embedding has the size of the
  output of decoder stage ``diff_stage`` (2: 2×40×80 at 960×1920, the paper's default; 1: its smaller
  2×10×20); its stream is lifted to width C_{diff_stage} by a 1×1 conv and up-sampled to the fusion size
  by one block per decoder stage in between (width and stride of that stage; the official code has the
  single block of the 2×40×80 case, a 2×10×20 embedding needs two).
* Fusion after decoder stage ``fusion_stage`` (3, paper §4 "merging in 3rd stage"): ``ccu``, the
  collaborative content unit of Eq. 5 — u = tanh(W_ub∗b̃^C + W_uz∗z^D), v = σ(W_vb∗b̃^C + W_vz∗z^D),
  s = v⊙u + (1 − v)⊙b̃^C, four K_c×K_c convs; ``conv``: s = W∗b̃^C + z^D; ``sum``: s = b̃^C + z^D (the
  paper's Table 3 ablation).
* Edge frames: the first frame is its own previous frame and the last its own next one, so their outer
  difference is zero (as the official code); a 1-frame video has zero differences and a 2-frame video one
  non-zero difference per frame. Frames of any size are padded bottom/right (edge pixels repeated) to the
  network size and decoded frames cropped back.
* Stored: the decoder (incl. the fusion unit) and both embeddings of every frame (``per_frame``,
  6 bits by default); the encoders are training-only, never stored.
* Counts: ``official`` = what the official code prints as the decoder (its parameters whose names do
  not contain "enc", which leaves out the 1×1 C_init conv) + the content embeddings — the paper's
  accounting (spec §5.2: "3.5 M" ≈ decoder + content embeddings; the diff embeddings, 50× larger, are
  not counted). ``total`` = every stored value, the C_init conv and the diff embeddings included. The
  ``--params`` solver sizes C_init for ``total`` by default (``--budget-counts stored``, what the file
  pays for) or for ``official`` (``--budget-counts paper``).

Where the official code and the paper differ (spec §9.7), the paper is the default and the code's
variant an option: the head is 1×1 (Eq. 6; code 3×3: ``head_kernel=3``); K_c follows Table 8 in the
presets (3 at 640×1280, 1 at 480×960 and 960×1920; code 3 everywhere: ``fusion_kernel=3``); the encoders
are HNeRV's ConvNeXt encoder (paper: "the settings in [HNeRV]"; code: blocks without LayerNorm and
layer scale, all stages 64 wide plus a 1×1 projection: ``encoder="dnerv-code"``). The paper's
"concatenation" of the two differences and the code's per-colour interleaving are the same model up to a
permutation of the first conv's input channels; nervkit concatenates. Kept from the code, where the
paper is silent: no activation after the C_init conv, a 3×3 kernel in the diff blocks, sigmoid output.
Derived strides (no ``strides`` given) are nervkit's layout for the frame size padded with stride-1
stages after the first to five stages (180×320: 5,1,1,2,2, fusion at 45×80, as the official 180×320
baselines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError, ModelError
from .base import ParameterCounts
from .blocks import ACTIVATIONS, UpsampleBlock, output_activation
from .config import VideoGeometry, option
from .convnext import ConvNeXtEncoder, DNeRVCodeEncoder
from .frame_conditioned import FrameConditioned, FrameConditionedConfig
from .hybrid import module_size, pad_frames, upsample_stages
from .registry import count_parameter_kinds, register_method
from .sizing import solve_for_budget, stage_widths

STREAM_FUSIONS = ("ccu", "conv", "sum")
ENCODERS = ("hnerv", "dnerv-code")
BUDGET_COUNTS = ("stored", "paper")
#: decoder stages DNeRV is built with when the strides are derived (the paper's five)
DERIVED_STAGES = 5


@dataclass(frozen=True)
class DNeRVConfig(FrameConditionedConfig):
    """DNeRV architecture. Zero/empty sizes are derived from the frame size and the budget."""

    strides: tuple[int, ...] = option((), "decoder strides, e.g. 5,4,4,2,2 (empty = derive, five stages)",
                                      derived=True)
    embed_height: int = option(0, "content embedding height h (0 = derive: frame height / Π strides)",
                               min=0, derived=True)
    embed_width: int = option(0, "content embedding width w (0 = derive: frame width / Π strides)",
                              min=0, derived=True)
    embed_channels: int = option(16, "content embedding channels (values per cell stored for every frame)",
                                 min=1)
    diff_channels: int = option(2, "difference embedding channels (stored for every frame)", min=1)
    diff_stage: int = option(2, "the difference embedding has the size of this decoder stage's output: "
                                "2 = 2x40x80 at 960x1920 (paper default), 1 = 2x10x20")
    diff_strides: tuple[int, ...] = option((), "difference encoder strides (empty = the decoder strides "
                                               "after --diff-stage; the paper's 640x1280 uses 2,2,2,2)",
                                           derived=True)
    fusion_stage: int = option(3, "fuse the two streams after this decoder stage")
    fusion: str = option("ccu", "fusion: ccu (collaborative content unit, paper Eq. 5), conv or sum",
                         choices=STREAM_FUSIONS)
    fusion_kernel: int = option(3, "kernel K_c of the fusion convs (paper Table 8: 3 at 640x1280, 1 at "
                                   "480x960 and 960x1920; official code: 3)", min=1, odd=True)
    diff_kernel: int = option(3, "kernel of the difference-stream blocks", min=1, odd=True)
    head_kernel: int = option(1, "kernel of the output conv (paper Eq. 6: 1; official code: 3)", min=1,
                              odd=True)
    encoder: str = option("hnerv", "encoders: hnerv (HNeRV's ConvNeXt encoder, as the paper) or dnerv-code "
                                   "(the official code's variant)", choices=ENCODERS)
    encoder_width: int = option(64, "channels of the encoder stages (c1)", min=1)
    channels: int = option(0, "decoder width C_init (0 = solved for --params or --model-size)", min=0,
                           derived=True)
    model_size: float = option(1.5, "budget in millions when neither --channels nor --params is given",
                               positive=True)
    budget_counts: str = option("stored", "what a budget counts: stored (every stored value, both "
                                          "embeddings) or paper (decoder + content embeddings)",
                                choices=BUDGET_COUNTS)
    kernel_min: int = option(1, "kernel of the first decoder block; block i uses min(kmin + 2i, kmax)",
                             min=1, odd=True)
    kernel_max: int = option(5, "largest decoder kernel", min="kernel_min", odd=True)
    reduction: float = option(1.2, "each decoder block divides the width by this (rounded down)",
                              positive=True)
    activation: str = option("gelu", "activation", choices=ACTIVATIONS)
    output: str = option("sigmoid", "output activation: sigmoid or tanh*0.5+0.5", choices=("sigmoid", "tanh"))

    def with_layout(self, geometry: VideoGeometry) -> DNeRVConfig:
        """The shared layout; derived strides padded with stride-1 stages after the first to five
        stages; the difference encoder's strides (those after ``diff_stage``, unless given)."""
        cfg = super().with_layout(geometry)
        strides = cfg.strides
        if not self.strides and len(strides) < DERIVED_STAGES:  # 5,2,2 → 5,1,1,2,2
            strides = strides[:1] + (1,) * (DERIVED_STAGES - len(strides)) + strides[1:]
            cfg = replace(cfg, strides=strides)
        if not 0 <= cfg.diff_stage < cfg.fusion_stage <= len(strides):
            raise ConfigError(
                f"DNeRV needs 0 <= --diff-stage < --fusion-stage <= the number of decoder stages; got "
                f"{cfg.diff_stage}, {cfg.fusion_stage} and {len(strides)} stages (strides {_text(strides)})"
            )
        rest = strides[cfg.diff_stage :]
        if not cfg.diff_strides:
            return replace(cfg, diff_strides=tuple(s for s in rest if s > 1) or (1,))
        if any(s < 1 for s in cfg.diff_strides) or math.prod(cfg.diff_strides) != math.prod(rest):
            raise ConfigError(
                f"--diff-strides {_text(cfg.diff_strides)} must multiply to {math.prod(rest)}, the decoder "
                f"strides after stage {cfg.diff_stage} ({_text(rest)})"
            )
        return cfg

    @property
    def widths(self) -> list[int]:
        """The output width of every decoder stage, C_{i+1} = ⌊C_i / r⌋ from C_init (appendix Table 8)."""
        return stage_widths(self.channels, len(self.strides), self.reduction, rounding="floor")

    def solve_channels(self, geometry: VideoGeometry, budget: int) -> int:
        """The C_init whose count (``budget_counts``: every stored value, or the paper's accounting) is
        closest to ``budget``, counted on the meta device (no weights allocated). 1.5 M at 180×320 with
        132 frames: C_init 111 for the paper's accounting (1,483,758), 51 for every stored value
        (1,506,644), the two official 180×320 baselines."""

        def count(c: int) -> int:
            counts = count_parameter_kinds("dnerv", replace(self, channels=c), geometry)
            return counts.total if self.budget_counts == "stored" else counts.official

        if count(1) > budget:
            raise ModelError(
                f"a budget of {budget:,} parameters is too small for DNeRV at {geometry.height}x"
                f"{geometry.width} with {geometry.num_frames} frames (the smallest model takes {count(1):,} "
                f"counted as --budget-counts {self.budget_counts}); use a larger budget, larger strides or a "
                f"smaller embedding (--diff-stage, --embed-channels)"
            )
        return solve_for_budget(count, budget)


def _text(strides: tuple[int, ...]) -> str:
    return ",".join(map(str, strides))


def diff_grid(cfg: DNeRVConfig) -> tuple[int, int]:
    """(h', w') of the difference embedding: the output size of decoder stage ``diff_stage``."""
    f = math.prod(cfg.strides[: cfg.diff_stage])
    return cfg.embed_height * f, cfg.embed_width * f


class CollaborativeContentUnit(nn.Module):
    """CCU (paper Eq. 5): u = tanh(W_ub∗b + W_uz∗z), v = σ(W_vb∗b + W_vz∗z), s = v⊙u + (1 − v)⊙b, with
    b the content features b̃^C and z the difference features z^D (four K×K convs with bias)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        conv = lambda: nn.Conv2d(channels, channels, kernel, padding=kernel // 2)  # noqa: E731
        self.u_content, self.u_diff, self.v_content, self.v_diff = conv(), conv(), conv(), conv()

    def forward(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(self.u_content(content) + self.u_diff(diff))
        v = torch.sigmoid(self.v_content(content) + self.v_diff(diff))
        return v * u + (1 - v) * content


class ConvFusion(nn.Module):
    """Conv fusion (paper §4 "Fusion", Table 3 "C"): s = W∗b̃^C + z^D."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return self.conv(content) + diff


class SumFusion(nn.Module):
    """Sum fusion (Table 3 "A"): s = b̃^C + z^D, no parameters."""

    def forward(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return content + diff


def make_fusion(name: str, channels: int, kernel: int) -> nn.Module:
    if name == "ccu":
        return CollaborativeContentUnit(channels, kernel)
    if name == "conv":
        return ConvFusion(channels, kernel)
    if name == "sum":
        return SumFusion()
    raise ConfigError(f"unknown fusion {name!r}; choose from {', '.join(STREAM_FUSIONS)}")


def frame_differences(frames: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """concat[y_t − y_{t−1}, y_{t+1} − y_t] (n, 6, H, W) from frames (n, 3, H, W) and their
    neighbours (n, 2, 3, H, W) (previous, next)."""
    return torch.cat([frames - neighbours[:, 0], neighbours[:, 1] - frames], dim=1)


# the paper's appendix Table 8 (decoder C_init and K_c) with Table 7's diff-encoder strides and §7.3's
# operating points; "960x1920-official" is the official cfgs/DNeRV.yaml (3,948,426 parameters in all)
_S640, _S480, _S960 = (5, 4, 4, 2, 2), (5, 4, 3, 2, 2), (5, 4, 4, 3, 2)
PRESETS = {
    **{f"640x1280-{m}M": {"strides": _S640, "channels": c, "fusion_kernel": 3, "diff_strides": (2, 2, 2, 2)}
       for m, c in (("0.35", 32), ("0.75", 48), ("1.5", 68), ("3", 95))},
    "480x960-3M": {"strides": _S480, "channels": 110, "fusion_kernel": 1, "diff_strides": (3, 2, 2)},
    "960x1920-1.58M": {"strides": _S960, "channels": 68, "fusion_kernel": 1, "diff_stage": 1,
                       "diff_strides": (4, 4, 3, 2)},
    "960x1920-3M": {"strides": _S960, "channels": 92, "fusion_kernel": 1, "diff_strides": (4, 3, 2)},
    "960x1920-3M-small-diff": {"strides": _S960, "channels": 92, "fusion_kernel": 1, "diff_stage": 1,
                               "diff_strides": (4, 4, 3, 2)},
    "960x1920-official": {"strides": _S960, "channels": 92, "fusion_kernel": 3, "head_kernel": 3,
                          "diff_strides": (4, 3, 2), "encoder": "dnerv-code"},
}


@register_method(
    "dnerv",
    DNeRVConfig,
    description="DNeRV (CVPR 2023): HNeRV's content stream + a frame-difference stream, fused by a CCU "
                "(one video; not D-NeRV, which is d-nerv)",
    presets=PRESETS,
    default_preset=None,  # strides derived from the frame size, budget --model-size (1.5 M)
    paper="Zhao, Asif, Ma: DNeRV: Modeling Inherent Dynamics via Difference Neural Representation for "
          "Videos, CVPR 2023",
    # the official recipe (cfgs/DNeRV.yaml, spec §5.3): L2, Adam (0.5, 0.999), lr 5e-4, batch 1,
    # 20 % warm-up + cosine, gradient norm clipped at 0.1 (the last two are not in the paper)
    train_defaults={"loss": "l2", "lr": 5e-4, "beta1": 0.5, "batch_size": 1, "warmup": 0.2, "grad_clip": 0.1},
)
class DNeRV(FrameConditioned):
    """Frame + its two differences → encoders → embeddings (stored) → decoder with fusion → frame.

    Both embeddings are the side information (:class:`~nervkit.models.frame_conditioned.FrameConditioned`:
    refreshed over the whole video, stored per frame, interpolated for fractional positions)."""

    prune_exclude = ("head", "encoder", "diff_encoder")  # encoders are not stored: nothing to save
    needs_neighbours = True
    encoder_names = ("encoder", "diff_encoder")
    side_info_buffers = ("content_embeddings", "diff_embeddings")

    def __init__(self, config: DNeRVConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c = config
        encoder_cls = ConvNeXtEncoder if c.encoder == "hnerv" else DNeRVCodeEncoder
        content_strides = tuple(s for s in c.strides if s > 1) or (1,)  # same product: the content grid
        self.encoder: nn.Module | None = encoder_cls(
            content_strides, width=c.encoder_width, embed_channels=c.embed_channels)
        self.diff_encoder: nn.Module | None = encoder_cls(
            c.diff_strides, width=c.encoder_width, embed_channels=c.diff_channels, in_channels=6)
        widths = [c.channels, *c.widths]  # C_init, then the output of every stage
        self.stem = nn.Conv2d(c.embed_channels, c.channels, 1)
        self.blocks = nn.ModuleList(upsample_stages(c.channels, c.strides, c.kernels, widths[1:],
                                                    activation=c.activation))
        self.diff_stem = nn.Conv2d(c.diff_channels, widths[c.diff_stage], 1)
        self.diff_blocks = nn.Sequential(*(
            UpsampleBlock(widths[i], widths[i + 1], c.strides[i], kernel_size=c.diff_kernel,
                          activation=c.activation)
            for i in range(c.diff_stage, c.fusion_stage)
        ))
        self.fusion = make_fusion(c.fusion, widths[c.fusion_stage], c.fusion_kernel)
        self.head = nn.Conv2d(widths[-1], 3, c.head_kernel, padding=c.head_kernel // 2)
        n = geometry.num_frames
        self.register_buffer("content_embeddings",
                             torch.zeros(n, c.embed_channels, c.embed_height, c.embed_width))
        self.register_buffer("diff_embeddings", torch.zeros(n, c.diff_channels, *diff_grid(c)))

    # -- encoder side (training only) ------------------------------------------------------------
    def encode(self, frames: torch.Tensor,
               neighbours: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Content and difference embeddings (Eq. 4) of true-size frames (n, 3, H, W) in [0, 1] and
        their neighbours (n, 2, 3, H, W) (previous, next)."""
        self.check_inputs(frames, neighbours)
        frames = pad_frames(frames, self.output_size)
        neighbours = pad_frames(neighbours, self.output_size)
        return self.encoder(frames), self.diff_encoder(frame_differences(frames, neighbours))

    # -- decoder side (stored) -------------------------------------------------------------------
    def decode_embeddings(  # type: ignore[override]
            self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H_out, W_out) from content (n, E, h, w) and diff (n, D, h', w') embeddings
        (Eq. 5–6)."""
        stage = self.config.fusion_stage
        x = self.stem(content)
        for block in self.blocks[:stage]:
            x = block(x)
        x = self.fusion(x, self.diff_blocks(self.diff_stem(diff)))
        for block in self.blocks[stage:]:
            x = block(x)
        return output_activation(self.config.output, self.head(x))

    def parameter_counts(self) -> ParameterCounts:
        """Official: the decoder as the official code prints it (without the 1×1 C_init conv ``stem``)
        + the content embeddings (module docstring); total: every stored value. The encoders are
        listed in ``parts`` but neither stored nor counted."""
        parts = {name: module_size(getattr(self, name)) for name in
                 ("stem", "blocks", "diff_stem", "diff_blocks", "fusion", "head", "encoder", "diff_encoder")}
        parts["content_embeddings"] = self.content_embeddings.numel()
        parts["diff_embeddings"] = self.diff_embeddings.numel()
        decoder = sum(parts[k] for k in ("blocks", "diff_stem", "diff_blocks", "fusion", "head"))
        parts["decoder_official"] = decoder
        official = decoder + parts["content_embeddings"]
        total = official + parts["stem"] + parts["diff_embeddings"]
        return ParameterCounts(official=official, total=total, parts=parts)
