"""A complete nervkit method in one file, registered from outside the package: the test fixture of
tests/test_plugin_method.py and the example of docs/methods.md.

"toy": one learned low-resolution image per frame (C channels at 1/scale of the frame size),
upsampled bilinearly and mapped to RGB by a shared 1×1 convolution. Nothing in nervkit names it: the
registry finds it when this module is imported, or through the ``nervkit.methods`` entry point of an
installed package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from nervkit.models import (
    MethodConfig,
    ParameterCounts,
    Representation,
    StoredGroup,
    VideoGeometry,
    register_method,
)
from nervkit.models.config import option


@dataclass(frozen=True)
class ToyConfig(MethodConfig):
    channels: int = option(4, "latent channels per frame", positive=True)
    scale: int = option(4, "the latent images are 1/scale of the frame size", positive=True, max=64)

    size_options = ("channels",)  # --channels and --params both size the model

    def latent_size(self, geometry: VideoGeometry) -> tuple[int, int]:
        return math.ceil(geometry.height / self.scale), math.ceil(geometry.width / self.scale)

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> ToyConfig:
        if target is None:
            return self
        h, w = self.latent_size(geometry)
        per_channel = geometry.num_frames * h * w + 3  # the latent values and one head weight per channel
        return replace(self, channels=max(1, (target - 3) // per_channel))


@register_method("toy", ToyConfig, description="test fixture: a learned low-resolution image per frame",
                 train_defaults={"loss": "l2", "lr": 1e-2})
class Toy(Representation):
    def __init__(self, config: ToyConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        h, w = config.latent_size(geometry)
        self.latents = nn.Parameter(0.1 * torch.randn(geometry.num_frames, config.channels, h, w))
        self.head = nn.Conv2d(config.channels, 3, 1)

    @property
    def output_size(self) -> tuple[int, int]:
        return self.geometry.height, self.geometry.width

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        latents = self.latents[indices.to(self.latents.device)]
        up = F.interpolate(latents, size=self.output_size, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(up))

    def stored_groups(self) -> list[StoredGroup]:
        return [StoredGroup("latents", "per_frame", {"latents": self.latents}),
                StoredGroup("head", "weights", {"head.weight": self.head.weight, "head.bias": self.head.bias})]

    def parameter_counts(self) -> ParameterCounts:
        parts = {"latents": self.latents.numel(), "head": sum(p.numel() for p in self.head.parameters())}
        return ParameterCounts(sum(parts.values()), sum(parts.values()), parts)
