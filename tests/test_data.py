"""Frame stores: in memory or memory-mapped (streamed) with identical content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nervkit.data import FrameStore, load_frames
from nervkit.errors import InputError
from nervkit.io import FrameRange, write_video


def _clip(tmp_path: Path, n: int = 6, h: int = 24, w: int = 40) -> Path:
    y, x = np.mgrid[0:h, 0:w]
    frames = [np.stack([(x * 6 + 9 * i) % 256, (y * 9 + 5 * i) % 256, (x + y + 20 * i) % 256], -1).astype(np.uint8)
              for i in range(n)]
    return write_video(frames, tmp_path / "clip.mkv", lossless=True)


def test_memory_mapped_store_equals_in_memory(tmp_path: Path) -> None:
    path = _clip(tmp_path)
    in_memory = load_frames(path)
    mapped = load_frames(path, memory_budget=0, cache_dir=tmp_path / "cache")
    assert not in_memory.memory_mapped and mapped.memory_mapped
    assert (tmp_path / "cache" / "frames.npy").is_file()
    assert torch.equal(in_memory.frames, mapped.frames)
    assert torch.equal(mapped.get([1, 4]), in_memory.frames[[1, 4]].float() / 255)


def test_store_range_and_resize(tmp_path: Path) -> None:
    path = _clip(tmp_path)
    store = load_frames(path, frames=FrameRange.parse("1:5:2"), size=(12, 20))
    assert len(store) == 2 and (store.height, store.width) == (12, 20)
    assert store.source_indices == [1, 3] and store.source_size == (24, 40)


def test_over_budget_without_cache_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="memory budget"):
        load_frames(_clip(tmp_path), memory_budget=0)


def test_from_tensor_rounds_floats() -> None:
    store = FrameStore.from_tensor(torch.full((2, 3, 4, 4), 0.5))
    assert store.frames.dtype == torch.uint8 and int(store.frames[0, 0, 0, 0]) == 128
