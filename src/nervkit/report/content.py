"""What a report shows, gathered from its input: a run folder, a ``.nerv`` file or a ``bench rd`` folder.

Each gatherer returns a :class:`ReportContent`: plain numbers and uint8 frames, no HTML and no plots
(:mod:`.figures` draws, :mod:`.page` lays out). What an input cannot give is left empty with a note
(a run whose source video has moved shows its decoded frames only; a ``.nerv`` file without
``--reference`` has no error maps or per-frame quality).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, NervkitError
from ..io.frame_range import FrameRange
from ..metrics import QualityAccumulator, psnr_per_frame

#: default number of frames shown side by side (source, decoded, error map), evenly spaced
DEFAULT_SHOWN = 4


@dataclass
class FrameRow:
    """One shown frame: its index in the decoded video, the decoded frame and, with a source, the source
    frame and their PSNR (``(H, W, 3)`` uint8)."""

    index: int
    decoded: np.ndarray
    source: np.ndarray | None = None
    psnr: float | None = None
    video: str | None = None  # in a collection: the video and the frame's index inside it, e.g. "city, frame 3"


@dataclass
class Breakdown:
    """Where a file's bytes (``unit`` bytes) or a model's stored values (``unit`` values) go: ``parts``
    (label -> amount) in file order, and optionally the largest ``sections``."""

    unit: str
    parts: dict[str, int]
    sections: list[dict[str, Any]] = field(default_factory=list)
    caption: str = ""


@dataclass
class ReportContent:
    kind: str  # "run", "file" or "rd"
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    frames: list[FrameRow] = field(default_factory=list)
    per_frame: dict[str, list[float]] = field(default_factory=dict)  # "psnr", "ms_ssim" per frame
    per_frame_caption: str = ""
    videos: list[tuple[str, int, int]] = field(default_factory=list)  # a collection's (name, first frame, count)
    breakdown: Breakdown | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)  # the run's per-epoch log
    evals: list[dict[str, Any]] = field(default_factory=list)  # its evaluations during training
    rd_curves: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)  # metric -> curves
    rd_table: list[dict[str, Any]] = field(default_factory=list)
    bd_anchor: str | None = None
    bd_table: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The report's numbers as JSON-able data (what ``nervkit report --json`` prints)."""
        per_frame = {k: {"mean": float(np.mean(v)), "min": float(np.min(v)), "frames": len(v)}
                     for k, v in self.per_frame.items() if v}
        return {
            "kind": self.kind, "title": self.title, "facts": dict(self.facts),
            "frames_shown": [row.index for row in self.frames], "per_frame": per_frame,
            "breakdown": None if self.breakdown is None else {"unit": self.breakdown.unit,
                                                              "parts": self.breakdown.parts},
            "epochs": len(self.epochs), "rd_series": sorted(self.rd_curves.get("psnr", {})),
            "bd_anchor": self.bd_anchor, "bd": self.bd_table, "notes": self.notes,
        }


def shown_indices(count: int, shown: int) -> list[int]:
    """``shown`` frame indices evenly spaced over ``count`` frames, first and last included."""
    if shown < 1:
        raise InputError(f"--show must be at least 1, got {shown}")
    shown = min(shown, count)
    if shown == 1:
        return [0]
    return sorted({round(i * (count - 1) / (shown - 1)) for i in range(shown)})


