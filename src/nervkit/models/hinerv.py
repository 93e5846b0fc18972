"""HiNeRV: Video Compression with Hierarchical Encoding-based Neural Representation (Kwan et al., NeurIPS 2023).

A frame is decoded from learned grids by a deep ConvNeXt decoder that up-samples with bilinear
interpolation and adds a learned *hierarchical encoding* after every up-sampling (paper §3.1–3.3,
Fig. 2; spec §3)::

    base grids (2 levels, linear in time) ─ concat ─ 3×3 conv ("stem", 6 → C)            h₀×w₀
    stage k = 1..4:  LayerNorm ─ bilinear ×s_k ─ + hierarchical encoding_k ─ ConvNeXt blocks
    linear C₄ → 3 ─ sigmoid                                                                H×W

* **Base grids** (paper §3.2, Eq. 2): level l is a (T_g/2ˡ, h₀, w₀, C_g·2ˡ) grid, linearly interpolated
  in time only (align_corners False, clamped at the ends) to the frame's position; the levels are
  concatenated (UVG-S: (150, 18, 32, 2) and (75, 18, 32, 4) for 600 frames, 6 channels).
* **Hierarchical encoding** of stage k (paper §3.3, Eq. 4–5, "temporal local grid" in the code): level
  l ∈ {0, 1, 2} is a (N/2ˡ, s_k, s_k, c_k·2ˡ) grid — one s_k×s_k block of features per time row, read
  linearly in time; the block's cell at the pixel's sub-position (y mod s_k, x mod s_k) is the pixel's
  encoding, mapped by a linear layer (with bias) from Σ_l c_k·2ˡ to the stage's input width and added.
  c_k halves from stage to stage (never below 1): 4, 2, 1, 1 for UVG-S.
* **Stages**: LayerNorm over channels (no affine, ε 1e-6) → bilinear ×s_k (align_corners False) →
  + encoding → ConvNeXt blocks (paper §3.1): depth-wise 3×3 conv, LayerNorm (no affine), linear
  C_in → e·C_out, GELU, linear → C_out, all without bias; residual when C_in = C_out. Widths
  C, C, ⌊C/2⌋, ⌊C/4⌋, ⌊C/8⌋: the first block of stages 2–4 halves the width. Expansions 4, 4, 4, 1,
  depths 3, 3, 3, 1 (XL: 4, 4, 4, 1; XXL: 5, 5, 5, 1).
* **Head**: linear C₄ → 3 (with bias), sigmoid.

**Patches** (paper §3.4): training renders patches of the output frame (``batch_kind = "patches"``,
:mod:`nervkit.data.patches`), each computed exactly as it is in the whole frame. Working backwards
from the patch, every stage gets the padding its 3×3 convolutions and its up-sampling need (stage k
needs d_k more rows at its own resolution for its d_k convolutions; the up-sampling needs the source
rows its bilinear taps read); the region is then computed with *valid* convolutions, and the
positions outside the frame are zeroed before every convolution (the whole frame's zero padding) and
set to the frame's edge row or column before every up-sampling (the whole frame's clamped source
index). Evaluation and decoding render whole frames (convolutions padded by 1, no masks); a test
checks that patches stitched together equal the whole frame. (The official code computes its
paddings approximately and masks; this derivation is exact and needs no frame-sized temporaries.)

**Parameters.** All counted, the hierarchical encodings included (the official counter reports them as
0, spec §3 "Known bug"): UVG-S 3.19 M (of which 0.24 M encodings), M 6.49 M, L 12.82 M, XL 25.65 M, XXL
50.73 M at 1080×1920 with 600 frames (tests pin them). ``--params`` solves the width C with the grids
as configured; the scales are derived from the frame size when not given (stage 1 up-samples most).

Storage: the decoder (stem, blocks, encodings' linear maps, head) and the grids are two ``weights``
groups (HiNeRV quantizes grids like weights, per time row). Pruning leaves the grids and the encodings'
linear maps alone (paper §3.5). Decoding at fractional frame positions reads the grids at that time:
frame interpolation needs no blending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..data.batches import FrameBatch
from ..data.patches import PatchBatch
from ..errors import ConfigError, ModelError
from .base import MethodConfig, ParameterCounts, Representation, StoredGroup
from .config import VideoGeometry, option
from .grids import gather_rows
from .hybrid import module_size
from .registry import count_parameters, register_method
from .sizing import check_frame_size, solve_for_budget

STAGES = 4
NORM_EPS = 1e-6
#: patches per frame the default patch size aims at (the official 120×120 at 1080p, 80×80 at 720p)
DEFAULT_PATCH_GRID = (9, 16)
#: the official frame sizes' first grid (18×32 at 720p and 1080p) has this many cells; derived scales aim
#: at H·W / CELL_PIXELS cells, within [MIN_CELLS, MAX_CELLS]
CELL_PIXELS, MIN_CELLS, MAX_CELLS = 1600, 36, 576


def _scale_candidates() -> list[tuple[int, ...]]:
    """Non-increasing 4-stage scale tuples with stage 1 in 2..5 (the official ones among them)."""
    out = []
    for a in (5, 4, 3, 2):
        for b in range(1, a + 1):
            for c in range(1, min(b, 3) + 1):
                for d in range(1, min(c, 2) + 1):
                    out.append((a, b, c, d))
    return out


def derive_scales(height: int, width: int) -> tuple[int, ...]:
    """Stage scales for an H×W frame: little padding (waste), and a first grid of about H·W/1600 cells
    (18×32 at 720p; the official Bunny 720p scales 5,2,2,2 and UVG 1080p 5,3,2,2 come out)."""
    check_frame_size(height, width)
    target = min(MAX_CELLS, max(MIN_CELLS, height * width / CELL_PIXELS))
    best: tuple[float, tuple[int, ...]] | None = None
    for scales in _scale_candidates():
        p = math.prod(scales)
        gh, gw = math.ceil(height / p), math.ceil(width / p)
        waste = gh * gw * p * p / (height * width) - 1.0
        score = 20.0 * waste + math.log(gh * gw / target) ** 2 + 0.01 * sum(s == 1 for s in scales)
        if best is None or score < best[0]:
            best = (score, scales)
    assert best is not None
    return best[1]


@dataclass(frozen=True)
class HiNeRVConfig(MethodConfig):
    """HiNeRV architecture. Zero/empty sizes are derived from the frame size and the budget."""

    size_options = ("channels",)

    scales: tuple[int, ...] = option((), "spatial up-sampling factor of each of the 4 stages, e.g. 5,3,2,2 "
                                         "(empty = derive from the frame size)", min=1, derived=True)
    base_height: int = option(0, "first grid height h0 (0 = frame height / product of scales, rounded up)",
                              min=0, derived=True)
    base_width: int = option(0, "first grid width w0 (0 = frame width / product of scales, rounded up)",
                             min=0, derived=True)
    channels: int = option(0, "decoder width C of stage 1 (0 = solved for --params or --model-size)", min=0,
                           derived=True)
    model_size: float = option(1.5, "budget in millions of parameters when neither --channels nor --params is "
                                    "given", positive=True)
    reduction: float = option(2.0, "the first block of stages 2-4 divides the width by this (floor)",
                              positive=True)
    depths: tuple[int, ...] = option((3, 3, 3, 1), "ConvNeXt blocks of each stage", min=1, length=STAGES)
    expansions: tuple[float, ...] = option((4.0, 4.0, 4.0, 1.0), "MLP expansion of each stage's blocks",
                                           positive=True, length=STAGES)
    base_grid_frames: int = option(0, "time rows T_g of the first base-grid level (0 = frames / 4, at least 1)",
                                   min=0, derived=True)
    base_grid_channels: int = option(2, "channels C_g of the first base-grid level (level l: T_g/2^l rows, "
                                        "C_g*2^l channels)", min=1)
    base_grid_levels: int = option(2, "levels of the base grid", min=1, max=8)
    encoding_channels: int = option(4, "channels c of the first level of stage 1's hierarchical encoding "
                                       "(halved per stage, at least 1; level l has c*2^l)", min=1)
    encoding_levels: int = option(3, "levels of each hierarchical encoding (level l: frames/2^l time rows)",
                                  min=1, max=8)
    grid_init: float = option(1e-3, "grids start uniform in [-grid_init, grid_init]", positive=True)

    def with_layout(self, geometry: VideoGeometry) -> HiNeRVConfig:
        scales = self.scales or derive_scales(geometry.height, geometry.width)
        if len(scales) != STAGES:
            raise ConfigError(f"--scales takes {STAGES} values (one per stage), got {len(scales)}")
        p = math.prod(scales)
        check_frame_size(geometry.height, geometry.width)
        base_h = self.base_height or math.ceil(geometry.height / p)
        base_w = self.base_width or math.ceil(geometry.width / p)
        if base_h * p < geometry.height or base_w * p < geometry.width:
            raise ModelError(f"the model's output {base_h * p}x{base_w * p} (first grid {base_h}x{base_w} × "
                             f"scales {','.join(map(str, scales))}) is smaller than the {geometry.height}x"
                             f"{geometry.width} frames")
        if (base_h - 1) * p >= geometry.height or (base_w - 1) * p >= geometry.width:
            raise ModelError(f"frames of {geometry.height}x{geometry.width} are too small for scales "
                             f"{','.join(map(str, scales))} (product {p}); use smaller scales")
        frames = self.base_grid_frames or max(1, geometry.num_frames // 4)
        return replace(self, scales=tuple(scales), base_height=base_h, base_width=base_w, base_grid_frames=frames)

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> HiNeRVConfig:
        """Width C for the budget (``--params``, else ``--model-size`` unless ``--channels`` is given): the
        largest C whose model, grids and encodings included, is closest to the budget."""
        if target is None and self.channels:
            return self
        cfg = self if target is None else replace(self, model_size=target / 1e6)
        budget = round(cfg.model_size * 1e6)
        count = lambda c: count_parameters("hinerv", replace(cfg, channels=c), geometry)
        floor = count(8)
        if floor > budget:
            raise ModelError(f"a budget of {budget:,} parameters is too small for HiNeRV at {geometry.height}x"
                             f"{geometry.width} with {geometry.num_frames} frames (its grids and a width of 8 "
                             f"take {floor:,}); use a larger budget or fewer --base-grid-channels / "
                             "--encoding-channels")
        return replace(cfg, channels=solve_for_budget(count, budget, lo=8))

    # -- derived sizes ---------------------------------------------------------------------------------
    @property
    def widths(self) -> list[int]:
        """Output width of each stage: C, ⌊C/r⌋, ⌊C/r²⌋, … (at least 1; official ``divide_to_multiple``)."""
        out, width = [], self.channels
        for k in range(STAGES):
            if k > 0:
                width = max(1, int(width // self.reduction))
            out.append(width)
        return out

    @property
    def stage_inputs(self) -> list[int]:
        """Input width of each stage (the encoding maps to it): C, then the previous stage's output."""
        return [self.channels, *self.widths[:-1]]

    def base_grid_shapes(self) -> list[tuple[int, int, int, int]]:
        """(T_l, h₀, w₀, C_l) of each base-grid level: T_g/2ˡ rows (int, at least 1), C_g·2ˡ channels."""
        return [(max(1, int(self.base_grid_frames / 2 ** lvl)), self.base_height, self.base_width,
                 self.base_grid_channels * 2 ** lvl) for lvl in range(self.base_grid_levels)]

    def encoding_shapes(self, frames: int, stage: int) -> list[tuple[int, int, int, int]]:
        """(T_l, s, s, C_l) of each level of stage ``stage``'s encoding: N/2ˡ rows, c_k·2ˡ channels with
        c_k = max(⌊c/2ᵏ⌋, 1) (official ``--enc-grid-depth-scale 1 0.5``)."""
        s = self.scales[stage]
        c = max(1, int(self.encoding_channels * 0.5 ** stage))
        return [(max(1, int(frames / 2 ** lvl)), s, s, c * 2 ** lvl) for lvl in range(self.encoding_levels)]


