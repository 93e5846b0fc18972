"""The ``nervkit`` subcommands' options: one builder per subcommand, the shared options as argparse
parents (a decoded-video output, ``--json``), option groups generated from the config dataclasses
(:mod:`.dataclass_args`: training, tasks, the method's architecture, compression, the RD comparison)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from ..bench.plot import reference_names
from ..bench.rd import RDConfig
from ..compress.config import CompressConfig
from ..errors import NervkitError
from ..models import get_method, list_methods
from ..tasks import TaskOptions
from ..train.config import TrainConfig
from . import commands
from .dataclass_args import add_dataclass_options
from .parser import HelpFormatter, OneLineParser

FIT_EXAMPLE = """examples:
  nervkit fit --sample --model nerv --params 1.5M --size 180x320 --epochs 100 -o runs/bunny
  nervkit fit video.mp4 --model nerv --preset S --frames 0:64 -o runs/v
  nervkit fit --resume -o runs/v          # continue an interrupted run
  nervkit fit -c runs/v/run.json -o runs/w  # fit run v again (options given here override the file)
  nervkit fit --model nerv --help         # also lists the method's architecture options
"""

RD_EXAMPLE = """examples:
  nervkit bench rd --sample --size 180x320 -o results/bunny
  nervkit bench rd video.mp4 --methods nerv,x265 --params 0.1M,0.5M --epochs 100 -o results/v
