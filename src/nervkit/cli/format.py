"""The readable text of the CLI's results (the ``--json`` forms print the same data as JSON).

Each function turns a result dict of the API into lines; the handlers in :mod:`.commands` only choose
between these and JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def duration(seconds: float) -> str:
    """``3725`` → ``1h02m05s``."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def db(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} dB"


def values(v: Any) -> str:
    """A config value: lists comma-separated."""
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def fit_lines(summary: dict[str, Any], tasks: dict[str, Any]) -> list[str]:
    """The result of ``nervkit fit`` (its ``--json`` summary) and the per-task lines."""
    lines = [f"run folder: {summary['run']}"]
    if summary.get("psnr") is not None:
        h, w = summary["size"]
        lines.append(f"{summary['method']}: {summary['parameters']:,} parameters, {summary['frames']} frames "
                     f"{h}x{w}, {summary['epochs']} epochs in {duration(summary['train_seconds'] or 0)}")
        lines.append(f"PSNR {summary['psnr']:.2f} dB  MS-SSIM {summary['ms_ssim']:.4f}  SSIM {summary['ssim']:.4f}"
                     + ("  (against the clean video)" if {"interpolation", "inpainting", "denoising"} & set(tasks)
                        else ""))
    return lines + task_lines(tasks)


def task_lines(tasks: dict[str, Any]) -> list[str]:
    """One line per task section of a run's metrics (interpolation, inpainting, denoising)."""
    lines = []
    if "interpolation" in tasks:
        t = tasks["interpolation"]
        train, held = t["train"] or {}, t["heldout"] or {}
        lines.append(f"interpolation ({t['train_frames']}, held-out frames via {t['heldout_protocol']}): "
                     f"train frames PSNR {db(train.get('psnr'))}, held-out frames PSNR {db(held.get('psnr'))} "
                     f"SSIM {held.get('ssim', 0):.4f}")
    if "inpainting" in tasks:
        t = tasks["inpainting"]
        lines.append(f"inpainting ({t['mask']}, {100 * t['hole_fraction']:.1f} % holes): inside the mask PSNR "
                     f"{db(t['inside_mask']['psnr'])} SSIM {t['inside_mask']['ssim'] or 0:.4f}")
    if "videos" in tasks:
        t = tasks["videos"]
        mean = t["mean_over_videos"]
        ms = f"  MS-SSIM {mean['ms_ssim']:.4f}" if mean.get("ms_ssim") is not None else ""
        lines.append(f"{t['count']} videos: mean over the videos PSNR {db(mean['psnr'])}{ms}; per video in "
                     "metrics.json")
    if "denoising" in tasks:
        t = tasks["denoising"]
        lines.append(f"denoising ({t['noise']}, seed {t['noise_seed']}): decoded vs clean "
                     f"{db(t['decoded_vs_clean']['psnr'])}, noisy input vs clean "
                     f"{db(t['noisy_input_vs_clean']['psnr'])}")
    return lines


def inpaint_lines(result: dict[str, Any]) -> list[str]:
    whole, inside = result["whole_frame"], result["inside_mask"]
    lines = [f"inpainting {result['run']} ({result['method']}, mask {result['mask']}, "
             f"{100 * result['hole_fraction']:.1f} % holes, protocol {result['protocol']})"]
    if "note" in result:
        lines.append(f"note: {result['note']}")
    lines.append(f"whole frame: PSNR {db(whole['psnr'])}  SSIM {whole['ssim']:.4f}")
    lines.append(f"inside mask: PSNR {db(inside['psnr'])}  SSIM {inside['ssim'] or 0:.4f}")
    if "file" in result:
        lines.append(f"wrote {result['file']}")
    return lines


def interpolate_lines(result: dict[str, Any]) -> list[str]:
    return [f"wrote {result['file']}: {result['frames']} frames at {result['fps']:g} fps "
            f"({result['source_frames']} decoded frames x{result['factor']}, {result['method']})"]


