"""Data: frame stores and batch sampling."""

from .frame_store import FrameStore, load_frames
from .sampling import epoch_batches, frames_per_epoch

__all__ = ["FrameStore", "epoch_batches", "frames_per_epoch", "load_frames"]