def _uvg(channels: int, grid: int, depths: tuple[int, ...] = (3, 3, 3, 1)) -> dict[str, Any]:
    return {"scales": (5, 3, 2, 2), "channels": channels, "depths": depths, "base_grid_frames": 150,
            "base_grid_channels": grid, "encoding_channels": 2 * grid}


def _grid40(channels: int, grid: int, scales: tuple[int, ...]) -> dict[str, Any]:
    return {"scales": scales, "channels": channels, "base_grid_frames": 40, "base_grid_channels": grid,
            "encoding_channels": 2 * grid}


#: the official configurations (cfgs/models): UVG 1080×1920 (600 frames; S–XXL), Bunny 720×1280 (132 frames),
#: MCL-JCV 1080×1920
PRESETS: dict[str, dict[str, Any]] = {
    "S": _uvg(280, 2), "M": _uvg(400, 4), "L": _uvg(560, 8), "XL": _uvg(688, 16, (4, 4, 4, 1)),
    "XXL": _uvg(864, 32, (5, 5, 5, 1)),
    **{f"bunny-{n}": _grid40(c, g, (5, 2, 2, 2)) for n, c, g in (("XXS", 136, 2), ("XS", 196, 4), ("S", 280, 8))},
    **{f"mcl-{n}": _grid40(c, g, (5, 3, 2, 2))
       for n, c, g in (("XXS", 136, 2), ("XS", 196, 4), ("S", 280, 8), ("M", 400, 16), ("L", 560, 32))},
}


