"""Denoising (NeRV §4.4, E-NeRV Table 4): fit a noisy copy of the video, score the decode against the
clean one.

``nervkit fit VIDEO --noise white:SIGMA --noise-seed S`` (or ``salt-pepper:P``) trains on a noisy copy
made by this recipe, with frames as floats x ∈ [0, 1]:

* ``white:SIGMA`` — additive white Gaussian noise: y = clip(x + SIGMA·z, 0, 1), z ~ N(0, 1) drawn
  independently for every value (pixel and channel). SIGMA is on the [0, 1] scale (0.1 ≈ 25.5 levels).
* ``salt-pepper:P`` — each *pixel* (all three channels together) is corrupted with probability P; a
  corrupted pixel becomes black (0) or white (1) with equal probability; the others are unchanged.

The noisy frames are then rounded to 8 bits (the frame stores hold uint8, as a noisy video file
would). The noise of frame i comes from a generator seeded with ``seed·1,000,003 + i`` (torch's CPU
generator), so the copy is reproducible and does not depend on batching or on which frames are
loaded. The model never sees the clean video or where the noise is; ``metrics.json`` reports the PSNR
of the decode against the CLEAN video, the PSNR of the noisy input against the clean video (for
reference: the denoising gain is their difference) and the PSNR of the decode against the noisy input.

The NeRV paper's exact noise amounts (white, black, salt-and-pepper, "random" noise) are not given
in the papers at hand; E-NeRV's Table 4 reports 28.60 dB for the noisy input, so choose SIGMA / P to
match the noisy-input PSNR you want to compare against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..data import FrameStore
from ..errors import ConfigError

NOISE_KINDS = ("white", "salt-pepper")


@dataclass(frozen=True)
class NoiseSpec:
    kind: str
    amount: float

    @classmethod
    def parse(cls, spec: str) -> NoiseSpec:
        kind, sep, value = str(spec).strip().lower().partition(":")
        kind = {"gaussian": "white", "salt-and-pepper": "salt-pepper", "saltpepper": "salt-pepper",
                "sp": "salt-pepper"}.get(kind, kind)
        if kind not in NOISE_KINDS or not sep:
            raise ConfigError(f"--noise {spec}: expected white:SIGMA or salt-pepper:P (e.g. white:0.1)")
        try:
            amount = float(value)
        except ValueError:
            raise ConfigError(f"--noise {spec}: {value!r} is not a number") from None
        if not math.isfinite(amount) or amount < 0 or (kind == "salt-pepper" and amount > 1):
            limit = "a probability in [0, 1]" if kind == "salt-pepper" else "a standard deviation >= 0"
            raise ConfigError(f"--noise {spec}: the amount must be {limit}")
        return cls(kind, amount)

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"


def frame_generator(seed: int, index: int) -> torch.Generator:
    """The generator of frame ``index``'s noise."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))


def noisy_frame(frame: torch.Tensor, noise: NoiseSpec, seed: int, index: int) -> torch.Tensor:
    """One noisy uint8 frame (3, H, W) from a clean uint8 frame, by the module's recipe."""
    g = frame_generator(seed, index)
    x = frame.to(torch.float32) / 255.0
    if noise.kind == "white":
        y = (x + noise.amount * torch.randn(x.shape, generator=g)).clamp_(0, 1)
    else:
        _, h, w = x.shape
        hit = torch.rand((h, w), generator=g) < noise.amount
        salt = torch.rand((h, w), generator=g) < 0.5
        y = torch.where(hit, salt.to(torch.float32), x)  # (H, W) broadcast over the channels
    return (y * 255.0).round_().to(torch.uint8)


def add_noise(store: FrameStore, noise: NoiseSpec | str, seed: int) -> FrameStore:
    """A noisy copy of ``store`` (same fps and indices), held in memory."""
    spec = NoiseSpec.parse(noise) if isinstance(noise, str) else noise
    out = np.empty(tuple(store.frames.shape), dtype=np.uint8)
    for i in range(len(store)):
        out[i] = noisy_frame(store.frames[i], spec, seed, i).numpy()
    values = {f.name: getattr(store, f.name) for f in fields(FrameStore)}
    values.update(frames=torch.from_numpy(out), memory_mapped=False)
    return FrameStore(**values)
