"""Downstream tasks of a fitted representation: interpolation, inpainting, denoising (docs/tasks.md).

The options that change *what a run is trained on* are :class:`TaskOptions` (``nervkit fit
--train-frames/--mask/--noise/--noise-seed``); they are stored with the data options in run.json, and
:func:`prepare` rebuilds the same training data from the decoded video for ``fit``, ``--resume`` and
``compress``. Order: noise is added to the clean frames first (:mod:`.denoising`), the holes of the
mask are then blanked and excluded from the loss (:mod:`.inpainting`), and the frame split decides
which frames train and which are held out (:mod:`.interpolation`). :func:`evaluate_run` scores a
fitted model against the *clean* video: all frames (the run's headline numbers), and per task the
training / held-out frames, the inside of the holes, the noisy input.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any

import torch

from ..data import FrameStore
from ..data.masks import check_mask_spec, holes_for, loss_weights, make_mask
from ..metrics import QualityAccumulator, QualityReport
from ..metrics.masked import RegionAccumulator
from ..models import Representation
from ..models.config import option
from .denoising import NoiseSpec, add_noise
from .inpainting import masked_store
from .interpolation import FrameSplit, SplitFrameStore, heldout_protocol


@dataclass(frozen=True)
class TaskOptions:
    """What the run is trained on (stored in run.json under ``data``)."""

    train_frames: str = option("all", "frames to train on: all, even, odd, or A:B (of every A+B frames the first "
                                      "A train, the next B are held out and scored apart; E-NeRV: 3:1)")
    mask: str | None = option(None, "inpainting: train on masked frames with the holes left out of the loss: "
                                    "disperse, disperse:SIDE, central, or a mask image/video (white = hole)")
    noise: str | None = option(None, "denoising: train on a noisy copy, white:SIGMA (Gaussian, std on [0,1]) or "
                                     "salt-pepper:P (fraction of pixels set to 0 or 1); scored against the clean video")
    noise_seed: int = option(0, "seed of the noise (the noisy copy is reproducible)")

    def validate(self) -> TaskOptions:
        """Check the syntax of every option (before any decoding); returns the normalised options."""
        split = FrameSplit.parse(self.train_frames)
        noise = str(NoiseSpec.parse(self.noise)) if self.noise else None
        mask = check_mask_spec(self.mask) if self.mask else None
        return TaskOptions(split.spec, mask, noise, int(self.noise_seed))

    @property
    def active(self) -> bool:
        return self.train_frames != "all" or bool(self.mask) or bool(self.noise)


@dataclass
class TaskData:
    """The training data of a run and what its evaluation needs."""

    options: TaskOptions
    clean: FrameStore  # the decoded video: every score is against it
    store: FrameStore  # what the model is trained on (noisy, masked, split-aware neighbours)
    train_indices: list[int]
    heldout_indices: list[int]
    holes: torch.Tensor | None = None  # (1 or N, 1, H, W) bool, True = hole
    noisy: FrameStore | None = None  # the noisy copy (before masking)

    @property
    def loss_mask(self) -> torch.Tensor | None:
        return None if self.holes is None else loss_weights(self.holes)


def prepare(options: TaskOptions, clean: FrameStore) -> TaskData:
    """The training data for ``options`` from the decoded video ``clean`` (see module docstring)."""
    opts = options.validate()
    train, held = FrameSplit.parse(opts.train_frames).indices(len(clean))
    store, noisy, holes = clean, None, None
    if opts.noise:
        noisy = store = add_noise(clean, opts.noise, opts.noise_seed)
    if opts.mask:
        holes = make_mask(opts.mask, len(clean), clean.height, clean.width)
        store = masked_store(store, holes)
    if held:
        store = SplitFrameStore.wrap(store, train)
    return TaskData(opts, clean, store, train, held, holes, noisy)


def _result(acc: QualityAccumulator) -> dict[str, Any] | None:
    if not len(acc):
        return None
    r = acc.result()
    return {"frames": r.frames, "psnr": r.psnr, "psnr_global": r.psnr_global, "ssim": r.ssim,
            "ms_ssim": r.ms_ssim, "psnr_per_frame": r.psnr_per_frame}


@torch.no_grad()
def evaluate_run(model: Representation, data: TaskData, batch_size: int = 8) -> tuple[QualityReport, dict[str, Any]]:
    """(all frames vs the clean video, the task sections) for a fitted model; one decoding pass.

    The model's side information must be fresh for ``data.store`` (the trainer refreshes it on every
    frame, held-out ones included, at the end of training: the "encoder" protocol).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    opts = data.options
    whole = QualityAccumulator()
    train_acc, held_acc = QualityAccumulator(), QualityAccumulator()
    inside, vs_noisy, noisy_in = RegionAccumulator(), QualityAccumulator(), QualityAccumulator()
    held = set(data.heldout_indices)
    n = len(data.clean)
    for start in range(0, n, batch_size):
        idx = list(range(start, min(start + batch_size, n)))
        pred = model.decode_frames(idx).float()
        clean = data.clean.get(idx).to(device)
        whole.update(pred, clean)
        if held:
            for acc, rows in ((train_acc, [k for k, i in enumerate(idx) if i not in held]),
                              (held_acc, [k for k, i in enumerate(idx) if i in held])):
                if rows:
                    acc.update(pred[rows], clean[rows])
        if data.holes is not None:
            inside.update(pred, clean, holes_for(data.holes, idx).to(device))
        if data.noisy is not None:
            noisy = data.noisy.get(idx).to(device)
            vs_noisy.update(pred, noisy)
            noisy_in.update(noisy, clean)
    model.train(was_training)
    report = whole.result()
    sections: dict[str, Any] = {}
    if held:
        sections["interpolation"] = {
            "train_frames": opts.train_frames,
            "heldout_protocol": heldout_protocol(model),
            "train_indices": list(data.train_indices),
            "heldout_indices": list(data.heldout_indices),
            "train": _result(train_acc),
            "heldout": _result(held_acc),
        }
    if data.holes is not None:
        sections["inpainting"] = {
            "mask": opts.mask,
            "protocol": "masked-training",
            "hole_fraction": float(data.holes.float().mean()),
            "whole_frame": {"psnr": report.psnr, "psnr_global": report.psnr_global, "ssim": report.ssim,
                            "ms_ssim": report.ms_ssim},
            "inside_mask": inside.result(),
        }
    if data.noisy is not None:
        clean_only = {"psnr": report.psnr, "psnr_global": report.psnr_global, "ssim": report.ssim,
                      "ms_ssim": report.ms_ssim}
        noisy_report, fit_report = noisy_in.result(), vs_noisy.result()
        sections["denoising"] = {
            "noise": opts.noise,
            "noise_seed": opts.noise_seed,
            "decoded_vs_clean": clean_only,
            "noisy_input_vs_clean": {"psnr": noisy_report.psnr, "psnr_global": noisy_report.psnr_global,
                                     "ssim": noisy_report.ssim, "ms_ssim": noisy_report.ms_ssim},
            "decoded_vs_noisy_input": {"psnr": fit_report.psnr, "ssim": fit_report.ssim},
            "psnr_gain": report.psnr - noisy_report.psnr,
        }
    if data.clean.segments:
        sections["videos"] = per_video_quality(report, data.clean.segments, data.clean.names)
    return report, sections


