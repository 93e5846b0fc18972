"""E-NeRV: Expedite Neural Video Representation with Disentangled Spatial-Temporal Context
(Li et al., ECCV 2022).

NeRV spends ~70 % of its parameters on the MLP layer that maps γ(t) to the C×h₀×w₀ feature map.
E-NeRV disentangles space and time (paper §4.1, Eq. 3)::

    f_t = F_θ( F(γ_t(t)) ⊙ S ),     S = Φ(Ŝ₀)                                          (Eq. 3, 4)

* temporal branch: γ_t(t) → MLP (2L → 2d → d, activation after each layer) → t_emb ∈ ℝ^d;
* spatial branch: a fixed normalised h₀×w₀ grid (y = r/h₀, x = c/w₀, row-major), each coordinate
  encoded with its own γ (row first) → linear + act → Ŝ₀ (h₀w₀ × d) → Φ, a one-head self-attention
  block with residual and an FFN d → ffn_dim → d with residual, **no LayerNorm** (appendix 0.A.2/0.C);
* fusion: every position of S multiplied by t_emb, then F_θ (the same block with 8 heads of width 64)
  → linear d → C + act → reshape C×h₀×w₀ (channel-first, positions row-major);
* temporal instance normalisation (Eq. 5) before every conv stage: a second MLP γ_tm(t) → d₀ → d₀
  gives l_t; stage i normalises its input per channel over H×W (no affine, eps 1e-5) and applies
  σᵢ·x̂ + μᵢ with (σᵢ, μᵢ) = Mᵢ(l_t), Mᵢ a linear d₀ → 2·C_in;
* conv stages: the upgraded first block (Eq. 6) conv3×3(C → C₀·s²) → PixelShuffle(s) →
  conv3×3(C₀ → C₁) → act with C₀ = min(C, C₁)/4 (§4.2), then NeRV blocks (conv3×3 → PS → act); widths
  C₁ = expansion·C, then max(⌊C/reduction⌋, lower_width); head 1×1 conv → 3 → sigmoid.

t = i/(N−1) (official). The defaults are the paper's Bunny model (spec §4.2, ``cfgs/E-NeRV-bunny.yaml``:
d = 256, d₀ = 128, C = 196, expansion 3, strides 5,2,2,2,2, reduction 2, lower width 96, b = 1.25,
L = 80 for every encoding); at 720×1280 it has exactly 12,490,602 parameters in the official count.

**Paper vs official code** (spec §9.5). nervkit follows the paper by default and offers the code:

* ``--norm-activation true``: the code passes the IN scale/shift through GELU; Eq. 5 has none.
* ``--upgraded-rule code``: the code uses C₀ = ⌊C/4⌋ only when C ≤ C₁; otherwise it builds
  conv3×3(C → C₁) → conv3×3(C₁ → C₁·s²) → PS. The paper uses C₀ = min(C, C₁)/4 always (same result
  whenever C ≤ C₁, e.g. every paper configuration, expansion 3).
* The code stores the fixed grid as a frozen ``nn.Parameter`` (2·h₀·w₀ = 288 values at 9×16), so its
  printed size includes it. ``parameter_counts().official`` adds those 288 to match the paper's 12.49 M;
  the grid itself is a non-persistent buffer recomputed from h₀×w₀, so it is not stored (``total``).
* The code always has the d → C linear unless d = C (then the identity); nervkit always has it.

**Ablations and alternatives** as options of the one module (paper §5.4–5.5):

* ``--fusion``: ``transformer`` (F_θ, paper), ``mlp`` (E-NeRV-MLP: a token-mixing MLP over the h₀w₀
  positions, h₀w₀ → h₀w₀ → h₀w₀, then a channel MLP d → ffn_dim → d, each with a residual),
  ``conv`` (E-NeRV-Conv: x + act(conv3×3 d → d)), ``none`` (S ⊙ t_emb goes straight to the d → C linear).
* ``--spatial-attention false`` drops Φ (S = Ŝ₀); ``--temporal-norm false`` drops the IN branch;
  ``--first-block nerv`` uses a plain NeRV block for stage 1.
* ``--stem split`` (NeRV-Split: the MLP outputs C×(h₀+w₀), split into C×h₀ and C×w₀, outer product per
  channel) and ``--stem cs`` (NeRV-C_S: the MLP outputs C_S×h₀×w₀, then a 1×1 conv C_S → C) replace the
  disentangled stem (the spatial branch, Φ and F_θ are then unused) by NeRV's coupled MLP γ_t(t) →
  ``temporal_hidden`` → output.

The per-component checkmarks of Table 3 did not survive in the paper text nervkit was built from. The
text says Variant 1 has neither F_θ nor the temporal IN; nervkit reads the table as Variant 1 = Φ,
Variant 2 = Φ + F_θ, Variant 3 = Φ + IN (presets ``variant-1/2/3``) — an interpretation.

For other frame sizes the strides and the starting grid are derived (:mod:`nervkit.models.sizing`)
and ``--params`` solves C from lower width 16, keeping the paper's d = 256 stem while it takes at most
¾ of the budget: ``--params 1.5M`` at 180×320 gives C = 38 (widths 114/57/28), exactly the official
1.5 M baseline (1,497,542 parameters, spec official-baselines-cpu.md). Below that, d is halved (with
temporal_hidden = 2d, d₀ = ffn_dim = d/2, head width d/4) until the stem fits (see
:meth:`ENeRVConfig.solve_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .base import ParameterCounts
from .blocks import (
    ACTIVATIONS,
    PE_ORDERS,
    PositionalEncoding,
    UpsampleBlock,
    make_activation,
    mlp,
    output_activation,
)
from .config import VideoGeometry, option
from .index_based import TIME_NORMS, IndexedConfig, IndexedRepresentation
from .registry import count_parameter_kinds, count_parameters, register_method
from .sizing import lower_width_trials, solve_grid_channels

STEMS = ("disentangled", "split", "cs")
#: F_θ, the fusion of the spatial context with the temporal embedding (paper §4.1, §5.4)
CONTEXT_FUSIONS = ("transformer", "mlp", "conv", "none")
FIRST_BLOCKS = ("upgraded", "nerv")
UPGRADED_RULES = ("paper", "code")


@dataclass(frozen=True)
class ENeRVConfig(IndexedConfig):
    """E-NeRV architecture (module docstring). Zero/empty sizes are derived from the frame size."""

    # positional encodings (paper Eq. 2; three separate encoders, spec §1.1)
    pe_base: float = option(1.25, "base b of the temporal branch's encoding of t (0 feeds t itself)")
    pe_levels: int = option(80, "levels L of the temporal branch's encoding of t", min=1)
    xy_pe_base: float = option(1.25, "base b of the encoding of each spatial grid coordinate")
    xy_pe_levels: int = option(80, "levels L of the encoding of each spatial grid coordinate", min=1)
    in_pe_base: float = option(1.25, "base b of the temporal-norm branch's encoding of t "
                                     "(the paper uses 1.05 for interpolation, Table 7)")
    in_pe_levels: int = option(80, "levels L of the temporal-norm branch's encoding of t", min=1)
    pe_order: str = option("interleaved", "order of the sin/cos features", choices=PE_ORDERS)
    time_norm: str = option("n-1", "frame index normalisation: t = i/(N-1) (official E-NeRV) or i/N",
                            choices=TIME_NORMS)
    # how the C x h0 x w0 feature map is made
    stem: str = option("disentangled", "feature-map generator: disentangled (E-NeRV, Eq. 3), split "
                                       "(NeRV-Split) or cs (NeRV-C_S), paper Table 2", choices=STEMS)
    embed_dim: int = option(256, "width d of the temporal embedding and the spatial context", min=1)
    temporal_hidden: int = option(512, "hidden width of the temporal MLP (NeRV-Split/C_S: of their MLP)",
                                  min=1)
    spatial_attention: bool = option(True, "spatial context block Phi (paper Eq. 4); off: S = S0")
    fusion: str = option("transformer", "fusion F_theta of S * t_emb: transformer (paper), mlp (E-NeRV-MLP), "
                                        "conv (E-NeRV-Conv) or none", choices=CONTEXT_FUSIONS)
    heads: int = option(8, "attention heads of F_theta (Phi has one)", min=1)
    head_dim: int = option(64, "width of each attention head", min=1)
    ffn_dim: int = option(128, "hidden width of the feed-forward layer of Phi and F_theta", min=1)
    cs_channels: int = option(0, "NeRV-C_S: channels C_S of the MLP's feature map (0 = C/4)", min=0)
    # temporal instance normalisation (paper Eq. 5)
    temporal_norm: bool = option(True, "temporal instance normalisation before every conv stage (Eq. 5)")
    norm_dim: int = option(128, "width d0 of the temporal-norm MLP", min=1)
    norm_activation: bool = option(False, "activation on the norm scale/shift (official code; "
                                          "paper Eq. 5 has none)")
    # conv stages
    first_block: str = option("upgraded", "stage-1 block: upgraded (paper Eq. 6) or a plain NeRV block",
                              choices=FIRST_BLOCKS)
    upgraded_rule: str = option("paper", "upgraded block width: paper (C0 = min(C, C1)/4) or code "
                                         "(C/4 only when C <= C1)", choices=UPGRADED_RULES)
    grid_channels: int = option(196, "channels C of the starting feature map (solved by --params)", min=1)
    grid_height: int = option(0, "starting grid height h0 (0 = derive from the frame size)", min=0,
                              derived=True)
    grid_width: int = option(0, "starting grid width w0 (0 = derive from the frame size)", min=0,
                             derived=True)
    strides: tuple[int, ...] = option((), "up-sampling strides, e.g. 5,2,2,2,2 (empty = derive)",
                                      derived=True)
    expansion: float = option(3.0, "stage-1 width = C x expansion", positive=True)
    reduction: float = option(2.0, "each later stage divides the width by this", positive=True)
    lower_width: int = option(96, "minimum channels of a stage", min=1)
    activation: str = option("gelu", "activation", choices=ACTIVATIONS)
    output: str = option("sigmoid", "output activation: sigmoid or (tanh+1)/2", choices=("sigmoid", "tanh"))

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> ENeRVConfig:
        """C that meets ``target`` parameters (official count).

        The paper's stem (d = 256: temporal MLP, Φ, F_θ, norm MLP, ~1.05 M) is fixed in size. The
        official 1.5 M baseline at 180×320 keeps it (70 % of the budget) and scales only C, so d stays
        256 while the stem takes at most :data:`STEM_SHARE` of the budget; below that d is halved (256,
        128, 64, 32, 16, with the widths tied to it, :func:`_with_embed_dim`) until it does. Then, as
        NeRV's solver, the lower width is reduced (16 → 8, 4) until the best C is at least 8 and within
        4 % (:func:`~nervkit.models.sizing.solve_grid_channels`). Options the user set are never
        changed. (Halving d at 1.5 M instead moves the parameters into the full-resolution convs, which
        cost far more compute per frame.)
        """
        if target is None:
            return self
        dims = [d for d in (256, 128, 64, 32, 16) if d <= self.embed_dim and "embed_dim" not in fixed]
        trials = [_with_embed_dim(self, d, fixed) for d in dims or [self.embed_dim]]
        base = next((t for t in trials if _stem_size(t, geometry) <= STEM_SHARE * target), trials[-1])
        widths_l = lower_width_trials(base.lower_width, fixed)
        return solve_grid_channels((replace(base, lower_width=w) for w in widths_l),
                                   lambda c: count_parameters("enerv", c, geometry), target, method="E-NeRV",
                                   geometry=(geometry.height, geometry.width))


#: the largest share of a budget the fixed-size stem may take before ``--params`` halves d
STEM_SHARE = 0.75


def _with_embed_dim(cfg: ENeRVConfig, d: int, fixed: frozenset[str]) -> ENeRVConfig:
    """``cfg`` with width d and the widths tied to it in the paper's ratios (temporal hidden 2d,
    d₀ = ffn = d/2, head width d/4), keeping the ones the user set."""
    scaled = {"embed_dim": d, "temporal_hidden": 2 * d, "norm_dim": max(d // 2, 1), "ffn_dim": max(d // 2, 1),
              "head_dim": max(d // 4, 8)}
    return replace(cfg, **{k: v for k, v in scaled.items() if k not in fixed})


def _stem_size(cfg: ENeRVConfig, geometry: VideoGeometry) -> int:
    """Parameters that do not grow with C (the stem before the d → C linear, the norm MLP)."""
    parts = count_parameter_kinds("enerv", replace(cfg, grid_channels=1), geometry).parts
    return sum(parts.get(k, 0) for k in ("temporal_mlp", "spatial", "phi", "fusion", "norm_mlp"))


# -- building blocks ------------------------------------------------------------------------------
class TransformerBlock(nn.Module):
    """x + Attn(x), then x + FFN(x); no LayerNorm, no dropout (paper Eq. 4, appendix 0.A.2/0.C).

    Attention: q, k, v from one bias-free linear d → 3·heads·head_dim, softmax(q·kᵀ/√head_dim)·v,
    output linear heads·head_dim → d. FFN: d → ffn_dim → act → d.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, ffn_dim: int, activation: str) -> None:
        super().__init__()
        self.heads, self.scale = heads, head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, dim)
        self.ffn = mlp([dim, ffn_dim, dim], activation, last_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, d)
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        x = self.out((attn @ v).transpose(1, 2).reshape(b, n, -1)) + x
        return self.ffn(x) + x


