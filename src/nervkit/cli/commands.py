"""Handlers of the ``nervkit`` subcommands: turn parsed options into an API call, print its result (as
text from :mod:`.format`, or as JSON)."""

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
from ..io.outputs import check_file_target, check_output
from ..io.size import parse_size
from ..models import get_method, list_methods
from ..models.config import config_from_dict, config_to_dict
from ..runs import FittedRun
from ..tasks import TaskOptions, summarize
from ..train.config import TrainConfig
from ..train.distributed import DistContext
from . import format as fmt
from .dataclass_args import collect


def _print(lines: list[str] | str) -> None:
    print(lines if isinstance(lines, str) else "\n".join(lines), flush=True)


def _result(args: argparse.Namespace, data: Any, lines: list[str]) -> int:
    """Print ``data`` as JSON with ``--json``, else ``lines``."""
    _print(json.dumps(data, indent=2) if getattr(args, "json", False) else lines)
    return 0


# -- fit --------------------------------------------------------------------------------------------------
def cmd_fit(args: argparse.Namespace) -> int:
    try:
        fitted = _resume(args) if args.resume else _fit_new(args)
    except KeyboardInterrupt:
        if (Path(args.out) / "checkpoint.pt").is_file():
            print(f"nervkit: interrupted; checkpoint saved — continue with: nervkit fit --resume -o {args.out}",
                  file=sys.stderr)
        else:
            print("nervkit: interrupted", file=sys.stderr)
        return 130
    if not DistContext.from_env().is_main:
        return 0  # under torchrun only rank 0 reports
    summary = _fit_summary(fitted)
    return _result(args, summary, fmt.fit_lines(summary, fitted.tasks))


def _train_options(args: argparse.Namespace, settings: FitSettings) -> dict[str, Any]:
    """The training options: the settings file's, then the command line's; checked and typed."""
    options = {**settings.train, **collect(args, args.train_fields)}
    config = config_from_dict(TrainConfig, options)  # one-line errors for nonsense values
    return {k: getattr(config, k) for k in options}


def _resume(args: argparse.Namespace) -> FittedRun:
    if args.config:
        raise ConfigError("--resume continues a run with its stored settings; drop -c")
    if args.video or args.sample:
        raise ConfigError("--resume continues the run with its stored video; drop "
                          + ("--sample" if args.sample else f"the VIDEO argument {args.video}"))
    if (collect(args, args.model_fields) or args.preset or args.params or args.size or args.frames
            or collect(args, args.task_fields) or args.list_file or args.tile or args.segment_frames):
        raise ConfigError("--resume continues a run with its stored settings; drop the model/data options")
    return api.fit(out=args.out, resume=True, model=args.model, progress=not args.quiet,
                   write_video=not args.no_video, **_train_options(args, FitSettings()))


def _fit_new(args: argparse.Namespace) -> FittedRun:
    settings = load_fit_settings(args.config) if args.config else FitSettings()
    if args.model and settings.model and args.model != settings.model:
        raise ConfigError(f"--model {args.model} differs from the method of -c {args.config} ({settings.model})")
    if settings.from_run and (args.preset or args.params):
        raise ConfigError(f"-c {args.config} is a run.json: its architecture is resolved; drop --preset/--params "
                          "(or change architecture options)")
    if args.sample and args.video:
        raise ConfigError("give either a VIDEO or --sample, not both")
    video = [api.sample_video()] if args.sample else (args.video or settings.video)
    list_file = args.list_file or settings.list_file
    if not video and not list_file:
        raise ConfigError("no input: give a VIDEO (or --sample for the bundled clip)")
    model = args.model or settings.model or "nerv"
    get_method(model)
    tasks = config_from_dict(TaskOptions, {**settings.tasks, **collect(args, args.task_fields)})
    return api.fit(
        video, out=args.out, model=model,
        preset=args.preset or settings.preset, params=args.params or settings.params,
        size=args.size or _size_text(settings.size), frames=args.frames or settings.frames,
        raw_size=args.raw_size or _size_text(settings.raw_size),
        raw_fps=args.fps if args.fps is not None else (settings.fps if settings.fps is not None else 25.0),
        model_options={**settings.model_options, **collect(args, args.model_fields)},
        list_file=list_file, tile=args.tile or _size_text(settings.tile),
        segment_frames=args.segment_frames if args.segment_frames is not None else settings.segment_frames,
        **config_to_dict(tasks), progress=not args.quiet, write_video=not args.no_video,
        **_train_options(args, settings),
    )


