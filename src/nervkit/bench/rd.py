"""The rate–distortion benchmark behind ``nervkit bench rd``: neural representations and classical
codecs on the same frames, the same metrics, and a rate measured from real files.

For every neural method (any registered name, e.g. ``nerv``) and every model size in
:attr:`RDConfig.params`, a model is fitted (or an earlier fit in ``OUT/runs`` is reused or resumed)
and compressed into ``.nerv`` files, one per variant:

* ``{method}``: post-training quantization to :attr:`~RDConfig.bits` bits + entropy coding;
* ``{method}-prune{P}``: global magnitude pruning of ``P`` % of the weights, fine-tuned, then the same;
* ``{method}-qat``: quantization-aware fine-tuning before the quantization;
* ``{method}-prune{P}-qat``: both.

Each variant is one RD series whose points are the model sizes. Its rate is the ``.nerv`` file's
size; its quality is measured on the file decoded from scratch and rounded to 8-bit RGB, exactly what
a user's decoded video holds, with the code that scores the codecs
(:func:`~nervkit.bench.quality.measure_quality`: mean per-frame RGB PSNR, SSIM, MS-SSIM, VMAF).
Encoding time of a neural point = its training time + the compression time (pruning, fine-tuning,
quantization, entropy coding); decoding time = reading the file, rebuilding the model and decoding
every frame to 8-bit RGB.

Every codec (``x264``, ``x265``, ``av1``, ``vvc``; :mod:`nervkit.bench.codecs`) is one series over its
CRF/QP ladder. BD-rates (PSNR and MS-SSIM, PCHIP) and BD-PSNR of every series are computed against
:attr:`~RDConfig.anchor` on the overlap of the quality ranges; where the ranges do not overlap the
value is ``null`` with the reason.

Output folder: ``results/{series}.json`` (schema ``nervkit-rd/1``, :mod:`nervkit.bench.results`),
``summary.json`` (schema ``nervkit-rd-summary/1``: every series, the BD table, the byte breakdown of
the largest plain ``.nerv`` file and its entropy-coding efficiency), ``rd.md`` (Markdown tables),
``rd.png`` (PSNR and MS-SSIM vs bpp), plus ``runs/`` (fitted models) and ``files/`` (the ``.nerv``
files, each with its point as JSON). Finished parts are reused when the command is run again with the
same settings, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nervkit.bench.bdrate import BDRateWarning, bd_quality, bd_rate
from nervkit.bench.codecs import CODECS, codec_spec
from nervkit.bench.machine import describe_machine
from nervkit.bench.plot import plot_rd
from nervkit.bench.quality import measure_quality
from nervkit.bench.results import RDResults, codec_rd_curve, read_results, write_results
from nervkit.compress.model_codec import ENCODER_REVISION
from nervkit.errors import ConfigError, InputError, output_error
from nervkit.io.atomic import write_json_atomic
from nervkit.io.convert import to_uint8
from nervkit.io.outputs import check_folder_target, check_output
from nervkit.models.config import option, validate_choices

SUMMARY_SCHEMA = "nervkit-rd-summary/1"


@dataclass(frozen=True)
class RDConfig:
    """What ``nervkit bench rd`` compares (field help = ``--help``)."""

    methods: tuple[str, ...] = option(("nerv", "x264", "x265", "av1", "vvc"),
                                      "methods: registered neural methods and codecs (x264, x265, av1, vvc)")
    params: tuple[str, ...] = option(("0.05M", "0.15M", "0.5M", "1.5M"),
                                     "model sizes (parameter budgets) fitted for every neural method")
    epochs: int = option(300, "training epochs of every neural model")
    bits: int = option(8, "bits per weight in the .nerv files")
    embed_bits: int = option(6, "bits per per-frame embedding value (methods that store embeddings)")
    prune: float = option(0.2, "fraction of weights removed in the pruned variants (0 = no pruned variants)")
    finetune_epochs: int = option(10, "fine-tuning epochs after pruning")
    qat_epochs: int = option(10, "quantization-aware fine-tuning epochs of the QAT variants (0 = none)")
    anchor: str = option("auto", "BD-rates are computed against this series (auto: x265 when it is "
                                 "compared, else the first series)")
    vmaf: bool = option(True, "also measure VMAF (libvmaf filter of the bundled ffmpeg)")
    seed: int = option(1, "random seed of every fit")
    device: str = option("auto", "where neural models train, fine-tune and decode: auto, cpu, cuda")

    def validate(self) -> None:
        validate_choices(self)
        if not self.methods:
            raise ConfigError("--methods: give at least one method")
        if self.epochs < 1 or self.finetune_epochs < 0 or self.qat_epochs < 0:
            raise ConfigError("--epochs must be >= 1, --finetune-epochs and --qat-epochs >= 0")
        if not 0 <= self.prune < 1:
            raise ConfigError(f"--prune must be in [0, 1), got {self.prune}")
        if self.prune and not self.finetune_epochs:
            raise ConfigError("--prune needs --finetune-epochs >= 1 (pruning without fine-tuning is not a variant)")


@dataclass(frozen=True)
class Variant:
    """One way of compressing a fitted model: the suffix of its series name and compress() options."""

    suffix: str
    prune: float
    finetune_epochs: int
    qat_epochs: int

    def series(self, method: str) -> str:
        return method + self.suffix


def variants(config: RDConfig) -> list[Variant]:
    """Plain, pruned, QAT and pruned+QAT, as far as ``config`` asks for them."""
    out = [Variant("", 0.0, 0, 0)]
    pct = f"{100 * config.prune:g}"
    if config.prune:
        out.append(Variant(f"-prune{pct}", config.prune, config.finetune_epochs, 0))
    if config.qat_epochs:
        out.append(Variant("-qat", 0.0, 0, config.qat_epochs))
    if config.prune and config.qat_epochs:
        out.append(Variant(f"-prune{pct}-qat", config.prune, config.finetune_epochs, config.qat_epochs))
    return out


def split_methods(methods: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(neural methods, codecs) of ``methods``; ConfigError for a name that is neither."""
    from nervkit.models import list_methods

    neural, codecs = [], []
    for name in methods:
        if name in CODECS:
            codecs.append(name)
        elif name in list_methods():
            neural.append(name)
        else:
            raise ConfigError(f"unknown method {name!r}; choose from {', '.join([*list_methods(), *CODECS])}")
    return neural, codecs


