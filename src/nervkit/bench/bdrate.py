"""Bjøntegaard delta rate and delta quality (BD-rate, BD-PSNR) between two rate–distortion curves.

Method (Bjøntegaard, VCEG-M33 / VCEG-AL22, and the piecewise-cubic practice of the JVET/VCEG reference
spreadsheets): each curve is turned into a function by interpolating through its points, and the
average gap between the two functions over the range where both are defined is reported.

* BD-rate: log-rate (natural log) as a function of quality, integrated over the overlap of the two
  quality ranges; the mean difference ``d`` gives ``(exp(d) - 1) × 100`` percent: the average change in
  bitrate of the test curve relative to the anchor at equal quality (negative = the test needs fewer bits).
* BD-quality (BD-PSNR when the quality is PSNR): quality as a function of log-rate, integrated over the
  overlap of the two log-rate ranges; the mean difference in quality units (dB).

Interpolation, ``method=``:

* ``"pchip"`` (default): piecewise cubic Hermite interpolation with Fritsch–Carlson monotone slopes
  (the shape-preserving cubic of the reference practice; it never overshoots between points), integrated
  exactly segment by segment;
* ``"cubic"``: the original Bjøntegaard least-squares cubic polynomial (degree ``min(3, points - 1)``),
  integrated exactly.

Points may come in any order; they are sorted by the interpolation variable. Rates must be positive
and the interpolation variable must not repeat within a curve; each curve needs at least 2 points.
Those problems raise :class:`~nervkit.errors.ConfigError`. When the two ranges do not overlap there is
nothing to average: the result is NaN and a :class:`BDRateWarning` gives the reason, or, with
``strict=True``, a ConfigError is raised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from nervkit.errors import ConfigError

METHODS = ("pchip", "cubic")


class BDRateWarning(RuntimeWarning):
    """A Bjøntegaard delta could not be computed (the result is NaN); the message says why."""


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson monotone slopes at the knots ``x`` (strictly increasing)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    for k in range(1, n - 1):
        a, b = delta[k - 1], delta[k]
        if a * b > 0:  # same sign, neither zero: weighted harmonic mean
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / a + w2 / b)
    for end, (h0, h1, d0, d1) in ((0, (h[0], h[1], delta[0], delta[1])), (n - 1, (h[-1], h[-2], delta[-1], delta[-2]))):
        slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)  # three-point end formula
        if np.sign(slope) != np.sign(d0):
            slope = 0.0
        elif np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
            slope = 3 * d0
        d[end] = slope
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral from ``lo`` to ``hi`` (inside [x0, xn]) of the PCHIP interpolant through (x, y)."""
    d = _pchip_slopes(x, y)

    def primitive(at: float) -> float:
        # integral from x[0] to ``at``: whole segments, then the part of the segment holding ``at``
        k = int(np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2))
        h = x[k + 1] - x[k]
        whole = np.diff(x[: k + 1])
        total = float(np.sum(whole * (y[:k] + y[1 : k + 1]) / 2 + whole**2 * (d[:k] - d[1 : k + 1]) / 12))
        s = (at - x[k]) / h
        # integrals over [0, s] of the cubic Hermite basis functions h00, h10, h01, h11
        i00 = s**4 / 2 - s**3 + s
        i10 = s**4 / 4 - 2 * s**3 / 3 + s**2 / 2
        i01 = -(s**4) / 2 + s**3
        i11 = s**4 / 4 - s**3 / 3
        return total + h * (y[k] * i00 + h * d[k] * i10 + y[k + 1] * i01 + h * d[k + 1] * i11)

    return primitive(hi) - primitive(lo)


def _cubic_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral from ``lo`` to ``hi`` of the least-squares polynomial (degree ≤ 3) through (x, y)."""
    degree = min(3, len(x) - 1)
    centre = float(np.mean(x))  # centred for a well-conditioned fit
    poly = np.polynomial.Polynomial.fit(x - centre, y, degree, domain=[-1, 1], window=[-1, 1])
    integral = poly.integ()
    return float(integral(hi - centre) - integral(lo - centre))


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ConfigError(f"{name} curve: {r.size} rates but {q.size} quality values")
    if r.size < 2:
        raise ConfigError(f"{name} curve: a Bjøntegaard delta needs at least 2 points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ConfigError(f"{name} curve: rates and quality values must be finite numbers")
    if np.any(r <= 0):
        raise ConfigError(f"{name} curve: rates must be positive")
    return np.log(r), q


def _mean_gap(
    xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, method: str, axis: str, strict: bool
) -> float:
    """Mean of (curve b - curve a) with y interpolated over x, on the overlap of the x ranges."""
    if method not in METHODS:
        raise ConfigError(f"unknown Bjøntegaard method {method!r}; choose from {', '.join(METHODS)}")
    curves = []
    for x, y, name in ((xa, ya, "anchor"), (xb, yb, "test")):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if np.any(np.diff(x) == 0):
            raise ConfigError(f"{name} curve: repeated {axis} values; a curve needs distinct points")
        curves.append((x, y))
    (xa, ya), (xb, yb) = curves
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not hi > lo:
        reason = (
            f"the {axis} ranges of the two curves do not overlap "
            f"(anchor {xa[0]:.4g}..{xa[-1]:.4g}, test {xb[0]:.4g}..{xb[-1]:.4g})"
        )
        if strict:
            raise ConfigError(f"no Bjøntegaard delta: {reason}")
        warnings.warn(reason, BDRateWarning, stacklevel=3)
        return math.nan
    integrate = _pchip_integral if method == "pchip" else _cubic_integral
    return (integrate(xb, yb, lo, hi) - integrate(xa, ya, lo, hi)) / (hi - lo)


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    *,
    method: str = "pchip",
    strict: bool = False,
) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative: the test saves bits)."""
    la, qa = _curve(anchor_rate, anchor_quality, "anchor")
    lb, qb = _curve(test_rate, test_quality, "test")
    gap = _mean_gap(qa, la, qb, lb, method, "quality", strict)
    return (math.exp(gap) - 1.0) * 100.0 if math.isfinite(gap) else math.nan


def bd_quality(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    *,
    method: str = "pchip",
    strict: bool = False,
) -> float:
    """BD-quality (BD-PSNR for PSNR) of the test curve against the anchor, in quality units (dB)."""
    la, qa = _curve(anchor_rate, anchor_quality, "anchor")
    lb, qb = _curve(test_rate, test_quality, "test")
    return _mean_gap(la, qa, lb, qb, method, "log-rate", strict)


bd_psnr = bd_quality
