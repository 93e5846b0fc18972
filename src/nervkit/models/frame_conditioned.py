"""Shared base of the frame-conditioned methods (HNeRV, DNeRV; D-NeRV's key-frame encoder will sit
beside them): a frame is decoded from per-frame side information that training-only encoders compute
from the frames themselves (HNeRV paper §3.1; DNeRV paper Eq. 4).

What the base does, so that a method holds only its fields, layout/budget, modules, decoder and counts
(as :mod:`nervkit.models.index_based` does for the index-based methods):

* the side information lives in persistent per-frame buffers (``side_info_buffers``, one row per
  frame) that :meth:`FrameConditioned.decode` reads, so decoding needs stored state only;
  :meth:`~FrameConditioned.refresh_side_info` recomputes them with the current encoders over a whole
  frame store, in batches, without gradients;
* :meth:`~FrameConditioned.stored_groups`: the decoder weights (everything but the encoders and the
  buffers) and one ``per_frame`` group per buffer; :meth:`~FrameConditioned.load_stored` drops the
  encoders first (a file holds none);
* frame interpolation (``decode_at``) is the contract's default: the per-frame buffers interpolated
  linearly between the two neighbouring frames, then decoded;
* the output size is the embedding grid ``embed_height × embed_width`` up-sampled by the product of
  the decoder ``strides``; :class:`FrameConditionedConfig` derives that grid and solves the decoder
  width C₀ (``channels``) for a budget (``--params``, or ``--model-size`` when neither is given).

A method implements ``encode(frames, neighbours)`` (its encoders) and ``decode_embeddings(*side_info)``
(its decoder), and its config ``solve_channels(geometry, budget)``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..errors import InputError, ModelError
from .base import MethodConfig, Representation, StoredGroup
from .config import VideoGeometry
from .hybrid import index_batches, kernel_sizes
from .sizing import resolve_layout

if TYPE_CHECKING:
    from ..data import FrameStore
    from ..data.batches import FrameBatch


class FrameConditionedConfig(MethodConfig):
    """Config base of the frame-conditioned methods (their fields: ``strides``, ``embed_height``,
    ``embed_width``, ``channels``, ``model_size``, ``kernel_min``, ``kernel_max``)."""

    size_options = ("channels", "model_size")
    strides: tuple[int, ...]
    embed_height: int
    embed_width: int
    channels: int
    model_size: float
    kernel_min: int
    kernel_max: int

    def with_layout(self, geometry: VideoGeometry) -> Any:
        """The strides (given, or derived from the frame size) and the embedding grid h×w they leave:
        ⌈H/Πs⌉×⌈W/Πs⌉ unless given (:func:`~nervkit.models.sizing.resolve_layout`)."""
        layout = resolve_layout(geometry.height, geometry.width, self.strides, self.embed_height,
                                self.embed_width)
        return replace(self, strides=layout.strides,  # type: ignore[type-var]
                       embed_height=layout.grid_height, embed_width=layout.grid_width)

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> Any:
        """C₀ for the budget: ``--params`` when given (recorded in the resolved config as ``model_size``,
        in millions), else ``--model-size`` unless ``--channels`` sets C₀ itself."""
        if target is None and self.channels:
            return self
        cfg = self if target is None else replace(self, model_size=target / 1e6)  # type: ignore[type-var]
        return replace(cfg, channels=cfg.solve_channels(geometry, round(cfg.model_size * 1e6)))

    def solve_channels(self, geometry: VideoGeometry, budget: int) -> int:
        """The decoder width C₀ whose model meets ``budget`` parameters (the method's own rule)."""
        raise NotImplementedError

    @property
    def kernels(self) -> list[int]:
        """Kernel of each decoder block: k_i = min(k_min + 2i, k_max) (HNeRV paper §3.2; spec §1.2)."""
        return kernel_sizes(len(self.strides), self.kernel_min, self.kernel_max)


class FrameConditioned(Representation):
    """Frame → training-only encoders → per-frame side information (stored) → decoder → frame."""

    frame_side_info = True
    #: the training-only encoders (submodule names): never stored nor counted, dropped by load_stored
    encoder_names: ClassVar[tuple[str, ...]] = ("encoder",)
    #: the per-frame side information: buffers (N, C, h, w), in the order decode_embeddings takes them
    side_info_buffers: ClassVar[tuple[str, ...]] = ()

    @property
    def output_size(self) -> tuple[int, int]:
        f = math.prod(self.config.strides)
        return self.config.embed_height * f, self.config.embed_width * f

    # -- the method's hooks -----------------------------------------------------------------------
    def encode(self, frames: torch.Tensor, neighbours: torch.Tensor | None = None) -> Any:
        """The side information of true-size frames (n, 3, H, W) in [0, 1] (with their neighbours
        (n, 2, 3, H, W), previous and next, for a method that ``needs_neighbours``): one tensor, or a
        tuple of one per ``side_info_buffers``. It starts with :meth:`check_inputs`."""
        raise NotImplementedError

    def decode_embeddings(self, *side_info: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H_out, W_out) from the side information of n frames."""
        raise NotImplementedError

    # -- the contract -----------------------------------------------------------------------------
    def forward(self, batch: FrameBatch) -> torch.Tensor:
        """Training prediction: encode the batch's frames (and neighbours), decode what that gives."""
        return self.decode_embeddings(*self._side_info(batch.target, batch.neighbours))

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode_embeddings(*(getattr(self, name)[indices] for name in self.side_info_buffers))

    @torch.no_grad()
    def refresh_side_info(self, store: FrameStore, batch_size: int = 8) -> None:
        """Run the current encoders on every frame of ``store`` (and its neighbours in the store, for
        a method that needs them) into the stored side information."""
        n = self.geometry.num_frames
        if len(store) != n:
            raise ModelError(f"the store has {len(store)} frames but the model was fitted to {n}")
        buffers = [getattr(self, name) for name in self.side_info_buffers]
        device = buffers[0].device
        for idx in index_batches(n, batch_size):
            frames = store.get(idx).to(device)
            neighbours = store.neighbours(idx).to(device) if self.needs_neighbours else None
            for buffer, value in zip(buffers, self._side_info(frames, neighbours)):
                buffer[idx[0] : idx[-1] + 1] = value

    def stored_groups(self) -> list[StoredGroup]:
        """The decoder weights (``weights``) and one ``per_frame`` group per side-information buffer;
        no encoders."""
        encoders = tuple(f"{name}." for name in self.encoder_names)
        decoder = {k: v for k, v in self.state_dict().items()
                   if not k.startswith(encoders) and k not in self.side_info_buffers}
        per_frame = [StoredGroup(name, "per_frame", {name: getattr(self, name).detach()})
                     for name in self.side_info_buffers]
        return [StoredGroup("decoder", "weights", decoder), *per_frame]

    def load_stored(self, tensors: dict[str, torch.Tensor]) -> None:
        """A file holds no encoders: drop them, then load the decoder and side information strictly."""
        for name in self.encoder_names:
            delattr(self, name)  # unregister the submodule (a None submodule would let its keys through)
            setattr(self, name, None)
        super().load_stored(tensors)

    # -- helpers ------------------------------------------------------------------------------------
    def check_inputs(self, frames: torch.Tensor, neighbours: torch.Tensor | None = None) -> None:
        """One-line errors for what :meth:`encode` cannot take: no encoders (a module rebuilt from a
        ``.nerv`` file), frames of another size than the fitted ones, and missing or misshapen
        neighbours (for a method that needs them)."""
        name, size = type(self).__name__, (self.geometry.height, self.geometry.width)
        if any(getattr(self, encoder) is None for encoder in self.encoder_names):
            what = "encoder" if len(self.encoder_names) == 1 else "encoders"
            raise ModelError(f"this {name} model was rebuilt from stored tensors and holds no {what}: it can "
                             "decode its stored frames but not encode new ones")
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, *size):
            raise InputError(f"{name} was fitted to 3x{size[0]}x{size[1]} frames but got frames of shape "
                             f"{tuple(frames.shape[1:])}")
        if not self.needs_neighbours:
            return
        if neighbours is None:
            raise ModelError(f"{name} needs the previous and next frame of every frame (FrameBatch."
                             "neighbours, e.g. FrameStore.neighbours(indices)); the trainer fills them")
        if tuple(neighbours.shape) != (frames.shape[0], 2, 3, *size):
            raise InputError(f"the neighbouring frames have shape {tuple(neighbours.shape)}, expected "
                             f"{(frames.shape[0], 2, 3, *size)} (previous and next frame of each)")

    def _side_info(self, frames: torch.Tensor, neighbours: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        side = self.encode(frames, neighbours) if self.needs_neighbours else self.encode(frames)
        side = (side,) if isinstance(side, torch.Tensor) else tuple(side)
        hook = self.quantize_side_info  # rate training: the values the file will hold, and their bits
        return side if hook is None else tuple(hook(name, v) for name, v in zip(self.side_info_buffers, side))
