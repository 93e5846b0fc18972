"""Rate–distortion plots: :func:`plot_rd` draws PSNR vs bpp and MS-SSIM vs bpp side by side to a PNG;
:func:`plot_overlay` draws one metric of any number of RD result files (nervkit or CompressAI JSON) and
shipped reference curves (:func:`reference_names`, ``bench/reference/*.json``) to a PNG.

Every curve gets :func:`series_style` of its name: one fixed colour per method (``nerv``, ``nerv-qat``,
``nerv-1.5M-rd`` share a hue; codecs have their own), variants told apart by marker, float-model and
paper-reference curves by line style, so every plot nervkit draws agrees.

Matplotlib runs with the non-interactive Agg backend (no display needed); the PNG is written
atomically (:func:`nervkit.io.atomic.atomic_path`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nervkit.bench.results import read_json_object
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


#: one hue per method (matplotlib's tab10/tab20 colours); codecs included
METHOD_COLOURS = {
    "nerv": "#1f77b4", "enerv": "#17becf", "hnerv": "#ff7f0e", "dnerv": "#8c564b", "d-nerv": "#e377c2",
    "nvp": "#bcbd22", "hinerv": "#2ca02c",
    "x264": "#7f7f7f", "x265": "#d62728", "av1": "#9467bd", "vvc": "#000000", "hevc": "#d62728",
}
_OTHER_COLOURS = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d")
#: variant (a name's token after the method) -> marker
VARIANT_MARKERS = {"": "o", "qat": "s", "prune": "^", "pruned": "^", "rd": "D", "rdfit": "v", "paper": "*"}
_OTHER_MARKERS = ("P", "X", "h", "<", ">", "p", "8")
_FLOAT = ("float", "fp32")
_PAPER = ("paper", "reference", "ref")


def _tokens(name: str) -> list[str]:
    return [t for t in name.lower().replace("_", "-").replace("(", " ").replace(")", " ").replace(",", " ")
            .replace(" ", "-").split("-") if t]


def series_style(name: str) -> dict[str, Any]:
    """Matplotlib keyword arguments (``color``, ``marker``, ``linestyle``) of the curve named ``name``.

    The colour depends on the method only (the longest known method name the series name starts with:
    ``nerv-1.5M-qat`` → ``nerv``; codecs x264, x265, av1, vvc have their own), otherwise a stable hash.
    The marker names the variant (plain ``o``, ``qat`` square, ``prune`` triangle, ``rd`` diamond…);
    float-model curves (a ``float``/``fp32`` token) are dashed, paper reference curves dotted."""
    lowered = name.lower().strip()
    method = max((m for m in METHOD_COLOURS
                  if lowered == m or lowered.startswith((m + "-", m + "_", m + " "))), key=len, default=None)
    if method is None:  # e.g. "HiNeRV (paper, UVG)" -> first token
        first = _tokens(lowered)[:1]
        method = first[0] if first and first[0] in METHOD_COLOURS else None
    if method is not None:
        colour = METHOD_COLOURS[method]
        rest = _tokens(lowered[len(method):]) if lowered.startswith(method) else _tokens(lowered)[1:]
    else:
        colour = _OTHER_COLOURS[zlib.crc32(lowered.encode()) % len(_OTHER_COLOURS)]
        rest = []
    # size tokens (1.5m, 0.1m, 300k) and style tokens do not make a variant
    style_words = set(_FLOAT) | set(_PAPER) | {"uvg", "mcl", "jcv", "bunny"}
    variant = "-".join(t for t in rest if t not in style_words and not t[:1].isdigit())
    paper = any(t in _PAPER for t in rest)
    if paper:
        marker = VARIANT_MARKERS["paper"]
    elif variant in VARIANT_MARKERS:
        marker = VARIANT_MARKERS[variant]
    else:
        marker = _OTHER_MARKERS[zlib.crc32(variant.encode()) % len(_OTHER_MARKERS)]
    linestyle = "--" if any(t in _FLOAT for t in rest) else ":" if paper else "-"
    return {"color": colour, "marker": marker, "linestyle": linestyle}


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
                ax.plot([x for x, _ in xy], [y for _, y in xy], label=name, **series_style(name))
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
    with atomic_path(path) as tmp:  # bbox "tight": the legend outside the axes is never cut off
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


# ---- overlaying RD files ---------------------------------------------------------------------------------

REFERENCE_DIR = Path(__file__).parent / "reference"
#: ``--metric`` -> (axis label, the result keys that hold it: nervkit's first, then CompressAI's)
METRICS = {"psnr": ("PSNR (dB)", ("psnr-rgb", "psnr")), "ms-ssim": ("MS-SSIM", ("ms-ssim-rgb", "ms-ssim"))}
#: a float-model PSNR list kept next to the coded one draws a dashed "<name> float" curve
FLOAT_KEYS = {"psnr": ("psnr-float", "psnr_float_model"), "ms-ssim": ("ms-ssim-float",)}


def reference_names() -> list[str]:
    """The shipped paper reference curves (``bench/reference/<name>.json``)."""
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.json"))


def reference_path(name: str) -> Path:
    path = REFERENCE_DIR / f"{name}.json"
    if name not in reference_names():
        raise InputError(f"unknown reference curve {name!r} (choose from {', '.join(reference_names())})")
    return path


def _curve(name: str, results: Mapping[str, Any], keys: Sequence[str], where: str) -> list[tuple[float, float]]:
    bpp = results.get("bpp")
    values = next((results[k] for k in keys if k in results), None)
    if not isinstance(bpp, list) or not isinstance(values, list):
        return []
    if len(bpp) != len(values):
        raise InputError(f"{where}: {name}: 'bpp' and '{keys[0]}' differ in length")
    points = []
    for x, y in zip(bpp, values):
        if x is None or y is None:
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
            raise InputError(f"{where}: {name}: a point holds a value that is not a number")
        points.append((float(x), float(y)))
    return sorted(points)


def load_curves(path: str | os.PathLike[str], metric: str = "psnr") -> dict[str, list[tuple[float, float]]]:
    """The (bpp, metric) curves of one RD file: a nervkit ``nervkit-rd/1`` file, a ``bench rd`` summary.json
    (all its series), or a CompressAI results file (``results`` with ``bpp`` and ``psnr``/``psnr-rgb``,
    ``ms-ssim``/``ms-ssim-rgb``). A float-model list next to the coded one gives a second ``<name> float``
    curve. One-line :class:`InputError` on a missing or unreadable file, or one with no curve of ``metric``."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    data = read_json_object(path)
    if isinstance(data.get("series"), dict):  # a `bench rd` summary.json
        entries = [(str(k), v) for k, v in data["series"].items() if isinstance(v, dict)]
        entries = [(str(v.get("name", k)), v.get("results")) for k, v in entries]
    else:
        entries = [(str(data.get("name") or Path(path).stem), data.get("results"))]
    curves: dict[str, list[tuple[float, float]]] = {}
    for name, results in entries:
        if not isinstance(results, dict):
            continue
        points = _curve(name, results, METRICS[metric][1], str(path))
        if points:
            curves[name] = points
        float_points = _curve(name, results, FLOAT_KEYS[metric], str(path))
        if float_points:
            curves[f"{name} float"] = float_points
    if not curves:
        raise InputError(f"{path}: no RD curve with 'bpp' and {metric} values")
    return curves