def per_video_quality(report: QualityReport, segments: tuple[int, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """A collection's quality per video (from the per-frame values of ``report``) and averaged over the
    videos (each video counts once, whatever its length), beside the all-frames numbers."""
    rows = []
    start = 0
    for name, count in zip(names, segments):
        frames = slice(start, start + count)
        mse = report.mse_per_frame[frames]
        mean_mse = sum(mse) / count
        ms = report.ms_ssim_per_frame[frames] if report.ms_ssim_per_frame is not None else None
        rows.append({
            "name": name, "frames": count, "first_frame": start,
            "psnr": sum(report.psnr_per_frame[frames]) / count,
            "psnr_global": min(report.psnr_cap, -10 * math.log10(max(mean_mse, 1e-20))),
            "ssim": sum(report.ssim_per_frame[frames]) / count,
            "ms_ssim": sum(ms) / count if ms is not None else None,
        })
        start += count
    mean = {key: (sum(r[key] for r in rows) / len(rows) if all(r[key] is not None for r in rows) else None)
            for key in ("psnr", "psnr_global", "ssim", "ms_ssim")}
    return {"count": len(rows), "mean_over_videos": mean, "per_video": rows}


def summarize(sections: dict[str, Any]) -> dict[str, Any]:
    """The task sections without per-frame lists and index lists (for printed / JSON summaries)."""
    drop = {"per_frame", "psnr_per_frame", "train_indices", "heldout_indices"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in drop}
        return value

    return strip(sections)


__all__ = ["FrameSplit", "NoiseSpec", "SplitFrameStore", "TaskData", "TaskOptions", "evaluate_run", "prepare",
           "per_video_quality", "summarize"]
