"""The report's pictures as PNG bytes: frames and error maps (Pillow), and the plots (matplotlib, Agg,
no pyplot state): per-frame quality, byte breakdown, training curves, RD curves.

Every epoch or frame axis has integer ticks; RD curves use :func:`nervkit.bench.plot.series_style`, so a
method has the same colour here as in every other nervkit plot.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .content import Breakdown, FrameRow

#: colour map of the error maps (black = no error)
ERROR_CMAP = "inferno"


def _new_figure(width: float, height: float, **kwargs: Any) -> Any:
    """A pyplot-free matplotlib Figure (Agg: no display, no global state)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), **kwargs)


def _figure(width: float, height: float, rows: int = 1, columns: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A Figure with constrained layout (labels and an outside legend are never cut) and its axes, flat."""
    fig = _new_figure(width, height, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, **kwargs)
    return fig, axes.ravel()


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def image_png(rgb: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 image as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def frame_error(row: FrameRow) -> np.ndarray:
    """|source − decoded| of a shown frame (with a source), averaged over R, G, B: ``(H, W)`` in 8-bit levels."""
    assert row.source is not None
    return np.abs(row.source.astype(np.float32) - row.decoded.astype(np.float32)).mean(axis=2)


def error_scale(errors: list[np.ndarray]) -> float:
    """The error level (8-bit units) drawn white in every error map: the 99.5th percentile of the shown
    frames' ``errors`` (so one outlier pixel does not wash out the map), at least 1."""
    if not errors:
        return 1.0
    return max(1.0, float(np.percentile(np.concatenate([e.ravel() for e in errors]), 99.5)))


def error_map(error: np.ndarray, scale: float) -> np.ndarray:
    """A :func:`frame_error` mapped through :data:`ERROR_CMAP` from 0 to ``scale``: ``(H, W, 3)`` uint8."""
    from matplotlib import colormaps

    rgba = colormaps[ERROR_CMAP](np.clip(error / scale, 0, 1))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def colorbar_png(scale: float) -> bytes:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = _new_figure(4.0, 0.55)
    ax = fig.add_axes((0.05, 0.55, 0.9, 0.3))
    fig.colorbar(ScalarMappable(Normalize(0, scale), ERROR_CMAP), cax=ax, orientation="horizontal")
    ax.set_xlabel("mean |source − decoded| over R, G, B (8-bit levels)", fontsize=8)
    ax.tick_params(labelsize=7)
    return figure_png(fig)


def _counting_axis(ax: Any, x: list[int]) -> None:
    """Integer ticks on an epoch or frame axis, half a step of margin (a single point stays centred), and
    plain y tick labels (no "+1.38e1" offset)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if x:
        ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    if ax.get_yscale() == "linear":
        ax.ticklabel_format(axis="y", useOffset=False)


def per_frame_png(per_frame: dict[str, list[float]], shown: list[int],
                  videos: Sequence[tuple[str, int, int]] = ()) -> bytes:
    """PSNR (and MS-SSIM) of every frame, the mean dashed, the frames shown above marked; a collection's
    video boundaries dotted."""
    keys = [k for k in ("psnr", "ms_ssim") if per_frame.get(k)]
    fig, axes = _figure(5.2 * len(keys), 3.2, 1, len(keys))
    for ax, key in zip(axes, keys):
        values = per_frame[key]
        ax.plot(range(len(values)), values, color="tab:blue", marker="." if len(values) <= 60 else None)
        ax.axhline(float(np.mean(values)), color="tab:blue", linestyle="--", linewidth=0.8,
                   label=f"mean {np.mean(values):.{2 if key == 'psnr' else 4}f}")
        marked = [i for i in shown if i < len(values)]
        ax.plot(marked, [values[i] for i in marked], "o", mfc="none", color="tab:red", label="shown above")
        for _, first, _ in videos[1:]:
            ax.axvline(first - 0.5, color="gray", linestyle=":", linewidth=1)
        ax.set_xlabel("frame" if not videos else "frame (videos one after another)")
        ax.set_ylabel("PSNR (dB)" if key == "psnr" else "MS-SSIM")
        _counting_axis(ax, list(range(len(values))))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return figure_png(fig)


def breakdown_png(breakdown: Breakdown) -> bytes:
    """One stacked horizontal bar of the parts (labelled with their share), and the largest sections."""
    parts = {k: v for k, v in breakdown.parts.items() if v > 0}
    total = sum(parts.values()) or 1
    legend_rows = (len(parts) + 1) // 2
    bar_height = 0.8 + 0.22 * legend_rows
    if breakdown.sections:
        fig, axes = _figure(9.0, bar_height + 2.8, 2, 1, gridspec_kw={"height_ratios": [bar_height, 2.8]})
    else:
        fig, axes = _figure(9.0, bar_height)
    bar_ax = axes[0]
    left = 0
    colours = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan", "tab:red"]
    for k, (name, amount) in enumerate(parts.items()):
        bar_ax.barh(0, amount, left=left, color=colours[k % len(colours)],
                    label=f"{name}: {amount:,} {breakdown.unit} ({100 * amount / total:.1f} %)")
        left += amount
    bar_ax.set_yticks([])
    bar_ax.set_xlim(0, total)
    bar_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, fontsize="small", frameon=False)
    if breakdown.sections:
        ax = axes[1]
        sections = breakdown.sections[::-1]
        ax.barh(range(len(sections)), [s["bytes"] for s in sections], color="tab:blue")
        ax.set_yticks(range(len(sections)), [f"{s['name']} ({s['bits_per_value']:.2f} bits/value)"
                                             if s.get("values") else s["name"] for s in sections], fontsize=7)
        ax.set_xlabel("bytes (largest sections)")
        ax.grid(True, axis="x", alpha=0.3)
    return figure_png(fig)


def training_png(epochs: list[dict[str, Any]], evals: list[dict[str, Any]]) -> bytes:
    """Loss (log scale), PSNR (the training batches' and the evaluations') and learning rate per epoch."""
    fig, axes = _figure(13.5, 3.2, 1, 3)
    x = [int(e["epoch"]) for e in epochs]
    marker = "." if len(x) <= 30 else None
    loss_ax, psnr_ax, lr_ax = axes
    loss = [e.get("loss") for e in epochs]
    if any(v is not None and v > 0 for v in loss):
        loss_ax.plot(x, loss, color="tab:blue", marker=marker)
        loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    psnr_ax.plot(x, [e.get("psnr") for e in epochs], color="tab:blue", marker=marker, label="training batches")
    if evals:
        psnr_ax.plot([int(e["epoch"]) for e in evals], [e.get("psnr") for e in evals], "o-", color="tab:red",
                     label="evaluation (all frames)")
    psnr_ax.set_ylabel("PSNR (dB)")
    psnr_ax.legend(fontsize="small")
    lr_ax.plot(x, [e.get("lr") for e in epochs], color="tab:green", marker=marker)
    lr_ax.set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        _counting_axis(ax, x)
        ax.grid(True, alpha=0.3)
    return figure_png(fig)


def rd_png(curves: dict[str, list[tuple[float, float]]], metric: str) -> bytes:
    """RD curves of one metric; a logarithmic bpp axis when the rates span more than 20x (a neural
    method far from the codecs would otherwise squash them against the axis)."""
    from ..bench.plot import overlay_figure

    rates = [x for points in curves.values() for x, _ in points if x > 0]
    log_x = bool(rates) and max(rates) > 20 * min(rates)
    fig = overlay_figure(curves, metric=metric, log_x=log_x)
    fig.set_size_inches(6.4, 4.2)
    return figure_png(fig)