def _device(config: RDConfig) -> torch.device:
    from nervkit.train import resolve_device

    return resolve_device(config.device)


# -- neural methods ----------------------------------------------------------------------------------
def _ensure_fit(method: str, params: str, run_dir: Path, video: str, *, size: tuple[int, int] | None,
                frames: str | None, config: RDConfig, progress: bool, log: Callable[[str], None]) -> dict:
    """Fit ``method`` at ``params`` into ``run_dir`` — or reuse a finished fit / resume a broken one."""
    from nervkit.api import fit
    from nervkit.runs import RunDir

    run = RunDir.at(run_dir)
    if run.has_run():
        meta = run.read_meta()
        if meta.get("method") != method or meta["train"]["epochs"] != config.epochs \
                or meta["train"]["seed"] != config.seed:
            raise ConfigError(f"{run_dir} holds a fit with other settings (method, epochs or seed); "
                              "remove it or choose another -o")
        if meta.get("status") == "complete":
            log(f"{run_dir.name}: reusing the finished fit ({meta.get('psnr', float('nan')):.2f} dB)")
            return meta
        log(f"{run_dir.name}: resuming the interrupted fit")
        fit(out=run_dir, resume=True, progress=progress, write_video=False, device=config.device)
    else:
        log(f"{run_dir.name}: fitting {method} with {params} parameters, {config.epochs} epochs")
        fit(video, out=run_dir, model=method, params=params, size=size, frames=frames, progress=progress,
            write_video=False, epochs=config.epochs, seed=config.seed, device=config.device)
    return run.read_meta()


def decode_file(path: Path, device: str) -> tuple[np.ndarray, float]:
    """Decode a ``.nerv`` file to ``(N, H, W, 3)`` uint8 RGB; returns the frames and the seconds taken
    (reading + entropy decoding + rebuilding the model + decoding every frame)."""
    from nervkit.compress.model_codec import read_nerv
    from nervkit.train import resolve_device

    dev = resolve_device(device)
    start = time.perf_counter()
    model = read_nerv(path).build_model().to(dev)
    out = []
    with torch.no_grad():
        for first in range(0, model.geometry.num_frames, 8):
            idx = list(range(first, min(first + 8, model.geometry.num_frames)))
            out.append(to_uint8(model.decode_frames(idx)).permute(0, 2, 3, 1).cpu())
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return torch.cat(out).numpy(), seconds