def plot_overlay(
    files: Sequence[str | os.PathLike[str]],
    path: str | os.PathLike[str],
    *,
    references: Sequence[str] = (),
    metric: str = "psnr",
    title: str | None = None,
    log_x: bool = False,
    dpi: int = 120,
) -> Path:
    """Overlay the curves of RD ``files`` (see :func:`load_curves`) and shipped ``references`` (names from
    :func:`reference_names`) as ``metric`` vs bpp in one PNG ``path``, written atomically. Every input is
    read before anything is written: a bad one leaves no output file."""
    curves: dict[str, list[tuple[float, float]]] = {}
    sources = [Path(f) for f in files] + [reference_path(r) for r in references]
    if not sources:
        raise InputError("nothing to plot: give RD result files or --reference")
    for source in sources:
        for name, points in load_curves(source, metric).items():
            label, n = name, 2
            while label in curves:  # the same name in two files: keep both curves
                label, n = f"{name} ({n})", n + 1
            curves[label] = points
    fig = overlay_figure(curves, metric=metric, title=title, log_x=log_x)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def overlay_figure(curves: Mapping[str, Sequence[tuple[float, float]]], *, metric: str = "psnr",
                   title: str | None = None, log_x: bool = False) -> Any:
    """A matplotlib Figure of ``curves`` (label -> (bpp, value) points) as ``metric`` vs bpp, one
    :func:`series_style` per label, the legend outside the axes (never covering a curve)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    fig = Figure(figsize=(8.5, 5.0))
    ax = fig.subplots()
    for name, points in curves.items():
        ax.plot([x for x, _ in points], [y for _, y in points], label=name, **series_style(name))
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(METRICS[metric][0])
    if log_x:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
