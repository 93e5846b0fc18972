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

from .base import ParameterCounts
from .blocks import ACTIVATIONS, NORMS, PE_ORDERS, PositionalEncoding, UpsampleBlock, mlp, output_activation
from .config import VideoGeometry, option
from .index_based import TIME_NORMS, IndexedConfig, IndexedRepresentation
from .registry import count_parameters, register_method
from .sizing import lower_width_trials, solve_grid_channels


@dataclass(frozen=True)
class NeRVConfig(IndexedConfig):
    """NeRV architecture. Zero/empty sizes are derived from the frame size."""

    pe_base: float = option(1.25, "positional encoding base b (0 disables the encoding)")
    pe_levels: int = option(40, "positional encoding levels L (2L input features)", min=1)
    pe_order: str = option("interleaved", "order of the sin/cos features", choices=PE_ORDERS)
    time_norm: str = option("n", "frame index normalisation: t = i/N (official NeRV) or i/(N-1)",
                            choices=TIME_NORMS)
    mlp_hidden: int = option(512, "width D of the MLP hidden layers", min=1)
    mlp_layers: int = option(1, "number of hidden MLP layers")
    grid_channels: int = option(26, "channels C of the starting feature grid (solved by --params)", min=1)
    grid_height: int = option(0, "starting grid height h0 (0 = derive from the frame size)", min=0,
                              derived=True)
    grid_width: int = option(0, "starting grid width w0 (0 = derive from the frame size)", min=0,
                             derived=True)
    strides: tuple[int, ...] = option((), "up-sampling strides, e.g. 5,2,2 (empty = derive)", derived=True)
    expansion: float = option(1.0, "stage-1 width = C x expansion", positive=True)
    reduction: float = option(2.0, "each later stage divides the width by this", positive=True)
    lower_width: int = option(96, "minimum channels of a stage", min=1)
    blocks_per_stage: int = option(1, "NeRV blocks per stage (extra ones have stride 1)", min=1)
    activation: str = option("swish", "activation", choices=ACTIVATIONS)
    norm: str = option("none", "normalisation after each pixel shuffle", choices=NORMS)
    output: str = option("tanh", "output activation: (tanh+1)/2 or sigmoid", choices=("tanh", "sigmoid"))

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> NeRVConfig:
        """Grid width C that meets ``target`` parameters.

        One step of C adds D·h₀·w₀ MLP weights, too coarse for small budgets, and a grid of 2–3 channels
        starves the conv decoder (on a 36×64 clip, C = 2 with D = 64 reached 16 dB where C = 16 with
        D = 32 reached 35 dB at the same epochs). So the MLP width D (and, when even C = 1 is too big,
        the lower width) is halved until the best C is at least 8 and within 4 % of the budget
        (:func:`~nervkit.models.sizing.solve_grid_channels`). The official 1.5 M configuration at
        180×320 (D = 512, C = 18) is kept; the official 0.3 M one (C = 3) needs explicit options
        (``grid_channels=3``). Options the user set (``fixed``: e.g. ``mlp_hidden``) are never changed.
        """
        if target is None:
            return self
        hidden = self.mlp_hidden
        halved = [] if "mlp_hidden" in fixed else [d for d in (256, 128, 64, 32, 16) if d < hidden]
        widths_d = [hidden, *halved]
        widths_l = lower_width_trials(self.lower_width, fixed)
        trials = (replace(self, mlp_hidden=d, lower_width=w) for d in widths_d for w in widths_l)
        return solve_grid_channels(trials, lambda c: count_parameters("nerv", c, geometry), target,
                                   method="NeRV", geometry=(geometry.height, geometry.width))


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
        self.encoding = PositionalEncoding(c.pe_base, c.pe_levels, c.pe_order)
        grid_size = c.grid_channels * c.grid_height * c.grid_width
        self.stem = mlp([self.encoding.out_dim] + [c.mlp_hidden] * c.mlp_layers + [grid_size], c.activation)
        blocks: list[nn.Module] = []
        width = c.grid_channels
        for stride, out in zip(c.strides, c.widths):
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
