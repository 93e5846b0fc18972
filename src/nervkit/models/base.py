"""The contract every representation meets (see docs/design.md).

A method is a :class:`Representation` (an ``nn.Module``) plus a :class:`MethodConfig` dataclass:

* ``config.resolve(geometry, target_params)`` turns user options into a fully determined
  architecture for one video (derived strides, widths solved for a parameter budget): a template
  (:meth:`MethodConfig.resolve`) over the method's hooks ``with_layout`` and ``solve_budget``, with
  the option rules declared in ``option()`` checked in between. The resolved config plus the
  :class:`~nervkit.models.config.VideoGeometry` rebuild the model with no access to the video, which
  is what checkpoints and ``.nerv`` files rely on.
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
* ``model.decode_at(positions)`` renders frames at fractional frame positions (interpolation); the
  default interpolates stored per-frame side information (or blends neighbouring frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..data.batches import FrameBatch
from ..errors import ConfigError, ModelError
from .config import VideoGeometry, cli_flag, unresolved_options, validate_options

if TYPE_CHECKING:
    from ..data import FrameStore

STORAGE_KINDS = ("weights", "per_frame", "latent_image", "latent_video", "key_frames")


@dataclass
class StoredGroup:
    """A named group of tensors that must be stored, and how (``kind`` in STORAGE_KINDS).

    ``latent_image`` tensors are (C, H, W) stacks of feature images and ``latent_video`` tensors
    (C, T, H, W) stacks of feature videos, which the compressor may code with image / video codecs;
    ``min_bits``: the least bit depth a ``weights`` group tolerates (the file uses the larger of it
    and ``--bits``).
    """

    name: str
    kind: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    min_bits: int = 0


@dataclass(frozen=True)
class ParameterCounts:
    """``official``: the paper's accounting for this method; ``total``: every stored value."""

    official: int
    total: int
    parts: dict[str, int]


class MethodConfig:
    """Base class of method configs (frozen dataclasses declared with ``option`` fields).

    A method's config declares its options (with their rules, :func:`~nervkit.models.config.option`)
    and :attr:`size_options`, and implements two hooks, :meth:`with_layout` and :meth:`solve_budget`;
    :meth:`resolve` runs them in order.
    """

    #: the options that set the model size; one of them given together with a budget (--params) is a
    #: ConfigError, since both would size the model
    size_options: ClassVar[tuple[str, ...]] = ()
    #: options the model records while it is fitted (not chosen by the user, e.g. D-NeRV's coded
    #: key-frame bytes): a checkpoint may differ from the run's description in them
    recorded_options: ClassVar[tuple[str, ...]] = ()
    #: options a budget given as a rate (``--params 0.05bpp``) implies unless the user set them (D-NeRV:
    #: count the key-frames' bytes in it)
    rate_budget_options: ClassVar[dict[str, Any]] = {}

    def resolve(
        self, geometry: VideoGeometry, target_params: int | None = None, fixed: frozenset[str] = frozenset()
    ) -> MethodConfig:
        """Return a fully determined config for ``geometry`` (derived sizes filled in).

        With ``target_params`` the method sizes itself for that budget, leaving the options named in
        ``fixed`` (the ones the user set explicitly) as they are. The template: :meth:`with_layout` →
        the option rules (:func:`~nervkit.models.config.validate_options`) → a size option and a budget
        both given? → :meth:`solve_budget`.
        """
        cfg = self.with_layout(geometry)
        validate_options(cfg)
        given = [name for name in cfg.size_options if name in fixed]
        if target_params is not None and given:
            raise ConfigError(f"{'/'.join(map(cli_flag, given))} and --params both set the model size: "
                              "give one of them")
        return cfg.solve_budget(geometry, target_params, fixed)

    def with_layout(self, geometry: VideoGeometry) -> MethodConfig:
        """This config with what follows from the frame size filled in (strides, grids). Default: as is."""
        return self

    def solve_budget(self, geometry: VideoGeometry, target: int | None,
                     fixed: frozenset[str]) -> MethodConfig:
        """This (laid-out, valid) config sized for ``target`` parameters, never changing the options in
        ``fixed``; ``target`` None: no budget was given (a method with a default budget sizes itself for
        it). Default: as is without a budget."""
        if target is None:
            return self
        raise NotImplementedError(f"{type(self).__name__} cannot be sized for a parameter budget")


