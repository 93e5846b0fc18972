"""The ``nervkit`` command line: fit, decode, interpolate, inpaint, eval, info, models, compress, bench.

Every user error prints one line ``nervkit: error: …`` and exits with status 2; an interrupted fit
says how to resume (exit 130); an unexpected failure prints one line too (set NERVKIT_DEBUG=1 for
the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ..bench.rd import RDConfig
from ..compress.config import CompressConfig
from ..errors import NervkitError, user_error_from
from ..fitting import invoked_as
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
  nervkit fit --model nerv --help         # also lists the method's architecture options
"""

RD_EXAMPLE = """examples:
  nervkit bench rd --sample --size 180x320 -o results/bunny
  nervkit bench rd video.mp4 --methods nerv,x265 --params 0.1M,0.5M --epochs 100 -o results/v
writes results/…/summary.json, rd.md, rd.png and results/<series>.json (schema nervkit-rd/1)
"""


def _method_from_argv(argv: Sequence[str]) -> str:
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


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nervkit", description="Neural video representations: fit, decode, evaluate.",
                           formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"nervkit {commands.version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    # fit ---------------------------------------------------------------------------------------------
    fit = sub.add_parser("fit", help="fit a representation to a video", formatter_class=HelpFormatter,
                         description="Fit a neural representation to a video and write a run folder.",
                         epilog=FIT_EXAMPLE)
    fit.add_argument("video", nargs="?", help="input: video file, raw .yuv (with --raw-size), or frame folder")
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
    fit.add_argument("--resume", action="store_true", help="continue the interrupted run in -o")
    fit.add_argument("--no-video", action="store_true", help="do not write decoded.mp4 at the end")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--json", action="store_true", help="print the result as JSON")
    method = _method_from_argv(argv)
    try:
        spec = get_method(method)
    except NervkitError:
        spec = None  # reported when the command runs
    task_group = fit.add_argument_group("tasks (interpolation, inpainting, denoising; see docs/tasks.md)")
    fit.set_defaults(task_fields=add_dataclass_options(task_group, TaskOptions))
    train_group = fit.add_argument_group("training")
    fit.set_defaults(train_fields=add_dataclass_options(  # help shows the method's own recipe
        train_group, TrainConfig, defaults=spec.train_defaults if spec is not None else None))
    if spec is not None:
        group = fit.add_argument_group(f"{spec.name} architecture ({spec.description})")
        fit.set_defaults(model_fields=add_dataclass_options(group, spec.config_cls))
    else:
        fit.set_defaults(model_fields=[])
    fit.set_defaults(handler=commands.cmd_fit)

    # decode ------------------------------------------------------------------------------------------
    dec = sub.add_parser("decode", help="decode a run to a video or PNG frames", formatter_class=HelpFormatter,
                         description="Decode the frames of a fitted run.")
    dec.add_argument("run", help="run folder written by nervkit fit")
    dec.add_argument("-o", "--out", required=True,
                     help="output: .mp4/.mkv video, or a folder (ending in /) of PNG frames")
    dec.add_argument("--lossless", action="store_true", help="lossless: FFV1 in .mkv, or PNG frames")
    dec.add_argument("--frames", help="frame range A:B to decode")
    dec.add_argument("--crf", type=int, default=12, help="H.264 quality for lossy .mp4 [default: 12]")
    dec.set_defaults(handler=commands.cmd_decode)

    # interpolate / inpaint ---------------------------------------------------------------------------
    itp = sub.add_parser("interpolate", help="synthesise in-between frames of a run (F x the frame rate)",
                         formatter_class=HelpFormatter,
                         description="Decode a run (or a .nerv file) at fractional frame positions: N + (N-1)(F-1) "
                                     "frames at F x fps. NeRV decodes continuous t; HNeRV/DNeRV interpolate their "
                                     "stored per-frame embeddings.")
    itp.add_argument("run", help="run folder written by nervkit fit, or a .nerv file")
    itp.add_argument("-o", "--out", required=True, help="output: .mp4/.mkv video, or a folder (ending in /) of PNGs")
    itp.add_argument("--factor", type=int, default=2, help="frames per source frame interval, e.g. 2 or 4 [default: 2]")
    itp.add_argument("--lossless", action="store_true", help="lossless: FFV1 in .mkv, or PNG frames")
    itp.add_argument("--crf", type=int, default=12, help="H.264 quality for lossy .mp4 [default: 12]")
    itp.add_argument("--json", action="store_true", help="print JSON")
    itp.set_defaults(handler=commands.cmd_interpolate)

    inp = sub.add_parser("inpaint", help="decode a run from masked inputs; PSNR/SSIM inside the mask",
                         formatter_class=HelpFormatter,
                         description="The DNeRV inpainting protocol on a run fitted to the clean video: "
                                     "frame-conditioned methods (HNeRV, DNeRV) re-encode the masked frames; NeRV "
                                     "just decodes. For training on masked frames use nervkit fit --mask.")
    inp.add_argument("run", help="run folder written by nervkit fit")
    inp.add_argument("--mask", required=True,
                     help="disperse, disperse:SIDE, central, or a mask image / video (white = hole)")
    inp.add_argument("-o", "--out", help="also write the inpainted video (.mp4/.mkv or a PNG folder/)")
    inp.add_argument("--lossless", action="store_true", help="lossless: FFV1 in .mkv, or PNG frames")
    inp.add_argument("--crf", type=int, default=12, help="H.264 quality for lossy .mp4 [default: 12]")
    inp.add_argument("--json", action="store_true", help="print JSON")
    inp.set_defaults(handler=commands.cmd_inpaint)

    # eval --------------------------------------------------------------------------------------------
    ev = sub.add_parser("eval", help="PSNR / SSIM / MS-SSIM of a video against a reference",
                        formatter_class=HelpFormatter, description="Compare DISTORTED against REFERENCE.")
    ev.add_argument("reference")
    ev.add_argument("distorted")
    ev.add_argument("--size", help="resize both to HxW first")
    ev.add_argument("--frames", help="frame range A:B of both")
    ev.add_argument("--raw-size", help="frame size HxW of raw .yuv inputs")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("-o", "--out", help="also write the JSON report to this file")
    ev.set_defaults(handler=commands.cmd_eval)

    # compress / decompress / inspect --------------------------------------------------------------
    comp = sub.add_parser("compress", help="quantize + entropy-code a run into a .nerv file",
                          formatter_class=HelpFormatter,
                          description="Write a self-contained .nerv file; print its size, bpp and decoded quality.")
    comp.add_argument("run", help="run folder written by nervkit fit")
    comp.add_argument("-o", "--out", required=True, help="output .nerv file")
    comp.set_defaults(compress_fields=add_dataclass_options(comp.add_argument_group("compression"), CompressConfig))
    comp.add_argument("--device", default="auto",
                      help="where fine-tuning and the quality check run: auto (CUDA when present), cpu, cuda "
                           "[default: auto]")
    comp.add_argument("--quiet", action="store_true", help="no progress bar while fine-tuning")
    comp.add_argument("--no-eval", action="store_true", help="do not decode and measure the quality")
    comp.add_argument("--json", action="store_true", help="print JSON")
    comp.set_defaults(handler=commands.cmd_compress)

    dcp = sub.add_parser("decompress", help="decode a .nerv file to a video or PNG frames",
                         formatter_class=HelpFormatter, description="Decode a .nerv file (no run folder needed).")
    dcp.add_argument("file", help=".nerv file")
    dcp.add_argument("-o", "--out", required=True,
                     help="output: .mp4/.mkv video, or a folder (ending in /) of PNG frames")
    dcp.add_argument("--frames", help="frame range A:B, or a single frame N")
    dcp.add_argument("--lossless", action="store_true", help="lossless: FFV1 in .mkv, or PNG frames")
    dcp.add_argument("--crf", type=int, default=12, help="H.264 quality for lossy .mp4 [default: 12]")
    dcp.add_argument("--scale", type=float, default=1.0,
                     help="render at scale x the fitted size, e.g. 4 (super-resolution; coordinate-based "
                          "methods: nvp) [default: 1]")
    dcp.add_argument("--device", default="auto",
                     help="where to decode: auto (CUDA when present), cpu, cuda; a file decodes to "
                          "bit-identical frames on the same kind of device [default: auto]")
    dcp.set_defaults(handler=commands.cmd_decompress)

    ins = sub.add_parser("inspect", help="format, method, video and byte breakdown of a .nerv file",
                         formatter_class=HelpFormatter)
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="print JSON")
    ins.set_defaults(handler=commands.cmd_inspect)

    # bench rd -------------------------------------------------------------------------------------
    bench = sub.add_parser("bench", help="benchmarks: rate-distortion against classical codecs",
                           formatter_class=HelpFormatter)
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", parser_class=OneLineParser)
    bench_sub.required = True
    rd = bench_sub.add_parser("rd", help="RD curves, BD-rates, table and plot of neural methods and codecs",
                              formatter_class=HelpFormatter, epilog=RD_EXAMPLE,
                              description="Fit and compress neural representations at several sizes, encode "
                                          "the same frames with classical codecs, and compare rate (from the "
                                          "real files) and quality.")
    rd.add_argument("video", nargs="?", help="input video (or --sample)")
    rd.add_argument("-o", "--out", required=True, help="output folder (finished parts in it are reused)")
    rd.add_argument("--sample", action="store_true", help="use the bundled Big Buck Bunny clip")
    rd.add_argument("--size", help="resize frames to HxW first, e.g. 180x320")
    rd.add_argument("--frames", help="frame range A:B (or A:B:step) of the input")
    rd.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    rd_group = rd.add_argument_group("comparison")
    rd.set_defaults(rd_fields=add_dataclass_options(rd_group, RDConfig), handler=commands.cmd_bench_rd)

    # info --------------------------------------------------------------------------------------------
    inf = sub.add_parser("info", help="model, parameters, frames, size and history of a run",
                         formatter_class=HelpFormatter)
    inf.add_argument("run")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(handler=commands.cmd_info)

    # models ------------------------------------------------------------------------------------------
    mod = sub.add_parser("models", help="list methods and presets", formatter_class=HelpFormatter)
    mod.set_defaults(handler=commands.cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("NERVKIT_DEBUG"))
    try:
        args = build_parser(args_list).parse_args(args_list)
        with invoked_as(["nervkit", *args_list]):  # recorded in run.json's provenance
            return int(args.handler(args) or 0)
    except NervkitError as exc:
        if debug:
            traceback.print_exc()
        print(f"nervkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nervkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
        if debug:
            traceback.print_exc()
        user_error = user_error_from(exc)  # disk full, read-only, permissions, out of memory
        if user_error is not None:
            print(f"nervkit: error: {user_error}", file=sys.stderr)
            return user_error.exit_code
        message = " ".join(str(exc).split())[:300]
        print(f"nervkit: internal error: {type(exc).__name__}: {message} (set NERVKIT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
