"""The compression API: a fitted run → a ``.nerv`` file → decoded video (mirrors the CLI).

>>> report = nervkit.compress("runs/bunny", "bunny.nerv", bits=8)
>>> report["bpp"], report["psnr"]              # rate from the real file, quality of what it decodes to
>>> nervkit.decompress("bunny.nerv", "bunny.mkv", lossless=True)
>>> nervkit.inspect("bunny.nerv")["sections"]  # bytes and bits per value of every part
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .api import FittedRun, check_video_output, load, task_data, write_decoded
from .compress.model_codec import LATENT_CODECS, SPARSE_THRESHOLD, LatentCoding, read_nerv, write_nerv
from .compress.prune import apply_masks, magnitude_masks, sparsity
from .compress.qat import quantization_aware
from .errors import ConfigError
from .io.outputs import check_file_target, check_output
from .models import Representation
from .models.config import replace_config
from .tasks import TaskData
from .train import TrainConfig, Trainer, evaluate_model, resolve_device


def compress(run_dir: str | os.PathLike[str], output: str | os.PathLike[str], *, bits: int = 8,
             embed_bits: int = 6, prune: float = 0.0, finetune_epochs: int = 0, qat_epochs: int = 0,
             evaluate: bool = True, progress: bool = False, device: str = "auto",
             latent_codec: str = "codec", jpeg_quality: int = 2, hevc_crf: int = 21,
             hevc_fps: int = 25) -> dict[str, Any]:
    """Prune (optional) → fine-tune → quantization-aware fine-tune (optional) → quantize +
    entropy-code a fitted run into ``output``; report size, bpp and decoded quality.

    ``prune`` is the fraction of prunable weights *removed* (global magnitude pruning), followed by
    ``finetune_epochs`` of training with the masks fixed; ``qat_epochs`` trains through the file's
    quantizer (straight-through estimator). bpp = file bytes × 8 / (frames × H × W) of the written
    file. Per-frame side information computed from the frames (HNeRV's embeddings) is refreshed
    from the run's training data (the source frames, with the run's noise / mask / frame split of
    :mod:`nervkit.tasks`) before writing; fine-tuning uses the same data and training frames. The quality is measured on the model rebuilt *from the
    file* against the run's (clean) source frames, so it equals what ``decompress`` + ``eval`` measure on
    the same kind of device (``device``: where fine-tuning and the quality check run; auto = CUDA
    when present). The run folder is not modified.

    Latent grids (NVP) are coded as JPEG images (``jpeg_quality``: 2 best .. 31) and HEVC videos
    (``hevc_crf``, ``hevc_fps``) with ``latent_codec="codec"``, or like weights with ``"weights"``
    (see :class:`~nervkit.compress.model_codec.LatentCoding`); no retraining is needed.
    """
    bits = arguments.integer("--bits", bits, low=1, high=16)
    embed_bits = arguments.integer("--embed-bits", embed_bits, low=1, high=16)
    prune = arguments.number("--prune", prune, low=0.0, high=1.0, high_open=True)
    finetune_epochs = arguments.integer("--finetune-epochs", finetune_epochs, low=0, high=100_000)
    qat_epochs = arguments.integer("--qat-epochs", qat_epochs, low=0, high=100_000)
    latent_codec = arguments.choice("--latent-codec", latent_codec, LATENT_CODECS)
    jpeg_quality = arguments.integer("--jpeg-quality", jpeg_quality, low=2, high=31)
    hevc_crf = arguments.integer("--hevc-crf", hevc_crf, low=0, high=51)
    hevc_fps = arguments.integer("--hevc-fps", hevc_fps, low=1, high=240)
    evaluate, progress = arguments.flag("evaluate", evaluate), arguments.flag("progress", progress)
    if finetune_epochs and not prune:
        raise ConfigError("--finetune-epochs fine-tunes after pruning: give --prune too (or use --qat-epochs)")
    resolve_device(arguments.text("--device", device))  # an unknown or absent device: before any work
    check_output(arguments.path("output", output), read_folders=[arguments.path("run", run_dir)])
    check_file_target(output)
    fitted = load(run_dir)
    notes = []
    if fitted.meta.get("status") != "complete":
        done = len(fitted.history)
        notes.append(f"the run is not complete ({done}/{fitted.meta['train'].get('epochs')} epochs): compressing "
                     "its last checkpoint (finish it with nervkit fit --resume)")
    trains = bool((prune and finetune_epochs) or qat_epochs)
    # fine-tuning holds the run's lock, so that no resumed fit changes the run underneath it
    with fitted.run_dir.lock("nervkit compress (fine-tuning)") if trains else contextlib.nullcontext():
        return _compress(fitted, output, bits=bits, embed_bits=embed_bits, prune=prune,
                         finetune_epochs=finetune_epochs, qat_epochs=qat_epochs, evaluate=evaluate,
                         progress=progress, device=device, latent=LatentCoding(latent_codec, jpeg_quality,
                                                                               hevc_crf, hevc_fps),
                         notes=notes)


def _compress(fitted: FittedRun, output: str | os.PathLike[str], *, bits: int, embed_bits: int, prune: float,
              finetune_epochs: int, qat_epochs: int, evaluate: bool, progress: bool, device: str,
              latent: LatentCoding, notes: list[str]) -> dict[str, Any]:
    masks = magnitude_masks(fitted.model, prune) if prune else {}
    data = None  # the run's training data (its frame split, mask and noise), loaded when needed
    if masks:
        apply_masks(fitted.model, masks)
        if finetune_epochs:
            data = task_data(fitted)
            _finetune(fitted, data, finetune_epochs, masks, progress, device)
    if qat_epochs:
        data = data or task_data(fitted)
        with quantization_aware(fitted.model, bits=bits, embed_bits=embed_bits, sparse_threshold=SPARSE_THRESHOLD):
            _finetune(fitted, data, qat_epochs, masks, progress, device)
    if fitted.model.frame_side_info:  # e.g. HNeRV: store embeddings of the encoder as it is now
        data = data or task_data(fitted)
        fitted.model.refresh_side_info(data.store)
    video = {"fps": fitted.fps, "source": fitted.meta.get("data", {}).get("source"),
             "source_size": fitted.meta.get("source_size")}
    size = write_nerv(output, fitted.model, bits=bits, embed_bits=embed_bits, video=video, latent=latent)
    geo = fitted.model.geometry
    report: dict[str, Any] = {
        "file": str(output),
        "bytes": size,
        "bpp": size * 8 / geo.pixels,
        "frames": geo.num_frames,
        "size": [geo.height, geo.width],
        "bits": bits,
        "embed_bits": embed_bits,
    }
    if any(g.kind.startswith("latent_") for g in fitted.model.stored_groups()):
        report["latent"] = {"codec": latent.codec, "jpeg_quality": latent.jpeg_quality,
                            "hevc_crf": latent.hevc_crf, "hevc_fps": latent.hevc_fps}
    report.update({"prune": prune, "sparsity": sparsity(fitted.model), "finetune_epochs": finetune_epochs,
                   "qat_epochs": qat_epochs})
    if evaluate:
        decoded = read_nerv(output).build_model().to(resolve_device(device))
        quality = evaluate_model(decoded, (data or task_data(fitted)).clean)  # vs the clean video
        report["device"] = str(next(decoded.parameters()).device.type)
        report.update({"psnr": quality.psnr, "psnr_global": quality.psnr_global, "ssim": quality.ssim,
                       "ms_ssim": quality.ms_ssim})
    if notes:
        report["notes"] = notes
    return report


def _finetune(fitted: FittedRun, data: TaskData, epochs: int, masks: dict[str, torch.Tensor],
              progress: bool, device: str) -> None:
    """Continue training the run's model in memory: its own recipe, ``epochs`` epochs, no warm-up,
    pruned weights held at zero after every step."""
    cfg = replace_config(TrainConfig(), **{**fitted.meta["train"], "epochs": epochs, "warmup": 0.0,
                                            "eval_every": epochs, "device": device})
    model = fitted.model
    device = resolve_device(cfg.device)
    trainer = Trainer(model, data.store, cfg, device=device, progress=progress, train_indices=data.train_indices,
                      loss_mask=data.loss_mask, after_step=(lambda: apply_masks(model, masks)) if masks else None)
    trainer.fit()
    model.cpu().eval()


def decompress(path: str | os.PathLike[str], output: str | os.PathLike[str], *, frames: str | None = None,
               lossless: bool = False, crf: int = 12, device: str = "auto", scale: float = 1.0) -> Path:
    """Decode a ``.nerv`` file (all frames, a range ``A:B`` or one frame ``N``) to a video or PNGs.

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
    indices = list(frame_range.resolve(nerv.geometry.num_frames)) if frame_range else None
    model = nerv.build_model().to(target)
    check_scale(model, scale)
    return write_decoded(model, output, fps=nerv.fps, lossless=lossless, indices=indices, crf=crf, scale=scale)


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
    """Format, method, config, video and a byte breakdown (header, each tensor) of a ``.nerv`` file."""
    nerv = read_nerv(arguments.path("path", path))
    h, geo = nerv.header, nerv.geometry
    groups: dict[str, dict[str, float]] = {}
    for s in nerv.sizes[1:]:
        g = groups.setdefault(s.group, {"values": 0, "bytes": 0})
        g["values"] += s.values
        g["bytes"] += s.bytes
    for g in groups.values():
        g["bits_per_value"] = 8.0 * g["bytes"] / g["values"] if g["values"] else 0.0
    return {
        "file": str(path),
        "bytes": nerv.file_bytes,
        "bpp": nerv.file_bytes * 8 / geo.pixels,
        "format_version": 1,
        "method": h["method"],
        "config": h["config"],
        "frames": geo.num_frames,
        "size": [geo.height, geo.width],
        "fps": h.get("video", {}).get("fps"),
        "quantization": h.get("quantization"),
        "container_overhead_bytes": nerv.file_bytes - sum(s.bytes for s in nerv.sizes),
        "groups": groups,
        "sections": [{"name": s.name, "kind": s.kind, "group": s.group, "values": s.values, "bytes": s.bytes,
                      "bits_per_value": s.bits_per_value} for s in nerv.sizes],
    }
