"""Shared base of the index-based methods (NeRV, E-NeRV): a frame is a function of its normalised index.

t = i/N (official NeRV) or i/(N−1) (official E-NeRV, DNeRV) — the config's ``time_norm``. Decoding at a
fractional position feeds the continuous t to the same network (interpolation without stored side
information). The network starts from a ``grid_height × grid_width`` feature map up-sampled by the
product of ``strides``, whose stages have NeRV's widths (:class:`IndexedConfig`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from .base import MethodConfig, Representation
from .config import VideoGeometry
from .sizing import resolve_layout, stage_widths

TIME_NORMS = ("n", "n-1")


class IndexedConfig(MethodConfig):
    """Config base of the index-based methods (their fields: ``strides``, ``grid_height``,
    ``grid_width``, ``grid_channels``, ``expansion``, ``reduction``, ``lower_width``); the grid width C
    (``grid_channels``) sets the model size."""

    size_options = ("grid_channels",)
    strides: tuple[int, ...]
    grid_height: int
    grid_width: int
    grid_channels: int
    expansion: float
    reduction: float
    lower_width: int

    def with_layout(self, geometry: VideoGeometry) -> Any:
        """The strides (given, or derived from the frame size) and the starting grid h₀×w₀ they leave
        (:func:`~nervkit.models.sizing.resolve_layout`)."""
        layout = resolve_layout(geometry.height, geometry.width, self.strides, self.grid_height,
                                self.grid_width)
        return replace(self, strides=layout.strides, grid_height=layout.grid_height,  # type: ignore[type-var]
                       grid_width=layout.grid_width)

    @property
    def widths(self) -> list[int]:
        """Output channels of each stage (NeRV spec §2.2, also E-NeRV's): ⌊C·expansion⌋, then
        max(⌊C_i / reduction⌋, lower_width)."""
        return stage_widths(self.grid_channels, len(self.strides), self.reduction, expansion=self.expansion,
                            lower=self.lower_width)


class IndexedRepresentation(Representation):
    """Frame index → frame; subclasses implement :meth:`decode_time` (config fields: ``time_norm``,
    ``strides``, ``grid_height``, ``grid_width``)."""

    def __init__(self, config, geometry: VideoGeometry) -> None:  # noqa: ANN001 (any index-based config)
        super().__init__(config, geometry)
        n = geometry.num_frames
        self.time_scale = 1.0 / (n if config.time_norm == "n" or n == 1 else n - 1)

    @property
    def output_size(self) -> tuple[int, int]:
        f = math.prod(self.config.strides)
        return self.config.grid_height * f, self.config.grid_width * f

    def frame_time(self, indices: torch.Tensor) -> torch.Tensor:
        """Normalised time t of frame ``indices`` (float, may be fractional for interpolation)."""
        return indices.to(torch.float32) * self.time_scale

    def decode_time(self, t: torch.Tensor) -> torch.Tensor:
        """Frames at normalised times ``t`` (n,) → (n, 3, H_out, W_out)."""
        raise NotImplementedError

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode_time(self.frame_time(indices))

    def decode_at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames at fractional positions: the continuous t fed to the same network (the interpolation of
        NeRV and E-NeRV, E-NeRV paper §5.7)."""
        pos = self._neighbours(positions)[0]
        return self.decode_time(self.frame_time(pos))
