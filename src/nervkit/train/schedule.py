"""Learning-rate schedules, set every iteration (spec §1.5).

``cosine``: linear warm-up from 0.1 to 1 over the first ``warmup`` fraction of training, then
½·(1 + cos(π·(p − w)/(1 − w))) down to 0 — NeRV/E-NeRV/DNeRV's ``warmup_cosine``. Progress p counts
iterations over the whole run (so it is right for any batch size, unlike the official NeRV code).
``const``: constant learning rate.
"""

from __future__ import annotations

import math

from ..errors import ConfigError

SCHEDULES = ("cosine", "const")


def lr_factor(progress: float, *, schedule: str = "cosine", warmup: float = 0.2) -> float:
    """Multiplier of the base learning rate at training progress ``progress`` ∈ [0, 1)."""
    if schedule == "const":
        return 1.0
    if schedule != "cosine":
        raise ConfigError(f"unknown lr schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    if progress < warmup:
        return 0.1 + 0.9 * progress / warmup
    span = max(1.0 - warmup, 1e-12)
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / span))
