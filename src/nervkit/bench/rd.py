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

This module runs the comparison; :mod:`.rd_neural` fits and compresses the neural variants and
:mod:`.rd_report` makes the BD table, the byte breakdown and the Markdown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nervkit.bench.codecs import CODECS, codec_spec
from nervkit.bench.machine import describe_machine
from nervkit.bench.plot import plot_rd
from nervkit.bench.rd_neural import Variant, neural_series, variants
from nervkit.bench.rd_report import bd_table, file_breakdown, markdown_report
from nervkit.bench.results import RDResults, codec_rd_curve, read_results, write_results
from nervkit.compress.config import compress_option
from nervkit.data import load_frames
from nervkit.errors import ConfigError, InputError, output_error
from nervkit.io import FrameRange
from nervkit.io.atomic import atomic_path, write_json_atomic
from nervkit.io.outputs import check_folder_target, check_output
from nervkit.models import list_methods
from nervkit.models.config import option, validate_choices
from nervkit.models.sizing import parse_param_count
from nervkit.train import resolve_device

__all__ = ["RD_MARKER", "SUMMARY_SCHEMA", "RDConfig", "Variant", "codec_series", "resolve_anchor",
           "run_rd_benchmark", "split_methods", "variants"]

SUMMARY_SCHEMA = "nervkit-rd-summary/1"


@dataclass(frozen=True)
class RDConfig:
    """What ``nervkit bench rd`` compares (field help = ``--help``). The compression settings are
    :class:`~nervkit.compress.config.CompressConfig`'s fields; ``prune``, ``finetune_epochs`` and
    ``qat_epochs`` name the pruned and QAT variants, with the benchmark's own defaults."""

    methods: tuple[str, ...] = option(("nerv", "x264", "x265", "av1", "vvc"),
                                      "methods: registered neural methods and codecs (x264, x265, av1, vvc)")
    params: tuple[str, ...] = option(("0.05M", "0.15M", "0.5M", "1.5M"),
                                     "model sizes (parameter budgets) fitted for every neural method")
    epochs: int = option(300, "training epochs of every neural model")
    bits: int = compress_option("bits")
    embed_bits: int = compress_option("embed_bits")
    prune: float = compress_option("prune", 0.2, "fraction of weights removed in the pruned variants "
                                                 "(0 = no pruned variants)")
    finetune_epochs: int = compress_option("finetune_epochs", 10, "fine-tuning epochs after pruning")
    qat_epochs: int = compress_option("qat_epochs", 10, "quantization-aware fine-tuning epochs of the QAT "
                                                        "variants (0 = none)")
    rd_lambdas: tuple[float, ...] = option((), "λ values of the rate-distortion fine-tuned variant (series METHOD-rd): "
                                                "every fit is also compressed after --rd-epochs of rate training "
                                                "at each λ (empty = no such variant)")
    rd_epochs: int = compress_option("rd_epochs", 10, "rate-distortion fine-tuning epochs of the -rd variant")
    rate_lambdas: tuple[float, ...] = option((), "λ values of rate training from the start (series METHOD-rdfit): "
                                                  "one fit per model size and λ (empty = none)")
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
        for flag, values in (("--rd-lambdas", self.rd_lambdas), ("--rate-lambdas", self.rate_lambdas)):
            if any(not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0) for v in values):
                raise ConfigError(f"{flag} must be positive finite numbers, got {', '.join(map(str, values))}")
        if self.rd_lambdas and not self.rd_epochs:
            raise ConfigError("--rd-lambdas needs --rd-epochs >= 1")
        if self.prune and not self.finetune_epochs:
            raise ConfigError("--prune needs --finetune-epochs >= 1 (pruning without fine-tuning is not a variant)")
        for variant in variants(self):  # --bits, --embed-bits
            variant.compression.validate()


def split_methods(methods: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(neural methods, codecs) of ``methods``; ConfigError for a name that is neither."""
    neural, codecs = [], []
    for name in methods:
        if name in CODECS:
            codecs.append(name)
        elif name in list_methods():
            neural.append(name)
        else:
            raise ConfigError(f"unknown method {name!r}; choose from {', '.join([*list_methods(), *CODECS])}")
    return neural, codecs


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
                        device=resolve_device(config.device))
    write_results(path, rd)
    return rd


def resolve_anchor(anchor: str, names: list[str]) -> str:
    """The series BD-rates are measured against (``auto``: x265 if compared, else the first)."""
    if anchor == "auto":
        return "x265" if "x265" in names else names[0]
    if anchor not in names:
        raise ConfigError(f"--anchor {anchor} is not among the compared series ({', '.join(names)})")
    return anchor


#: marker file of a benchmark folder (a rerun into it reuses its finished fits, files and curves)
RD_MARKER = ".nervkit-rd"


def run_rd_benchmark(video: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: RDConfig, *,
                     size: tuple[int, int] | None = None, frames: str | None = None, progress: bool = True,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole comparison into ``out_dir`` and return the summary (also written as JSON)."""
    config.validate()
    neural, codecs = split_methods(config.methods)
    if neural:
        for p in config.params:
            parse_param_count(p)
    names = [*codecs, *dict.fromkeys(v.series(m) for m in neural for v in variants(config))]
    names += [f"{m}-rdfit" for m in neural if config.rate_lambdas]
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
            "machine": describe_machine(resolve_device(config.device))}
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
    if neural:  # the largest plain .nerv file: its byte breakdown and coding efficiency
        summary.update(file_breakdown(out / "files" / f"{neural[0]}-{config.params[-1]}.nerv"))
    write_json_atomic(out / "summary.json", summary)
    with atomic_path(out / "rd.md") as tmp:
        Path(tmp).write_text(markdown_report(summary))
    plot_rd(series, out / "rd.png", log_x=True,
            title=f"{Path(str(video)).name}: {len(store)} frames {store.height}x{store.width}")
    return summary