def neural_point(run_dir: Path, nerv_path: Path, variant: Variant, reference: np.ndarray, *, fps: float,
                 run_meta: dict, config: RDConfig, progress: bool) -> dict[str, Any]:
    """Compress a fitted run with ``variant``, decode the file, and measure one RD point."""
    from nervkit.compression import compress

    start = time.perf_counter()
    report = compress(run_dir, nerv_path, bits=config.bits, embed_bits=config.embed_bits, prune=variant.prune,
                      finetune_epochs=variant.finetune_epochs, qat_epochs=variant.qat_epochs, evaluate=False,
                      progress=progress, device=config.device)
    compress_seconds = time.perf_counter() - start
    decoded, decode_seconds = decode_file(nerv_path, config.device)
    quality = measure_quality(reference, decoded, vmaf=config.vmaf, fps=fps, device=_device(config))
    train_seconds = float(run_meta.get("train_seconds", 0.0))
    return {
        "params": int(run_meta["parameters"]["official"]),
        "bytes": int(report["bytes"]),
        "bpp": float(report["bpp"]),
        "psnr-rgb": quality.psnr,
        "ssim-rgb": quality.ssim,
        "ms-ssim-rgb": quality.ms_ssim,
        "vmaf": quality.vmaf,
        "encoding_time": train_seconds + compress_seconds,
        "training_time": train_seconds,
        "compression_time": compress_seconds,
        "decoding_time": decode_seconds,
        "sparsity": float(report["sparsity"]),
    }


def _cached_point(path: Path, settings: dict) -> dict | None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("point") if data.get("settings") == settings else None


def neural_series(method: str, video: str, reference: np.ndarray, out: Path, *, fps: float,
                  size: tuple[int, int] | None, frames: str | None, config: RDConfig, meta: dict,
                  progress: bool, log: Callable[[str], None]) -> list[RDResults]:
    """The RD series of every variant of ``method`` over the model sizes."""
    ways = variants(config)
    points: dict[str, list[dict]] = {v.suffix: [] for v in ways}
    fits: dict[str, dict] = {}
    for params in config.params:
        run_dir = out / "runs" / f"{method}-{params}"
        run_meta = _ensure_fit(method, params, run_dir, video, size=size, frames=frames, config=config,
                               progress=progress, log=log)
        fits[params] = {"train_device": run_meta["train"].get("device"), "train_seconds": run_meta.get("train_seconds"),
                        "psnr_float_model": run_meta.get("psnr"), "parameters": run_meta["parameters"]}
        for variant in ways:
            name = f"{method}-{params}{variant.suffix}"
            nerv_path = out / "files" / f"{name}.nerv"
            settings = {"bits": config.bits, "embed_bits": config.embed_bits, "prune": variant.prune,
                        "finetune_epochs": variant.finetune_epochs, "qat_epochs": variant.qat_epochs,
                        "vmaf": config.vmaf, "fit_created": run_meta.get("created"),
                        "encoder_revision": ENCODER_REVISION}
            cache = nerv_path.with_suffix(".json")
            point = _cached_point(cache, settings) if nerv_path.is_file() else None
            if point is None:
                nerv_path.parent.mkdir(parents=True, exist_ok=True)
                point = neural_point(run_dir, nerv_path, variant, reference, fps=fps, run_meta=run_meta,
                                     config=config, progress=progress)
                write_json_atomic(cache, {"settings": settings, "point": point})
            log(f"{name}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB, MS-SSIM {point['ms-ssim-rgb']:.4f}")
            points[variant.suffix].append({"quality": float(point["params"]), **point})
    from nervkit.models import get_method

    spec = get_method(method)
    series = []
    for variant in ways:
        parts = [f"{config.bits}-bit weights"]
        if variant.prune:
            parts.append(f"{100 * variant.prune:g} % pruned + {variant.finetune_epochs} fine-tuning epochs")
        if variant.qat_epochs:
            parts.append(f"{variant.qat_epochs} QAT epochs")
        description = f"{spec.description}; {', '.join(parts)}; ANS-coded .nerv file"
        info = {**meta, "method": method, "epochs": config.epochs, "bits": config.bits,
                "embed_bits": config.embed_bits, "prune": variant.prune, "qat_epochs": variant.qat_epochs,
                "quality_is": "official parameter count of the model", "fits": fits}
        series.append(RDResults.from_points(variant.series(method), points[variant.suffix],
                                            description=description, meta=info))
    return series


