"""Data: frame stores, training batches and the samplers that make them."""

from .batches import Batch, FrameBatch, PixelBatch, Sampler, SamplingOptions
from .clips import ClipBatch, ClipLayout, ClipSampler
from .frame_store import FrameStore, load_frames
from .patches import PatchBatch, PatchSampler
from .pixels import PixelSampler
from .samplers import SAMPLERS, make_sampler
from .sampling import FrameSampler, epoch_batches
from .video_dataset import ClipSource, NervVideoDataset, open_clip_source, register_opener

__all__ = [
    "SAMPLERS",
    "Batch",
    "ClipBatch",
    "ClipLayout",
    "ClipSampler",
    "ClipSource",
    "FrameBatch",
    "FrameSampler",
    "FrameStore",
    "NervVideoDataset",
    "PatchBatch",
    "PatchSampler",
    "PixelBatch",
    "PixelSampler",
    "Sampler",
    "SamplingOptions",
    "epoch_batches",
    "load_frames",
    "make_sampler",
    "open_clip_source",
    "register_opener",
]