def _fit_summary(fitted: FittedRun) -> dict[str, Any]:
    report, meta, geo = fitted.metrics, fitted.meta, fitted.model.geometry
    return {
        "run": str(fitted.run_dir.path),
        "method": meta["method"],
        "parameters": meta["parameters"]["official"],
        "frames": geo.num_frames,
        "size": [geo.height, geo.width],
        "epochs": len(fitted.history),
        "train_seconds": meta.get("train_seconds"),
        "psnr": report.psnr if report else None,
        "ms_ssim": report.ms_ssim if report else None,
        "ssim": report.ssim if report else None,
        **summarize(fitted.tasks),
    }


def _size_text(size: Any) -> str | None:
    """A size from a settings file ("HxW" or [H, W]) as the CLI's text."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return f"{size[0]}x{size[1]}"
    return size


# -- decoding and tasks -----------------------------------------------------------------------------------
def cmd_decode(args: argparse.Namespace) -> int:
    _print(f"wrote {api.decode(args.run, args.out, lossless=args.lossless, frames=args.frames, crf=args.crf, video=args.video, device=args.device, precision=args.precision)}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    result = api.interpolate(args.run, args.factor, args.out, lossless=args.lossless, crf=args.crf)
    return _result(args, result, fmt.interpolate_lines(result))


def cmd_inpaint(args: argparse.Namespace) -> int:
    result = api.inpaint(args.run, args.mask, args.out, lossless=args.lossless, crf=args.crf)
    return _result(args, summarize(result), fmt.inpaint_lines(result))


def cmd_eval(args: argparse.Namespace) -> int:
    inputs = [args.reference, args.distorted]
    if args.out:  # before the (long) comparison: never one of the inputs, never a folder
        check_output(args.out, inputs=inputs)
        check_file_target(args.out)
    if args.csv:
        check_output(args.csv, inputs=inputs)
        check_file_target(args.csv)
    report = api.evaluate(args.reference, args.distorted, frames=args.frames, size=args.size,
                          raw_size=args.raw_size, vmaf=args.vmaf, device=args.device)
    data = {"reference": str(args.reference), "distorted": str(args.distorted), **report.to_dict()}
    if args.out:
        api.write_report(args.out, data, inputs=inputs)
    if args.csv:
        api.write_csv(args.csv, report.csv_rows(), inputs=inputs)
    return _result(args, data, [report.table()])


def cmd_info(args: argparse.Namespace) -> int:
    data = api.info(args.run)
    return _result(args, data, fmt.info_lines(args.run, data))


def cmd_models(args: argparse.Namespace) -> int:
    _print(fmt.model_lines([get_method(name) for name in list_methods()]))
    return 0


# -- files ------------------------------------------------------------------------------------------------
def cmd_compress(args: argparse.Namespace) -> int:
    given = collect(args, args.compress_fields)
    config = config_from_dict(CompressConfig, given)  # typed here, checked by compress()
    # only the options given: the run's method's own recipe (compress_defaults) fills in the others
    report = compression.compress(args.run, args.out, **{k: getattr(config, k) for k in given},
                                  evaluate=not args.no_eval, device=args.device, progress=not args.quiet)
    for note in report.get("notes", []):
        print(f"nervkit: note: {note}", file=sys.stderr)
    return _result(args, report, fmt.compress_lines(report))


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import live_script

    print(live_script(args.shell), end="")
    return 0


def _nerv_file(args: argparse.Namespace) -> str:
    """The .nerv file of ``decompress`` / ``inspect``: FILE, or the bundled sample with --sample (not both)."""
    if args.sample and args.file:
        raise ConfigError(f"give a .nerv file or --sample, not both (got {args.file} and --sample)")
    if not args.sample and not args.file:
        raise ConfigError("give a .nerv file (or --sample for the bundled one)")
    return str(api.sample_nerv()) if args.sample else args.file


def cmd_decompress(args: argparse.Namespace) -> int:
    out = compression.decompress(_nerv_file(args), args.out, frames=args.frames, lossless=args.lossless, crf=args.crf,
                                 device=args.device, scale=args.scale, video=args.video, precision=args.precision)
    _print(f"wrote {out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    data = compression.inspect(_nerv_file(args))
    return _result(args, data, fmt.inspect_lines(data))


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
    _print(fmt.bench_rd_lines(Path(args.out), summary))
    return 0


def cmd_bench_plot(args: argparse.Namespace) -> int:
    from ..bench.plot import plot_overlay

    check_output(args.out, inputs=args.files)
    out = plot_overlay(args.files, args.out, references=args.reference, metric=args.metric, title=args.title,
                       log_x=args.log_x)
    _print(f"wrote {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    summary = write_report(args.input, args.out, png=args.png, shown=args.show, device=args.device,
                           reference=args.reference, reference_frames=args.reference_frames)
    return _result(args, summary, fmt.report_lines(summary))