# -- codecs ------------------------------------------------------------------------------------------
def codec_series(codec: str, reference: np.ndarray, out: Path, *, fps: float, config: RDConfig, meta: dict,
                 log: Callable[[str], None]) -> RDResults:
    """The RD series of ``codec`` over its ladder (reused from ``results/`` when already measured)."""
    spec = codec_spec(codec)
    path = out / "results" / f"{codec}.json"
    key = {"frames": meta["frames"], "height": meta["height"], "width": meta["width"], "video": meta["video"],
           "ladder": list(spec.ladder), "encoder": spec.encoder, "vmaf": config.vmaf}
    if path.is_file():
        try:
            old = read_results(path)
            if old.meta.get("key") == key:
                log(f"{codec}: reusing {path}")
                return old
        except InputError:
            pass
    log(f"{codec}: encoding {len(spec.ladder)} points with {spec.encoder}")
    rd = codec_rd_curve(reference, codec, fps=fps, vmaf=config.vmaf, meta={**meta, "key": key},
                        device=_device(config))
    write_results(path, rd)
    return rd


def resolve_anchor(anchor: str, names: list[str]) -> str:
    """The series BD-rates are measured against (``auto``: x265 if compared, else the first)."""
    if anchor == "auto":
        return "x265" if "x265" in names else names[0]
    if anchor not in names:
        raise ConfigError(f"--anchor {anchor} is not among the compared series ({', '.join(names)})")
    return anchor


# -- summary -----------------------------------------------------------------------------------------
def bd_table(series: dict[str, RDResults], anchor: str) -> dict[str, dict[str, Any]]:
    """BD-rate (PSNR, MS-SSIM) and BD-PSNR of every series against ``anchor`` (None + note where undefined)."""
    base = series[anchor].results
    table: dict[str, dict[str, Any]] = {}
    for name, rd in series.items():
        if name == anchor:
            continue
        row: dict[str, Any] = {}
        notes = []
        for key, metric in (("bd_rate_psnr", "psnr-rgb"), ("bd_rate_ms_ssim", "ms-ssim-rgb"), ("bd_psnr", "psnr-rgb")):
            value = _bd(key, base, rd.results, metric)
            if isinstance(value, str):
                if value not in notes:
                    notes.append(value)
                value = None
            row[key] = value
        row["note"] = "; ".join(notes) or None
        table[name] = row
    return table


def _bd(key: str, base: dict, test: dict, metric: str) -> float | str:
    if metric not in base or metric not in test:
        return f"no {metric} values"
    pairs = [(r, q) for r, q in zip(base["bpp"], base[metric]) if q is not None]
    tpairs = [(r, q) for r, q in zip(test["bpp"], test[metric]) if q is not None]
    if len(pairs) < 2 or len(tpairs) < 2:
        return "needs at least 2 points per curve"
    fn = bd_quality if key == "bd_psnr" else bd_rate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BDRateWarning)
        try:
            value = fn(*zip(*pairs), *zip(*tpairs))
        except ConfigError as exc:
            return str(exc)
    if not math.isfinite(value):
        return str(caught[-1].message) if caught else "undefined"
    return float(value)


