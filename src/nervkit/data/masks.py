"""Inpainting masks: which pixels of each frame are holes.

A mask here is a bool tensor of *holes*, shape ``(1, 1, H, W)`` (the same for every frame) or
``(N, 1, H, W)`` (one per frame); ``True`` = hole (the pixel is hidden from the model / not counted by
the loss). Loss weights are its complement (:func:`loss_weights`: 1 = counted, as
:class:`~nervkit.data.batches.FrameBatch` ``weight`` and :class:`~nervkit.train.losses.ReconstructionLoss` use).

Kinds (``--mask``):

* ``disperse`` — the HNeRV/DNeRV "disperse" mask: five squares centred at (H/2, W/2), (H/4, W/4),
  (H/4, 3W/4), (3H/4, W/4) and (3H/4, 3W/4) (centres truncated to integers, as the official HNeRV
  code). The DNeRV paper uses squares of side 100 at 960×1920; nervkit scales the side to the frame
  *area*, s = round(100·√(H·W / (960·1920))) (at least 1 px), so the holes cover the same 2.7 % of the
  frame at any size: 100 px at 960×1920, 71 at 720×1280, 18 at 180×320, 3 at 36×60.
  ``disperse:S`` gives the side in pixels instead (HNeRV's ``--vid bunny_inpaint_50`` is ``disperse:50``).
  A square of side s covers rows cy − ⌊s/2⌋ … cy − ⌊s/2⌋ + s − 1 (and likewise columns), clipped to the
  frame.
* ``central`` — the DNeRV "central" mask: one rectangle of ⌊H/4⌋ × ⌊W/4⌋ in the centre, top-left corner
  at (⌊(H − ⌊H/4⌋)/2⌋, ⌊(W − ⌊W/4⌋)/2⌋).
* a path — an image (.png/.jpg/.bmp: one mask for every frame) or a video / frame folder with one mask
  per frame (exactly as many frames as the fitted video). White is a hole: a pixel is a hole when its
  channel mean is ≥ 128, or > 0 when the whole file's maximum is ≤ 1 (a 0/1 mask). The mask must have
  the video's frame size (after ``--size``); otherwise an :class:`~nervkit.errors.InputError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError

MASK_KINDS = ("disperse", "central")
#: the DNeRV paper's disperse squares: side 100 px at 960×1920
DISPERSE_SIDE = 100
DISPERSE_REFERENCE = (960, 1920)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def disperse_side(height: int, width: int) -> int:
    """Side of the disperse squares at ``height``×``width`` (scaled to the frame area)."""
    ref_h, ref_w = DISPERSE_REFERENCE
    return max(1, round(DISPERSE_SIDE * math.sqrt(height * width / (ref_h * ref_w))))


def disperse_centres(height: int, width: int) -> list[tuple[int, int]]:
    """The five (row, column) centres of the disperse squares."""
    return [(int(height * fy), int(width * fx))
            for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))]


def disperse_mask(height: int, width: int, side: int | None = None) -> torch.Tensor:
    """Holes (1, 1, H, W) of the five disperse squares (side scaled to the frame unless given)."""
    s = disperse_side(height, width) if side is None else int(side)
    holes = torch.zeros(1, 1, height, width, dtype=torch.bool)
    for cy, cx in disperse_centres(height, width):
        top, left = max(cy - s // 2, 0), max(cx - s // 2, 0)
        holes[..., top : cy - s // 2 + s, left : cx - s // 2 + s] = True
    return holes


def central_mask(height: int, width: int) -> torch.Tensor:
    """Holes (1, 1, H, W): one ⌊H/4⌋ × ⌊W/4⌋ rectangle in the centre."""
    h, w = height // 4, width // 4
    top, left = (height - h) // 2, (width - w) // 2
    holes = torch.zeros(1, 1, height, width, dtype=torch.bool)
    holes[..., top : top + h, left : left + w] = True
    return holes


def check_mask_spec(spec: str) -> str:
    """Check the syntax of a ``--mask`` value (and that a mask file exists) before any decoding."""
    text = str(spec).strip()
    kind, _, arg = text.partition(":")
    if kind.lower() in MASK_KINDS and (arg == "" or kind.lower() == "disperse"):
        if arg:
            try:
                side = int(arg)
            except ValueError:
                raise ConfigError(f"--mask {spec}: the disperse side must be an integer number of pixels") from None
            if side < 1:
                raise ConfigError(f"--mask {spec}: the disperse side must be >= 1 pixel")
        return text
    if not os.path.exists(text):
        raise InputError(f"--mask {spec}: not disperse, disperse:SIDE or central, and no such mask file")
    return text


def make_mask(spec: str, num_frames: int, height: int, width: int) -> torch.Tensor:
    """Holes for ``spec`` (kind name or file) on a video of ``num_frames`` frames of ``height``×``width``:
    (1, 1, H, W) or (N, 1, H, W) bool."""
    text = check_mask_spec(spec)
    kind, _, arg = text.partition(":")
    if kind.lower() == "disperse":
        return disperse_mask(height, width, int(arg) if arg else None)
    if kind.lower() == "central":
        return central_mask(height, width)
    return load_mask(text, num_frames, height, width)


def load_mask(path: str | os.PathLike[str], num_frames: int, height: int, width: int) -> torch.Tensor:
    """Holes from an image (one mask for all frames) or a video/frame folder (one per frame)."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as image:
                array = np.asarray(image.convert("RGB")).transpose(2, 0, 1)[None]
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"--mask {path}: cannot read the mask image ({exc})") from None
    else:
        from ..io import probe_video, read_video

        info = probe_video(p)
        if info.num_frames != num_frames:
            raise InputError(f"--mask {path}: the mask video has {info.num_frames} frames but the video has "
                             f"{num_frames} (give one mask per frame, or one image for all)")
        array = read_video(p).frames.numpy()
    n, h, w = array.shape[0], array.shape[2], array.shape[3]
    if (h, w) != (height, width):
        raise InputError(f"--mask {path}: the mask is {h}x{w} but the frames are {height}x{width} (HxW)")
    if n != 1 and n != num_frames:  # a video whose declared count was wrong
        raise InputError(f"--mask {path}: {n} masks for {num_frames} frames")
    level = array.astype(np.float32).mean(axis=1, keepdims=True)  # (n, 1, H, W)
    holes = level > 0 if array.max() <= 1 else level >= 128
    return torch.from_numpy(np.ascontiguousarray(holes))


def check_mask_shape(holes: torch.Tensor, num_frames: int, height: int, width: int) -> None:
    """InputError unless ``holes`` is (1 or N, 1, H, W)."""
    if holes.dim() != 4 or holes.shape[1] != 1 or holes.shape[0] not in (1, num_frames) \
            or tuple(holes.shape[2:]) != (height, width):
        raise InputError(f"a mask shaped {tuple(holes.shape)} does not fit {num_frames} frames of "
                         f"{height}x{width} (expected (1 or {num_frames}, 1, {height}, {width}))")


def loss_weights(holes: torch.Tensor) -> torch.Tensor:
    """Float loss weights: 1 where counted, 0 in the holes."""
    return (~holes).to(torch.float32)


def holes_for(holes: torch.Tensor, indices: torch.Tensor | list[int]) -> torch.Tensor:
    """The holes of frames ``indices`` (n, 1, H, W) from a (1 or N, 1, H, W) mask."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    if holes.shape[0] == 1:
        return holes.expand(len(idx), -1, -1, -1)
    return holes[idx]


def hole_fraction(holes: torch.Tensor) -> float:
    return float(holes.float().mean())
