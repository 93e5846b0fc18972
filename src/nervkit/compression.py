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
from .compress.container import write_container
from .compress.inspect import inspect as inspect_file
from .compress.model_codec import encode_model, group_bytes, read_nerv
from .compress.prune import apply_masks, magnitude_masks, sparsity
from .compress.qat import quantization_aware
from .compress.sections import SPARSE_THRESHOLD, STORAGES
from .errors import ConfigError
from .io.outputs import check_file_target, check_output
from .models import Representation
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
    (``compress(run, out, bits=6, prune=0.2, finetune_epochs=10)``). ``prune`` is the fraction of
    prunable weights *removed* (global magnitude pruning), followed by ``finetune_epochs`` of training
    with the masks fixed; ``qat_epochs`` trains through the file's quantizer (straight-through
    estimator). bpp = file bytes × 8 / (frames × H × W) of the written file. Per-frame side information
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
    config = compress_config(config, **settings)
    progress = arguments.flag("progress", progress)
    resolve_device(config.device)  # an unknown or absent device: before any work
    check_output(arguments.path("output", output), read_folders=[arguments.path("run", run_dir)])
    check_file_target(output)
    job = CompressionJob(Run.at(run_dir).load(), output, config, progress=progress)
    # fine-tuning holds the run's lock, so that no resumed fit changes the run underneath it
    lock = job.fitted.run_dir.lock("nervkit compress (fine-tuning)") if config.trains else contextlib.nullcontext()
    with lock:
        for stage in STAGES:
            stage(job)
    return job.result()


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
    """Global magnitude pruning of ``config.prune`` of the prunable weights (the masks are kept)."""
    if job.config.prune:
        job.masks = magnitude_masks(job.model, job.config.prune)
        apply_masks(job.model, job.masks)


def finetune(job: CompressionJob) -> None:
    """``finetune_epochs`` of training after pruning, the pruned weights held at zero."""
    if job.masks and job.config.finetune_epochs:
        train_epochs(job, job.config.finetune_epochs)


def quantization_aware_finetune(job: CompressionJob) -> None:
    """``qat_epochs`` of training through the file's quantizer (straight-through estimator)."""
    if job.config.qat_epochs:
        with quantization_aware(job.model, bits=job.config.bits, embed_bits=job.config.embed_bits,
                                sparse_threshold=SPARSE_THRESHOLD):
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
    sections = encode_model(job.model, config, video=video)
    write_container(job.output, sections)
    size = Path(job.output).stat().st_size
    geo = job.model.geometry
    job.report.update({"file": str(job.output), "bytes": size, "bpp": size * 8 / geo.pixels,
                       "frames": geo.num_frames, "size": [geo.height, geo.width], "bits": config.bits,
                       "embed_bits": config.embed_bits})
    job.report["group_bytes"] = group_bytes(sections)  # D-NeRV: the key-frames apart from the weights
    if any(STORAGES[g.kind].media for g in job.model.stored_groups()):
        job.report["latent"] = config.latent_settings()
    job.report.update({"prune": config.prune, "sparsity": sparsity(job.model),
                       "finetune_epochs": config.finetune_epochs, "qat_epochs": config.qat_epochs})


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
STAGES = (prune, finetune, quantization_aware_finetune, refresh_side_info, write, evaluate)


def train_epochs(job: CompressionJob, epochs: int) -> None:
    """Continue training the run's model in memory: its own recipe, ``epochs`` epochs, no warm-up,
    pruned weights held at zero after every step."""
    # fine-tuning writes no logs of its own (a run fitted with --log tensorboard needs no tensorboard here)
    cfg = replace_config(TrainConfig(), **{**job.fitted.meta["train"], "epochs": epochs, "warmup": 0.0,
                                            "eval_every": epochs, "device": job.config.device, "log": "none"})
    model, masks, data = job.model, job.masks, job.data
    trainer = Trainer(model, data.store, cfg, device=resolve_device(cfg.device), progress=job.progress,
                      train_indices=data.train_indices, loss_mask=data.loss_mask,
                      after_step=(lambda: apply_masks(model, masks)) if masks else None)
    trainer.fit()
    model.cpu().eval()


def decompress(path: str | os.PathLike[str], output: str | os.PathLike[str], *, frames: str | None = None,
               lossless: bool = False, crf: int = 12, device: str = "auto", scale: float = 1.0,
               video: str | int | None = None) -> Path:
    """Decode a ``.nerv`` file (all frames, a range ``A:B`` or one frame ``N``) to a video or PNGs;
    ``video`` (a name or an index) decodes one video of a collection file without decoding the others,
    ``frames`` then counting inside that video.

    ``scale`` ≠ 1 renders every frame at scale × the fitted size (super-resolution; coordinate-based
    methods only: NVP). Decoding is deterministic: the same file on the same kind of device gives
    bit-identical frames.
    """
    path = arguments.path("path", path)
    check_video_output(output, inputs=[path], lossless=lossless, crf=crf)
    scale = arguments.number("--scale", scale, low=0, low_open=True, high=64)
    frame_range = arguments.frame_range("--frames", frames)
    target = resolve_device(arguments.text("--device", device))
    nerv = read_nerv(path)
    indices, chosen = select_frames(nerv.videos, nerv.geometry.num_frames, video=video, frames=frame_range)
    model = nerv.build_model().to(target)
    check_scale(model, scale)
    fps = chosen["fps"] if chosen else nerv.fps
    return write_decoded(model, output, fps=fps, lossless=lossless, indices=indices, crf=crf, scale=scale)


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
