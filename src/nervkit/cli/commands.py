"""Handlers of the ``nervkit`` subcommands: parse options, call the API, print results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import api, compression
from ..compress.config import CompressConfig
from ..errors import ConfigError
from ..fit_file import FitSettings, load_fit_settings
from ..io.size import parse_size
from ..models import get_method, list_methods
from ..models.config import config_from_dict, config_to_dict
from ..tasks import TaskOptions, summarize
from ..train.config import TrainConfig
from ..train.distributed import DistContext
from .dataclass_args import collect


def version() -> str:
    return api._version()


def _out(text: str) -> None:
    print(text, flush=True)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def cmd_fit(args: argparse.Namespace) -> int:
    try:
        return _fit(args)
    except KeyboardInterrupt:
        if (Path(args.out) / "checkpoint.pt").is_file():
            print(f"nervkit: interrupted; checkpoint saved — continue with: nervkit fit --resume -o {args.out}",
                  file=sys.stderr)
        else:
            print("nervkit: interrupted", file=sys.stderr)
        return 130


def _fit(args: argparse.Namespace) -> int:
    if args.resume and args.config:
        raise ConfigError("--resume continues a run with its stored settings; drop -c")
    settings = load_fit_settings(args.config) if args.config else FitSettings()
    train_options = {**settings.train, **collect(args, args.train_fields)}
    # convert/check now (one-line errors for nonsense values) — the API re-checks
    config_from_dict(TrainConfig, train_options)
    model_options = {**settings.model_options, **collect(args, args.model_fields)}
    task_options = {**settings.tasks, **collect(args, args.task_fields)}
    if args.resume:
        if args.video or args.sample:
            raise ConfigError("--resume continues the run with its stored video; drop "
                              + ("--sample" if args.sample else f"the VIDEO argument {args.video}"))
        if model_options or args.preset or args.params or args.size or args.frames or task_options:
            raise ConfigError("--resume continues a run with its stored settings; drop the model/data options")
        fitted = api.fit(out=args.out, resume=True, model=args.model, progress=not args.quiet,
                         write_video=not args.no_video, **{k: _typed_train(k, v) for k, v in train_options.items()})
    else:
        if args.model and settings.model and args.model != settings.model:
            raise ConfigError(f"--model {args.model} differs from the method of -c {args.config} ({settings.model})")
        if settings.from_run and (args.preset or args.params):
            raise ConfigError(f"-c {args.config} is a run.json: its architecture is resolved; drop --preset/--params "
                              "(or change architecture options)")
        if args.sample and args.video:
            raise ConfigError("give either a VIDEO or --sample, not both")
        video = api.sample_video() if args.sample else (args.video or settings.video)
        if video is None:
            raise ConfigError("no input: give a VIDEO (or --sample for the bundled clip)")
        model = args.model or settings.model or "nerv"
        get_method(model)
        fitted = api.fit(
            video,
            out=args.out,
            model=model,
            preset=args.preset or settings.preset,
            params=args.params or settings.params,
            size=args.size or _size_text(settings.size),
            frames=args.frames or settings.frames,
            raw_size=args.raw_size or _size_text(settings.raw_size),
            raw_fps=args.fps if args.fps is not None else (settings.fps if settings.fps is not None else 25.0),
            model_options=model_options,
            **config_to_dict(config_from_dict(TaskOptions, task_options)),
            progress=not args.quiet,
            write_video=not args.no_video,
            **{k: _typed_train(k, v) for k, v in train_options.items()},
        )
    if not DistContext.from_env().is_main:
        return 0  # under torchrun only rank 0 reports
    report = fitted.metrics
    meta = fitted.meta
    geo = fitted.model.geometry
    summary = {
        "run": str(fitted.run_dir.path),
        "method": meta["method"],
        "parameters": meta["parameters"]["official"],
        "frames": geo.num_frames,
        "size": [geo.height, geo.width],
        "epochs": len(fitted.history),
        "train_seconds": meta.get("train_seconds"),
        "psnr": report.psnr if report else None,
        "ms_ssim": report.ms_ssim if report else None,
        **summarize(fitted.tasks),
    }
    if args.json:
        _out(json.dumps(summary, indent=2))
    else:
        _out(f"run folder: {summary['run']}")
        if report is not None:
            _out(
                f"{meta['method']}: {summary['parameters']:,} parameters, {geo.num_frames} frames "
                f"{geo.height}x{geo.width}, {summary['epochs']} epochs in {_duration(summary['train_seconds'] or 0)}"
            )
            _out(f"PSNR {report.psnr:.2f} dB  MS-SSIM {report.ms_ssim:.4f}  SSIM {report.ssim:.4f}"
                 + ("  (against the clean video)" if fitted.tasks else ""))
        for line in _task_lines(fitted.tasks):
            _out(line)
    return 0


def _size_text(size: Any) -> str | None:
    """A size from a settings file ("HxW" or [H, W]) as the CLI's text."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return f"{size[0]}x{size[1]}"
    return size