writes results/…/summary.json, rd.md, rd.png and results/<series>.json (schema nervkit-rd/1)
"""

PLOT_EXAMPLE = """examples:
  nervkit bench plot results/bunny/results/*.json compressai/bmshj2018.json -o rd.png --title Bunny
  nervkit bench plot results/uvg/summary.json --reference hinerv-uvg --metric ms-ssim -o uvg.png
"""

REPORT_EXAMPLE = """examples:
  nervkit report runs/bunny -o bunny.html
  nervkit report bunny.nerv --reference bunny.mp4 --reference-frames 0:64 -o file.html --png file.png
  nervkit report results/bunny -o rd.html     # a bench rd folder: RD plots, BD-rates, points
"""

_OUTPUT_HELP = ("output: .mp4/.mkv video; .y4m (YUV4MPEG2, C420jpeg) or raw .yuv, 8-bit yuv420p converted from RGB "
                "by swscale, BT.601 limited range (the inverse of how nervkit reads YUV; even sizes only); "
                "or a folder (ending in /) of PNG frames")


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def video_output(required: bool = True, help: str = _OUTPUT_HELP) -> argparse.ArgumentParser:
    """-o/--out, --lossless, --crf: where and how decoded frames are written."""
    p = _parent()
    p.add_argument("-o", "--out", required=required, help=help)
    p.add_argument("--lossless", action="store_true", help="lossless: FFV1 in .mkv, or PNG frames")
    p.add_argument("--crf", type=int, default=12, help="H.264 quality for lossy .mp4 [default: 12]")
    return p


def frame_selection() -> argparse.ArgumentParser:
    """--video, --frames: which frames a decoding command renders (one video of a collection, a range)."""
    p = _parent()
    p.add_argument("--video", help="decode one video of a collection (its name or index); --frames then counts "
                                   "inside it")
    p.add_argument("--frames", help="frame range A:B, or a single frame N")
    return p


def json_output(help: str = "print JSON") -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--json", action="store_true", help=help)
    return p


Subparsers = argparse._SubParsersAction


def _add(sub: Subparsers, name: str, help: str, parents: Sequence[argparse.ArgumentParser] = (),
         **kwargs: object) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, parents=list(parents), formatter_class=HelpFormatter, **kwargs)


def method_from_argv(argv: Sequence[str]) -> str:
    """The method whose architecture options ``fit`` accepts: --model, else the one a -c file names."""
    config_file = None
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg in ("-c", "--config") and i + 1 < len(argv):
            config_file = argv[i + 1]
        elif arg.startswith("--config="):
            config_file = arg.split("=", 1)[1]
    if config_file:
        from ..fit_file import method_of

        return method_of(config_file) or "nerv"
    return "nerv"


def add_fit(sub: Subparsers, argv: Sequence[str]) -> None:
    fit = _add(sub, "fit", "fit a representation to a video", [json_output("print the result as JSON")],
               description="Fit a neural representation to a video and write a run folder.", epilog=FIT_EXAMPLE)
    fit.add_argument("video", nargs="*", help="input: a video file, raw .yuv (with --raw-size) or frame folder; "
                                              "several of them, or a folder of videos, fit one model to the "
                                              "collection")
    fit.add_argument("-o", "--out", required=True, help="run folder to write (or resume)")
    fit.add_argument("-c", "--config", metavar="FILE",
                     help="settings from a JSON or TOML file, or a run's run.json (fit it again); the options "
                          "given on the command line override the file's")
    fit.add_argument("--sample", action="store_true", help="use the bundled Big Buck Bunny clip as input")
    fit.add_argument("--model", help=f"method: {', '.join(list_methods())} [default: nerv]")
    fit.add_argument("--preset", help="named model size (e.g. S, M, L for NeRV)")
    fit.add_argument("--params", help="parameter budget instead of a preset, e.g. 1.5M, 300k, or a rate, e.g. "
                                      "0.9bpp (parameters whose 8-bit values take that many bits per pixel)")
    fit.add_argument("--size", help="resize frames to HxW, e.g. 180x320")
    fit.add_argument("--frames", help="frame range A:B (or A:B:step) of the input")
    fit.add_argument("--raw-size", help="frame size HxW of a raw .yuv input (plain --size works too)")
    fit.add_argument("--fps", type=float, help="frame rate of a raw .yuv input [default: 25]")
    fit.add_argument("--list", dest="list_file", metavar="FILE",
                     help="a collection's videos, one 'path [name]' per line (paths relative to the file)")
    fit.add_argument("--tile", help="cut every video into tiles of HxW (the UVG protocol: top-left crop to whole "
                                    "tiles, tiles <video>-01.. row-major) instead of resizing")
    fit.add_argument("--segment-frames", type=int, help="cut every video into parts of N frames (<video>-s01..)")
    fit.add_argument("--resume", action="store_true", help="continue the interrupted run in -o")
    fit.add_argument("--no-video", action="store_true", help="do not write decoded.mp4 at the end")
    fit.add_argument("--quiet", action="store_true", help="no progress output")
    try:
        spec = get_method(method_from_argv(argv))
    except NervkitError:
        spec = None  # reported when the command runs
    task_group = fit.add_argument_group("tasks (interpolation, inpainting, denoising; see docs/tasks.md)")
    train_group = fit.add_argument_group("training")
    fit.set_defaults(
        handler=commands.cmd_fit,
        task_fields=add_dataclass_options(task_group, TaskOptions),
        # help shows the method's own recipe
        train_fields=add_dataclass_options(train_group, TrainConfig, defaults=spec.train_defaults if spec else None),
        model_fields=add_dataclass_options(fit.add_argument_group(f"{spec.name} architecture ({spec.description})"),
                                           spec.config_cls) if spec else [],
    )


def add_decode(sub: Subparsers) -> None:
    dec = _add(sub, "decode", "decode a run to a video or PNG frames", [video_output(), frame_selection()],
               description="Decode the frames of a fitted run.")
    dec.add_argument("run", help="run folder written by nervkit fit")
    dec.add_argument("--device", default="cpu", help="where to decode: cpu, cuda, cuda:N or auto (CUDA when present) "
                     "[default: cpu]")
    dec.add_argument("--precision", default="fp32", metavar="{fp32,bf16,fp16}",
                     help="arithmetic of decoding: fp32, or bf16/fp16 autocast (faster on GPUs; deterministic on "
                          "the same device) [default: fp32]")
    dec.set_defaults(handler=commands.cmd_decode)


def add_interpolate(sub: Subparsers) -> None:
    itp = _add(sub, "interpolate", "synthesise in-between frames of a run (F x the frame rate)",
               [video_output(), json_output()],
               description="Decode a run (or a .nerv file) at fractional frame positions: N + (N-1)(F-1) frames at "
                           "F x fps. NeRV decodes continuous t, HiNeRV reads its grids at t; HNeRV/DNeRV interpolate their "
                           "stored per-frame embeddings.")
    itp.add_argument("run", help="run folder written by nervkit fit, or a .nerv file")
    itp.add_argument("--factor", type=int, default=2, help="frames per source frame interval, e.g. 2 or 4 [default: 2]")
    itp.set_defaults(handler=commands.cmd_interpolate)


def add_inpaint(sub: Subparsers) -> None:
    inp = _add(sub, "inpaint", "decode a run from masked inputs; PSNR/SSIM inside the mask",
               [video_output(required=False, help="also write the inpainted video (.mp4/.mkv or a PNG folder/)"),
                json_output()],
               description="The DNeRV inpainting protocol on a run fitted to the clean video: frame-conditioned "
                           "methods (HNeRV, DNeRV) re-encode the masked frames; NeRV just decodes. For training on "
                           "masked frames use nervkit fit --mask.")
    inp.add_argument("run", help="run folder written by nervkit fit")
    inp.add_argument("--mask", required=True, help="disperse, disperse:SIDE, central, or a mask image / video "
                                                   "(white = hole)")
    inp.set_defaults(handler=commands.cmd_inpaint)


def add_eval(sub: Subparsers) -> None:
    ev = _add(sub, "eval", "PSNR (RGB; Y, U, V and 6:1:1 YUV) / SSIM / MS-SSIM [/ VMAF] of a video against a reference",
              [json_output("print JSON instead of a table")], description="Compare DISTORTED against REFERENCE.")
    ev.add_argument("reference")
    ev.add_argument("distorted")
    ev.add_argument("--size", help="resize both to HxW first")
    ev.add_argument("--frames", help="frame range A:B of both")
    ev.add_argument("--raw-size", help="frame size HxW of raw .yuv inputs")
    ev.add_argument("-o", "--out", help="also write the JSON report to this file")
    ev.add_argument("--vmaf", action="store_true", help="also VMAF (vmaf_v0.6.1) through the bundled ffmpeg's "
                    "libvmaf, frames streamed to it as yuv420p")
    ev.add_argument("--device", default="cpu", help="where the metrics run: cpu (default) or cuda")
    ev.add_argument("--csv", help="also write per-frame values (frame, psnr_rgb, ms_ssim, psnr_y, psnr_u, psnr_v, "
                    "psnr_yuv[, vmaf]) to this CSV file")
    ev.set_defaults(handler=commands.cmd_eval)


def add_compress(sub: Subparsers) -> None:
    comp = _add(sub, "compress", "quantize + entropy-code a run into a .nerv file", [json_output()],
                description="Write a self-contained .nerv file; print its size, bpp and decoded quality. The "
                            "run's method may bring its own compression recipe (e.g. HiNeRV's pruning score, "
                            "quantizer and Quant-Noise): it replaces the defaults below for the options not given "
                            "(the report's method_defaults).")
    comp.add_argument("run", help="run folder written by nervkit fit")
    comp.add_argument("-o", "--out", required=True, help="output .nerv file")
    comp.set_defaults(compress_fields=add_dataclass_options(comp.add_argument_group("compression"), CompressConfig))
    comp.add_argument("--device", default=CompressConfig.device,
                      help="where fine-tuning and the quality check run: auto (CUDA when present), cpu, cuda "
                           f"[default: {CompressConfig.device}]")
    comp.add_argument("--quiet", action="store_true", help="no progress output while fine-tuning")
    comp.add_argument("--no-eval", action="store_true", help="do not decode and measure the quality")
    comp.set_defaults(handler=commands.cmd_compress)


def add_decompress(sub: Subparsers) -> None:
    dcp = _add(sub, "decompress", "decode a .nerv file to a video or PNG frames", [video_output(), frame_selection()],
               description="Decode a .nerv file (no run folder needed).")
    dcp.add_argument("file", nargs="?", help=".nerv file (or --sample)")
    dcp.add_argument("--sample", action="store_true", help="decode the bundled sample file (16 Bunny frames, 90x160)")
    dcp.add_argument("--scale", type=float, default=1.0, help="render at scale x the fitted size, e.g. 4 "
                     "(super-resolution; coordinate-based methods: nvp) [default: 1]")
    dcp.add_argument("--device", default="auto", help="where to decode: auto (CUDA when present), cpu, cuda; a file "
                     "decodes to bit-identical frames on the same kind of device [default: auto]")
    dcp.add_argument("--precision", default="fp32", metavar="{fp32,bf16,fp16}",
                     help="arithmetic of decoding: fp32, or bf16/fp16 autocast (faster on GPUs; deterministic on "
                          "the same device) [default: fp32]")
    dcp.set_defaults(handler=commands.cmd_decompress)


def add_inspect(sub: Subparsers) -> None:
    ins = _add(sub, "inspect", "format, method, video and byte breakdown of a .nerv file", [json_output()])
    ins.add_argument("file", nargs="?", help=".nerv file (or --sample)")
    ins.add_argument("--sample", action="store_true", help="inspect the bundled sample file")
    ins.set_defaults(handler=commands.cmd_inspect)


def add_bench(sub: Subparsers) -> None:
    bench = _add(sub, "bench", "benchmarks: rate-distortion against classical codecs")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", parser_class=OneLineParser)
    bench_sub.required = True
    rd = _add(bench_sub, "rd", "RD curves, BD-rates, table and plot of neural methods and codecs", epilog=RD_EXAMPLE,
              description="Fit and compress neural representations at several sizes, encode the same frames with "
                          "classical codecs, and compare rate (from the real files) and quality.")
    rd.add_argument("video", nargs="?", help="input video (or --sample)")
    rd.add_argument("-o", "--out", required=True, help="output folder (finished parts in it are reused)")
    rd.add_argument("--sample", action="store_true", help="use the bundled Big Buck Bunny clip")
    rd.add_argument("--size", help="resize frames to HxW first, e.g. 180x320")
    rd.add_argument("--frames", help="frame range A:B (or A:B:step) of the input")
    rd.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    rd.set_defaults(rd_fields=add_dataclass_options(rd.add_argument_group("comparison"), RDConfig),
                    handler=commands.cmd_bench_rd)
    plot = _add(bench_sub, "plot", "overlay RD curves of result files (nervkit or CompressAI JSON) in one PNG",
                epilog=PLOT_EXAMPLE)
    plot.add_argument("files", nargs="*", metavar="FILE", help="RD results JSON: nervkit-rd/1, a bench rd "
                      "summary.json, or CompressAI's {name, results: {bpp, psnr|psnr-rgb, ms-ssim}}")
    plot.add_argument("-o", "--out", required=True, help="output PNG")
    plot.add_argument("--metric", choices=("psnr", "ms-ssim"), default="psnr", help="y axis [default: psnr]")
    plot.add_argument("--reference", action="append", default=[], metavar="NAME",
                      help="add a shipped paper curve (repeatable): " + ", ".join(reference_names()))
    plot.add_argument("--title", help="plot title")
    plot.add_argument("--log-x", action="store_true", help="logarithmic bpp axis")
    plot.set_defaults(handler=commands.cmd_bench_plot)


def add_info(sub: Subparsers) -> None:
    inf = _add(sub, "info", "model, parameters, frames, size and history of a run", [json_output()])
    inf.add_argument("run")
    inf.set_defaults(handler=commands.cmd_info)


def add_report(sub: Subparsers) -> None:
    rep = _add(sub, "report", "one HTML page on a run, a .nerv file or a bench rd folder: frames, error maps, "
                              "quality per frame, bytes, training and RD curves",
               [json_output("print the report's numbers as JSON")], epilog=REPORT_EXAMPLE,
               description="Write a self-contained HTML report (images embedded, no script, nothing fetched): "
                           "source, decoded and error-map frames side by side, PSNR/MS-SSIM per frame, the "
                           "byte breakdown, the training curves, and for a bench rd folder the RD plots and "
                           "BD-rates.")
    rep.add_argument("input", help="a run folder (nervkit fit), a .nerv file or a bench rd folder")
    rep.add_argument("-o", "--out", required=True, help="the HTML file to write")
    rep.add_argument("--png", metavar="FILE", help="also write the report's pictures stacked in one PNG")
    rep.add_argument("--show", type=int, default=4, help="frames shown side by side, evenly spaced, first and "
                                                         "last included [default: 4]")
    rep.add_argument("--reference", metavar="VIDEO",
                     help="the source video of a .nerv file, read at the file's frame size: error maps and "
                          "PSNR/MS-SSIM per frame (a run folder knows its source)")
    rep.add_argument("--reference-frames", metavar="A:B",
                     help="the frames of --reference the file was fitted to [default: all]")
    rep.add_argument("--device", default="cpu", help="where frames are decoded: cpu, cuda or auto [default: cpu]")
    rep.set_defaults(handler=commands.cmd_report)


def add_models(sub: Subparsers) -> None:
    _add(sub, "models", "list methods and presets").set_defaults(handler=commands.cmd_models)


#: the subcommands in the order ``nervkit --help`` lists them
def add_completion(sub: Subparsers) -> None:
    comp = _add(sub, "completion", "print a shell completion script: eval \"$(nervkit completion bash)\"",
                description="Print a completion script for bash or zsh (subcommands, every option, method names "
                            "after --model). Install: add 'eval \"$(nervkit completion bash)\"' to ~/.bashrc (zsh: "
                            "'eval \"$(nervkit completion zsh)\"' to ~/.zshrc).")
    comp.add_argument("shell", choices=("bash", "zsh"))
    comp.set_defaults(handler=commands.cmd_completion)


BUILDERS: tuple[Callable[[Subparsers], None], ...] = (
    add_decode, add_interpolate, add_inpaint, add_eval, add_compress, add_decompress, add_inspect, add_bench,
    add_report, add_info, add_models, add_completion,
)