def info_lines(run: str | Path, data: dict[str, Any]) -> list[str]:
    """``nervkit info``: settings, sizes, the training history and the final quality of a run."""
    geo, params = data["geometry"], data["parameters"]
    lines = [
        f"run:        {Path(run)}  ({data.get('status')})",
        f"method:     {data['method']}" + (f"  preset {data['preset']}" if data.get("preset") else "")
        + (f"  budget {data['params_budget']:,}" if data.get("params_budget") else ""),
        f"parameters: {params['official']:,} (paper accounting), {params['total']:,} stored in total",
        "            " + ", ".join(f"{k} {v:,}" for k, v in params["parts"].items()),
        f"video:      {geo['num_frames']} frames {geo['height']}x{geo['width']} at {data.get('fps', 0):g} fps"
        f" (model output {data['output_size'][0]}x{data['output_size'][1]}), source {data['data']['source']}",
        "config:     " + ", ".join(f"{k}={values(v)}" for k, v in data["config"].items()),
    ]
    if data.get("videos"):
        names = [v["name"] for v in data["videos"]]
        lines.insert(5, f"videos:     {len(names)} ({', '.join(names[:6])}{', …' if len(names) > 6 else ''})")
    hist = data.get("history") or {}
    epochs = hist.get("epochs", [])
    if epochs:
        last = epochs[-1]
        lines.append(f"training:   {len(epochs)}/{data['train']['epochs']} epochs, "
                     f"{duration(hist.get('train_seconds', 0))}, last loss {last['loss']:.4f}, "
                     f"train PSNR {last['psnr']:.2f} dB")
    for ev in hist.get("evals", []):
        lines.append(f"  epoch {ev['epoch']:>4}: PSNR {ev['psnr']:.2f} dB  MS-SSIM {ev['ms_ssim']:.4f}")
    if data.get("psnr") is not None:
        lines.append(f"final:      PSNR {data['psnr']:.2f} dB  MS-SSIM {data['ms_ssim']:.4f}")
    prov = data.get("provenance") or {}
    if prov.get("command"):
        lines.append(f"command:    {prov['command']}  (nervkit {prov.get('nervkit')}, torch {prov.get('torch')}, "
                     f"{prov.get('device')}, {prov.get('threads')} threads)")
    return lines


def model_lines(specs: list[Any]) -> list[str]:
    lines = []
    for spec in specs:
        lines.append(f"{spec.name}: {spec.description}")
        if spec.presets:
            default = f" (default {spec.default_preset})" if spec.default_preset else ""
            lines.append("  presets: " + ", ".join(spec.presets) + default)
        if spec.paper:
            lines.append(f"  paper:   {spec.paper}")
    return lines


def compress_lines(report: dict[str, Any]) -> list[str]:
    pruned = f", {100 * report['sparsity']:.0f} % pruned" if report["prune"] else ""
    symmetric = "symmetric " if report.get("quantizer") == "symmetric" else ""
    weights = "learned quantizers" if report.get("rate") else f"{report['bits']}-bit {symmetric}weights"
    lines = [f"wrote {report['file']}: {report['bytes']:,} bytes, {report['bpp']:.4f} bpp "
             f"({report['frames']} frames {report['size'][0]}x{report['size'][1]}, {weights}{pruned})"]
    if report.get("method_defaults"):
        lines.append("the method's own compression recipe: "
                     + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in report["method_defaults"].items()))
    rate = report.get("rate")
    if rate:
        target = f", target {rate['target_bpp']:g} bpp" if rate.get("target_bpp") else ""
        lines.append(f"rate-trained ({rate['entropy_model']} entropy models, {rate['step_axes']} steps, λ {rate['lambda']:.4g}"
                     f"{target}): estimated {rate['estimated_bpp']:.4f} bpp = {rate['estimated_bytes']:,.0f} bytes, "
                     f"file {rate['file_bytes']:,} bytes ({100 * rate['estimate_error']:+.2f} %)")
    if "psnr" in report:
        lines.append(f"decoded: PSNR {report['psnr']:.2f} dB  MS-SSIM {report['ms_ssim']:.4f}")
    return lines


