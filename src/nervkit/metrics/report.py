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
    #: PSNR of the Y, U, V planes (8-bit 4:2:0, BT.601 limited range, peak 255), per frame, and the 6:1:1
    #: average of the per-frame PSNRs ``(6 Y + U + V) / 8`` (as codec papers report); None when not measured
    yuv_psnr_per_frame: dict[str, list[float]] | None = field(default=None)
    vmaf: float | None = field(default=None)
    vmaf_per_frame: list[float] | None = field(default=None)

    def yuv_psnr(self) -> dict[str, float] | None:
        """Mean over frames of the per-frame Y, U, V and 6:1:1 YUV PSNRs (None when not measured)."""
        if not self.yuv_psnr_per_frame:
            return None
        return {k: math.fsum(v) / len(v) for k, v in self.yuv_psnr_per_frame.items()}

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
            **{f"psnr_{k}": _finite_or_none(v) for k, v in (self.yuv_psnr() or {}).items()},
            "vmaf": _finite_or_none(self.vmaf),
            "settings": {
                "psnr_cap_db": self.psnr_cap,
                "ssim_window": self.ssim_window,
                "ssim_sigma": 1.5,
                "ms_ssim_window": self.ms_ssim_window,
                "ms_ssim_scales": self.ms_ssim_scales,
                "ms_ssim_weights": None if self.ms_ssim_weights is None else list(self.ms_ssim_weights),
                "data_range": 1.0,
                "yuv": None if not self.yuv_psnr_per_frame else
                "8-bit yuv420p, BT.601 limited range (swscale), peak 255; psnr_yuv = (6*Y + U + V) / 8 of the PSNRs",
                "vmaf_model": None if self.vmaf is None else "vmaf_v0.6.1",
            },
            "per_frame": {
                "psnr": series(self.psnr_per_frame),
                "mse": series(self.mse_per_frame),
                "ssim": series(self.ssim_per_frame),
                "ms_ssim": series(self.ms_ssim_per_frame),
                **{f"psnr_{k}": series(v) for k, v in (self.yuv_psnr_per_frame or {}).items()},
                "vmaf": series(self.vmaf_per_frame),
            },
            "reference": self.reference,
            "distorted": self.distorted,
        }

    def csv_rows(self) -> list[list[object]]:
        """Per-frame rows: frame, psnr_rgb, ms_ssim, psnr_y, psnr_u, psnr_v, psnr_yuv[, vmaf], header first."""
        header: list[object] = ["frame", "psnr_rgb", "ms_ssim", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv"]
        with_vmaf = self.vmaf_per_frame is not None
        if with_vmaf:
            header.append("vmaf")
        yuv = self.yuv_psnr_per_frame or {}

        def cell(values: list[float] | None, i: int) -> str:
            value = None if values is None else _finite_or_none(values[i])
            return "" if value is None else repr(value)

        rows = [header]
        for i in range(self.frames):
            row: list[object] = [i, cell(self.psnr_per_frame, i), cell(self.ms_ssim_per_frame, i)]
            row += [cell(yuv.get(k), i) for k in ("y", "u", "v", "yuv")]
            if with_vmaf:
                row.append(cell(self.vmaf_per_frame, i))
            rows.append(row)
        return rows

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
        means = self.yuv_psnr()
        if means and self.yuv_psnr_per_frame:
            for key in ("y", "u", "v", "yuv"):
                label = "PSNR YUV 6:1:1 (dB)" if key == "yuv" else f"PSNR {key.upper()} (dB)"
                add(label, means[key], self.yuv_psnr_per_frame[key], ".2f")
        if self.vmaf is not None and self.vmaf_per_frame:
            add("VMAF", self.vmaf, self.vmaf_per_frame, ".2f")
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