def _db(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} dB"


def _task_lines(tasks: dict[str, Any]) -> list[str]:
    lines = []
    if "interpolation" in tasks:
        t = tasks["interpolation"]
        train, held = t["train"] or {}, t["heldout"] or {}
        lines.append(f"interpolation ({t['train_frames']}, held-out frames via {t['heldout_protocol']}): "
                     f"train frames PSNR {_db(train.get('psnr'))}, held-out frames PSNR {_db(held.get('psnr'))} "
                     f"SSIM {held.get('ssim', 0):.4f}")
    if "inpainting" in tasks:
        t = tasks["inpainting"]
        lines.append(f"inpainting ({t['mask']}, {100 * t['hole_fraction']:.1f} % holes): inside the mask PSNR "
                     f"{_db(t['inside_mask']['psnr'])} SSIM {t['inside_mask']['ssim'] or 0:.4f}")
    if "denoising" in tasks:
        t = tasks["denoising"]
        lines.append(f"denoising ({t['noise']}, seed {t['noise_seed']}): decoded vs clean "
                     f"{_db(t['decoded_vs_clean']['psnr'])}, noisy input vs clean "
                     f"{_db(t['noisy_input_vs_clean']['psnr'])}")
    return lines


def _typed_train(name: str, value: Any) -> Any:
    return getattr(config_from_dict(TrainConfig, {name: value}), name)