def inspect_lines(data: dict[str, Any]) -> list[str]:
    """``nervkit inspect``: the file's format, method, video and a byte breakdown per section."""
    q = data["quantization"] or {}
    lines = [
        f"file:    {data['file']}  ({data['bytes']:,} bytes, {data['bpp']:.4f} bpp)",
        f"format:  nervkit .nerv version {data['format_version']}",
        f"method:  {data['method']}  " + (f"(rate-trained: learned steps, {q.get('entropy_model')} entropy models)"
                                           if q.get("rate_trained") else
                                           f"({q.get('bits')}-bit weights, {q.get('embed_bits')}-bit embeddings)"),
        f"video:   {data['frames']} frames {data['size'][0]}x{data['size'][1]} at {data['fps']} fps",
        "config:  " + ", ".join(f"{k}={values(v)}" for k, v in data["config"].items()),
        f"{'section':<28}{'values':>12}{'bytes':>12}{'bits/value':>12}",
    ]
    for s in data["sections"]:
        bpv = f"{s['bits_per_value']:.3f}" if s["values"] else "-"
        lines.append(f"{s['name']:<28}{s['values']:>12,}{s['bytes']:>12,}{bpv:>12}")
    lines.append(f"{'container overhead':<28}{'':>12}{data['container_overhead_bytes']:>12,}")
    if data.get("entropy_model_bytes"):
        lines.append(f"{'group':<28}{'values':>12}{'bytes':>12}{'bits/value':>12}{'model bytes':>13}")
        for name, g in data["groups"].items():
            lines.append(f"{name:<28}{g['values']:>12,}{g['bytes']:>12,}{g['bits_per_value']:>12.3f}"
                         f"{g['entropy_model_bytes']:>13,}")
        lines.append(f"entropy models: {data['entropy_model_bytes']:,} bytes of learned steps, scales and means "
                     "(coded), beside the codes")
    parts = data.get("parts")
    if parts:
        shown = [f"header {parts['header']:,}", f"model {parts['model']:,}"]
        if data.get("key_frames"):
            shown.append(f"key-frames {parts['key_frames']:,}")
        shown.append(f"container {parts['container_overhead']:,}")
        lines.append(f"bytes:   {' + '.join(shown)} = {data['bytes']:,}  (model {data['model_bpp']:.4f} bpp)")
    lines.extend(key_frame_lines(data.get("key_frames")))
    return lines


def key_frame_lines(keys: dict[str, Any] | None) -> list[str]:
    """``nervkit inspect``'s key-frame lines (D-NeRV): codec, count, bytes in all and per key-frame."""
    if not keys:
        return []
    quality = f" {keys['quality_name'] or 'quality'} {keys['quality']}" if keys.get("quality") is not None else ""
    lines = [f"key-frames: {keys['count']} x {keys['codec']}{quality}: {keys['bytes']:,} bytes of bitstreams"]
    per = keys["bytes_per_key_frame"]
    if per:
        lines[0] += (f", {keys['mean_bytes_per_key_frame']:,.0f} per key-frame ({min(per):,} to {max(per):,}), "
                     f"{keys['bits_per_key_frame_pixel']:.3f} bits per key-frame pixel")
        listed = ", ".join(f"{n:,}" for n in per[:16]) + (f", ... ({len(per) - 16} more)" if len(per) > 16 else "")
        lines.append(f"  bytes per key-frame: {listed}")
    lines.append(f"  stored in {keys['stored_bytes']:,} bytes ({keys['storage_overhead_bytes']:,} for the lengths and "
                 f"section headers), {keys['video_bpp']:.4f} bpp of the video")
    return lines


def bench_rd_lines(out: Path, summary: dict[str, Any]) -> list[str]:
    lines = [f"wrote {out / 'summary.json'}, {out / 'rd.md'}, {out / 'rd.png'} ({len(summary['series'])} series)"]
    for name, row in summary["bd"].items():
        value = row["bd_rate_psnr"]
        lines.append(f"  BD-rate (PSNR) of {name} vs {summary['anchor']}: "
                     + (f"{value:+.1f} %" if value is not None else "n/a (see rd.md)"))
    return lines


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The result of ``nervkit report``: what was written and the headline numbers."""
    written = summary["html"] + (f" and {summary['png']}" if summary.get("png") else "")
    lines = [f"wrote {written} ({summary['title']}; {summary['html_bytes'] / 1e3:,.0f} kB)"]
    psnr = (summary.get("per_frame") or {}).get("psnr")
    if psnr:
        lines.append(f"PSNR per frame: mean {psnr['mean']:.2f} dB, lowest {psnr['min']:.2f} dB over {psnr['frames']} "
                     "frames")
    lines += [f"note: {note}" for note in summary.get("notes", [])]
    return lines
