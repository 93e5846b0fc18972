"""The result of a quality evaluation: summary numbers, per-frame values and the settings used."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no inf/NaN: such values (only possible for NaN inputs) are written as null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class QualityReport:
    """Quality of a distorted / predicted sequence against its reference.

    ``psnr`` is the mean of the per-frame PSNRs; ``psnr_global`` is the PSNR of the mean MSE over all
    frames (the two differ when frames have different errors: ``psnr_global <= psnr``). ``ssim`` and
    ``ms_ssim`` are means of per-frame values; ``ms_ssim`` is None when it was not computed. All PSNRs
    are capped at ``psnr_cap`` dB. ``ssim_window``, ``ms_ssim_window`` and ``ms_ssim_weights`` record
    the settings chosen for the frame size (see :mod:`nervkit.metrics.multiscale`).
    """

    frames: int
    height: int
    width: int
    psnr: float
    psnr_global: float
    mse: float
    ssim: float
    ms_ssim: float | None
    psnr_per_frame: list[float]
    mse_per_frame: list[float]
    ssim_per_frame: list[float]
    ms_ssim_per_frame: list[float] | None
    ssim_window: int
    ms_ssim_window: int | None
    ms_ssim_weights: tuple[float, ...] | None
    psnr_cap: float
    reference: str | None = field(default=None)
    distorted: str | None = field(default=None)

    @property
    def ms_ssim_scales(self) -> int | None:
        """Number of MS-SSIM scales used (None when MS-SSIM was not computed)."""
        return None if self.ms_ssim_weights is None else len(self.ms_ssim_weights)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain ints, floats, strings, lists; non-finite values as null)."""

        def series(values: list[float] | None) -> list[float | None] | None:
            return None if values is None else [_finite_or_none(v) for v in values]

        return {
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "psnr": _finite_or_none(self.psnr),
            "psnr_global": _finite_or_none(self.psnr_global),
            "mse": _finite_or_none(self.mse),
            "ssim": _finite_or_none(self.ssim),
            "ms_ssim": _finite_or_none(self.ms_ssim),
            "settings": {
                "psnr_cap_db": self.psnr_cap,
                "ssim_window": self.ssim_window,
                "ssim_sigma": 1.5,
                "ms_ssim_window": self.ms_ssim_window,
                "ms_ssim_scales": self.ms_ssim_scales,
                "ms_ssim_weights": None if self.ms_ssim_weights is None else list(self.ms_ssim_weights),
                "data_range": 1.0,
            },
            "per_frame": {
                "psnr": series(self.psnr_per_frame),
                "mse": series(self.mse_per_frame),
                "ssim": series(self.ssim_per_frame),
                "ms_ssim": series(self.ms_ssim_per_frame),
            },
            "reference": self.reference,
            "distorted": self.distorted,
        }

    def table(self) -> str:
        """A small text table: mean / min / max per metric, then the settings used."""
        rows: list[tuple[str, str, str, str]] = [("metric", "mean", "min", "max")]

        def add(name: str, mean: float, values: list[float], fmt: str) -> None:
            rows.append((name, format(mean, fmt), format(min(values), fmt), format(max(values), fmt)))

        add("PSNR (dB)", self.psnr, self.psnr_per_frame, ".2f")
        rows.append(("PSNR global (dB)", format(self.psnr_global, ".2f"), "", ""))
        add("SSIM", self.ssim, self.ssim_per_frame, ".4f")
        if self.ms_ssim is not None and self.ms_ssim_per_frame:
            add("MS-SSIM", self.ms_ssim, self.ms_ssim_per_frame, ".4f")
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join([row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 4)]).rstrip()
            for row in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        settings = f"{self.frames} frames of {self.height}x{self.width} (HxW); SSIM window {self.ssim_window}"
        if self.ms_ssim_window is not None:
            settings += f"; MS-SSIM window {self.ms_ssim_window}, {self.ms_ssim_scales} scales"
        lines.append(settings)
        if self.reference is not None or self.distorted is not None:
            lines.append(f"reference: {self.reference}  distorted: {self.distorted}")
        return "\n".join(lines)
