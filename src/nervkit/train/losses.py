"""Reconstruction losses as weighted sums of named terms.

The official code keys its losses by opaque names (``Fusion6`` …, spec §1.4); nervkit spells them
out: ``"0.7*l1+0.3*ssim"`` is NeRV's Fusion6, α·L1 + (1−α)·(1−SSIM) with α = 0.7. Terms:

* ``l1`` — mean absolute error; ``l2`` — mean squared error;
* ``ssim`` — 1 − SSIM; ``ms-ssim`` — 1 − MS-SSIM (Gaussian window, σ 1.5, data range 1); ``ms-ssim5`` —
  the same with windows of at most 5×5 (HiNeRV's loss, on patches; smaller windows and fewer scales
  on patches too small for them).

Aliases: ``l1+ssim`` = ``0.7*l1+0.3*ssim`` (NeRV, E-NeRV), ``l1+ms-ssim`` = ``0.7*l1+0.3*ms-ssim``.
A loss mask (1 = counted; a batch's ``weight``) is applied as in HNeRV's inpainting: both prediction
and target are multiplied by it before every term. It has the target's leading dimensions and
broadcasts over the rest (a frame mask (n, 1, H, W) over RGB, pixel-sample weights (n,) over RGB).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..metrics import ms_ssim, ms_ssim_settings, ssim

ALIASES = {"l1+ssim": "0.7*l1+0.3*ssim", "l1+ms-ssim": "0.7*l1+0.3*ms-ssim", "fusion6": "0.7*l1+0.3*ssim"}


def _l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def _l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).square().mean()


def _ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1.0 - ssim(pred, target, per_frame=False)


def _ms_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1.0 - ms_ssim(pred, target, per_frame=False)


def _ms_ssim5(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    settings = ms_ssim_settings(pred.shape[-2], pred.shape[-1], max_window=5)
    return 1.0 - ms_ssim(pred, target, per_frame=False, settings=settings)


TERMS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": _l1,
    "l2": _l2,
    "ssim": _ssim,
    "ms-ssim": _ms_ssim,
    "ms-ssim5": _ms_ssim5,
}


@dataclass(frozen=True)
class ReconstructionLoss:
    """Σ wᵢ·termᵢ(pred, target); build with :meth:`parse`."""

    terms: tuple[tuple[float, str], ...]

    @classmethod
    def parse(cls, spec: str) -> ReconstructionLoss:
        text = ALIASES.get(spec.strip().lower(), spec.strip().lower()).replace(" ", "")
        terms: list[tuple[float, str]] = []
        for part in text.split("+") if text else []:
            weight, _, name = part.rpartition("*")
            if name not in TERMS:
                raise ConfigError(
                    f"--loss: unknown term {name!r} in {spec!r}; terms are {', '.join(TERMS)} "
                    f"(e.g. l2, l1+ssim, 0.7*l1+0.3*ssim)"
                )
            try:
                w = float(weight) if weight else 1.0
            except ValueError:
                raise ConfigError(f"--loss: bad weight {weight!r} in {spec!r}") from None
            if not w > 0:
                raise ConfigError(f"--loss: weights must be positive, got {weight!r} in {spec!r}")
            terms.append((w, name))
        if not terms:
            raise ConfigError(f"--loss: empty loss {spec!r}")
        return cls(tuple(terms))

    @property
    def pixelwise(self) -> bool:
        """True when every term is per pixel (l1, l2): usable on pixel samples (NVP)."""
        return all(name in ("l1", "l2") for _, name in self.terms)

    def __str__(self) -> str:
        return "+".join(f"{w:g}*{n}" for w, n in self.terms)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:  # loss weights with the target's leading dims, broadcast over the rest
            mask = mask.reshape(*mask.shape, *[1] * (pred.dim() - mask.dim()))
            pred, target = pred * mask, target * mask
        total = pred.new_zeros(())
        for w, name in self.terms:
            total = total + w * TERMS[name](pred, target)
        return total
