"""The sampler of each batch kind: the one table a new batch kind adds itself to.

``batch_kind`` (a method's declaration, :class:`~nervkit.models.Representation`) → the sampler class
that makes its batches (:class:`~nervkit.data.batches.Sampler`). A new kind (D-NeRV's clips) is one
sampler file, with a ``for_model`` constructor, plus one entry here.
"""

from __future__ import annotations

from ..errors import ConfigError, ModelError
from .batches import BatchConsumer, Sampler, SamplingOptions
from .clips import ClipSampler
from .frame_store import FrameStore
from .patches import PatchSampler
from .pixels import PixelSampler
from .sampling import FrameSampler

SAMPLERS: dict[str, type] = {
    "frames": FrameSampler,
    "pixels": PixelSampler,
    "clips": ClipSampler,
    "patches": PatchSampler,
}


def check_sampling(model: BatchConsumer, options: SamplingOptions) -> None:
    """ConfigError, before anything is trained or written, when ``options`` cannot make ``model``'s batches
    (a sampler class may define ``check(model, options)``; --patch-size for a model not trained on patches)."""
    cls = SAMPLERS.get(model.batch_kind)
    if options.patch_size and cls is not PatchSampler:
        raise ConfigError(f"--patch-size applies to methods trained on patches (hinerv), not to "
                          f"{getattr(model, 'method', model.batch_kind)}")
    check = getattr(cls, "check", None)
    if check is not None:
        check(model, options)


def make_sampler(model: BatchConsumer, store: FrameStore, train_indices: list[int],
                 options: SamplingOptions) -> Sampler:
    """The sampler for ``model``'s ``batch_kind`` over the frames ``train_indices`` of ``store``."""
    try:
        cls = SAMPLERS[model.batch_kind]
    except KeyError:
        raise ModelError(f"no sampler for batch kind {model.batch_kind!r}; kinds: {', '.join(SAMPLERS)}") from None
    return cls.for_model(model, store, train_indices, options)
