"""Conversions between model tensors and 8-bit frames: :func:`to_uint8` and :func:`iter_hwc_uint8`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import InputError


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Float frames in ``[0, 1]`` (typically ``(..., 3, H, W)``) to ``uint8``, same shape.

    Values are scaled by 255, rounded to nearest (halves up) and clamped to ``[0, 255]``; NaN becomes 0.
    A ``uint8`` tensor is returned unchanged. The result lives on the input's device.
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"to_uint8 expects a torch.Tensor, got {type(frames).__name__}")
    if frames.dtype == torch.uint8:
        return frames
    if not frames.is_floating_point():
        raise TypeError(f"to_uint8 expects a float or uint8 tensor, got {frames.dtype}")
    scaled = torch.nan_to_num(frames.detach().float(), nan=0.0) * 255.0
    return torch.floor(scaled + 0.5).clamp_(0, 255).to(torch.uint8)


def _float_array_to_uint8(array: np.ndarray) -> np.ndarray:
    """numpy version of :func:`to_uint8` (scale, round half up, clamp)."""
    scaled = np.nan_to_num(array.astype(np.float32), nan=0.0) * 255.0
    return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def iter_hwc_uint8(frame: object, where: str) -> Iterator[np.ndarray]:
    """Split what a writer was given into ``(H, W, 3)`` uint8 RGB arrays.

    Accepts a numpy ``(H, W, 3)`` frame or ``(N, H, W, 3)`` batch (uint8, or float in ``[0, 1]``) and a
    torch ``(3, H, W)`` frame or ``(N, 3, H, W)`` batch (uint8, or float in ``[0, 1]``, any device).
    Anything else raises :class:`InputError` naming ``where`` (the output path).
    """
    if isinstance(frame, torch.Tensor):
        t = frame.detach()
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[1] != 3 or not (t.dtype == torch.uint8 or t.is_floating_point()):
            raise InputError(
                f"cannot write a tensor of shape {tuple(frame.shape)} and dtype {frame.dtype} to {where}: "
                f"expected (3, H, W) or (N, 3, H, W), uint8 or float in [0, 1]"
            )
        batch = to_uint8(t).cpu().permute(0, 2, 3, 1).contiguous().numpy()
    elif isinstance(frame, np.ndarray):
        batch = frame[None] if frame.ndim == 3 else frame
        ok_dtype = batch.dtype == np.uint8 or np.issubdtype(batch.dtype, np.floating)
        if batch.ndim != 4 or batch.shape[3] != 3 or not ok_dtype:
            raise InputError(
                f"cannot write an array of shape {frame.shape} and dtype {frame.dtype} to {where}: "
                f"expected (H, W, 3) or (N, H, W, 3), uint8 or float in [0, 1]"
            )
        if batch.dtype != np.uint8:
            batch = _float_array_to_uint8(batch)
    else:
        raise InputError(
            f"cannot write a {type(frame).__name__} to {where}: expected a numpy array or torch tensor"
        )
    if batch.shape[1] == 0 or batch.shape[2] == 0:
        raise InputError(f"cannot write empty frames of shape {tuple(batch.shape[1:])} to {where}")
    for one in batch:
        yield np.ascontiguousarray(one)
