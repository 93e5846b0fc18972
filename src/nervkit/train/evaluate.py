"""Evaluate a representation against its frames: decode in batches, accumulate PSNR/SSIM/MS-SSIM."""

from __future__ import annotations

import torch

from ..data import FrameStore
from ..metrics import QualityAccumulator, QualityReport
from ..models import Representation
from ..precision import autocast


@torch.no_grad()
def evaluate_model(
    model: Representation, store: FrameStore, indices: list[int] | None = None, *, batch_size: int = 8,
    precision: str = "fp32",
) -> QualityReport:
    """Quality of ``model``'s decoded frames (true size, float, clamped to [0, 1]) vs ``store``.

    The frames are scored on the model's device (a 720p MS-SSIM on a GPU instead of the CPU), and stay
    there until the end: the accumulator copies every per-frame value to the host once. A store whose
    frames are on that device already (:meth:`FrameStore.on_device`) is read without any copy.
    ``precision`` (``bf16``/``fp16``): decode under that autocast, as training does; the metrics are
    computed in float32 all the same.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    acc = QualityAccumulator()
    idx = torch.as_tensor(list(range(len(store))) if indices is None else list(indices), dtype=torch.long)
    for chunk in idx.split(batch_size):
        with autocast(precision, device):
            pred = model.decode_frames(chunk.to(device))
        acc.update(pred.float(), store.get(chunk).to(device))
    model.train(was_training)
    return acc.result()
