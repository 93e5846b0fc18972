"""Data: frame stores and batch sampling."""

from .frame_store import FrameStore, load_frames
from .sampling import epoch_batches

__all__ = ["FrameStore", "epoch_batches", "load_frames"]
