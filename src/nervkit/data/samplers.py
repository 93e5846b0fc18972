"""The sampler of each batch kind: the one table a new batch kind adds itself to.

``batch_kind`` (a method's declaration, :class:`~nervkit.models.Representation`) → the sampler class
that makes its batches (:class:`~nervkit.data.batches.Sampler`). A new kind (D-NeRV's clips) is one
sampler file, with a ``for_model`` constructor, plus one entry here.
"""

from __future__ import annotations

from ..errors import ModelError
from .batches import BatchConsumer, Sampler, SamplingOptions
from .clips import ClipSampler
from .frame_store import FrameStore
from .pixels import PixelSampler
from .sampling import FrameSampler

SAMPLERS: dict[str, type] = {
    "frames": FrameSampler,
    "pixels": PixelSampler,
    "clips": ClipSampler,
}


def make_sampler(model: BatchConsumer, store: FrameStore, train_indices: list[int],
                 options: SamplingOptions) -> Sampler:
    """The sampler for ``model``'s ``batch_kind`` over the frames ``train_indices`` of ``store``."""
    try:
        cls = SAMPLERS[model.batch_kind]
    except KeyError:
        raise ModelError(f"no sampler for batch kind {model.batch_kind!r}; kinds: {', '.join(SAMPLERS)}") from None
    return cls.for_model(model, store, train_indices, options)
