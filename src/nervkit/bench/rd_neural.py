"""The neural series of ``nervkit bench rd``: fit a method at every model size (or reuse / resume an
earlier fit), compress each fit into one ``.nerv`` file per :class:`Variant`, decode the file and
measure its RD point. Finished points are cached beside their file (``files/{name}.json``) and reused
while the settings, the fit and the encoder revision are the same."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nervkit.api import fit
from nervkit.bench.quality import measure_quality
from nervkit.bench.results import RDResults
from nervkit.compress.config import CompressConfig
from nervkit.compress.model_codec import ENCODER_REVISION, read_nerv
from nervkit.compression import compress, method_defaults
from nervkit.errors import ConfigError
from nervkit.io.atomic import write_json_atomic
from nervkit.io.convert import to_uint8
from nervkit.models import get_method
from nervkit.render import render_batches
from nervkit.runs import Run
from nervkit.train import resolve_device

if TYPE_CHECKING:  # the settings object only (bench.rd imports this module)
    from nervkit.bench.rd import RDConfig


@dataclass(frozen=True)
class Variant:
    """One way of compressing a fitted model: the suffix of its series name and its compression settings."""

    suffix: str
    compression: CompressConfig
    #: tells apart the files of one series' variants (the λ of a rate-distortion fine-tune)
    tag: str = ""

    def series(self, method: str) -> str:
        return method + self.suffix


def variants(config: RDConfig) -> list[Variant]:
    """Plain, pruned, QAT and pruned+QAT, as far as ``config`` asks for them."""

    def way(suffix: str, prune: float = 0.0, finetune_epochs: int = 0, qat_epochs: int = 0) -> Variant:
        return Variant(suffix, CompressConfig(bits=config.bits, embed_bits=config.embed_bits, prune=prune,
                                              finetune_epochs=finetune_epochs, qat_epochs=qat_epochs,
                                              evaluate=False, device=config.device))

    out = [way("")]
    pct = f"{100 * config.prune:g}"
    if config.prune:
        out.append(way(f"-prune{pct}", config.prune, config.finetune_epochs))
    if config.qat_epochs:
        out.append(way("-qat", qat_epochs=config.qat_epochs))
    if config.prune and config.qat_epochs:
        out.append(way(f"-prune{pct}-qat", config.prune, config.finetune_epochs, config.qat_epochs))
    for lam in config.rd_lambdas:  # one series over every (size, λ): its RD front is the curve
        out.append(Variant("-rd", CompressConfig(embed_bits=config.embed_bits, rd_lambda=lam, rd_epochs=config.rd_epochs,
                                                 evaluate=False, device=config.device), tag=f"{lam:g}"))
    return out


def ensure_fit(method: str, params: str, run_dir: Path, video: str, *, size: tuple[int, int] | None,
               frames: str | None, config: RDConfig, progress: bool, log: Callable[[str], None],
               rate_lambda: float = 0.0) -> dict:
    """Fit ``method`` at ``params`` (with rate training at ``rate_lambda`` when > 0) into ``run_dir`` — or
    reuse a finished fit / resume a broken one."""
    run = Run.at(run_dir)
    if run.has_run():
        meta = run.read_meta()
        if meta.get("method") != method or meta["train"]["epochs"] != config.epochs \
                or meta["train"]["seed"] != config.seed or meta["train"].get("rate_lambda", 0.0) != rate_lambda:
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
            write_video=False, epochs=config.epochs, seed=config.seed, device=config.device, rate_lambda=rate_lambda)
    return run.read_meta()


def decode_file(path: Path, device: str) -> tuple[np.ndarray, float]:
    """Decode a ``.nerv`` file to ``(N, H, W, 3)`` uint8 RGB; returns the frames and the seconds taken
    (reading + entropy decoding + rebuilding the model + decoding every frame)."""
    dev = resolve_device(device)
    start = time.perf_counter()
    model = read_nerv(path).build_model().to(dev)
    with torch.no_grad():
        out = [to_uint8(frames).permute(0, 2, 3, 1).cpu() for frames in render_batches(model)]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return torch.cat(out).numpy(), seconds


def neural_point(run_dir: Path, nerv_path: Path, variant: Variant, reference: np.ndarray, *, fps: float,
                 run_meta: dict, config: RDConfig, progress: bool) -> dict[str, Any]:
    """Compress a fitted run with ``variant``, decode the file, and measure one RD point."""
    start = time.perf_counter()
    report = compress(run_dir, nerv_path, variant.compression, progress=progress)
    compress_seconds = time.perf_counter() - start
    decoded, decode_seconds = decode_file(nerv_path, config.device)
    quality = measure_quality(reference, decoded, vmaf=config.vmaf, fps=fps, device=resolve_device(config.device))
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
        **({"estimated_bpp": report["rate"]["estimated_bpp"], "rate_lambda": report["rate"]["lambda"]}
           if "rate" in report else {}),
    }


def cached_point(path: Path, settings: dict) -> dict | None:
    """The point cached in ``path`` when it was measured with ``settings``."""
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
    plain = ways[0]
    for lam in config.rate_lambdas:  # rate training from the start: one fit per size and λ, written as fitted
        points.setdefault("-rdfit", [])
        for params in config.params:
            run_dir = out / "runs" / f"{method}-{params}-rate{lam:g}"
            run_meta = ensure_fit(method, params, run_dir, video, size=size, frames=frames, config=config,
                                  progress=progress, log=log, rate_lambda=lam)
            point = _measured(run_dir, out / "files" / f"{method}-{params}-rdfit{lam:g}.nerv", plain, reference,
                              fps=fps, run_meta=run_meta, config=config, progress=progress)
            log(f"{method}-{params}-rdfit λ {lam:g}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB")
            points["-rdfit"].append({"quality": float(point["params"]), **point})
    for params in config.params:
        run_dir = out / "runs" / f"{method}-{params}"
        run_meta = ensure_fit(method, params, run_dir, video, size=size, frames=frames, config=config,
                              progress=progress, log=log)
        fits[params] = {"train_device": run_meta["train"].get("device"), "train_seconds": run_meta.get("train_seconds"),
                        "psnr_float_model": run_meta.get("psnr"), "parameters": run_meta["parameters"]}
        for variant in ways:
            name = f"{method}-{params}{variant.suffix}{variant.tag}"
            point = _measured(run_dir, out / "files" / f"{name}.nerv", variant, reference, fps=fps, run_meta=run_meta,
                              config=config, progress=progress)
            log(f"{name}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB, MS-SSIM {point['ms-ssim-rgb']:.4f}")
            points[variant.suffix].append({"quality": float(point["params"]), **point})
    spec = get_method(method)
    series = []
    for variant in {v.suffix: v for v in ways}.values():
        c = variant.compression
        if c.rd_epochs:
            lambdas = ", ".join(f"{v.compression.rd_lambda:g}" for v in ways if v.suffix == variant.suffix)
            description = (f"{spec.description}; {c.rd_epochs} epochs of rate-distortion fine-tuning at λ {lambdas} "
                           f"(learned steps, {c.entropy_model} entropy models in the file); RD front over sizes × λ")
            info = {**meta, "method": method, "epochs": config.epochs, "rd_epochs": c.rd_epochs,
                    "rd_lambdas": list(config.rd_lambdas), "quality_is": "official parameter count", "fits": fits}
            series.append(RDResults.from_points(variant.series(method), rd_front(points[variant.suffix]),
                                                description=description, meta=info))
            continue
        parts = [f"{c.bits}-bit weights"]
        if c.prune:
            parts.append(f"{100 * c.prune:g} % pruned + {c.finetune_epochs} fine-tuning epochs")
        if c.qat_epochs:
            parts.append(f"{c.qat_epochs} QAT epochs")
        description = f"{spec.description}; {', '.join(parts)}; ANS-coded .nerv file"
        info = {**meta, "method": method, "epochs": config.epochs, "bits": c.bits, "embed_bits": c.embed_bits,
                "prune": c.prune, "qat_epochs": c.qat_epochs, "quality_is": "official parameter count of the model",
                "fits": fits}
        series.append(RDResults.from_points(variant.series(method), points[variant.suffix],
                                            description=description, meta=info))
    if config.rate_lambdas:
        description = (f"{spec.description}; trained for rate from the start at λ "
                       f"{', '.join(f'{v:g}' for v in config.rate_lambdas)}; RD front over sizes × λ")
        series.append(RDResults.from_points(f"{method}-rdfit", rd_front(points["-rdfit"]), description=description,
                                            meta={**meta, "method": method, "epochs": config.epochs,
                                                  "rate_lambdas": list(config.rate_lambdas)}))
    return series


def rd_front(points: list[dict]) -> list[dict]:
    """The points no other point beats in both rate and PSNR, by rate (a curve over sizes × λ)."""
    front: list[dict] = []
    for point in sorted(points, key=lambda p: (p["bpp"], -p["psnr-rgb"])):
        if not front or point["psnr-rgb"] > front[-1]["psnr-rgb"]:
            front.append(point)
    return front


def _measured(run_dir: Path, nerv_path: Path, variant: Variant, reference: np.ndarray, *, fps: float,
              run_meta: dict, config: RDConfig, progress: bool) -> dict[str, Any]:
    """The RD point of ``run_dir`` compressed with ``variant`` — from its cache when measured with these
    settings, else measured now and cached beside the file."""
    # the method's own recipe (HiNeRV: layer-scored pruning, symmetric quantizer, Quant-Noise), as compress applies it
    recipe = method_defaults(run_meta["method"], {})
    c = dataclasses.replace(variant.compression, **recipe)
    variant = dataclasses.replace(variant, compression=c)
    settings = {"bits": c.bits, "embed_bits": c.embed_bits, "prune": c.prune, "finetune_epochs": c.finetune_epochs,
                "qat_epochs": c.qat_epochs, "rd_lambda": c.rd_lambda, "rd_epochs": c.rd_epochs, "vmaf": config.vmaf,
                **({"recipe": recipe} if recipe else {}),
                "fit_created": run_meta.get("created"), "encoder_revision": ENCODER_REVISION}
    cache = nerv_path.with_suffix(".json")
    point = cached_point(cache, settings) if nerv_path.is_file() else None
    if point is None:
        nerv_path.parent.mkdir(parents=True, exist_ok=True)
        point = neural_point(run_dir, nerv_path, variant, reference, fps=fps, run_meta=run_meta, config=config,
                             progress=progress)
        write_json_atomic(cache, {"settings": settings, "point": point})
    return point
