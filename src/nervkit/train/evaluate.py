"""Evaluate a representation against its frames: decode in batches, accumulate PSNR/SSIM/MS-SSIM."""

from __future__ import annotations

import torch

from ..data import FrameStore
from ..metrics import QualityAccumulator, QualityReport
from ..models import Representation


@torch.no_grad()
def evaluate_model(
    model: Representation, store: FrameStore, indices: list[int] | None = None, *, batch_size: int = 8
) -> QualityReport:
    """Quality of ``model``'s decoded frames (true size, float, clamped to [0, 1]) vs ``store``.

    The frames are scored on the model's device (a 720p MS-SSIM on a GPU instead of the CPU).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    acc = QualityAccumulator()
    idx = list(range(len(store))) if indices is None else list(indices)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        pred = model.decode_frames(torch.tensor(chunk, device=device)).float()
        acc.update(pred, store.get(chunk).to(device))
    model.train(was_training)
    return acc.result()
