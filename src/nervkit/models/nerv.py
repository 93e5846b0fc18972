"""NeRV: Neural Representations for Videos (Chen et al., NeurIPS 2021).

A frame is a function of its index: f_θ(t) = frame t. With t = i/N (official) or i/(N−1)::

    t ─ γ(t) ─ MLP (2L → D → … → C·h₀·w₀) ─ reshape C×h₀×w₀
      ─ NeRV block ×k (conv3×3 → PixelShuffle(sᵢ) → act) ─ 1×1 conv → 3 ─ (tanh+1)/2 → frame

γ is the Fourier positional encoding (paper Eq. 2); each NeRV block is conv → PixelShuffle →
activation (paper Fig. 2/§3.2). Channels: stage 1 = ⌊C·expansion⌋, then max(⌊C/reduction⌋,
lower_width). The presets S/M/L are the README models (C = 26/58/112, D = 512, L = 40, swish,
reduction 2, lower width 96) and have exactly 3,201,905 / 6,282,001 / 12,524,563 parameters at
720×1280 (spec §2.2). For other sizes the strides and starting grid are derived
(:mod:`nervkit.models.sizing`) and ``--params`` solves the grid width C for a budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError, ModelError
from .base import MethodConfig, ParameterCounts
from .blocks import ACTIVATIONS, NORMS, PE_ORDERS, PositionalEncoding, UpsampleBlock, mlp, output_activation
from .config import VideoGeometry, option
from .index_based import TIME_NORMS, IndexedRepresentation
from .registry import register_method
from .sizing import lower_width_trials, resolve_layout, solve_grid_channels
from .sizing import stage_widths as nerv_stage_widths


@dataclass(frozen=True)
class NeRVConfig(MethodConfig):
    """NeRV architecture. Zero/empty sizes are derived from the frame size."""

    pe_base: float = option(1.25, "positional encoding base b (0 disables the encoding)")
    pe_levels: int = option(40, "positional encoding levels L (2L input features)")
    pe_order: str = option("interleaved", "order of the sin/cos features", choices=PE_ORDERS)
    time_norm: str = option("n", "frame index normalisation: t = i/N (official NeRV) or i/(N-1)",
                            choices=TIME_NORMS)
    mlp_hidden: int = option(512, "width D of the MLP hidden layers")
    mlp_layers: int = option(1, "number of hidden MLP layers")
    grid_channels: int = option(26, "channels C of the starting feature grid (solved by --params)")
    grid_height: int = option(0, "starting grid height h0 (0 = derive from the frame size)")
    grid_width: int = option(0, "starting grid width w0 (0 = derive from the frame size)")
    strides: tuple[int, ...] = option((), "up-sampling strides, e.g. 5,2,2 (empty = derive)")
    expansion: float = option(1.0, "stage-1 width = C x expansion")
    reduction: float = option(2.0, "each later stage divides the width by this")
    lower_width: int = option(96, "minimum channels of a stage")
    blocks_per_stage: int = option(1, "NeRV blocks per stage (extra ones have stride 1)")
    activation: str = option("swish", "activation", choices=ACTIVATIONS)
    norm: str = option("none", "normalisation after each pixel shuffle", choices=NORMS)
    output: str = option("tanh", "output activation: (tanh+1)/2 or sigmoid", choices=("tanh", "sigmoid"))

    def resolve(
        self, geometry: VideoGeometry, target_params: int | None = None, fixed: frozenset[str] = frozenset()
    ) -> NeRVConfig:
        layout = resolve_layout(geometry.height, geometry.width, self.strides, self.grid_height, self.grid_width)
        cfg = replace(self, strides=layout.strides, grid_height=layout.grid_height, grid_width=layout.grid_width)
        for name in ("pe_levels", "mlp_hidden", "grid_channels", "lower_width", "blocks_per_stage"):
            if getattr(cfg, name) < 1:
                raise ModelError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
        if target_params is None:
            return cfg
        if "grid_channels" in fixed:
            raise ConfigError("--grid-channels and --params both set the model size: give one of them")
        return _solve_budget(cfg, geometry, target_params, fixed=fixed)


def _count(cfg: NeRVConfig, geometry: VideoGeometry) -> int:
    with torch.device("meta"):
        return NeRV(cfg, geometry).parameter_counts().official


def _solve_budget(cfg: NeRVConfig, geometry: VideoGeometry, target: int, tolerance: float = 0.04,
                  min_channels: int = 8, fixed: frozenset[str] = frozenset()) -> NeRVConfig:
    """Grid width C that meets ``target`` parameters.

    One step of C adds D·h₀·w₀ MLP weights, too coarse for small budgets, and a grid of 2–3 channels
    starves the conv decoder (on a 36×64 clip, C = 2 with D = 64 reached 16 dB where C = 16 with
    D = 32 reached 35 dB at the same epochs). So the MLP width D (and, when even C = 1 is too big,
    the lower width) is halved until the best C is at least ``min_channels`` and within
    ``tolerance`` of the budget. The official 1.5 M configuration at 180×320 (D = 512, C = 18) is
    kept; the official 0.3 M one (C = 3) needs explicit options (``grid_channels=3``). Options the
    user set (``fixed``: e.g. ``mlp_hidden``) are never changed.
    """
    hidden = cfg.mlp_hidden
    widths_d = [hidden] + ([] if "mlp_hidden" in fixed else [d for d in (256, 128, 64, 32, 16) if d < hidden])
    widths_l = lower_width_trials(cfg.lower_width, fixed)
    trials = (replace(cfg, mlp_hidden=d, lower_width=w) for d in widths_d for w in widths_l)
    return solve_grid_channels(trials, lambda c: _count(c, geometry), target, method="NeRV",
                               geometry=(geometry.height, geometry.width), tolerance=tolerance,
                               min_channels=min_channels)


def stage_widths(cfg: NeRVConfig) -> list[int]:
    """Output channels of each stage (spec §2.2)."""
    return nerv_stage_widths(cfg.grid_channels, len(cfg.strides), cfg.expansion, cfg.reduction, cfg.lower_width)


@register_method(
    "nerv",
    NeRVConfig,
    description="NeRV (NeurIPS 2021): frame index -> frame; MLP + conv/PixelShuffle decoder",
    presets={
        "S": {"grid_channels": 26},
        "M": {"grid_channels": 58},
        "L": {"grid_channels": 112},
    },
    default_preset="S",
    # the official 180x320 baselines (1.5 M: 9x16x18 grid, 0.3 M: 9x16x3) use lower width 32
    budget_base={"lower_width": 32},
    paper="Chen et al., NeRV: Neural Representations for Videos, NeurIPS 2021",
)
class NeRV(IndexedRepresentation):
    """Frame index → frame (see module docstring)."""

    prune_exclude = ("head",)  # the official pruning covers the MLP and the stage convs, not the head

    def __init__(self, config: NeRVConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c = config
        if not c.strides or not c.grid_height:
            raise ModelError("NeRV config is not resolved (call config.resolve(geometry) first)")
        self.encoding = PositionalEncoding(c.pe_base, c.pe_levels, c.pe_order)
        grid_size = c.grid_channels * c.grid_height * c.grid_width
        self.stem = mlp([self.encoding.out_dim] + [c.mlp_hidden] * c.mlp_layers + [grid_size], c.activation)
        blocks: list[nn.Module] = []
        width = c.grid_channels
        for stride, out in zip(c.strides, stage_widths(c)):
            blocks.append(UpsampleBlock(width, out, stride, activation=c.activation, norm=c.norm))
            blocks.extend(
                UpsampleBlock(out, out, 1, activation=c.activation, norm=c.norm)
                for _ in range(c.blocks_per_stage - 1)
            )
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(width, 3, 1)

    def decode_time(self, t: torch.Tensor) -> torch.Tensor:
        """Frames at normalised times ``t`` (n,) → (n, 3, H_out, W_out)."""
        c = self.config
        x = self.stem(self.encoding(t))
        x = x.view(-1, c.grid_channels, c.grid_height, c.grid_width)
        return output_activation(c.output, self.head(self.blocks(x)))

    def parameter_counts(self) -> ParameterCounts:
        parts = {
            "mlp": sum(p.numel() for p in self.stem.parameters()),
            "blocks": sum(p.numel() for p in self.blocks.parameters()),
            "head": sum(p.numel() for p in self.head.parameters()),
        }
        total = sum(parts.values())
        return ParameterCounts(official=total, total=total, parts=parts)