class MixerBlock(nn.Module):
    """E-NeRV-MLP's F_θ (§5.4): an MLP over the h₀w₀ positions, then one over the channels, each with
    a residual (token MLP n → n → n, channel MLP d → ffn_dim → d)."""

    def __init__(self, positions: int, dim: int, ffn_dim: int, activation: str) -> None:
        super().__init__()
        self.tokens = mlp([positions, positions, positions], activation, last_activation=False)
        self.channels = mlp([dim, ffn_dim, dim], activation, last_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, d)
        x = self.tokens(x.transpose(1, 2)).transpose(1, 2) + x
        return self.channels(x) + x


class ResidualConvBlock(nn.Module):
    """E-NeRV-Conv's F_θ (§5.4): x + act(conv3×3 d → d) on the h₀×w₀ map."""

    def __init__(self, dim: int, height: int, width: int, activation: str) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, d)
        b, n, d = x.shape
        grid = x.transpose(1, 2).reshape(b, d, self.height, self.width)
        return (grid + self.act(self.conv(grid))).flatten(2).transpose(1, 2)


class UpgradedBlock(nn.Module):
    """Paper Eq. 6: conv3×3(C_in → C₀·s²) → PixelShuffle(s) → conv3×3(C₀ → C_out) → act.

    ``rule="paper"``: C₀ = max(⌊min(C_in, C_out)/4⌋, 1). ``rule="code"``: the official block, C₀ = ⌊C_in/4⌋
    when C_in ≤ C_out, else conv3×3(C_in → C_out) → conv3×3(C_out → C_out·s²) → PixelShuffle(s) → act.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str, rule: str) -> None:
        super().__init__()
        shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        if rule == "code" and in_channels > out_channels:
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, padding=1),
                nn.Conv2d(out_channels, out_channels * stride**2, 3, padding=1),
                shuffle,
            )
        else:
            mid = max((in_channels if rule == "code" else min(in_channels, out_channels)) // 4, 1)
            self.body = nn.Sequential(nn.Conv2d(in_channels, mid * stride**2, 3, padding=1), shuffle,
                                      nn.Conv2d(mid, out_channels, 3, padding=1))
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x))


def spatial_grid(height: int, width: int) -> torch.Tensor:
    """(h·w, 2) normalised coordinates (r/h, c/w), row-major (spec §4.2)."""
    rows = torch.arange(height, dtype=torch.float32) / height
    cols = torch.arange(width, dtype=torch.float32) / width
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)


@register_method(
    "enerv",
    ENeRVConfig,
    description="E-NeRV (ECCV 2022): disentangled spatial context x temporal embedding, transformer fusion, "
                "temporal instance norm, upgraded first block",
    presets={
        # cfgs/E-NeRV-bunny.yaml: 12,490,602 parameters at 720x1280 (spec §4.2)
        "12.49M": {},
        # Table 3 ablation (see the module docstring for how the lost checkmarks are read)
        "variant-1": {"fusion": "none", "temporal_norm": False},
        "variant-2": {"temporal_norm": False},
        "variant-3": {"fusion": "none"},
        # Table 2 alternatives (official counts at 720x1280; paper: 12 M and 12.5 M)
        "e-nerv-mlp": {"fusion": "mlp"},  # 12,007,818
        "e-nerv-conv": {"fusion": "conv"},  # 12,490,218
        # Table 2's size-matched E-NeRV without the temporal norm: C solved for 5.8 M / 7.2 M at 720x1280
        "ours-1": {"temporal_norm": False, "grid_channels": 124},  # 5,819,570
        "ours-2": {"temporal_norm": False, "grid_channels": 143},  # 7,150,970
        # Table 2's NeRV alternatives: NeRV-L's decoder (expansion 1, plain blocks, no temporal norm),
        # widths chosen by nervkit to meet the paper's sizes (the paper does not give them)
        "nerv-split": {"stem": "split", "temporal_norm": False, "first_block": "nerv", "expansion": 1.0,
                       "grid_channels": 133},  # 7,228,310 (paper: 7.2 M)
        "nerv-cs": {"stem": "cs", "temporal_norm": False, "first_block": "nerv", "expansion": 1.0,
                    "grid_channels": 112, "cs_channels": 20},  # 5,771,651 (paper: 5.8 M)
    },
    default_preset="12.49M",
    # --params starts from lower width 16: the official 1.5 M baseline at 180x320 (C = 38, widths
    # 114/57/28, 1,497,542) has a lower width of at most 28 (the 720p YAML's 96 would bind at 180x320)
    budget_base={"lower_width": 16},
    paper="Li, Wang, Pi, Xu, Mei, Liu: E-NeRV: Expedite Neural Video Representation with Disentangled "
          "Spatial-Temporal Context, ECCV 2022",
    # the paper's recipe (§5.1, appendix 0.A.3; cfgs/E-NeRV-bunny.yaml): 0.7*L1 + 0.3*(1-SSIM) (Eq. 7),
    # Adam (0.5, 0.999), lr 5e-4, batch 1, 20 % warm-up + cosine
    train_defaults={"loss": "l1+ssim", "lr": 5e-4, "beta1": 0.5, "batch_size": 1, "warmup": 0.2},
)
class ENeRV(IndexedRepresentation):
    """Frame index → frame through disentangled spatial/temporal context (see module docstring)."""

    prune_exclude = ("head",)

    def __init__(self, config: ENeRVConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c = config
        cells, act = c.grid_height * c.grid_width, c.activation
        self.t_encoding = PositionalEncoding(c.pe_base, c.pe_levels, c.pe_order)
        if c.stem == "disentangled":
            self.temporal = mlp([self.t_encoding.out_dim, c.temporal_hidden, c.embed_dim], act)
            self.xy_encoding = PositionalEncoding(c.xy_pe_base, c.xy_pe_levels, c.pe_order)
            # the fixed grid: recomputed, never stored (the official code counts it, see parameter_counts)
            self.register_buffer("grid", spatial_grid(c.grid_height, c.grid_width), persistent=False)
            self.spatial = mlp([2 * self.xy_encoding.out_dim, c.embed_dim], act)
            self.phi = (TransformerBlock(c.embed_dim, 1, c.head_dim, c.ffn_dim, act)
                        if c.spatial_attention else None)
            self.fusion = {
                "transformer": lambda: TransformerBlock(c.embed_dim, c.heads, c.head_dim, c.ffn_dim, act),
                "mlp": lambda: MixerBlock(cells, c.embed_dim, c.ffn_dim, act),
                "conv": lambda: ResidualConvBlock(c.embed_dim, c.grid_height, c.grid_width, act),
                "none": lambda: None,
            }[c.fusion]()
            self.to_conv = mlp([c.embed_dim, c.grid_channels], act)
        elif c.stem == "split":
            out = c.grid_channels * (c.grid_height + c.grid_width)
            self.temporal = mlp([self.t_encoding.out_dim, c.temporal_hidden, out], act)
        else:  # cs
            out = self.cs_channels * cells
            self.temporal = mlp([self.t_encoding.out_dim, c.temporal_hidden, out], act)
            self.to_conv = nn.Conv2d(self.cs_channels, c.grid_channels, 1)

        widths = c.widths
        inputs = [c.grid_channels, *widths[:-1]]
        if c.temporal_norm:
            self.in_encoding = PositionalEncoding(c.in_pe_base, c.in_pe_levels, c.pe_order)
            self.norm_mlp = mlp([self.in_encoding.out_dim, c.norm_dim, c.norm_dim], act)
            self.norm_linears = nn.ModuleList(
                mlp([c.norm_dim, 2 * w], act, last_activation=c.norm_activation) for w in inputs
            )
        blocks: list[nn.Module] = []
        for i, (stride, w_in, w_out) in enumerate(zip(c.strides, inputs, widths)):
            if i == 0 and c.first_block == "upgraded":
                blocks.append(UpgradedBlock(w_in, w_out, stride, act, c.upgraded_rule))
            else:
                blocks.append(UpsampleBlock(w_in, w_out, stride, activation=act))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(widths[-1], 3, 1)

    @property
    def cs_channels(self) -> int:
        return self.config.cs_channels or max(self.config.grid_channels // 4, 1)

    def feature_map(self, t: torch.Tensor) -> torch.Tensor:
        """f_t (n, C, h₀, w₀) at normalised times ``t`` (n,) (paper Eq. 3, or a Table 2 alternative)."""
        c = self.config
        h, w = c.grid_height, c.grid_width
        code = self.temporal(self.t_encoding(t))
        if c.stem == "split":
            rows, cols = code.view(-1, c.grid_channels, h + w).split([h, w], dim=-1)
            return rows.unsqueeze(-1) * cols.unsqueeze(-2)
        if c.stem == "cs":
            return self.to_conv(code.view(-1, self.cs_channels, h, w))
        grid = self.grid
        s = self.spatial(torch.cat([self.xy_encoding(grid[:, 0]), self.xy_encoding(grid[:, 1])], dim=1))
        s = s.unsqueeze(0)  # (1, h·w, d): the spatial context does not depend on t
        if self.phi is not None:
            s = self.phi(s)
        x = s * code.unsqueeze(1)  # (n, h·w, d)
        if self.fusion is not None:
            x = self.fusion(x)
        return self.to_conv(x).transpose(1, 2).reshape(-1, c.grid_channels, h, w)

    def decode_time(self, t: torch.Tensor) -> torch.Tensor:
        """Frames at normalised times ``t`` (n,) → (n, 3, H_out, W_out)."""
        x = self.feature_map(t)
        style = self.norm_mlp(self.in_encoding(t)) if self.config.temporal_norm else None
        for i, block in enumerate(self.blocks):
            if style is not None:  # Eq. 5: σᵢ · instance_norm(x) + μᵢ
                scale, shift = self.norm_linears[i](style)[..., None, None].chunk(2, dim=1)
                x = F.instance_norm(x, eps=1e-5) * scale + shift
            x = block(x)
        return output_activation(self.config.output, self.head(x))

    def parameter_counts(self) -> ParameterCounts:
        """Official: as the official code prints it, i.e. with the fixed grid (2·h₀·w₀, frozen parameter
        there, recomputed buffer here); total: every stored value (no grid)."""
        size = lambda m: 0 if m is None else sum(p.numel() for p in m.parameters())  # noqa: E731
        names = ("temporal", "spatial", "phi", "fusion", "to_conv", "norm_mlp", "norm_linears", "blocks",
                 "head")
        parts = {("temporal_mlp" if n == "temporal" else n): size(getattr(self, n, None)) for n in names}
        parts = {k: v for k, v in parts.items() if v}
        total = sum(parts.values())
        grid = self.grid.numel() if self.config.stem == "disentangled" else 0
        if grid:
            parts["grid"] = grid
        return ParameterCounts(official=total + grid, total=total, parts=parts)
