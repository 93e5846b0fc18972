"""The contract every representation meets (see docs/design.md).

A method is a :class:`Representation` (an ``nn.Module``) plus a :class:`MethodConfig` dataclass:

* ``config.resolve(geometry, target_params)`` turns user options into a fully determined
  architecture for one video (derived strides, widths solved for a parameter budget). The resolved
  config plus the :class:`~nervkit.models.config.VideoGeometry` rebuild the model with no access to
  the video, which is what checkpoints and ``.nerv`` files rely on.
* ``model(batch)`` is the training prediction for a batch of the kind the method declares in
  ``batch_kind`` (``"frames"``: frame indices with their frames; later kinds: pixel samples, clips).
* ``model.decode(indices)`` renders frames from what is stored, at the padded ``output_size``;
  :meth:`Representation.decode_frames` crops back to the true frame size.
* ``model.stored_groups()`` lists what must be stored, each group with a storage kind, for the
  compressor; ``model.parameter_counts()`` gives the paper's accounting beside the total.
* ``model.refresh_side_info(store)`` recomputes stored per-frame side information from the frames
  (HNeRV: the encoder's embeddings); the trainer calls it before every evaluation and at the end of
  training, the compressor before writing a file. ``model.load_stored(tensors)`` loads exactly what a
  file stored (a method drops its training-only modules, e.g. an encoder, there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from .config import VideoGeometry

if TYPE_CHECKING:
    from ..data import FrameStore

STORAGE_KINDS = ("weights", "per_frame", "latent_image", "key_frames")


@dataclass
class FrameBatch:
    """A training/evaluation batch of whole frames.

    ``indices``: (n,) frame indices in the fitted video. ``frames``: (n, 3, H, W) float targets in
    [0, 1] at the true size (frame-conditioned methods also read them as input). ``mask``: optional
    (n, 1, H, W) loss weights (1 = counted).
    """

    indices: torch.Tensor
    frames: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> FrameBatch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return FrameBatch(move(self.indices), move(self.frames), move(self.mask))

    @property
    def target(self) -> torch.Tensor:
        assert self.frames is not None, "this batch carries no target frames"
        return self.frames


@dataclass
class StoredGroup:
    """A named group of tensors that must be stored, and how (``kind`` in STORAGE_KINDS)."""

    name: str
    kind: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class ParameterCounts:
    """``official``: the paper's accounting for this method; ``total``: every stored value."""

    official: int
    total: int
    parts: dict[str, int]


class MethodConfig:
    """Base class of method configs (frozen dataclasses declared with ``option`` fields)."""

    def resolve(
        self, geometry: VideoGeometry, target_params: int | None = None, fixed: frozenset[str] = frozenset()
    ) -> MethodConfig:
        """Return a fully determined config for ``geometry`` (derived sizes filled in).

        With ``target_params`` the method sizes itself for that budget, leaving the options named in
        ``fixed`` (the ones the user set explicitly) as they are.
        """
        raise NotImplementedError


class Representation(nn.Module):
    """Base class of every method's module."""

    method: ClassVar[str] = ""
    batch_kind: ClassVar[str] = "frames"
    #: parameter-name prefixes that pruning leaves alone (e.g. the output head)
    prune_exclude: ClassVar[tuple[str, ...]] = ()
    #: True when stored per-frame side information is computed from the frames by
    #: :meth:`refresh_side_info` (callers then load the frames to refresh it before storing)
    frame_side_info: ClassVar[bool] = False

    def __init__(self, config: MethodConfig, geometry: VideoGeometry) -> None:
        super().__init__()
        self.config = config
        self.geometry = geometry

    # -- the contract ---------------------------------------------------------------------------
    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) the network produces (≥ the true size; decoded frames are cropped back)."""
        raise NotImplementedError

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H_out, W_out) in [0, 1] for frame ``indices``, from stored state only."""
        raise NotImplementedError

    def forward(self, batch: FrameBatch) -> torch.Tensor:
        """Training prediction for ``batch`` at ``output_size``; index-based methods just decode."""
        return self.decode(batch.indices)

    def stored_groups(self) -> list[StoredGroup]:
        """What a compressed file must hold. Default: all weights and persistent buffers."""
        return [StoredGroup("decoder", "weights", dict(self.state_dict()))]

    def parameter_counts(self) -> ParameterCounts:
        total = sum(p.numel() for p in self.parameters())
        return ParameterCounts(official=total, total=total, parts={"all": total})

    def refresh_side_info(self, store: FrameStore) -> None:
        """Recompute the stored per-frame side information from the frames of ``store`` so that
        :meth:`decode` reflects the current weights. Default: nothing to recompute."""

    def load_stored(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load the tensors of :meth:`stored_groups` as a file holds them, strictly (a missing or
        extra tensor is an error). Methods with training-only modules that are not stored (an encoder)
        drop them here, so the rebuilt module holds what the file holds and nothing else."""
        self.load_state_dict(tensors, strict=True)

    # -- shared helpers ---------------------------------------------------------------------------
    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        """Crop network output to the true frame size (top-left; padding is bottom/right)."""
        return frames[..., : self.geometry.height, : self.geometry.width]

    @torch.no_grad()
    def decode_frames(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """Decoded frames at the true size, float in [0, 1]."""
        device = next(self.parameters()).device
        idx = torch.as_tensor(indices, dtype=torch.long, device=device)
        return self.crop(self.decode(idx)).clamp_(0, 1)
