"""Inpainting: fill holes given by a mask (:mod:`nervkit.data.masks`: ``disperse``, ``central``, or a
mask image/video; white = hole). Two protocols:

* **masked input at test time** (DNeRV paper §5.4; ``nervkit inpaint RUN --mask M``): the model is
  fitted to the clean video, then decoded from masked inputs: a frame-conditioned method (HNeRV,
  DNeRV — ``frame_side_info``) recomputes its per-frame side information from the masked frames
  (hole pixels set to 0; DNeRV's frame differences are then those of the masked frames) and decodes
  it. An index-based method (NeRV) takes no frames as input, so for it this protocol is just the plain
  decode (``"protocol": "index"`` in the output says so). The run folder is not modified.
* **masked training** (HNeRV's code, spec §3.7; ``nervkit fit … --mask M``): the training input is
  frame × (1 − hole) and the loss compares prediction × (1 − hole) with frame × (1 − hole), so the
  holes never count and the network fills them from what it learned elsewhere
  (``FrameBatch.mask`` = 1 − hole; :class:`~nervkit.train.losses.ReconstructionLoss`). A
  frame-conditioned method's side information is computed from the masked frames, for training and
  at evaluation.

Both report the quality of the decode against the *unmasked* original on the whole frame (PSNR,
SSIM, MS-SSIM) and inside the holes only (PSNR over the hole pixels, SSIM averaged over the window
centres in the holes; :mod:`nervkit.metrics.masked`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from ..data import FrameStore
from ..data.masks import check_mask_shape, hole_fraction, holes_for
from ..metrics import QualityAccumulator
from ..metrics.masked import RegionAccumulator
from ..models import Representation


def masked_store(store: FrameStore, holes: torch.Tensor) -> FrameStore:
    """A copy of ``store`` with the hole pixels set to 0 (frame × (1 − hole)), in memory."""
    check_mask_shape(holes, len(store), store.height, store.width)
    out = np.empty(tuple(store.frames.shape), dtype=np.uint8)
    for start in range(0, len(store), 16):
        idx = list(range(start, min(start + 16, len(store))))
        frames = store.frames[idx]
        out[start : idx[-1] + 1] = frames.masked_fill(holes_for(holes, idx), 0).numpy()
    values = {f.name: getattr(store, f.name) for f in fields(FrameStore)}
    values.update(frames=torch.from_numpy(out), memory_mapped=False)
    return FrameStore(**values)


def protocol_name(model: Representation) -> str:
    """``"masked-input"`` for frame-conditioned methods, ``"index"`` (plain decode) for the others."""
    return "masked-input" if model.frame_side_info else "index"


@torch.no_grad()
def evaluate_inpainting(model: Representation, clean: FrameStore, holes: torch.Tensor,
                        batch_size: int = 8) -> dict[str, Any]:
    """Whole-frame and inside-the-holes quality of ``model``'s decode against ``clean``."""
    device = next(model.parameters()).device
    whole, inside = QualityAccumulator(), RegionAccumulator()
    for start in range(0, len(clean), batch_size):
        idx = list(range(start, min(start + batch_size, len(clean))))
        pred = model.decode_frames(idx).float()
        target = clean.get(idx).to(device)
        whole.update(pred, target)
        inside.update(pred, target, holes_for(holes, idx).to(device))
    report = whole.result()
    return {"whole_frame": _summary(report), "inside_mask": inside.result(), "hole_fraction": hole_fraction(holes)}


def inpaint_from_masked_input(model: Representation, clean: FrameStore, holes: torch.Tensor,
                              mask_spec: str) -> dict[str, Any]:
    """The DNeRV protocol on a model fitted to the clean video (``model`` is changed in place: its
    side information is recomputed from the masked frames)."""
    was_training = model.training
    model.eval()
    if model.frame_side_info:
        model.refresh_side_info(masked_store(clean, holes))
    model.train(was_training)
    result = {"mask": mask_spec, "protocol": protocol_name(model)}
    if not model.frame_side_info:
        result["note"] = (f"{model.method} decodes from the frame index alone: masked inputs cannot change "
                          "its output, so this protocol is the plain decode")
    return {**result, **evaluate_inpainting(model, clean, holes)}


def _summary(report: Any) -> dict[str, Any]:
    return {"frames": report.frames, "psnr": report.psnr, "psnr_global": report.psnr_global,
            "ssim": report.ssim, "ms_ssim": report.ms_ssim, "psnr_per_frame": report.psnr_per_frame}