def coding_efficiency(nerv_path: Path) -> dict[str, Any]:
    """Bits per quantized weight of the file's dense tensors, each tensor with its own statistics:
    the empirical entropy (order 0, the ideal), nervkit's ANS words alone and with the histogram it
    stores, a Huffman code of the same symbols alone and with a canonical code table
    (:func:`~nervkit.compress.entropy.huffman_table_bits`), and the whole sections (with the
    quantization ranges and shapes)."""
    from nervkit.compress.container import read_container
    from nervkit.compress.entropy import (empirical_entropy_bits, encode_symbols, histogram_header_bytes,
                                          huffman_code_bits, huffman_table_bits)
    from nervkit.compress.tensor_codec import decode_quantized

    totals = dict.fromkeys(("values", "entropy", "ans", "ans_histogram", "huffman", "huffman_table", "section"), 0.0)
    for s in read_container(nerv_path):
        if s.kind != "tensor":
            continue
        qt = decode_quantized(s.payload)
        symbols = qt.q.reshape(-1)
        totals["values"] += symbols.size
        totals["entropy"] += empirical_entropy_bits(symbols)
        header = 8 * histogram_header_bytes(symbols)
        totals["ans"] += 8 * len(encode_symbols(symbols, qt.levels)) - header
        totals["ans_histogram"] += header
        totals["huffman"] += huffman_code_bits(symbols)
        totals["huffman_table"] += huffman_table_bits(symbols)
        totals["section"] += 8 * len(s.payload)
    n = totals["values"]
    if not n:
        return {"values": 0}
    return {
        "values": int(n),
        "tensors_note": "dense tensor sections only (pruned tensors are coded as mask + non-zeros)",
        "entropy_bits_per_value": totals["entropy"] / n,
        "ans_bits_per_value": totals["ans"] / n,
        "ans_with_histogram_bits_per_value": (totals["ans"] + totals["ans_histogram"]) / n,
        "huffman_bits_per_value": totals["huffman"] / n,
        "huffman_with_table_bits_per_value": (totals["huffman"] + totals["huffman_table"]) / n,
        "section_bits_per_value": totals["section"] / n,
        "ans_over_entropy": totals["ans"] / totals["entropy"] if totals["entropy"] else None,
    }


