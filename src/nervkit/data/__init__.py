"""Data: frame stores, training batches and the samplers that make them."""

from .batches import Batch, FrameBatch, PixelBatch, Sampler, SamplingOptions
from .frame_store import FrameStore, load_frames
from .pixels import PixelSampler
from .samplers import SAMPLERS, make_sampler
from .sampling import FrameSampler, epoch_batches

__all__ = [
    "SAMPLERS",
    "Batch",
    "FrameBatch",
    "FrameSampler",
    "FrameStore",
    "PixelBatch",
    "PixelSampler",
    "Sampler",
    "SamplingOptions",
    "epoch_batches",
    "load_frames",
    "make_sampler",
]