# -- layers -----------------------------------------------------------------------------------------
def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of an (n, H, W, C) map, no affine, ε 1e-6 (official
    ``layernorm-no-affine``)."""
    return F.layer_norm(x, x.shape[-1:], eps=NORM_EPS)


def depthwise(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """Depth-wise conv of an (n, H, W, C) map; runs on the channels-last view (no copies)."""
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, padding=padding, groups=x.shape[-1])
    return y.permute(0, 2, 3, 1)


def read_grids(grids: nn.ParameterList, positions: torch.Tensor, frames: int) -> torch.Tensor:
    """Grids (T_l, …, C_l) read linearly in time at frame ``positions``, concatenated on the channels: (n, …, ΣC_l)."""
    return torch.cat([time_lerp(g.reshape(g.shape[0], -1), positions, frames).view(-1, *g.shape[1:])
                      for g in grids], -1)


def time_lerp(table: torch.Tensor, positions: torch.Tensor, frames: int) -> torch.Tensor:
    """Rows of a (T, D) ``table`` read linearly at frame ``positions`` (n,) of a video of ``frames``
    frames: row p = (i + ½)·T/N − ½ clamped to [0, T − 1] (``grid_sample``, align_corners False, border
    padding: the official time coordinate). Gathers with a reproducible gradient."""
    rows = table.shape[0]
    p = ((positions.to(table.dtype) + 0.5) * (rows / frames) - 0.5).clamp(0, rows - 1)
    lo = p.floor().long().clamp(max=rows - 1)
    hi = (lo + 1).clamp(max=rows - 1)
    w = (p - lo.to(p.dtype)).unsqueeze(1)
    return torch.lerp(gather_rows(table, lo), gather_rows(table, hi), w)


class HiNeRVBlock(nn.Module):
    """HiNeRV's ConvNeXt block (paper §3.1): dw 3×3 → LN → linear → GELU → linear (no biases); residual
    when the widths match. ``padding`` 1 for whole frames; 0 for patches (valid, the residual cropped)."""

    def __init__(self, c_in: int, c_out: int, expansion: float) -> None:
        super().__init__()
        self.dconv = nn.Parameter(torch.empty(c_in, 1, 3, 3))
        self.fc1 = nn.Linear(c_in, int(c_out * expansion), bias=False)
        self.fc2 = nn.Linear(int(c_out * expansion), c_out, bias=False)
        self.residual = c_in == c_out
        nn.init.kaiming_uniform_(self.dconv, a=math.sqrt(5))  # nn.Conv2d's default

    def forward(self, x: torch.Tensor, padding: int) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(layer_norm(depthwise(x, self.dconv, padding)))))
        if not self.residual:
            return y
        return y + (x if padding else x[:, 1:-1, 1:-1])


class HierarchicalEncoding(nn.Module):
    """One stage's hierarchical encoding (paper §3.3): per level a (T_l, s, s, C_l) grid read linearly in
    time, the levels concatenated and mapped by a linear layer to the stage's input width."""

    def __init__(self, shapes: list[tuple[int, int, int, int]], width: int, init: float) -> None:
        super().__init__()
        self.shapes = shapes
        self.grids = nn.ParameterList(nn.Parameter(torch.empty(shape).uniform_(-init, init)) for shape in shapes)
        self.linear = nn.Linear(sum(shape[-1] for shape in shapes), width)
        nn.init.zeros_(self.linear.bias)

    def block(self, positions: torch.Tensor, frames: int) -> torch.Tensor:
        """The s×s block of encodings (n, s, s, width) at frame ``positions``."""
        return self.linear(read_grids(self.grids, positions, frames))

    def forward(self, positions: torch.Tensor, frames: int, start: tuple[int, int],
                size: tuple[int, int]) -> torch.Tensor:
        """Encodings (n, h, w, width) of the region of ``size`` whose top-left pixel is at ``start`` (may be
        outside the frame): the block tiled so that pixel (y, x) gets cell (y mod s, x mod s)."""
        block = self.block(positions, frames)
        s = block.shape[1]
        (y0, x0), (h, w) = (start[0] % s, start[1] % s), size
        tiled = block.repeat(1, (y0 + h + s - 1) // s, (x0 + w + s - 1) // s, 1)
        return tiled[:, y0:y0 + h, x0:x0 + w]


@dataclass(frozen=True)
class PatchPlan:
    """Where a patch's computation lies at every resolution (see the module docstring).

    ``pads[k]``: the padding (each side) of the region at resolution k (0 = the first grid, k = stage k's
    output) that stage k + 1 reads; ``inputs[k]``: the padding of stage k's up-sampled map (before its d_k
    valid convolutions); ``base``: the padding of the grid features the stem reads (its conv is valid too).
    """

    pads: tuple[int, ...]
    inputs: tuple[int, ...]
    base: int

    @classmethod
    def of(cls, scales: tuple[int, ...], depths: tuple[int, ...]) -> PatchPlan:
        pads, inputs, q = [0], [], 0
        for s, d in zip(reversed(scales), reversed(depths)):
            u = q + d  # the stage's d 3×3 convs each need one more row
            # source rows of the bilinear taps of output rows -u .. P+u-1 (patch at 0, P a multiple of s)
            lower = -math.floor((0.5 - u) / s - 0.5)
            upper = math.floor((u - 0.5) / s - 0.5) + 2
            q = max(lower, upper, math.ceil(u / s))
            inputs.append(u)
            pads.append(q)
        return cls(tuple(reversed(pads)), (0, *reversed(inputs)), pads[-1] + 1)


@register_method(
    "hinerv",
    HiNeRVConfig,
    description="HiNeRV (NeurIPS 2023): grids + hierarchical encodings + ConvNeXt decoder, trained on patches",
    presets=PRESETS,
    default_preset=None,  # no preset: scales derived from the frame size, budget --model-size (1.5 M)
    paper="Kwan et al., HiNeRV: Video Compression with Hierarchical Encoding-based Neural Representation, "
          "NeurIPS 2023",
    # the official recipe (cfgs/train/hinerv_1920x1080.txt): 0.7 L1 + 0.3 (1 - MS-SSIM, 5x5 windows), Adam
    # lr 2e-3 at one frame's worth of patches per step, 10 % warm-up + cosine, gradient norm clipped at 1
    train_defaults={"loss": "0.7*l1+0.3*ms-ssim5", "lr": 2e-3, "beta1": 0.9, "batch_size": 1, "warmup": 0.1,
                    "grad_clip": 1.0},
    # its compression recipe (paper §3.5): pruning scored by |w|/sqrt(n_layer), Quant-Noise QAT (90 % of the
    # weights quantized per step); how much to prune and train stays the user's. Its symmetric per-slice
    # quantizer is `--quantizer symmetric`, not the default: its files were 15-17 % larger than nervkit's
    # min/max ones at the same PSNR (BENCHMARKS.md, "HiNeRV on Bunny")
    compress_defaults={"prune_score": "layer", "qat_noise": 0.9},
)
class HiNeRV(Representation):
    """Grids → stem → 4 × (LN, ×s, + encoding, ConvNeXt blocks) → linear head (see module docstring)."""

    batch_kind = "patches"
    # grids and the encodings' linear maps are not pruned (paper §3.5: only the decoder's layers)
    prune_exclude = ("base_grids", "encodings")

    def __init__(self, config: HiNeRVConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c, n = config, geometry.num_frames
        self.base_grids = nn.ParameterList(nn.Parameter(torch.empty(shape).uniform_(-c.grid_init, c.grid_init))
                                           for shape in c.base_grid_shapes())
        base_channels = sum(shape[-1] for shape in c.base_grid_shapes())
        self.stem = nn.Conv2d(base_channels, c.channels, 3)
        nn.init.zeros_(self.stem.bias)
        self.encodings = nn.ModuleList(
            HierarchicalEncoding(c.encoding_shapes(n, k), c.stage_inputs[k], c.grid_init) for k in range(STAGES))
        self.stages = nn.ModuleList(
            nn.ModuleList(HiNeRVBlock(c.stage_inputs[k] if j == 0 else c.widths[k], c.widths[k],
                                        c.expansions[k]) for j in range(c.depths[k]))
            for k in range(STAGES))
        self.head = nn.Linear(c.widths[-1], 3)
        nn.init.zeros_(self.head.bias)
        self.plan = PatchPlan.of(c.scales, c.depths)

    # -- sizes -----------------------------------------------------------------------------------------
    @property
    def output_size(self) -> tuple[int, int]:
        p = math.prod(self.config.scales)
        return self.config.base_height * p, self.config.base_width * p

    def resolution(self, k: int) -> tuple[int, int]:
        """(H, W) of the map at resolution k (0 = the first grid, k = stage k's output)."""
        p = math.prod(self.config.scales[:k])
        return self.config.base_height * p, self.config.base_width * p

    def patch_shape(self, requested: int = 0) -> tuple[int, int]:
        """The training patch (ph, pw): ``requested`` × ``requested`` when it tiles the output frame in whole
        first-grid cells, else a ConfigError naming the sides that do; 0 = the default, about 9×16 patches
        per frame (120×120 at 1080p, 80×80 at 720p: the official sizes). A side of at least the output frame's
        trains on whole frames: the same result with no padding computed (the padding of small patches
        costs 4× per frame at 180×320; the official code trains on patches for GPU memory)."""
        cell = math.prod(self.config.scales)
        (oh, ow), (bh, bw) = self.output_size, (self.config.base_height, self.config.base_width)
        if requested >= max(oh, ow):  # whole frames: no padding to compute (4x faster per frame on a CPU)
            return oh, ow
        if requested:
            if requested % cell == 0 and oh % requested == 0 and ow % requested == 0:
                return requested, requested
            sides = [cell * k for k in range(1, min(bh, bw) + 1) if bh % k == 0 and bw % k == 0]
            raise ConfigError(f"--patch-size {requested} does not tile HiNeRV's {oh}x{ow} output in whole "
                              f"{cell}x{cell} cells; choose one of {', '.join(map(str, sides))}, or {max(oh, ow)} (whole frames)")

        def side(cells: int, count: int) -> int:
            divisors = [d for d in range(1, cells + 1) if cells % d == 0]
            return cell * (cells // min(divisors, key=lambda d: (abs(math.log(d / count)), d)))

        return side(bh, DEFAULT_PATCH_GRID[0]), side(bw, DEFAULT_PATCH_GRID[1])

    # -- the network -----------------------------------------------------------------------------------
    def base_features(self, positions: torch.Tensor) -> torch.Tensor:
        """The base grids at frame ``positions``, levels concatenated: (n, h₀, w₀, C₀)."""
        return read_grids(self.base_grids, positions, self.geometry.num_frames)

    def render(self, positions: torch.Tensor) -> torch.Tensor:
        """Whole frames (n, 3, H_out, W_out) at frame ``positions`` (float; fractional = between frames)."""
        n = self.geometry.num_frames
        stem = self.stem
        x = F.conv2d(self.base_features(positions).permute(0, 3, 1, 2), stem.weight, stem.bias, padding=1)
        x = x.permute(0, 2, 3, 1)
        for k, (s, encoding, blocks) in enumerate(zip(self.config.scales, self.encodings, self.stages)):
            x = F.interpolate(layer_norm(x).permute(0, 3, 1, 2), scale_factor=s, mode="bilinear",
                              align_corners=False).permute(0, 2, 3, 1)
            x = x + encoding(positions, n, (0, 0), x.shape[1:3])
            for block in blocks:
                x = block(x, padding=1)
        return torch.sigmoid(self.head(x)).permute(0, 3, 1, 2)

    def render_patches(self, positions: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                       shape: tuple[int, int]) -> torch.Tensor:
        """Patches (n, 3, ph, pw) of the whole frames at ``positions``, top-left corners ``rows``/``cols`` in
        the output frame (multiples of the product of the scales): equal to the whole frame's pixels."""
        c, plan, n = self.config, self.plan, self.geometry.num_frames
        cell = math.prod(c.scales)
        # the patch at every resolution k (0: the first grid): its corner and size, the output's / Π_{j>k} s_j
        below = [cell // math.prod(c.scales[:k]) for k in range(STAGES + 1)]
        origins = [(rows // d, cols // d) for d in below]
        sizes = [(shape[0] // d, shape[1] // d) for d in below]
        q = plan.base
        feats = F.pad(self.base_features(positions), (0, 0, q, q, q, q))  # zeros outside the frame
        (h0, w0), (y0, x0) = sizes[0], origins[0]
        x = torch.stack([feats[i, y:y + h0 + 2 * q, z:z + w0 + 2 * q]
                         for i, (y, z) in enumerate(zip(y0.tolist(), x0.tolist()))])
        x = self.stem(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # valid conv: padding q - 1 = plan.pads[0]
        for k, (s, encoding, blocks) in enumerate(zip(c.scales, self.encodings, self.stages)):
            pad = plan.pads[k]
            x = self._clamp_edges(layer_norm(x), origins[k], pad, self.resolution(k))
            x = F.interpolate(x.permute(0, 3, 1, 2), scale_factor=s, mode="bilinear",
                              align_corners=False).permute(0, 2, 3, 1)
            u = plan.inputs[k + 1]
            cut = s * pad - u
            x = x[:, cut:x.shape[1] - cut, cut:x.shape[2] - cut]
            # every patch starts on a whole cell, so the encoding's tiling is the same for all of them
            x = x + encoding(positions, n, (-u, -u), x.shape[1:3])
            for block in blocks:
                x = block(self._outside_zeroed(x, origins[k + 1], u, self.resolution(k + 1)), padding=0)
                u -= 1
        return torch.sigmoid(self.head(x)).permute(0, 3, 1, 2)

    @staticmethod
    def _positions(origin: torch.Tensor, pad: int, length: int) -> torch.Tensor:
        """(n, length): the frame coordinates of regions of ``length`` starting at ``origin - pad``."""
        return origin[:, None] - pad + torch.arange(length, device=origin.device)

    def _outside_zeroed(self, x: torch.Tensor, origin: tuple[torch.Tensor, torch.Tensor], pad: int,
                        extent: tuple[int, int]) -> torch.Tensor:
        """``x`` (n, h, w, C), a region padded by ``pad``, with the positions outside the frame set to 0 (the
        whole frame's zero padding, for the next convolution)."""
        ys, xs = self._positions(origin[0], pad, x.shape[1]), self._positions(origin[1], pad, x.shape[2])
        rows, cols = (ys >= 0) & (ys < extent[0]), (xs >= 0) & (xs < extent[1])
        if bool(rows.all()) and bool(cols.all()):
            return x
        return x * (rows[:, :, None, None] & cols[:, None, :, None]).to(x.dtype)

    def _clamp_edges(self, x: torch.Tensor, origin: tuple[torch.Tensor, torch.Tensor], pad: int,
                     extent: tuple[int, int]) -> torch.Tensor:
        """``x`` (n, h, w, C) with the row and column just outside the frame replaced by the frame's edge
        (the whole frame's bilinear up-sampling clamps its source index there); rows further out feed only
        outputs outside the frame."""
        for axis, (start, size) in enumerate(zip(origin, extent), start=1):
            pos = self._positions(start, pad, x.shape[axis])
            before, after = (pos == -1), (pos == size)
            if not bool(before.any()) and not bool(after.any()):
                continue
            shape = (-1, x.shape[1], 1, 1) if axis == 1 else (-1, 1, x.shape[2], 1)
            following = torch.cat([x.narrow(axis, 1, x.shape[axis] - 1), x.narrow(axis, x.shape[axis] - 1, 1)], axis)
            preceding = torch.cat([x.narrow(axis, 0, 1), x.narrow(axis, 0, x.shape[axis] - 1)], axis)
            x = torch.where(before.view(shape), following, torch.where(after.view(shape), preceding, x))
        return x

    # -- the contract ----------------------------------------------------------------------------------
    def forward(self, batch: FrameBatch | PatchBatch) -> torch.Tensor:  # type: ignore[override]
        if isinstance(batch, PatchBatch) and batch.patch_shape != self.output_size:
            return self.render_patches(batch.indices.to(torch.float32), batch.rows, batch.cols, batch.patch_shape)
        return self.decode(batch.indices)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.render(indices.to(torch.float32))

    def decode_at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames at fractional positions: the grids read at that time (they are linear in time)."""
        pos = self._neighbours(positions)[0]
        return self.render(pos.to(next(self.parameters()).device))

    def stored_groups(self) -> list[StoredGroup]:
        state = self.state_dict()
        grids = {k: v for k, v in state.items() if k.startswith("base_grids.") or ".grids." in k}
        decoder = {k: v for k, v in state.items() if k not in grids}
        return [StoredGroup("decoder", "weights", decoder), StoredGroup("grids", "weights", grids)]

    def parameter_counts(self) -> ParameterCounts:
        """Every parameter, the hierarchical encodings included (the official counter misses them)."""
        parts = {
            "base_grids": sum(p.numel() for p in self.base_grids),
            "stem": module_size(self.stem),
            "encodings": module_size(self.encodings),
            "blocks": module_size(self.stages),
            "head": module_size(self.head),
        }
        total = sum(parts.values())
        return ParameterCounts(official=total, total=total, parts=parts)