def _uint8(frames: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) floats in [0, 1] -> (n, H, W, 3) uint8 (rounded, as the video writers do)."""
    return frames.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _rows(indices: list[int], decoded: np.ndarray, source: np.ndarray | None) -> list[FrameRow]:
    """The shown frames, with the PSNR of each 8-bit decoded frame against its source (when there is one)."""
    if source is None:
        return [FrameRow(index, decoded[k]) for k, index in enumerate(indices)]
    as_float = [torch.from_numpy(frames).double().permute(0, 3, 1, 2) for frames in (decoded, source)]
    psnr = psnr_per_frame(*as_float, data_range=255.0).tolist()
    return [FrameRow(index, decoded[k], source[k], psnr[k]) for k, index in enumerate(indices)]


def _fmt_int(n: int) -> str:
    return f"{n:,}"


# ---- a run folder ----------------------------------------------------------------------------------------
def from_run(path: Path, *, shown: int, device: str) -> ReportContent:
    from ..runs import Run

    run = Run.at(path)
    info = run.info()
    fitted = run.load(device)
    model, geometry = fitted.model, fitted.model.geometry
    n = geometry.num_frames
    height, width = model.output_size
    history = info.get("history") or {}
    content = ReportContent("run", f"{info['method']} run {path.resolve().name}")
    counts = model.parameter_counts()
    content.facts = [
        ("method", str(info["method"]) + (f" (preset {info['preset']})" if info.get("preset") else "")),
        ("source", ", ".join(run.data_options.inputs) or "?"),
        ("video", f"{n} frames {height}x{width} at {fitted.fps:g} fps"),
        ("parameters", f"{_fmt_int(counts.official)} ({_fmt_int(counts.total)} stored values)"),
        ("epochs", f"{len(history.get('epochs', []))} of {info['train']['epochs']}"),
        ("training time", f"{float(history.get('train_seconds') or 0):.1f} s"),
    ]
    metrics = _read_json(run.metrics_file)
    if metrics:
        quality = (f"PSNR {metrics['psnr']:.2f} dB, MS-SSIM {_opt(metrics.get('ms_ssim'), '.4f')}, "
                   f"SSIM {_opt(metrics.get('ssim'), '.4f')}")
        content.facts.append(("quality", quality))
        per_frame = metrics.get("per_frame") or {}
        content.per_frame = {k: [float(x) for x in per_frame[k]] for k in ("psnr", "ms_ssim")
                             if isinstance(per_frame.get(k), list) and per_frame[k]}
        content.per_frame_caption = "the fitted (float) model's frames against the source (metrics.json)"
    else:
        content.notes.append("no metrics.json in the run (an unfinished fit): no per-frame quality")
    indices = shown_indices(n, shown)
    with torch.no_grad():
        decoded = _uint8(fitted.decode(indices))
    source = None
    try:
        source = _uint8(run.training_data().clean.get(indices))
    except NervkitError as exc:  # the source moved or was deleted: decoded frames only
        content.notes.append(f"source frames not shown: {exc}")
    content.frames = _rows(indices, decoded, source)
    videos = run.videos
    if len(videos) > 1:
        content.facts.insert(2, ("videos", f"{len(videos)}: " + ", ".join(v["name"] for v in videos)))
        content.videos = [(v["name"], int(v["first_frame"]), int(v["frames"])) for v in videos]
        for row in content.frames:
            name, first, _ = next(v for v in content.videos if v[1] <= row.index < v[1] + v[2])
            row.video = f"{name}, frame {row.index - first}"
    content.breakdown = Breakdown("values", dict(counts.parts),
                                  caption="stored values per part of the model (compress the run for bytes: "
                                          "nervkit compress, then report the .nerv file)")
    content.epochs = [e for e in history.get("epochs", []) if isinstance(e, dict)]
    content.evals = [e for e in history.get("evals", []) if isinstance(e, dict)]
    return content


def _opt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---- a .nerv file ----------------------------------------------------------------------------------------
def from_file(path: Path, *, shown: int, device: str, reference: str | None = None,
              reference_frames: FrameRange | None = None) -> ReportContent:
    from ..compress.inspect import inspect as inspect_file
    from ..compress.model_codec import read_nerv
    from ..io import iter_frames
    from ..render import render_batches

    report = inspect_file(path)
    nerv = read_nerv(path)
    n = nerv.geometry.num_frames
    height, width = report["size"]
    content = ReportContent("file", f"{report['method']} file {path.name}")
    content.facts = [
        ("method", str(report["method"])),
        ("video", f"{n} frames {height}x{width} at {float(report['fps']):g} fps"),
        ("size", f"{_fmt_int(report['bytes'])} bytes, {report['bpp']:.4f} bpp"),
        ("quantization", f"{report['quantization'].get('bits')}-bit weights"),
    ]
    if reference is not None and len(nerv.videos) > 1:
        raise InputError(f"{path} holds {len(nerv.videos)} videos: --reference compares one video; report it "
                         "from its run folder instead")
    if reference is not None:
        content.facts.append(("reference", str(reference)))
        # streamed: one batch of reference frames at a time, whatever the video's length
        sources = iter_frames(reference, frames=reference_frames, size=(height, width))
    else:
        sources = None
        content.notes.append("no --reference video: decoded frames only (no error maps, no per-frame quality)")
    indices = shown_indices(n, shown)
    model = nerv.build_model().to(device)
    accumulator = QualityAccumulator() if sources is not None else None
    decoded_shown: dict[int, np.ndarray] = {}
    source_shown: dict[int, np.ndarray] = {}
    start = 0
    with torch.no_grad():
        for batch in render_batches(model):
            count = batch.shape[0]
            if sources is not None and accumulator is not None:
                target = [frame for _, frame in zip(range(count), sources)]
                if len(target) < count:
                    raise _count_error(reference, start + len(target), n)
                source_shown.update((i, target[i - start]) for i in indices if start <= i < start + count)
                stacked = torch.from_numpy(np.stack(target)).to(batch.device).permute(0, 3, 1, 2).float().div(255)
                accumulator.update(batch.clamp(0, 1), stacked)
            decoded_shown.update((i, _uint8(batch[i - start:i - start + 1])[0])
                                 for i in indices if start <= i < start + count)
            start += count
    if sources is not None and next(sources, None) is not None:
        raise _count_error(reference, n + 1, n, more=True)
    source = None
    if accumulator is not None:
        source = np.stack([source_shown[i] for i in indices])
        quality = accumulator.result()
        content.per_frame = {"psnr": list(quality.psnr_per_frame)}
        if quality.ms_ssim_per_frame:
            content.per_frame["ms_ssim"] = list(quality.ms_ssim_per_frame)
        content.per_frame_caption = f"the decoded file against {reference}"
        content.facts.append(("quality", f"PSNR {quality.psnr:.2f} dB, MS-SSIM {_opt(quality.ms_ssim, '.4f')}"))
    content.frames = _rows(indices, np.stack([decoded_shown[i] for i in indices]), source)
    parts = {name: int(b) for name, b in report["parts"].items() if b}
    groups = report.get("groups") or {}
    if groups:  # the model part split by stored group (decoder, embeddings, grids, ...)
        model_bytes = parts.pop("model", 0)
        overhead = parts.pop("container_overhead", 0)
        for name, group in groups.items():
            parts[name] = int(group["bytes"])
        rest = model_bytes - sum(int(g["bytes"]) for g in groups.values())
        if rest > 0:
            parts["other model data"] = rest
        if overhead:
            parts["container overhead"] = overhead
    sections = sorted((s for s in report.get("sections", []) if s.get("kind") != "header"),
                      key=lambda s: -int(s["bytes"]))
    content.breakdown = Breakdown("bytes", parts, sections[:12],
                                  caption=f"{_fmt_int(report['bytes'])} bytes in all (nervkit inspect)")
    return content


def _count_error(reference: str | None, count: int, n: int, more: bool = False) -> InputError:
    gives = f"more than {n}" if more else str(count)
    return InputError(f"--reference {reference} gives {gives} frames, the file holds {n} (choose the fitted ones "
                      "with --reference-frames A:B)")


# ---- a bench rd folder -----------------------------------------------------------------------------------
def from_rd(path: Path) -> ReportContent:
    from ..bench.plot import METRICS, load_curves
    from ..bench.results import RDResults, read_json_object

    summary_path = path / "summary.json"
    summary = read_json_object(summary_path)
    if not isinstance(summary.get("series"), dict):
        raise InputError(f"{summary_path} is not a nervkit bench rd summary (no 'series')")
    meta = summary.get("meta") or {}
    content = ReportContent("rd", f"Rate–distortion: {Path(str(meta.get('video', path))).name}")
    size = f"{meta.get('height', '?')}x{meta.get('width', '?')}"
    content.facts = [("video", f"{meta.get('video', '?')}: {meta.get('frames', '?')} frames {size}")]
    machine = meta.get("machine") or {}
    if machine:
        where = (f"{machine.get('cpu', '?')} ({machine.get('cores', '?')} cores), torch {machine.get('torch', '?')}, "
                 f"{machine.get('date', '?')}")
        content.facts.append(("machine", where))
    for metric in METRICS:
        try:
            content.rd_curves[metric] = load_curves(summary_path, metric)
        except InputError:
            continue  # no series has this metric (e.g. MS-SSIM not measured)
    for name, series in summary["series"].items():
        for point in RDResults(name, results=series.get("results") or {}).points():
            content.rd_table.append({"series": name, "bpp": point["bpp"], "psnr": point.get("psnr-rgb"),
                                     "ms_ssim": point.get("ms-ssim-rgb"), "vmaf": point.get("vmaf")})
    content.bd_anchor = summary.get("anchor")
    for name, bd in (summary.get("bd") or {}).items():
        content.bd_table.append({"series": name, "bd_rate_psnr": bd.get("bd_rate_psnr"),
                                 "bd_rate_ms_ssim": bd.get("bd_rate_ms_ssim"), "bd_psnr": bd.get("bd_psnr"),
                                 "note": bd.get("note") or ""})
    breakdown = summary.get("breakdown")
    if isinstance(breakdown, dict) and breakdown.get("groups"):
        parts = {"header": int(breakdown.get("header_bytes", 0))}
        parts.update({name: int(g["bytes"]) for name, g in breakdown["groups"].items()})
        parts["container overhead"] = int(breakdown.get("container_overhead_bytes", 0))
        content.breakdown = Breakdown("bytes", {k: v for k, v in parts.items() if v},
                                      caption=f"the largest neural file, {Path(str(breakdown['file'])).name} "
                                              f"({_fmt_int(int(breakdown['bytes']))} bytes)")
    return content


def gather(source: str | os.PathLike[str], *, shown: int = DEFAULT_SHOWN, device: str = "cpu",
           reference: str | None = None, reference_frames: FrameRange | None = None) -> ReportContent:
    """The content of a report on ``source``: a run folder, a ``.nerv`` file or a ``bench rd`` folder."""
    path = Path(source)
    if path.is_dir() and (path / "summary.json").is_file():
        kind = "rd"
    elif path.is_dir() and (path / "run.json").is_file():
        kind = "run"
    elif path.is_file():
        kind = "file"
    elif path.is_dir():
        raise InputError(f"{path} is neither a run folder (run.json) nor a bench rd folder (summary.json)")
    else:
        raise InputError(f"{path} does not exist")
    if reference is not None and kind != "file":
        raise InputError("--reference is for a .nerv file (a run knows its source video)")
    if kind == "rd":
        return from_rd(path)
    if kind == "run":
        return from_run(path, shown=shown, device=device)
    return from_file(path, shown=shown, device=device, reference=reference, reference_frames=reference_frames)
