"""Input checks shared by the metric functions (one-line :class:`~nervkit.errors.InputError` messages)."""

from __future__ import annotations

import torch
from torch import Tensor

from nervkit.errors import InputError


def check_pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Check that ``pred`` and ``target`` are matching float batches of frames ``(N, C, H, W)``.

    Returns both tensors in a common floating dtype (at least float32 precision is *not* forced here;
    half inputs stay half so that a training loss keeps its dtype).
    """
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise InputError(
            f"metrics expect torch tensors, got {type(pred).__name__} and {type(target).__name__}"
        )
    if pred.dim() != 4 or target.dim() != 4:
        raise InputError(
            "metrics expect frames shaped (N, C, H, W), "
            f"got shapes {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.shape != target.shape:
        raise InputError(f"prediction and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise InputError(f"metrics expect float frames in [0, 1], got dtypes {pred.dtype} and {target.dtype}")
    if pred.shape[0] == 0:
        raise InputError("metrics got an empty batch (0 frames)")
    if pred.dtype != target.dtype:
        common = torch.promote_types(pred.dtype, target.dtype)
        pred, target = pred.to(common), target.to(common)
    return pred, target


def check_frame_size(height: int, width: int, minimum: int, what: str) -> None:
    """Raise InputError unless both sides of a ``height`` x ``width`` frame are at least ``minimum``."""
    if min(height, width) < minimum:
        raise InputError(
            f"frames of {height}x{width} (HxW) are too small for {what} "
            f"(each side must be at least {minimum} px)"
        )
