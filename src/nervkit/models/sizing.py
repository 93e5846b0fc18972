"""Sizing helpers: derive up-sampling strides for any frame size, and meet a parameter budget.

Frame sizes rarely factor nicely. nervkit picks strides s₁…s_k and a starting grid h₀×w₀ such that
h₀·Πs ≥ H and w₀·Πs ≥ W with as little padding as possible and a grid of about 9×16 = 144 cells
(the official NeRV grid at 16:9); the decoder output is then cropped back to H×W. At 720×1280 this
gives NeRV's 5,2,2,2,2 and 9×16; at 1080×1920, 5,3,2,2,2 and 9×16; at 180×320, 5,2,2 and 9×16.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from ..errors import ConfigError, ModelError

C = TypeVar("C")

MIN_FRAME_SIDE = 16
#: the model output may exceed the frame by at most this factor per side (else strides do not fit)
MAX_OUTPUT_OVERSHOOT = 1.5
#: the largest parameter budget ``--params`` accepts (100 G parameters, 400 GB of float32 weights):
#: anything above is a typo or a test of the tool, refused when parsed
MAX_PARAM_BUDGET = 10**11
#: the largest bits-per-pixel budget (``--params 0.9bpp``); raw 8-bit RGB video is 24 bpp
MAX_BPP_BUDGET = 1000.0
#: the widest value the budget solvers search (NeRV / E-NeRV grid channels C, D-NeRV C_init)
MAX_SOLVED_WIDTH = 4096
#: a solved budget may fall short of the target by at most this fraction before it counts as unreachable
BUDGET_TOLERANCE = 0.04


class BudgetTooLargeError(ConfigError):
    """A parameter budget above the largest model a solver can build (its widest setting).

    ``target``: the budget; ``largest``: the parameters of the largest model the solver found. The
    registry (:meth:`~nervkit.models.registry.MethodSpec.build_config`) re-raises it naming the method
    and the video."""

    def __init__(self, target: int, largest: int, message: str | None = None) -> None:
        self.target, self.largest = int(target), int(largest)
        super().__init__(message or f"a budget of {self.target:,} parameters cannot be reached: the largest "
                                    f"model the solver can build has {self.largest:,} parameters")


@dataclass(frozen=True)
class StrideLayout:
    strides: tuple[int, ...]
    grid_height: int
    grid_width: int

    @property
    def factor(self) -> int:
        return math.prod(self.strides)

    @property
    def output_size(self) -> tuple[int, int]:
        return self.grid_height * self.factor, self.grid_width * self.factor


def _candidate_strides() -> list[tuple[int, ...]]:
    out = []
    for first in (5, 4, 3, 2):
        for second in ((), (3,), (2,)):
            for twos in range(0, 8):
                s = (first, *second, *([2] * twos))
                if len(s) <= 7:
                    out.append(s)
    return sorted(set(out))


def derive_layout(height: int, width: int, target_cells: int = 144) -> StrideLayout:
    """Best strides and starting grid for an H×W frame (see module docstring)."""
    check_frame_size(height, width)
    best: tuple[float, StrideLayout] | None = None
    for strides in _candidate_strides():
        p = math.prod(strides)
        gh, gw = math.ceil(height / p), math.ceil(width / p)
        waste = (gh * p * gw * p) / (height * width) - 1.0
        score = 10.0 * waste + math.log((gh * gw) / target_cells) ** 2 + 0.01 * len(strides)
        if best is None or score < best[0]:
            best = (score, StrideLayout(strides, gh, gw))
    assert best is not None
    return best[1]


def layout_for(height: int, width: int, strides: tuple[int, ...], grid: tuple[int, int] | None) -> StrideLayout:
    """Layout with user-given strides (and optionally grid); checks that it fits the frame."""
    check_frame_size(height, width)
    if any(s < 1 for s in strides):
        raise ConfigError(f"strides must be positive integers, got {','.join(map(str, strides))}")
    p = math.prod(strides)
    gh, gw = grid if grid else (math.ceil(height / p), math.ceil(width / p))
    if gh < 1 or gw < 1:
        raise ConfigError(f"grid size must be positive, got {gh}x{gw}")
    layout = StrideLayout(tuple(strides), gh, gw)
    oh, ow = layout.output_size
    if oh < height or ow < width:
        raise ModelError(
            f"the model's output {oh}x{ow} (grid {gh}x{gw} × strides {','.join(map(str, strides))}) "
            f"is smaller than the {height}x{width} frames"
        )
    if oh > MAX_OUTPUT_OVERSHOOT * height or ow > MAX_OUTPUT_OVERSHOOT * width:
        raise ModelError(
            f"frames of {height}x{width} are too small for strides {','.join(map(str, strides))} "
            f"(the model's output would be {oh}x{ow}); use smaller strides or let nervkit derive them"
        )
    return layout


def resolve_layout(height: int, width: int, strides: tuple[int, ...], grid_height: int = 0,
                   grid_width: int = 0) -> StrideLayout:
    """The layout of a config: its strides (and grid, when both sides are given) checked against the
    frame size, or derived from the frame size when no strides are given."""
    if strides:
        grid = (grid_height, grid_width) if grid_height and grid_width else None
        return layout_for(height, width, strides, grid)
    return derive_layout(height, width)


def check_frame_size(height: int, width: int) -> None:
    if height < MIN_FRAME_SIDE or width < MIN_FRAME_SIDE:
        raise ModelError(
            f"frames of {height}x{width} are too small: nervkit models need at least "
            f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} pixels"
        )


def solve_for_budget(count: Callable[[int], int], target: int, lo: int = 1, hi: int = MAX_SOLVED_WIDTH, *,
                     tolerance: float = BUDGET_TOLERANCE) -> int:
    """Integer x in [lo, hi] whose ``count(x)`` (non-decreasing in x) is closest to ``target``.

    A target that even ``count(hi)`` misses by more than ``tolerance`` (relative) is out of reach: the
    solver would silently clamp to ``hi``, so it raises :class:`BudgetTooLargeError` instead."""
    if count(lo) > target:
        return lo
    top = count(hi)
    if top < target * (1.0 - tolerance):
        raise BudgetTooLargeError(target, top)
    if top <= target:
        return hi
    a, b = lo, hi
    while a < b:  # largest x with count(x) <= target
        mid = (a + b + 1) // 2
        if count(mid) <= target:
            a = mid
        else:
            b = mid - 1
    if a < hi and abs(count(a + 1) - target) < abs(count(a) - target):
        return a + 1
    return a


#: lower widths a budget solver falls back to when the configured one leaves no room for C
LOWER_WIDTH_FALLBACKS = (16, 8, 4)


def lower_width_trials(lower: int, fixed: frozenset[str]) -> list[int]:
    """``lower`` first, then the smaller fallbacks — unless the user set ``lower_width``."""
    return [lower] + ([] if "lower_width" in fixed else [w for w in LOWER_WIDTH_FALLBACKS if w < lower])


def solve_grid_channels(trials: Iterable[C], count: Callable[[C], int], target: int, *, method: str,
                        geometry: tuple[int, int], tolerance: float = 0.04, min_channels: int = 8) -> C:
    """The first of ``trials`` (configs with a ``grid_channels`` field, in order of preference) whose
    best C meets ``target`` within ``tolerance`` with at least ``min_channels`` channels.

    Failing that: the widest C within the tolerance, else the closest count. A trial whose C = 1 is
    already over the budget is skipped; when every trial is, the budget is too small (ModelError).
    Used by the index-based methods (NeRV, E-NeRV), whose trials shrink the widths that do not grow
    with C (NeRV's MLP width, E-NeRV's d) and the lower width.
    """
    candidates: list[tuple[float, C]] = []
    for trial in trials:
        if count(replace(trial, grid_channels=1)) > target:
            continue  # even C = 1 is too big: try the next (smaller) trial
        # the trials shrink the model, so the first one that cannot reach the target proves that no
        # trial can: solve_for_budget raises BudgetTooLargeError with the largest model
        c = solve_for_budget(lambda c: count(replace(trial, grid_channels=c)), target, tolerance=tolerance)
        candidate = replace(trial, grid_channels=c)
        error = abs(count(candidate) - target) / target
        if error <= tolerance and c >= min_channels:
            return candidate
        candidates.append((error, candidate))
    if not candidates:
        raise ModelError(f"a budget of {target:,} parameters is too small for {method} at "
                         f"{geometry[0]}x{geometry[1]}")
    within = [c for e, c in candidates if e <= tolerance]
    if within:
        return max(within, key=lambda c: c.grid_channels)
    return min(candidates, key=lambda ec: ec[0])[1]


#: how :func:`stage_widths` rounds C_i / r: down (NeRV, E-NeRV, DNeRV) or to nearest (HNeRV)
WIDTH_ROUNDING = ("floor", "round")


def stage_widths(channels: int, stages: int, reduction: float, *, expansion: float | None = None,
                 lower: int = 1, rounding: str = "floor") -> list[int]:
    """Output channels of each up-sampling stage of every method, from the width C₀ = ``channels``
    they start with: C_{i+1} = max(rnd(C_i / r), lower), never below 1.

    ``rounding``: ``"floor"`` (⌊·⌋: NeRV, E-NeRV, DNeRV appendix Table 8) or ``"round"`` (Python's
    round, half to even as HNeRV's code: 82.5 → 82; HNeRV paper §3.2). With ``expansion`` the first
    stage is ⌊C₀·expansion⌋ instead, without the lower bound (NeRV spec §2.2, also E-NeRV's).
    """
    if rounding not in WIDTH_ROUNDING:
        raise ValueError(f"rounding must be one of {WIDTH_ROUNDING}, got {rounding!r}")
    widths, c = [], channels
    for i in range(stages):
        if i == 0 and expansion is not None:
            c = math.floor(channels * expansion)
        else:
            c = max(math.floor(c / reduction) if rounding == "floor" else round(c / reduction), lower)
        widths.append(max(c, 1))
    return widths


def parse_bpp_budget(text: str | int | float | None) -> float | None:
    """'0.9bpp' → 0.9; None for anything that is not a bits-per-pixel budget."""
    if not isinstance(text, str) or not text.strip().lower().endswith("bpp"):
        return None
    try:
        value = float(text.strip().lower()[:-3])
    except ValueError:
        raise ConfigError(f"--params: expected a bpp budget like 0.9bpp, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--params: a bpp budget must be positive, got {text!r}")
    if value > MAX_BPP_BUDGET:
        raise ConfigError(f"--params: a budget of {text.strip()} is absurd (raw 8-bit RGB video is 24 bpp; "
                          f"nervkit accepts at most {MAX_BPP_BUDGET:g}bpp)")
    return value


def bpp_to_param_count(bpp: float, pixels: int) -> int:
    """Parameters whose 8-bit values take ``bpp`` bits per pixel of a video of ``pixels`` pixels — the
    papers' "quantized-only" rate (NVP spec §2.4); the written file is smaller after entropy coding
    (and, for NVP's grids, JPEG/HEVC)."""
    return int(round(bpp * pixels / 8))


def parse_param_count(text: str | int | float) -> int:
    """'1.5M' → 1_500_000, '300k' → 300_000, '12490602' → 12490602."""
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:  # an int beyond float range
            value = math.inf
    else:
        s = str(text).strip().lower().replace("_", "").replace(",", "")
        mult = 1.0
        for suffix, m in (("m", 1e6), ("k", 1e3)):
            if s.endswith(suffix):
                s, mult = s[: -len(suffix)], m
                break
        try:
            value = float(s) * mult
        except (ValueError, OverflowError):
            raise ConfigError(f"--params: expected a count like 1.5M, 300k or 250000, got {text!r}") from None
    if math.isnan(value):
        raise ConfigError(f"--params: expected a count like 1.5M, 300k or 250000, got {text!r}")
    if value < 1000:
        raise ConfigError(f"--params: a budget of {text!r} is too small (at least 1k parameters)")
    check_param_budget(value, repr(text) if isinstance(text, str) else f"{value:.3g}")
    return int(round(value))


def check_param_budget(value: float, shown: str | None = None) -> None:
    """ConfigError (one line) unless ``value`` is a finite budget of at most :data:`MAX_PARAM_BUDGET`."""
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        value = math.inf
    if not math.isfinite(value) or value > MAX_PARAM_BUDGET:
        shown = shown if shown is not None else f"{value:.3g}"
        raise ConfigError(f"--params: a budget of {shown} parameters is absurd; nervkit accepts at most "
                          f"{MAX_PARAM_BUDGET:,} (100G), and a model that large would need "
                          f"{4 * MAX_PARAM_BUDGET / 1e9:,.0f} GB for its weights alone")