def cmd_decode(args: argparse.Namespace) -> int:
    out = api.decode(args.run, args.out, lossless=args.lossless, frames=args.frames, crf=args.crf)
    _out(f"wrote {out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    result = api.interpolate(args.run, args.factor, args.out, lossless=args.lossless, crf=args.crf)
    if args.json:
        _out(json.dumps(result, indent=2))
    else:
        _out(f"wrote {result['file']}: {result['frames']} frames at {result['fps']:g} fps "
             f"({result['source_frames']} decoded frames x{result['factor']}, {result['method']})")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    result = api.inpaint(args.run, args.mask, args.out, lossless=args.lossless, crf=args.crf)
    if args.json:
        _out(json.dumps(summarize(result), indent=2))
        return 0
    whole, inside = result["whole_frame"], result["inside_mask"]
    _out(f"inpainting {result['run']} ({result['method']}, mask {result['mask']}, "
         f"{100 * result['hole_fraction']:.1f} % holes, protocol {result['protocol']})")
    if "note" in result:
        _out(f"note: {result['note']}")
    _out(f"whole frame: PSNR {_db(whole['psnr'])}  SSIM {whole['ssim']:.4f}")
    _out(f"inside mask: PSNR {_db(inside['psnr'])}  SSIM {inside['ssim'] or 0:.4f}")
    if "file" in result:
        _out(f"wrote {result['file']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..io.outputs import check_file_target, check_output

    inputs = [args.reference, args.distorted]
    if args.out:  # before the (long) comparison: never one of the inputs, never a folder
        check_output(args.out, inputs=inputs)
        check_file_target(args.out)
    report = api.evaluate(args.reference, args.distorted, frames=args.frames, size=args.size,
                          raw_size=args.raw_size)
    data = {"reference": str(args.reference), "distorted": str(args.distorted), **report.to_dict()}
    if args.out:
        api.write_report(args.out, data, inputs=inputs)
    if args.json:
        _out(json.dumps(data, indent=2))
    else:
        _out(report.table())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    data = api.info(args.run)
    if args.json:
        _out(json.dumps(data, indent=2))
        return 0
    geo, params = data["geometry"], data["parameters"]
    lines = [
        f"run:        {Path(args.run)}  ({data.get('status')})",
        f"method:     {data['method']}" + (f"  preset {data['preset']}" if data.get("preset") else "")
        + (f"  budget {data['params_budget']:,}" if data.get("params_budget") else ""),
        f"parameters: {params['official']:,} (paper accounting), {params['total']:,} stored in total",
        "            " + ", ".join(f"{k} {v:,}" for k, v in params["parts"].items()),
        f"video:      {geo['num_frames']} frames {geo['height']}x{geo['width']} at {data.get('fps', 0):g} fps"
        f" (model output {data['output_size'][0]}x{data['output_size'][1]}), source {data['data']['source']}",
        "config:     " + ", ".join(f"{k}={_fmt(v)}" for k, v in data["config"].items()),
    ]
    hist = data.get("history") or {}
    epochs = hist.get("epochs", [])
    if epochs:
        last = epochs[-1]
        lines.append(
            f"training:   {len(epochs)}/{data['train']['epochs']} epochs, "
            f"{_duration(hist.get('train_seconds', 0))}, last loss {last['loss']:.4f}, train PSNR {last['psnr']:.2f} dB"
        )
    for ev in hist.get("evals", []):
        lines.append(f"  epoch {ev['epoch']:>4}: PSNR {ev['psnr']:.2f} dB  MS-SSIM {ev['ms_ssim']:.4f}")
    if data.get("psnr") is not None:
        lines.append(f"final:      PSNR {data['psnr']:.2f} dB  MS-SSIM {data['ms_ssim']:.4f}")
    _out("\n".join(lines))
    return 0


def _fmt(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def cmd_models(args: argparse.Namespace) -> int:
    for name in list_methods():
        spec = get_method(name)
        _out(f"{name}: {spec.description}")
        if spec.presets:
            _out("  presets: " + ", ".join(spec.presets) + (f" (default {spec.default_preset})" if spec.default_preset else ""))
        if spec.paper:
            _out(f"  paper:   {spec.paper}")
    return 0



def cmd_compress(args: argparse.Namespace) -> int:
    config = config_from_dict(CompressConfig, collect(args, args.compress_fields))  # compress() checks it
    report = compression.compress(args.run, args.out, config, evaluate=not args.no_eval, device=args.device,
                                  progress=not args.quiet)
    for note in report.get("notes", []):
        print(f"nervkit: note: {note}", file=sys.stderr)
    if args.json:
        _out(json.dumps(report, indent=2))
        return 0
    _out(f"wrote {report['file']}: {report['bytes']:,} bytes, {report['bpp']:.4f} bpp "
         f"({report['frames']} frames {report['size'][0]}x{report['size'][1]}, {report['bits']}-bit weights"
         + (f", {100 * report['sparsity']:.0f} % pruned" if report["prune"] else "") + ")")
    if "psnr" in report:
        _out(f"decoded: PSNR {report['psnr']:.2f} dB  MS-SSIM {report['ms_ssim']:.4f}")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    out = compression.decompress(args.file, args.out, frames=args.frames, lossless=args.lossless, crf=args.crf,
                                 device=args.device, scale=args.scale)
    _out(f"wrote {out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    data = compression.inspect(args.file)
    if args.json:
        _out(json.dumps(data, indent=2))
        return 0
    q = data["quantization"] or {}
    lines = [
        f"file:    {data['file']}  ({data['bytes']:,} bytes, {data['bpp']:.4f} bpp)",
        f"format:  nervkit .nerv version {data['format_version']}",
        f"method:  {data['method']}  ({q.get('bits')}-bit weights, {q.get('embed_bits')}-bit embeddings)",
        f"video:   {data['frames']} frames {data['size'][0]}x{data['size'][1]} at {data['fps']} fps",
        "config:  " + ", ".join(f"{k}={_fmt(v)}" for k, v in data["config"].items()),
        f"{'section':<28}{'values':>12}{'bytes':>12}{'bits/value':>12}",
    ]
    for s in data["sections"]:
        bpv = f"{s['bits_per_value']:.3f}" if s["values"] else "-"
        lines.append(f"{s['name']:<28}{s['values']:>12,}{s['bytes']:>12,}{bpv:>12}")
    lines.append(f"{'container overhead':<28}{'':>12}{data['container_overhead_bytes']:>12,}")
    _out("\n".join(lines))
    return 0


def cmd_bench_rd(args: argparse.Namespace) -> int:
    from ..bench.rd import RDConfig, run_rd_benchmark

    config = config_from_dict(RDConfig, collect(args, args.rd_fields))
    if args.sample and args.video:
        raise ConfigError("give either a VIDEO or --sample, not both")
    video = api.sample_video() if args.sample else args.video
    if video is None:
        raise ConfigError("no input: give a VIDEO (or --sample for the bundled clip)")
    size = parse_size(args.size) if args.size else None
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(f"bench rd: {msg}", file=sys.stderr))
    summary = run_rd_benchmark(video, args.out, config, size=size, frames=args.frames, progress=not args.quiet,
                               log=log)
    out = Path(args.out)
    _out(f"wrote {out / 'summary.json'}, {out / 'rd.md'}, {out / 'rd.png'} ({len(summary['series'])} series)")
    for name, row in summary["bd"].items():
        value = row["bd_rate_psnr"]
        _out(f"  BD-rate (PSNR) of {name} vs {summary['anchor']}: "
             + (f"{value:+.1f} %" if value is not None else "n/a (see rd.md)"))
    return 0
