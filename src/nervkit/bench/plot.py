"""Rate–distortion plots: :func:`plot_rd` draws PSNR vs bpp and MS-SSIM vs bpp side by side to a PNG.

Matplotlib runs with the non-interactive Agg backend (no display needed); the PNG is written
atomically (:func:`nervkit.io.atomic.atomic_path`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nervkit.errors import InputError
from nervkit.io.atomic import atomic_path

# a point's value under either the RD-results key or the short attribute-style name
_ALIASES = {"psnr": ("psnr-rgb", "psnr"), "ms_ssim": ("ms-ssim-rgb", "ms_ssim", "ms-ssim"), "bpp": ("bpp",)}


def _value(point: Any, name: str) -> float | None:
    for key in _ALIASES[name]:
        if isinstance(point, Mapping):
            if key in point:
                return point[key]
        elif hasattr(point, key.replace("-", "_")):
            return getattr(point, key.replace("-", "_"))
    return None


def _points(curve: Any) -> Sequence[Any]:
    return curve.points() if hasattr(curve, "points") else list(curve)


def plot_rd(
    results: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    log_x: bool = False,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Write a two-panel RD plot of ``results`` (method name -> points) to the PNG ``path``.

    A method's points are a list of dicts (keys ``bpp`` and ``psnr-rgb``/``psnr``, ``ms-ssim-rgb``/
    ``ms_ssim``) or objects with those attributes, or an :class:`~nervkit.bench.results.RDResults`.
    Points are drawn in order of bpp; points without MS-SSIM are left out of the right panel.
    """
    if not results:
        raise InputError("nothing to plot: no methods given")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    fig = Figure(figsize=(12.5, 4.5))
    axes = fig.subplots(1, 2)
    for name, curve in results.items():
        points = []
        for point in _points(curve):
            bpp = _value(point, "bpp")
            if bpp is None:
                raise InputError(f"method {name}: a point has no bpp")
            points.append((float(bpp), _value(point, "psnr"), _value(point, "ms_ssim")))
        points.sort(key=lambda p: p[0])
        for ax, index in ((axes[0], 1), (axes[1], 2)):
            xy = [(p[0], p[index]) for p in points if p[index] is not None]
            if xy:
                ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=name)
    for ax, ylabel in ((axes[0], "PSNR (dB)"), (axes[1], "MS-SSIM")):
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(ylabel)
        if log_x:
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    # one legend for both panels, outside them: the curves stay uncovered
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
