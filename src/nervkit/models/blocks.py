"""Building blocks shared by the NeRV family.

* :class:`PositionalEncoding` — the Fourier encoding γ(t) of NeRV (NeRV paper Eq. 2; spec §1.1):
  for levels j = 0..L-1 the pair sin(b^j·π·t), cos(b^j·π·t). Two orderings exist in the official
  code: *interleaved* (sin₀, cos₀, sin₁, cos₁, … — NeRV, E-NeRV) and *concatenated* (all sines, then
  all cosines — HNeRV's NeRV baseline). Weights trained with one ordering do not fit the other.
* :class:`UpsampleBlock` — "conv → PixelShuffle(s) → norm → activation" (NeRV block, spec §1.2),
  with an optional kernel size for HNeRV-style blocks.
* :func:`make_activation`, :func:`make_norm` — the activation/norm factories of the official code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = ("relu", "leaky", "leaky01", "relu6", "gelu", "swish", "softplus", "hardswish", "sin")
NORMS = ("none", "bn", "in")
PE_ORDERS = ("interleaved", "concatenated")


class Sine(nn.Module):
    """sin(x) as a module (SIREN-style activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


def make_activation(name: str) -> nn.Module:
    """Activation by its official name (spec §2.2): relu, leaky (0.01), leaky01 (0.1), relu6, gelu,
    swish (SiLU), softplus, hardswish, sin."""
    table = {
        "relu": lambda: nn.ReLU(inplace=True),
        "leaky": lambda: nn.LeakyReLU(0.01, inplace=True),
        "leaky01": lambda: nn.LeakyReLU(0.1, inplace=True),
        "relu6": lambda: nn.ReLU6(inplace=True),
        "gelu": nn.GELU,
        "swish": lambda: nn.SiLU(inplace=True),
        "softplus": nn.Softplus,
        "hardswish": lambda: nn.Hardswish(inplace=True),
        "sin": Sine,
    }
    if name not in table:
        raise ConfigError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return table[name]()


def make_norm(name: str, channels: int) -> nn.Module:
    """Normalisation after the pixel shuffle: none, bn (BatchNorm2d) or in (InstanceNorm2d, affine)."""
    if name == "none":
        return nn.Identity()
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ConfigError(f"unknown norm {name!r}; choose from {', '.join(NORMS)}")


class PositionalEncoding(nn.Module):
    """γ(t) = (sin(b^0 π t), cos(b^0 π t), …, sin(b^{L-1} π t), cos(b^{L-1} π t)).

    ``base <= 0`` disables the encoding and passes t through (1 output dimension), as the official
    ``--embed none`` / ``pos_b 0`` do.
    """

    def __init__(self, base: float = 1.25, levels: int = 40, order: str = "interleaved") -> None:
        super().__init__()
        if order not in PE_ORDERS:
            raise ConfigError(f"unknown positional-encoding order {order!r}; choose from {', '.join(PE_ORDERS)}")
        if levels < 1:
            raise ConfigError(f"positional-encoding levels must be >= 1, got {levels}")
        self.base, self.levels, self.order = float(base), int(levels), order
        freqs = torch.tensor([self.base**j * math.pi for j in range(self.levels)], dtype=torch.float64)
        self.register_buffer("freqs", freqs.float(), persistent=False)

    @property
    def out_dim(self) -> int:
        return 1 if self.base <= 0 else 2 * self.levels

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: (N,) → (N, out_dim)."""
        t = t.reshape(-1, 1).to(self.freqs.dtype)
        if self.base <= 0:
            return t
        angles = t * self.freqs  # (N, L)
        sin, cos = torch.sin(angles), torch.cos(angles)
        if self.order == "interleaved":
            return torch.stack([sin, cos], dim=-1).flatten(1)
        return torch.cat([sin, cos], dim=-1)


class UpsampleBlock(nn.Module):
    """conv(k×k, C_in → C_out·s²) → PixelShuffle(s) → norm → activation (spec §1.2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        kernel_size: int = 3,
        activation: str = "gelu",
        norm: str = "none",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels * stride * stride, kernel_size, padding=(kernel_size - 1) // 2, bias=bias
        )
        self.shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.norm = make_norm(norm, out_channels)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.shuffle(self.conv(x))))


def mlp(dims: list[int], activation: str, *, bias: bool = True, last_activation: bool = True) -> nn.Sequential:
    """Linear layers dims[0] → dims[1] → …, each followed by the activation (also the last unless
    ``last_activation`` is False), as NeRV's stem does."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if last_activation or i < len(dims) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def output_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """Map network output to [0, 1]: ``tanh`` → (tanh(x)+1)/2 (NeRV), ``sigmoid`` → σ(x)."""
    if name == "tanh":
        return torch.tanh(x) * 0.5 + 0.5
    if name == "sigmoid":
        return torch.sigmoid(x)
    raise ConfigError(f"unknown output activation {name!r}; choose tanh or sigmoid")