def markdown_report(summary: dict[str, Any]) -> str:
    """The RD table, the BD table, the byte breakdown and the coding efficiency as Markdown."""
    meta = summary["meta"]
    lines = [f"# Rate–distortion: {Path(meta['video']).name}, {meta['frames']} frames {meta['height']}x{meta['width']}",
             "", f"Machine: {meta['machine']['cpu']} ({meta['machine']['cores']} cores)"
             + (f", GPU {meta['machine']['gpu']}" if meta["machine"].get("gpu") else "")
             + f"; torch {meta['machine']['torch']}.", "",
             "| series | setting | bpp | PSNR (dB) | MS-SSIM | VMAF | encode (s) | decode (s) |",
             "|---|---|---|---|---|---|---|---|"]

    def num(v: Any, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    for name, data in summary["series"].items():
        r = data["results"]
        neural = "params" in r
        for i in range(len(r["bpp"])):
            setting = f"{r['params'][i] / 1e6:.3f} M params" if neural else \
                f"{data['meta'].get('quality_option', 'q')} {num(r.get('quality', [None] * (i + 1))[i], 'g')}"
            lines.append(f"| {name} | {setting} | {r['bpp'][i]:.4f} | {r['psnr-rgb'][i]:.2f} | "
                         f"{num(r.get('ms-ssim-rgb', [None] * (i + 1))[i], '.4f')} | "
                         f"{num(r.get('vmaf', [None] * (i + 1))[i], '.1f')} | "
                         f"{num(r.get('encoding_time', [None] * (i + 1))[i], '.1f')} | "
                         f"{num(r.get('decoding_time', [None] * (i + 1))[i], '.2f')} |")
    lines += ["", f"BD against {summary['anchor']} (negative BD-rate: fewer bits for the same quality):", "",
              "| series | BD-rate PSNR (%) | BD-rate MS-SSIM (%) | BD-PSNR (dB) | note |", "|---|---|---|---|---|"]
    for name, row in summary["bd"].items():
        lines.append(f"| {name} | {num(row['bd_rate_psnr'], '+.1f')} | {num(row['bd_rate_ms_ssim'], '+.1f')} | "
                     f"{num(row['bd_psnr'], '+.2f')} | {row['note'] or ''} |")
    breakdown = summary.get("breakdown")
    if breakdown:
        lines += ["", f"Byte breakdown of {Path(breakdown['file']).name} ({breakdown['bytes']:,} bytes):", "",
                  "| part | values | bytes | bits/value |", "|---|---|---|---|"]
        lines.append(f"| header + container | – | {breakdown['header_bytes'] + breakdown['container_overhead_bytes']:,} | – |")
        for group, g in breakdown["groups"].items():
            lines.append(f"| {group} | {g['values']:,} | {g['bytes']:,} | {g['bits_per_value']:.3f} |")
    eff = summary.get("coding_efficiency")
    if eff and eff.get("values"):
        lines += ["", f"Entropy coding of its {eff['values']:,} quantized weights, bits per weight "
                  "(each tensor coded with its own statistics):", "",
                  "| empirical entropy | ANS | Huffman | ANS + histogram | Huffman + code table | whole sections |",
                  "|---|---|---|---|---|---|",
                  f"| {eff['entropy_bits_per_value']:.4f} | {eff['ans_bits_per_value']:.4f} "
                  f"({100 * (eff['ans_over_entropy'] - 1):+.2f} %) | {eff['huffman_bits_per_value']:.4f} | "
                  f"{eff['ans_with_histogram_bits_per_value']:.4f} | {eff['huffman_with_table_bits_per_value']:.4f} | "
                  f"{eff['section_bits_per_value']:.4f} |"]
    return "\n".join(lines) + "\n"


#: marker file of a benchmark folder (a rerun into it reuses its finished fits, files and curves)
RD_MARKER = ".nervkit-rd"


def run_rd_benchmark(video: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: RDConfig, *,
                     size: tuple[int, int] | None = None, frames: str | None = None, progress: bool = True,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole comparison into ``out_dir`` and return the summary (also written as JSON)."""
    from nervkit.compression import inspect
    from nervkit.data import load_frames
    from nervkit.io import FrameRange

    config.validate()
    neural, codecs = split_methods(config.methods)
    if neural:
        from nervkit.models.sizing import parse_param_count

        for p in config.params:
            parse_param_count(p)
    names = [*codecs, *(v.series(m) for m in neural for v in variants(config))]
    anchor = resolve_anchor(config.anchor, names)
    for codec in codecs:
        codec_spec(codec)  # a missing encoder fails before any work
    out = Path(out_dir)
    # a new or empty folder, or one bench rd wrote (its finished parts are reused); never the input's folder
    check_output(out, inputs=[video])
    check_folder_target(out, marker=RD_MARKER, what="benchmark folder", also_own=("summary.json", "results"))
    store = load_frames(video, frames=FrameRange.parse(frames) if frames else None, size=size)
    reference = store.frames.permute(0, 2, 3, 1).contiguous().numpy()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / RD_MARKER).write_text('{"written_by": "nervkit", "kind": "bench-rd"}\n')
    except OSError as exc:
        raise output_error(exc, out) from None
    meta = {"video": str(video), "frames": len(store), "height": store.height, "width": store.width,
            "fps": store.fps, "colour": "RGB from BT.601 limited-range YUV; codecs encode yuv420p",
            "machine": describe_machine(_device(config))}
    series: dict[str, RDResults] = {}
    for codec in codecs:
        series[codec] = codec_series(codec, reference, out, fps=store.fps, config=config, meta=meta, log=log)
    for method in neural:
        for rd in neural_series(method, str(video), reference, out, fps=store.fps, size=size, frames=frames,
                                config=config, meta=meta, progress=progress, log=log):
            write_results(out / "results" / f"{rd.name}.json", rd)
            series[rd.name] = rd
    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "meta": meta,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.__dict__.items()},
        "anchor": anchor,
        "series": {name: rd.to_dict() for name, rd in series.items()},
        "bd": bd_table(series, anchor),
    }
    if neural:
        largest = out / "files" / f"{neural[0]}-{config.params[-1]}.nerv"
        info = inspect(largest)
        header = next(s for s in info["sections"] if s["kind"] == "header")
        summary["breakdown"] = {"file": str(largest), "bytes": info["bytes"], "header_bytes": header["bytes"],
                                "container_overhead_bytes": info["container_overhead_bytes"],
                                "groups": info["groups"], "sections": info["sections"]}
        summary["coding_efficiency"] = coding_efficiency(largest)
    write_json_atomic(out / "summary.json", summary)
    from nervkit.io.atomic import atomic_path

    with atomic_path(out / "rd.md") as tmp:
        Path(tmp).write_text(markdown_report(summary))
    plot_rd(series, out / "rd.png", log_x=True,
            title=f"{Path(str(video)).name}: {len(store)} frames {store.height}x{store.width}")
    return summary
