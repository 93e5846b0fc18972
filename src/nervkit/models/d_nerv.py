"""D-NeRV: Towards Scalable Neural Representation for Diverse Videos (He et al., CVPR 2023).

Not DNeRV (Zhao et al., ``dnerv``: frame differences of one video), a different method. One D-NeRV
model represents a whole collection of videos (a single video is a collection of one): every video is
cut into clips of T frames (``clip_length``, 8), each clip is decoded from its two *key-frames*, coded
with an image codec and stored, and from the relative time of its frames (:mod:`nervkit.data.clips`:
the clips, key-frames, relative time t and key-frame distance d)::

    key-frames I₀, I₁ ─ content encoder E (shared) ─ {I₀ˡ, I₁ˡ}, l = 0 … S (S decoder stages; the last
                                                       level is the standardised key-frames themselves)
    t ─ γ(t) ─ MLP stem ─ z_t (C₀ × h × w) ┐
    I_t⁰ = (1 − d)·I₀⁰ + d·I₁⁰  ───────────┴ M⁰ = [z_t, I_t⁰]
    stage l = 0 … S−1:  F_{t→0}ˡ, F_{t→1}ˡ = 𝒢ˡ(Mˡ)                                        (Eq. 2)
                        Îˡ_t = (1 − d)·𝒯(I₀ˡ, F_{t→0}ˡ) + d·𝒯(I₁ˡ, F_{t→1}ˡ)               (Eq. 3, 4)
                        Jˡ = γˡ·Mˡ + βˡ, [γˡ; βˡ] = FC(Îˡ_t)  (SAF)                         (Eq. 5, 6)
                        Oˡ = PixelShuffle(GELU(Conv₃ₓ₃(Jˡ)))                                 (Eq. 7)
                        Mˡ⁺¹ = Oˡ + matmul(Oˡ, Wˡ)  (GTMLP over the T frames of the clip)    (Eq. 8)
    stage S:            Î_t = the warped key-frames (as above, at full size)
                        frame = Conv₃ₓ₃(GELU(Conv₁ₓ₁([Mˢ, Î_t]))) · std + mean, clamped to [0, 1]

* Positional encoding γ(t): NeRV's interleaved sin/cos with b = 1.25 and L = 240 levels (``pe_base``,
  ``pe_levels``); t = f/(L_v − 1) is the frame's position in its own video (paper §4.4: "the relative
  time index normalized by each video's length"). Stem: Linear 2L → ``stem_hidden`` (512) → GELU →
  Linear → C₀·h·w → GELU, reshaped channel-major to C₀ × h × w (h × w = 4 × 5 at 256 × 320).
* Content encoder E: a 3 × 3 conv 3 → E (``encoder_width``, 64) + GELU, then one patchify conv per
  decoder stage (kernel = stride, the decoder strides reversed) + GELU; its outputs, coarse to fine,
  plus the standardised key-frames are the S + 1 content levels. E is part of the decoder (it runs on
  the decoded key-frames when a frame is decoded), so it is stored and counted.
* Flow heads 𝒢ˡ (one per level, S + 1): 1 × 1 conv C → ⌊C/4⌋, GELU, 3 × 3 conv → 4 (F_{t→0}, F_{t→1},
  in pixels of the level, x first); 𝒯 is :func:`~nervkit.models.flow.backward_warp` (bilinear, border).
* D-NeRV blocks: SAF, then conv C_in → C_out·s² (3 × 3), PixelShuffle(s), GELU, then the GTMLP: per
  channel c a T × T matrix W_c and a bias over the clip's frames, added residually (a grouped 1 × 1 conv
  over the (C·T) layout). Widths: stage 0 outputs ⌊C₀·expansion⌋ (2), stage i > 0 max(round(C/sᵢ),
  ``lower_width``) with Python's round (the official code; 2 at the official strides 4, 2, 2, 2, 2).
  The first stage's input has C₀ + E channels. SAF convs and main convs: Xavier-uniform, zero bias.
* Output: the refinement head's 3 channels de-standardised with the dataset statistics the key-frames
  were standardised with (``dataset_mean``, ``dataset_std``: UVG's by default, UCF101's in its presets).

Where the paper and the official code differ (spec §1.7) the paper is the default and the code's variant
an option (the presets, which reproduce the official models, take the code's):

* SAF (``saf``): ``pixel`` — Eq. 5–6, γ, β ∈ ℝ^{H×W×1} from the content features, J = γ·M + β; ``channel``
  — the code: γ, β per channel and pixel, J = M·(1 + γ) + β; ``concat`` — the ablation of Table 5
  (U-Net-like concatenation [M, Î] instead of SAF).
* Content interpolation I_t⁰ (``content_interpolation``): ``distance`` — the paper's linear
  interpolation at the clip position (the key-frame distance d, as in the fusion of Eq. 4); ``code`` —
  the code's trilinear resampling of the two key-frames to T steps (align_corners = False), whose end
  weights 0, 0, .125, …, .875, 1, 1 (T = 8) are fixed per slot.
* First-stage input (``first_input``): ``paper`` — M⁰ = Concat(I_t⁰, PE(t)) (Eq. 1, with PE(t) the
  stem's embedding as in NeRV); ``code`` — the same concatenation normalised by an InstanceNorm over the
  clip (T × h × w per channel, no affine).
* Loss: the paper's L1 + α(1 − SSIM) is the UVG recipe (``0.7*l1+0.3*ssim``, the default); the UCF101
  command trains ``l2+0.03*ssim`` (``--loss``).

Ablations (paper Table 3): ``flow=False`` — no flow heads, the content of every level is the key-frame
features blended by d without warping; ``gtmlp=False`` — no global temporal MLP; ``saf=concat``.

Key-frames are coded before training and the network trains on the *decoded* key-frames (paper §3.3):
:meth:`DNeRVClips.refresh_side_info` takes the key-frames of every video from the frames, codes each
one independently with :func:`nervkit.io.intra.encode_images` (``keyframe_codec``, ``keyframe_quality``)
and decodes them again; the decoded key-frames (uint8) are what training and decoding read, and the
bitstreams (one byte buffer plus the length of each) are what is stored: the group of kind
``key_frames``. A ``.nerv`` file thus holds the weights and the key-frame bitstreams; loading it decodes
the bitstreams (:meth:`DNeRVClips.load_stored`). The key-frames depend on the frames only, not on the
weights: refreshing again recodes them only when the frames changed. ``keyframe_bytes`` (not a CLI
option) records the bitstream's length once they are coded, so that a stored config describes the
stored tensors exactly.

Counts: ``official`` = every parameter, the content encoder included — what the official code prints
(UVG XS/S/M/L/XL 8,017,893 / 15,955,472 / 24,197,711 / 41,660,324 / 67,953,362; UCF101 S/M/L 21,388,894 /
39,144,463 / 61,302,972); ``total`` = every stored value: the parameters, the key-frame bytes and their
lengths. The paper's rate adds the coded key-frames to the model: a budget given as a rate
(``budget_counts=rate``, e.g. from ``--params 0.9bpp``) first subtracts the key-frame bytes, estimated at
``keyframe_bpp`` bits per key-frame pixel (the bytes are only known once the key-frames are coded).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..data.batches import FrameBatch
from ..data.clips import ClipBatch, ClipLayout
from ..errors import InputError, ModelError
from ..io import intra
from .base import MethodConfig, ParameterCounts, Representation, StoredGroup
from .blocks import PositionalEncoding
from .config import VideoGeometry, option
from .flow import backward_warp
from .hybrid import module_size, pad_frames
from .registry import count_parameters, register_method
from .sizing import check_frame_size, derive_layout, layout_for, solve_grid_channels

if TYPE_CHECKING:
    from ..data import FrameStore

SAF_MODES = ("pixel", "channel", "concat")
CONTENT_INTERPOLATIONS = ("distance", "code")
FIRST_INPUTS = ("paper", "code")
KEYFRAME_CODECS = ("av1", "hevc", "vvc", "jpeg")
BUDGET_COUNTS = ("parameters", "rate")
#: cells of the stem's grid the derived layout aims at: the official 4 x 5 at 256 x 320
GRID_CELLS = 20
#: the datasets' RGB statistics the official code standardises the key-frames with (spec §1.1)
UVG_MEAN, UVG_STD = (0.4519, 0.4505, 0.4519), (0.2434, 0.2547, 0.2958)
UCF101_MEAN, UCF101_STD = (0.3986, 0.3829, 0.3546), (0.2805, 0.2747, 0.2787)
#: (stem_hidden, encoder_width, pe_levels, lower_width) the budget solver tries in turn when the budget
#: leaves no room for C₀ (the 480 → 512 stem alone holds 246 k parameters), never above the configured
#: values
SMALL_TRIALS = ((512, 64, 240, 32), (256, 64, 240, 32), (128, 32, 240, 32), (64, 32, 80, 16), (32, 16, 80, 16),
                (16, 8, 40, 8), (8, 4, 16, 4))


@dataclass(frozen=True)
class DNeRVClipsConfig(MethodConfig):
    """D-NeRV architecture (module docstring). Zero/empty sizes are derived from the frame size and the
    budget."""

    size_options = ("grid_channels", "model_size")
    recorded_options = ("keyframe_bytes",)
    rate_budget_options: ClassVar[dict[str, Any]] = {"budget_counts": "rate"}

    clip_length: int = option(8, "frames per clip T; the key-frames are every T-th frame of each video "
                                 "(paper §4.1: 8)", min=1, max=256)
    strides: tuple[int, ...] = option((), "decoder strides, e.g. 4,2,2,2,2 (empty = derive from the frame "
                                          "size: 4,2,2,2,2 at 256x320)", derived=True)
    grid_height: int = option(0, "stem grid height h (0 = frame height / product of strides)", min=0,
                              derived=True)
    grid_width: int = option(0, "stem grid width w (0 = frame width / product of strides)", min=0, derived=True)
    grid_channels: int = option(0, "stem width C0, the official fc_dim (0 = solved for --params or "
                                   "--model-size)", min=0, derived=True)
    model_size: float = option(1.5, "budget in millions of parameters when neither --grid-channels nor "
                                    "--params is given", positive=True)
    expansion: float = option(2.0, "the first stage outputs floor(C0 x expansion) channels", positive=True)
    lower_width: int = option(32, "narrowest stage width", min=1)
    encoder_width: int = option(64, "channels E of the content encoder", min=1)
    stem_hidden: int = option(512, "hidden width of the MLP stem (small models: 64 or less)", min=1)
    pe_base: float = option(1.25, "positional encoding base b", positive=True)
    pe_levels: int = option(240, "positional encoding levels L (2L values)", min=1, max=1024)
    saf: str = option("pixel", "content fusion: pixel (paper Eq. 5-6: one gamma and beta per pixel), channel "
                               "(official code: per channel, M(1+gamma)+beta) or concat (Table 5 ablation)",
                      choices=SAF_MODES)
    content_interpolation: str = option("distance", "first-stage content: distance (paper: linear at the "
                                                    "key-frame distance) or code (trilinear over the clip)",
                                        choices=CONTENT_INTERPOLATIONS)
    first_input: str = option("paper", "first-stage input: paper (Eq. 1, concatenation) or code (the "
                                       "concatenation instance-normalised over the clip)", choices=FIRST_INPUTS)
    flow: bool = option(True, "flow heads and warping (off: key-frame features blended without warping; "
                              "Table 3 ablation)")
    gtmlp: bool = option(True, "global temporal MLP in every block (Eq. 8; off: Table 3 ablation)")
    dataset_mean: tuple[float, ...] = option(UVG_MEAN, "RGB mean the key-frames are standardised with and the "
                                                       "output de-standardised with (UVG's)", length=3)
    dataset_std: tuple[float, ...] = option(UVG_STD, "RGB standard deviation of the standardisation (UVG's)",
                                            length=3, positive=True)
    keyframe_codec: str = option("av1", "image codec of the key-frames", choices=KEYFRAME_CODECS)
    keyframe_quality: int = option(-1, "the key-frame codec's quantizer, lower is better: av1 crf 0-63, hevc crf "
                                       "0-51, vvc qp 0-63, jpeg qscale 2-31 (-1 = the codec's default: 32, 34, "
                                       "40, 8, about equal PSNR)", min=-1)
    keyframe_bytes: int = option(0, "bytes of the coded key-frames (set when they are coded)", cli=False, min=0)
    budget_counts: str = option("parameters", "what a budget counts: parameters, or rate (parameters at 8 bits "
                                              "plus the key-frame bytes, which are subtracted first)",
                                choices=BUDGET_COUNTS)
    keyframe_bpp: float = option(0.3, "estimated bits per key-frame pixel, subtracted from a rate budget",
                                 min=0.0)

    @property
    def quality(self) -> int | None:
        """The key-frame quality given to the codec (None: its default)."""
        return None if self.keyframe_quality < 0 else self.keyframe_quality

    def layout(self, geometry: VideoGeometry) -> ClipLayout:
        """The clips and key-frames of ``geometry``'s videos."""
        return ClipLayout(tuple(n for _, n in geometry.spans()), self.clip_length)

    def with_layout(self, geometry: VideoGeometry) -> DNeRVClipsConfig:
        """The strides (given, or derived for a stem grid of about 20 cells: the official 4,2,2,2,2 and 4×5
        at 256×320) and the grid they leave."""
        intra.check_codec(self.keyframe_codec, self.quality)  # before anything is written or trained
        if self.strides:
            grid = (self.grid_height, self.grid_width) if self.grid_height and self.grid_width else None
            layout = layout_for(geometry.height, geometry.width, self.strides, grid)
        else:
            layout = derive_layout(geometry.height, geometry.width, target_cells=GRID_CELLS)
        return replace(self, strides=layout.strides, grid_height=layout.grid_height, grid_width=layout.grid_width)

    @property
    def widths(self) -> list[int]:
        """Output width of every decoder stage: ⌊C₀·expansion⌋, then max(round(C/sᵢ), lower_width)."""
        widths, c = [], self.grid_channels
        for i, stride in enumerate(self.strides):
            c = int(self.grid_channels * self.expansion) if i == 0 else max(round(c / stride), self.lower_width)
            widths.append(c)
        return widths

    def keyframe_bytes_estimate(self, geometry: VideoGeometry) -> int:
        """The coded key-frames' bytes a rate budget expects: ``keyframe_bpp`` bits per key-frame pixel."""
        keys = self.layout(geometry).num_key_frames
        return math.ceil(keys * geometry.height * geometry.width * self.keyframe_bpp / 8)

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> DNeRVClipsConfig:
        """C₀ for the budget (``--params``, recorded as ``model_size``; else ``--model-size`` unless
        ``--grid-channels`` is given), counted as the official code counts (every parameter); trying a
        smaller stem, encoder and encoding (:data:`SMALL_TRIALS`) when the budget leaves too little room,
        never changing what the user set. A rate budget first loses the estimated key-frame bytes."""
        if target is None and self.grid_channels:
            return self
        cfg = self if target is None else replace(self, model_size=target / 1e6)
        budget = round(cfg.model_size * 1e6)
        if cfg.budget_counts == "rate":
            keys = cfg.keyframe_bytes_estimate(geometry)
            if budget - keys < 1000:
                raise ModelError(f"a rate budget of {budget:,} bytes leaves no room for D-NeRV's weights: the "
                                 f"{cfg.layout(geometry).num_key_frames} key-frames alone take about {keys:,} "
                                 f"bytes at --keyframe-bpp {cfg.keyframe_bpp:g}")
            budget -= keys
        return solve_grid_channels(self._trials(cfg, fixed), lambda c: count_parameters("d-nerv", c, geometry),
                                   budget, method="d-nerv", geometry=(geometry.height, geometry.width))

    @staticmethod
    def _trials(cfg: DNeRVClipsConfig, fixed: frozenset[str]) -> list[DNeRVClipsConfig]:
        trials: list[DNeRVClipsConfig] = []
        for values in SMALL_TRIALS:
            changes = {name: getattr(cfg, name) if name in fixed else min(getattr(cfg, name), value)
                       for name, value in zip(("stem_hidden", "encoder_width", "pe_levels", "lower_width"), values)}
            trial = replace(cfg, **changes)
            if trial not in trials:
                trials.append(trial)
        return trials