class Representation(nn.Module):
    """Base class of every method's module."""

    method: ClassVar[str] = ""
    batch_kind: ClassVar[str] = "frames"
    #: parameter-name prefixes that pruning leaves alone (e.g. the output head)
    prune_exclude: ClassVar[tuple[str, ...]] = ()
    #: True when stored per-frame side information is computed from the frames by
    #: :meth:`refresh_side_info` (callers then load the frames to refresh it before storing)
    frame_side_info: ClassVar[bool] = False
    #: True when the side information is also an input of training (D-NeRV's coded key-frames): the
    #: trainer refreshes it once before the first step, not only before evaluating and storing
    side_info_feeds_training: ClassVar[bool] = False
    #: True when :meth:`forward` reads ``FrameBatch.neighbours`` (the trainer then fills it)
    needs_neighbours: ClassVar[bool] = False
    #: set by rate training for the length of one step: ``hook(buffer name, value)`` → the value quantized;
    #: a method that computes stored side information in :meth:`forward` passes each tensor through it
    #: (:class:`~nervkit.models.frame_conditioned.FrameConditioned` does), so the rate counts it
    quantize_side_info: Callable[[str, torch.Tensor], torch.Tensor] | None = None
    #: True when the method's convolutions run faster in the channels-last memory format on a GPU (tensor
    #: cores): the trainer then converts the module with ``to(memory_format=torch.channels_last)`` for
    #: training on CUDA, and back at the end (never on the CPU, where channels-first measured faster)
    prefers_channels_last: ClassVar[bool] = False
    #: True when :meth:`decode_scaled` renders at other frame sizes (coordinate-based methods)
    supports_scale: ClassVar[bool] = False

    def __init__(self, config: MethodConfig, geometry: VideoGeometry) -> None:
        super().__init__()
        missing = unresolved_options(config)
        if missing:
            unset = ", ".join(map(cli_flag, missing))
            raise ModelError(f"{type(self).__name__} config is not resolved ({unset} still to be derived): "
                             "call config.resolve(geometry) first")
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

    def decode_at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H_out, W_out) at fractional frame ``positions`` (float, in [0, N − 1]) from
        stored state only, for frame interpolation; integer positions give what :meth:`decode` gives.

        Default: a method whose stored per-frame side information (``stored_groups`` of kind
        ``per_frame``) are buffers indexed by frame decodes that side information linearly
        interpolated between the two neighbouring frames (HNeRV/DNeRV embeddings); any other method
        blends the two neighbouring decoded frames. Index-based methods override it (NeRV: continuous t).
        """
        pos, lo, hi, w = self._neighbours(positions)
        if not bool((w > 0).any()):
            return self.decode(lo)
        per_frame = self._per_frame_buffers()
        if per_frame is not None:
            mixed = {name: torch.lerp(buf[lo.to(buf.device)], buf[hi.to(buf.device)],
                                      w.to(buf).view(-1, *[1] * (buf.dim() - 1)))
                     for name, buf in per_frame.items()}
            with _swapped_buffers(self, mixed):
                return self.decode(torch.arange(len(pos), device=pos.device))
        return torch.lerp(self.decode(lo), self.decode(hi), w.view(-1, 1, 1, 1))

    def decode_scaled(self, indices: torch.Tensor, scale: float) -> torch.Tensor:
        """Frames rendered at ``scale`` × the output size (super-resolution); only methods with
        ``supports_scale`` (coordinates as input) can."""
        raise ModelError(f"{self.method} decodes at its fitted size only; --scale needs a coordinate-based "
                         "method (nvp)")

    def fill_untrained_frames(self, train_indices: list[int]) -> None:
        """Called at the end of training with the frames that were trained on: a method whose stored
        state has per-frame parts that held-out frames never trained (NVP's sparse-grid slices)
        fills them here. Default: nothing."""

    def stored_views(self) -> dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor],
                                              Callable[[torch.Tensor], torch.Tensor]]]:
        """Stored tensors that are another layout of a parameter: stored name → (parameter name, parameter →
        stored tensor, stored tensor → parameter). Rate training quantizes the parameter in the stored layout
        (the file's). Default: none (every stored parameter is stored under its own name and shape)."""
        return {}

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

    @torch.no_grad()
    def decode_frames_scaled(self, indices: torch.Tensor | list[int], scale: float) -> torch.Tensor:
        """:meth:`decode_scaled`, clamped to [0, 1] (the output has no padding to crop)."""
        device = next(self.parameters()).device
        idx = torch.as_tensor(indices, dtype=torch.long, device=device)
        return self.decode_scaled(idx, scale).clamp_(0, 1)

    @torch.no_grad()
    def decode_frames_at(self, positions: torch.Tensor | list[float]) -> torch.Tensor:
        """:meth:`decode_at` cropped to the true size and clamped to [0, 1]."""
        device = next(self.parameters()).device
        pos = torch.as_tensor(positions, dtype=torch.float32, device=device)
        return self.crop(self.decode_at(pos)).clamp_(0, 1)

    def _neighbours(self, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(positions, floor index, next index, fraction) of fractional frame positions."""
        n = self.geometry.num_frames
        pos = torch.as_tensor(positions).to(torch.float32).reshape(-1)
        if pos.numel() and (not bool(torch.isfinite(pos).all()) or pos.min() < 0 or pos.max() > n - 1):
            raise ModelError(f"frame positions must lie in [0, {n - 1}] for a video of {n} frames")
        lo = pos.floor().long().clamp(max=n - 1)
        hi = (lo + 1).clamp(max=n - 1)
        return pos, lo, hi, pos - lo.to(pos.dtype)

    def _per_frame_buffers(self) -> dict[str, torch.Tensor] | None:
        """The stored per-frame tensors, when all of them are buffers with one row per frame."""
        n, buffers, found = self.geometry.num_frames, dict(self.named_buffers()), {}
        for group in self.stored_groups():
            if group.kind != "per_frame":
                continue
            for name in group.tensors:
                buf = buffers.get(name)
                if buf is None or buf.dim() == 0 or buf.shape[0] != n or not buf.is_floating_point():
                    return None
                found[name] = buf
        return found or None


@contextmanager
def _swapped_buffers(module: nn.Module, tensors: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily replace named buffers of ``module`` (restored on exit)."""
    saved = []
    try:
        for name, tensor in tensors.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = module.get_submodule(owner_name) if owner_name else module
            saved.append((owner, leaf, owner._buffers[leaf]))
            owner._buffers[leaf] = tensor
        yield
    finally:
        for owner, leaf, tensor in reversed(saved):
            owner._buffers[leaf] = tensor
