"""The compression API: a fitted run → a ``.nerv`` file → decoded video (mirrors the CLI).

>>> report = nervkit.compress("runs/bunny", "bunny.nerv", bits=8)
>>> report["bpp"], report["psnr"]              # rate from the real file, quality of what it decodes to
>>> nervkit.decompress("bunny.nerv", "bunny.mkv", lossless=True)
>>> nervkit.inspect("bunny.nerv")["sections"]  # bytes and bits per value of every part
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .compress.config import CompressConfig, compress_config
from .compress.container import pack, write_container
from .compress.inspect import inspect as inspect_file
from .compress.learned_quant import RateModel, RateOptions
from .compress.model_codec import encode_model, group_bytes, read_nerv
from .compress.prune import apply_masks, prune_masks, sparsity
from .compress.qat import quantization_aware
from .compress.sections import SPARSE_THRESHOLD, STORAGES
from .errors import ConfigError
from .precision import check_precision
from .io.outputs import check_file_target, check_output
from .models import Representation, get_method
from .models.config import replace_config
from .render import check_video_output, select_frames, write_decoded
from .runs import FittedRun, Run
from .tasks import TaskData, per_video_quality
from .train import TrainConfig, Trainer, evaluate_model, resolve_device


def compress(run_dir: str | os.PathLike[str], output: str | os.PathLike[str],
             config: CompressConfig | None = None, *, progress: bool = False, **settings: Any) -> dict[str, Any]:
    """Prune (optional) → fine-tune → quantization-aware fine-tune (optional) → quantize +
    entropy-code a fitted run into ``output``; report size, bpp and decoded quality.

    ``config`` (default :class:`CompressConfig`) holds the settings; keywords replace its fields
    (``compress(run, out, bits=6, prune=0.2, finetune_epochs=10)``). Without a ``config`` object, the
    run's method's own recipe (``register_method(compress_defaults=…)``, e.g. HiNeRV's layer-normalised
    pruning, Quant-Noise and symmetric quantizer) fills in the settings not given as keywords; an explicit
    ``config`` and every keyword win over it (as a method's ``train_defaults`` do for ``nervkit.fit``);
    the report's ``method_defaults`` lists what it set. ``prune`` is the fraction of prunable weights
    *removed* (global pruning ranked by ``prune_score``), followed by ``finetune_epochs`` of training
    with the masks fixed; ``qat_epochs`` trains through the file's quantizer (straight-through
    estimator; ``qat_noise`` < 1: Quant-Noise); ``quantizer`` is the file's quantization rule. bpp =
    file bytes × 8 / (frames × H × W) of the written file. Per-frame side information
    computed from the frames (HNeRV's embeddings) is refreshed from the run's training data (the source
    frames, with the run's noise / mask / frame split of :mod:`nervkit.tasks`) before writing;
    fine-tuning uses the same data and training frames. The quality is measured on the model rebuilt
    *from the file* against the run's (clean) source frames, so it equals what ``decompress`` + ``eval``
    measure on the same kind of device (``device``: where fine-tuning and the quality check run; auto =
    CUDA when present). The run folder is not modified.

    Latent grids (NVP) are coded as JPEG images (``jpeg_quality``: 2 best .. 31) and HEVC videos
    (``hevc_crf``, ``hevc_fps``) with ``latent_codec="codec"``, or like weights with ``"weights"``
    (:mod:`nervkit.compress.sections`); no retraining is needed. The work runs as :data:`STAGES` over one
    :class:`CompressionJob`.
    """
    implicit = config is None
    config = compress_config(config, **settings)
    progress = arguments.flag("progress", progress)
    resolve_device(config.device)  # an unknown or absent device: before any work
    check_output(arguments.path("output", output), read_folders=[arguments.path("run", run_dir)])
    check_file_target(output)
    fitted = Run.at(run_dir).load()
    applied = method_defaults(fitted.model.method, settings) if implicit else {}
    if applied:
        config = compress_config(config, **applied)
    job = CompressionJob(fitted, output, config, progress=progress)
    if applied:
        job.report["method_defaults"] = applied
    # fine-tuning holds the run's lock, so that no resumed fit changes the run underneath it
    lock = job.fitted.run_dir.lock("nervkit compress (fine-tuning)") if config.trains else contextlib.nullcontext()
    with lock:
        for stage in STAGES:
            stage(job)
    return job.result()


def method_defaults(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """The settings of method ``method``'s own compression recipe (``register_method(compress_defaults=…)``)
    that ``given`` (the settings the user set) leaves open."""
    return {k: v for k, v in get_method(method).compress_defaults.items() if k not in given}


# -- the stages ------------------------------------------------------------------------------------
@dataclass
class CompressionJob:
    """One compression in progress, what every stage works on: the fitted run (its model is changed in
    memory, never on disk), the settings, the pruning masks, the run's training data (loaded once, when a
    stage first needs it) and the report so far."""

    fitted: FittedRun
    output: str | os.PathLike[str]
    config: CompressConfig
    progress: bool = False
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    #: the learned quantizers (a run fitted with rate training, or after rate-distortion fine-tuning)
    rate: RateModel | None = None
    report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _data: TaskData | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        meta = self.fitted.meta
        if meta.get("status") != "complete":
            done = f"{len(self.fitted.history)}/{meta['train'].get('epochs')} epochs"
            self.notes.append(f"the run is not complete ({done}): compressing its last checkpoint (finish it with "
                              "nervkit fit --resume)")

    @property
    def model(self) -> Representation:
        return self.fitted.model

    @property
    def data(self) -> TaskData:
        """The run's training data (its frame split, mask and noise), loaded on first use."""
        if self._data is None:
            self._data = self.fitted.run_dir.training_data()
        return self._data

    def result(self) -> dict[str, Any]:
        """The report, with the notes last."""
        return {**self.report, **({"notes": self.notes} if self.notes else {})}


def prune(job: CompressionJob) -> None:
    """Global one-shot pruning of ``config.prune`` of the prunable weights, ranked by ``config.prune_score``
    (the masks are kept)."""
    if job.config.prune:
        job.masks = prune_masks(job.model, job.config.prune, job.config.prune_score)
        apply_masks(job.model, job.masks)


def finetune(job: CompressionJob) -> None:
    """``finetune_epochs`` of training after pruning, the pruned weights held at zero."""
    if job.masks and job.config.finetune_epochs:
        train_epochs(job, job.config.finetune_epochs)


def rate_distortion_finetune(job: CompressionJob) -> None:
    """``rd_epochs`` of training for distortion + λ · rate with learned quantizers and entropy models
    (:mod:`nervkit.compress.learned_quant`); a run fitted with rate training keeps its quantizers (and,
    unless ``rd_lambda`` / ``target_bpp`` say otherwise, its λ)."""
    config, saved = job.config, job.fitted.rate_state
    wanted = config.rate_options()
    if saved is not None:
        old = RateOptions(**saved["options"])
        same_shape = (old.step_axes, old.entropy_model) == (wanted.step_axes, wanted.entropy_model)
        if not config.rd_epochs or same_shape:
            changes = {"rate_start": 0.0}
            if config.rd_epochs:
                changes.update(rounding=wanted.rounding, ste_fraction=wanted.ste_fraction,
                               learn_steps=wanted.learn_steps)
                if config.rd_lambda or config.target_bpp:
                    changes.update(rate_lambda=config.rd_lambda, target_bpp=config.target_bpp)
            job.rate = RateModel.restore(job.model, saved, **changes)
    if not config.rd_epochs:
        return
    if job.rate is None:
        if not wanted.enabled:
            raise ConfigError(f"--rd-epochs continues rate training with the run's λ, but {job.fitted.run_dir.path} "
                              "was fitted without rate training: give --rd-lambda (or --target-bpp)")
        job.rate = RateModel(job.model, wanted)
    train_epochs(job, config.rd_epochs, rate=job.rate)


def quantization_aware_finetune(job: CompressionJob) -> None:
    """``qat_epochs`` of training through the file's quantizer (straight-through estimator; with
    ``qat_noise`` < 1, Quant-Noise masks seeded by the run's training seed)."""
    config = job.config
    if config.qat_epochs:
        seed = int(job.fitted.meta.get("train", {}).get("seed", 0))
        with quantization_aware(job.model, bits=config.bits, embed_bits=config.embed_bits,
                                sparse_threshold=SPARSE_THRESHOLD, quantizer=config.quantizer,
                                noise=config.qat_noise, seed=seed):
            train_epochs(job, job.config.qat_epochs)


def refresh_side_info(job: CompressionJob) -> None:
    """Per-frame side information computed from the frames (HNeRV's embeddings) from the encoder as it
    is now."""
    if job.model.frame_side_info:
        job.model.refresh_side_info(job.data.store)


def write(job: CompressionJob) -> None:
    """Write the ``.nerv`` file; the report's size, rate and settings."""
    fitted, config = job.fitted, job.config
    video = {"fps": fitted.fps, "source": fitted.meta.get("data", {}).get("source"),
             "source_size": fitted.meta.get("source_size")}
    if fitted.meta.get("videos"):  # a collection: each video's name and frame rate, for decompress --video
        video["videos"] = [{"name": v["name"], "fps": v["fps"]} for v in fitted.meta["videos"]]
    estimate: dict[str, float] = {}
    sections = encode_model(job.model, config, video=video, rate=job.rate, estimate=estimate)
    geo = job.model.geometry
    if job.rate is not None:
        job.report["rate"] = rate_report(job.rate, sections, estimate, geo.pixels)
        check_target_reached(job.rate, job.report["rate"], config)
    write_container(job.output, sections)
    size = Path(job.output).stat().st_size
    job.report.update({"file": str(job.output), "bytes": size, "bpp": size * 8 / geo.pixels,
                       "frames": geo.num_frames, "size": [geo.height, geo.width], "bits": config.bits,
                       "embed_bits": config.embed_bits})
    job.report["group_bytes"] = group_bytes(sections)  # D-NeRV: the key-frames apart from the weights
    if any(STORAGES[g.kind].media for g in job.model.stored_groups()):
        job.report["latent"] = config.latent_settings()
    job.report.update({"prune": config.prune, "prune_score": config.prune_score, "sparsity": sparsity(job.model),
                       "finetune_epochs": config.finetune_epochs, "qat_epochs": config.qat_epochs,
                       "qat_noise": config.qat_noise, "quantizer": config.quantizer})


def rate_report(rate: RateModel, sections: list, estimate: dict[str, float], pixels: int) -> dict[str, Any]:
    """What rate training estimated against the file: the estimated file size (the entropy models' rate of the
    learned sections, every other byte as written) and the size the sections pack to."""
    file_bytes = len(pack(sections))
    payload_bytes = sum(len(s.payload) for s in sections)
    estimated_bits = 8 * (file_bytes - payload_bytes + len(sections[0].payload)) + sum(estimate.values())
    learned = [s for s in sections if s.kind == "learned"]
    return {"lambda": rate.lam, "entropy_model": rate.options.entropy_model, "step_axes": rate.options.step_axes,
            "target_bpp": rate.options.target_bpp or None,
            "estimated_bytes": estimated_bits / 8, "estimated_bpp": estimated_bits / pixels,
            "file_bytes": file_bytes, "estimate_error": file_bytes * 8 / estimated_bits - 1,
            "learned_tensors": len(learned), "learned_bytes": sum(len(s.payload) for s in learned)}


def check_target_reached(rate: RateModel, report: dict[str, Any], config: CompressConfig) -> None:
    """ConfigError (before anything is written) when ``target_bpp`` was given and the file misses it by more
    than 10 %: the rate the fine-tune reached is the smallest reachable with these epochs."""
    target = rate.options.target_bpp
    if config.rd_epochs and target and report["estimated_bpp"] > 1.1 * target:
        raise ConfigError(f"--target-bpp {target:g} was not reached: after {config.rd_epochs} epochs the smallest rate "
                        f"was {report['estimated_bpp']:.4g} bpp (λ {rate.lam:.3g}); give more --rd-epochs or a higher "
                        "--target-bpp")


def evaluate(job: CompressionJob) -> None:
    """The quality of the model rebuilt from the written file, against the clean video."""
    if job.config.evaluate:
        decoded = read_nerv(job.output).build_model().to(resolve_device(job.config.device))
        quality = evaluate_model(decoded, job.data.clean)
        job.report["device"] = str(next(decoded.parameters()).device.type)
        job.report.update({"psnr": quality.psnr, "psnr_global": quality.psnr_global, "ssim": quality.ssim,
                           "ms_ssim": quality.ms_ssim})
        clean = job.data.clean
        if clean.segments:  # a collection: each video's quality and the mean over the videos
            job.report["videos"] = per_video_quality(quality, clean.segments, clean.names)


#: what ``compress`` does, in order (a new stage, e.g. rate-distortion training, is one more entry)
STAGES = (prune, finetune, rate_distortion_finetune, quantization_aware_finetune, refresh_side_info, write,
          evaluate)


def train_epochs(job: CompressionJob, epochs: int, rate: RateModel | None = None) -> None:
    """Continue training the run's model in memory: its own recipe, ``epochs`` epochs, no warm-up,
    pruned weights held at zero after every step; with ``rate``, for distortion + λ · rate."""
    # fine-tuning writes no logs of its own (a run fitted with --log tensorboard needs no tensorboard here)
    options = rate.options.to_dict() if rate is not None else {"rate_lambda": 0.0, "target_bpp": 0.0}
    cfg = replace_config(TrainConfig(), **{**job.fitted.meta["train"], "epochs": epochs, "warmup": 0.0,
                                            "eval_every": epochs, "device": job.config.device, "log": "none",
                                            # fine-tunes run eager and in fp32: QAT reproduces the file's decode
                                            # exactly, and a compiled graph would cost minutes for a few epochs
                                            "compile": False, "precision": "fp32", **options})
    model, masks, data = job.model, job.masks, job.data
    trainer = Trainer(model, data.store, cfg, device=resolve_device(cfg.device), progress=job.progress,
                      train_indices=data.train_indices, loss_mask=data.loss_mask,
                      after_step=(lambda: apply_masks(model, masks)) if masks else None, rate=rate)
    trainer.fit()
    model.cpu().eval()
    if rate is not None:
        rate.cpu()
        job.report["rd_finetune"] = {"epochs": epochs, "final_bpp_estimate": trainer.state.history[-1].get("bpp"),
                                     "lambda": rate.lam}


def decompress(path: str | os.PathLike[str], output: str | os.PathLike[str], *, frames: str | None = None,
               lossless: bool = False, crf: int = 12, device: str = "auto", scale: float = 1.0,
               video: str | int | None = None, precision: str = "fp32") -> Path:
    """Decode a ``.nerv`` file (all frames, a range ``A:B`` or one frame ``N``) to a video (.mp4/.mkv, or
    8-bit 4:2:0 .y4m / raw .yuv, BT.601 limited range: :mod:`nervkit.io.writer`) or PNGs;
    ``video`` (a name or an index) decodes one video of a collection file without decoding the others,
    ``frames`` then counting inside that video.

    ``scale`` ≠ 1 renders every frame at scale × the fitted size (super-resolution; coordinate-based
    methods only: NVP). Decoding is deterministic: the same file on the same kind of device gives
    bit-identical frames, in every ``precision`` the device runs (fp32, the reference; bf16 / fp16 autocast).
    """
    path = arguments.path("path", path)
    check_video_output(output, inputs=[path], lossless=lossless, crf=crf)
    scale = arguments.number("--scale", scale, low=0, low_open=True, high=64)
    frame_range = arguments.frame_range("--frames", frames)
    target = resolve_device(arguments.text("--device", device))
    precision = arguments.text("--precision", precision)
    check_precision(precision, target)
    nerv = read_nerv(path)
    indices, chosen = select_frames(nerv.videos, nerv.geometry.num_frames, video=video, frames=frame_range)
    model = nerv.build_model().to(target)
    check_scale(model, scale)
    fps = chosen["fps"] if chosen else nerv.fps
    return write_decoded(model, output, fps=fps, lossless=lossless, indices=indices, crf=crf, scale=scale,
                         precision=precision)


def check_scale(model: Representation, scale: float) -> None:
    """ConfigError unless ``model`` can render at ``scale`` (> 0; ≠ 1 needs a coordinate-based method)
    and the scaled frames have at least one pixel per side."""
    if not scale > 0 or scale > 64:
        raise ConfigError(f"--scale must be in (0, 64], got {scale}")
    if scale != 1 and not model.supports_scale:
        raise ConfigError(f"--scale needs a coordinate-based method (nvp); this file holds {model.method}")
    h, w = model.output_size
    if round(h * scale) < 1 or round(w * scale) < 1:
        raise ConfigError(f"--scale {scale} renders {h}x{w} frames at {round(h * scale)}x{round(w * scale)}: "
                          f"use a scale of at least {1 / min(h, w):.3g}")


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Format, method, config, video and a byte breakdown (header, each tensor) of a ``.nerv`` file
    (:func:`nervkit.compress.inspect.inspect`)."""
    return inspect_file(arguments.path("path", path))