class ContentEncoder(nn.Module):
    """E (paper §3.1): 3×3 conv 3 → E + GELU, then one patchify conv (kernel = stride) + GELU per decoder
    stage, the decoder strides reversed. Returns the S + 1 content levels coarse to fine, the last one
    being the input key-frames themselves (spec §1.2: K0 … K5)."""

    def __init__(self, width: int, strides: tuple[int, ...]) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.stages = nn.ModuleList(nn.Conv2d(width, width, s, stride=s) for s in reversed(strides))

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        levels = [frames]
        x = F.gelu(self.head(frames))
        for stage in self.stages:
            x = F.gelu(stage(x))
            levels.append(x)
        return levels[::-1]


class FlowHead(nn.Module):
    """𝒢 (Eq. 2) and the final refinement: 1×1 conv C → ⌊C/4⌋, GELU, 3×3 conv → ``out`` channels."""

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        hidden = max(channels // 4, 1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.out = nn.Conv2d(hidden, out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.reduce(x)))


class SpatiallyAdaptiveFusion(nn.Module):
    """SAF (Eq. 5–6): modulation of the decoder features M by the warped content features Î.

    ``pixel``: [γ; β] = FC(Î) ∈ ℝ^{H×W×1} each, J = γ·M + β (the paper); ``channel``: γ, β per channel,
    J = M·(1 + γ) + β (the official code's ``ToStyle``); ``concat``: J = [M, Î] (no parameters; Table 5)."""

    def __init__(self, content_channels: int, channels: int, mode: str) -> None:
        super().__init__()
        self.mode, self.channels = mode, channels
        outputs = {"pixel": 2, "channel": 2 * channels}.get(mode)
        self.style = nn.Conv2d(content_channels, outputs, 1) if outputs else None

    def forward(self, x: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        if self.style is None:
            return torch.cat([x, content], dim=1)
        style = self.style(content)
        if self.mode == "pixel":
            return style[:, :1] * x + style[:, 1:]
        return x * (style[:, : self.channels] + 1.0) + style[:, self.channels :]


class GlobalTemporalMLP(nn.Module):
    """GTMLP (Eq. 8): M = O + matmul(O, W): for every channel c a T×T matrix W_c (and a bias) mixes the
    clip's T frames at every pixel — a 1×1 conv over the (C·T) layout with C groups."""

    def __init__(self, channels: int, clip_length: int) -> None:
        super().__init__()
        self.clip_length = clip_length
        self.mix = nn.Conv2d(channels * clip_length, channels * clip_length, 1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t = self.clip_length
        clips = x.view(nt // t, t, c, h, w).transpose(1, 2).reshape(nt // t, c * t, h, w)
        clips = clips + self.mix(clips)
        return clips.view(nt // t, c, t, h, w).transpose(1, 2).reshape(nt, c, h, w)


class DNeRVClipBlock(nn.Module):
    """One D-NeRV block: SAF → 3×3 conv → PixelShuffle(s) → GELU (Eq. 7) → GTMLP (Eq. 8)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, content_channels: int,
                 clip_length: int, saf: str, gtmlp: bool) -> None:
        super().__init__()
        self.saf = SpatiallyAdaptiveFusion(content_channels, in_channels, saf)
        conv_in = in_channels + (content_channels if saf == "concat" else 0)
        self.conv = nn.Conv2d(conv_in, out_channels * stride * stride, 3, padding=1)
        self.shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.gtmlp = GlobalTemporalMLP(out_channels, clip_length) if gtmlp else None
        for conv in (self.saf.style, self.conv):  # the official block's initialisation
            if conv is not None:
                nn.init.xavier_uniform_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.shuffle(self.conv(self.saf(x, content))))
        return x if self.gtmlp is None else self.gtmlp(x)


@register_method(
    "d-nerv",
    DNeRVClipsConfig,
    description="D-NeRV (CVPR 2023): one model for many videos, clips decoded from coded key-frames, "
                "flow-warped content, SAF and a global temporal MLP (not DNeRV, which is dnerv)",
    presets={
        # (the official key-frame quality grows with the size, cheng2020 q3 q3 q4 q5 q6: give
        # --keyframe-quality to follow it; the presets keep each codec's default)
        **{f"uvg-{size}": {"strides": (4, 2, 2, 2, 2), "grid_channels": c0, "saf": "channel",
                           "content_interpolation": "code", "first_input": "code"}
           for size, c0 in (("xs", 107), ("s", 166), ("m", 213), ("l", 291), ("xl", 382))},
        **{f"ucf101-{size}": {"strides": (4, 2, 2, 2, 2), "grid_channels": c0, "saf": "channel",
                              "content_interpolation": "code", "first_input": "code",
                              "dataset_mean": UCF101_MEAN, "dataset_std": UCF101_STD}
           for size, c0 in (("s", 198), ("m", 281), ("l", 361))},
    },
    default_preset=None,  # strides derived from the frame size, budget --model-size (1.5 M)
    paper="He, Yang, Wang, Wu, Chen, Huang, Ren, Lim, Shrivastava: Towards Scalable Neural Representation for "
          "Diverse Videos, CVPR 2023",
    # the official UVG recipe (spec §1.3): AdamW (0.9, 0.999, no weight decay), lr 5e-4, 32 clips per batch,
    # 20 % warm-up from 0.1 + cosine, 0.7 L1 + 0.3 (1 - SSIM); UCF101: --loss l2+0.03*ssim
    train_defaults={"optimizer": "adamw", "lr": 5e-4, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0,
                    "batch_size": 32, "warmup": 0.2, "lr_schedule": "cosine", "loss": "0.7*l1+0.3*ssim"},
)
class DNeRVClips(Representation):
    """Key-frames of a clip + relative time → the clip's frames (module docstring)."""

    batch_kind: ClassVar[str] = "clips"
    frame_side_info = True
    #: the stored key-frames are an input of training, not only of decoding: the trainer must refresh
    #: them once before the first step (see refresh_side_info)
    side_info_feeds_training: ClassVar[bool] = True

    def __init__(self, config: DNeRVClipsConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        check_frame_size(geometry.height, geometry.width)
        cfg = config
        self.clip_layout = cfg.layout(geometry)
        widths = cfg.widths
        enc, c0 = cfg.encoder_width, cfg.grid_channels
        self.pe = PositionalEncoding(cfg.pe_base, cfg.pe_levels, "interleaved")
        self.stem = nn.Sequential(nn.Linear(self.pe.out_dim, cfg.stem_hidden), nn.GELU(),
                                  nn.Linear(cfg.stem_hidden, c0 * cfg.grid_height * cfg.grid_width), nn.GELU())
        self.encoder = ContentEncoder(enc, cfg.strides)
        inputs = [c0 + enc, *widths[:-1]]  # input width of every stage
        self.blocks = nn.ModuleList(
            DNeRVClipBlock(c_in, c_out, s, content_channels=enc, clip_length=cfg.clip_length, saf=cfg.saf,
                           gtmlp=cfg.gtmlp)
            for c_in, c_out, s in zip(inputs, widths, cfg.strides))
        self.flow_heads = nn.ModuleList(FlowHead(c, 4) for c in [*inputs, widths[-1]]) if cfg.flow else None
        self.refine = FlowHead(widths[-1] + 3, 3)
        keys = self.clip_layout.num_key_frames
        self.register_buffer("keyframes", torch.zeros(keys, 3, geometry.height, geometry.width, dtype=torch.uint8))
        self.register_buffer("keyframe_bitstream", torch.zeros(cfg.keyframe_bytes, dtype=torch.uint8))
        self.register_buffer("keyframe_lengths", torch.zeros(keys, dtype=torch.int64))
        # what the key-frames were coded from (a digest of the source key-frames and the codec settings;
        # zeros: unknown), so that a refresh recodes them only when that changed: checkpoints keep it
        self.register_buffer("keyframe_source", torch.zeros(16, dtype=torch.uint8))

    @property
    def output_size(self) -> tuple[int, int]:
        f = math.prod(self.config.strides)
        return self.config.grid_height * f, self.config.grid_width * f

    @property
    def clip_length(self) -> int:
        return self.config.clip_length

    # -- the contract -----------------------------------------------------------------------------
    def forward(self, batch: ClipBatch | FrameBatch) -> torch.Tensor:
        """Clips: every slot of the batch's clips (n·T, 3, H_out, W_out), from the stored (decoded)
        key-frames; whole frames (a FrameBatch): :meth:`decode` of its indices."""
        if not isinstance(batch, ClipBatch):
            return self.decode(batch.indices)
        if not bool(self.keyframe_lengths.any()):
            raise ModelError("D-NeRV trains on its coded key-frames, which are not coded yet: call "
                             "model.refresh_side_info(store) before the first training step")
        return self.render(batch.keys, batch.times, batch.distances)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H_out, W_out) at collection frame ``indices``: the clip of each frame rendered
        from the stored key-frames (frames of one clip share one rendering)."""
        return self._render_positions(torch.as_tensor(indices).reshape(-1).to(torch.float64))

    def decode_at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames at fractional positions from the continuous time: a position kT + j + φ of a video is
        slot j of its clip k shifted by φ (every slot at kT + j' + φ: relative time and key-frame
        distance as for a frame there, the same key-frames); integer positions give :meth:`decode`."""
        pos, *_ = self._neighbours(positions)  # checks the range
        return self._render_positions(pos.to(torch.float64))

    def stored_groups(self) -> list[StoredGroup]:
        """The weights (every parameter) and the key-frames as their codec's bitstreams (``key_frames``:
        the bytes of all key-frames one after the other and the length of each)."""
        buffers = ("keyframes", "keyframe_bitstream", "keyframe_lengths", "keyframe_source")
        weights = {k: v for k, v in self.state_dict().items() if k not in buffers}
        return [StoredGroup("decoder", "weights", weights),
                StoredGroup("key_frames", "key_frames", {"keyframe_bitstream": self.keyframe_bitstream.detach(),
                                                         "keyframe_lengths": self.keyframe_lengths.detach()})]

    def load_stored(self, tensors: dict[str, torch.Tensor]) -> None:
        """Weights and key-frame bitstreams as a file holds them: the bitstreams are decoded into the
        key-frames decoding reads (all zero if they were never coded)."""
        lengths, stream = tensors.get("keyframe_lengths"), tensors.get("keyframe_bitstream")
        keys = self.clip_layout.num_key_frames
        if lengths is None or stream is None:
            raise ModelError("D-NeRV's stored tensors lack the key-frames (keyframe_bitstream, keyframe_lengths)")
        lengths, stream = lengths.to(torch.int64).reshape(-1), stream.to(torch.uint8).reshape(-1)
        if lengths.numel() != keys or bool((lengths < 0).any()) or int(lengths.sum()) != stream.numel():
            raise ModelError(f"the key-frame bitstreams do not fit the {keys} key-frames of this model")
        frames = torch.zeros_like(self.keyframes, device="cpu")
        if int(lengths.sum()):
            frames = self._decode_key_frames(_split(stream, lengths))
        unknown = torch.zeros_like(self.keyframe_source, device="cpu")  # a file does not say what they came from
        self.load_state_dict({**tensors, "keyframes": frames, "keyframe_source": unknown}, strict=True)

    def parameter_counts(self) -> ParameterCounts:
        """Official: every parameter, the content encoder included (what the official code prints);
        total: every stored value (the parameters, the key-frame bytes and their lengths)."""
        parts = {name: module_size(getattr(self, name)) for name in ("stem", "encoder", "blocks", "flow_heads",
                                                                     "refine")}
        parts["gtmlp"] = sum(module_size(b.gtmlp) for b in self.blocks)
        parts["saf"] = sum(module_size(b.saf) for b in self.blocks)
        parts["keyframe_bytes"] = self.keyframe_bitstream.numel()
        parts["keyframe_lengths"] = self.keyframe_lengths.numel()
        official = sum(p.numel() for p in self.parameters())
        return ParameterCounts(official, official + parts["keyframe_bytes"] + parts["keyframe_lengths"], parts)

    # -- key-frames --------------------------------------------------------------------------------
    @torch.no_grad()
    def refresh_side_info(self, store: FrameStore) -> None:
        """Code the key-frames of every video of ``store`` (each one independently, with the configured
        codec and quality), keep their bitstreams and their decoded frames; nothing to do when they were
        coded from the same frames already (they do not depend on the weights)."""
        n, size = self.geometry.num_frames, (self.geometry.height, self.geometry.width)
        if len(store) != n:
            raise ModelError(f"the store has {len(store)} frames but the model was fitted to {n}")
        if (store.height, store.width) != size:
            raise InputError(f"D-NeRV was fitted to {size[0]}x{size[1]} frames but the store holds "
                             f"{store.height}x{store.width} frames")
        sources = store.frames[torch.tensor(self.clip_layout.key_frames, dtype=torch.long)].contiguous()
        cfg = self.config
        digest = hashlib.blake2b(sources.numpy().tobytes(), digest_size=16)
        digest.update(f"{cfg.keyframe_codec}/{cfg.keyframe_quality}".encode())
        source = torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)
        if torch.equal(source, self.keyframe_source.cpu()) and bool(self.keyframe_lengths.any()):
            return
        streams = intra.encode_images(sources, cfg.keyframe_codec, cfg.quality)  # one non-empty stream each
        device = self.keyframes.device
        self.keyframes.copy_(self._decode_key_frames(streams).to(device))
        self.keyframe_lengths.copy_(torch.tensor([len(s) for s in streams], dtype=torch.int64))
        self.keyframe_bitstream = torch.frombuffer(bytearray(b"".join(streams)), dtype=torch.uint8).to(device)
        self.config = replace(cfg, keyframe_bytes=self.keyframe_bitstream.numel())
        self.keyframe_source.copy_(source)

    def _decode_key_frames(self, streams: list[bytes]) -> torch.Tensor:
        """uint8 key-frames (K, 3, H, W) from their bitstreams (ModelError when they do not decode to
        that)."""
        codec = self.config.keyframe_codec
        try:
            frames = intra.decode_images(streams, codec, size=(self.geometry.height, self.geometry.width))
        except (ModelError, InputError):
            raise
        except Exception as exc:  # noqa: BLE001 - a codec's error on bytes it cannot decode
            raise ModelError(f"the {codec} key-frames do not decode ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
        if tuple(frames.shape) != tuple(self.keyframes.shape) or frames.dtype != torch.uint8:
            raise ModelError(f"the {codec} key-frames decode to {tuple(frames.shape)} {frames.dtype}, not the "
                             f"{tuple(self.keyframes.shape)} uint8 of this model")
        return frames

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """The key-frame bitstream's length is that of the state being loaded (a checkpoint or a file
        written after the key-frames were coded): resize the buffer and record it in the config."""
        incoming = state_dict.get(prefix + "keyframe_bitstream")
        if isinstance(incoming, torch.Tensor) and incoming.dim() == 1 and \
                incoming.numel() != self.keyframe_bitstream.numel():
            self.keyframe_bitstream = torch.zeros(incoming.numel(), dtype=torch.uint8,
                                                  device=self.keyframe_bitstream.device)
            self.config = replace(self.config, keyframe_bytes=incoming.numel())
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- the network ---------------------------------------------------------------------------------
    def _render_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames at collection positions: one rendering per (clip, fraction), each position's slot taken
        from it."""
        clips, slots, fractions = self.clip_layout.locate(positions.cpu())
        if not clips:
            return self.keyframes.new_zeros((0, 3, *self.output_size), dtype=torch.float32)
        groups: dict[tuple[int, float], int] = {}
        rows = []
        for clip, slot, phi in zip(clips, slots, fractions):
            group = groups.setdefault((clip, phi), len(groups))
            rows.append(group * self.clip_length + slot)
        table = self.clip_layout.table([c for c, _ in groups], [phi for _, phi in groups])
        device = self.keyframes.device
        out = self.render(table.keys.to(device), table.times.to(device), table.distances.to(device))
        return out[torch.tensor(rows, dtype=torch.long, device=out.device)]

    def render(self, keys: torch.Tensor, times: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        """Every slot (n·T, 3, H_out, W_out) of n clips from their key-frame slots ``keys`` (n, 2), the
        relative time ``times`` (n, T) and key-frame distance ``distances`` (n, T) of each slot."""
        cfg = self.config
        n, t = times.shape
        h, w = cfg.grid_height, cfg.grid_width
        # the content levels of the clips' key-frames, each distinct key-frame encoded once (§3.1)
        unique, inverse = torch.unique(keys.reshape(-1), return_inverse=True)
        mean = torch.tensor(cfg.dataset_mean, device=times.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.dataset_std, device=times.device).view(1, 3, 1, 1)
        frames = self.keyframes[unique].to(torch.float32).div_(255.0)
        levels = self.encoder(pad_frames((frames - mean) / std, self.output_size))
        pair = inverse.view(n, 2)
        start, end = pair[:, 0].repeat_interleave(t), pair[:, 1].repeat_interleave(t)
        d = distances.reshape(n * t, 1, 1, 1)
        # first-stage input M⁰ = [stem(γ(t)), I_t⁰] (Eq. 1)
        z = self.stem(self.pe(times.reshape(-1))).view(n * t, cfg.grid_channels, h, w)
        lam = d if cfg.content_interpolation == "distance" else self._slot_weights(t, times.device).repeat(n, 1, 1, 1)
        content = (1 - lam) * levels[0][start] + lam * levels[0][end]
        x = torch.cat([z, content], dim=1)
        if cfg.first_input == "code":  # InstanceNorm over the clip's T × h × w, per channel
            c = x.shape[1]
            x = F.instance_norm(x.view(n, t, c, h, w).transpose(1, 2), eps=1e-5).transpose(1, 2).reshape(n * t, c, h, w)
        for i, level in enumerate(levels):
            fused = self._fused_content(i, x, level[start], level[end], d)
            x = self.blocks[i](x, fused) if i < len(self.blocks) else self.refine(torch.cat([x, fused], dim=1))
        return (x * std + mean).clamp(0, 1)

    def _fused_content(self, level: int, x: torch.Tensor, first: torch.Tensor, last: torch.Tensor,
                       d: torch.Tensor) -> torch.Tensor:
        """Îˡ_t = (1 − d)·𝒯(I₀ˡ, F_{t→0}ˡ) + d·𝒯(I₁ˡ, F_{t→1}ˡ) (Eq. 2–4); without flow, no warping."""
        if self.flow_heads is None:
            return (1 - d) * first + d * last
        flow = self.flow_heads[level](x)
        return (1 - d) * backward_warp(first, flow[:, :2]) + d * backward_warp(last, flow[:, 2:])

    def _slot_weights(self, t: int, device: torch.device) -> torch.Tensor:
        """The end key-frame's weight in each slot of the official code's trilinear resampling of two
        key-frames to T steps (align_corners = False): clamp((j + ½)·2/T − ½, 0, 1), as (T, 1, 1, 1)."""
        j = torch.arange(t, dtype=torch.float32, device=device)
        return ((j + 0.5) * (2.0 / t) - 0.5).clamp(0, 1).view(t, 1, 1, 1)


def _split(stream: torch.Tensor, lengths: torch.Tensor) -> list[bytes]:
    """The bitstream of every key-frame from their concatenation and lengths."""
    data, out, at = stream.numpy().tobytes(), [], 0
    for n in lengths.tolist():
        out.append(data[at : at + n])
        at += n
    return out
