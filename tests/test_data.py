"""Frame stores: in memory or memory-mapped (streamed) with identical content; batches and samplers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nervkit.data import (
    SAMPLERS,
    FrameBatch,
    FrameSampler,
    FrameStore,
    PixelBatch,
    PixelSampler,
    SamplingOptions,
    epoch_batches,
    load_frames,
    make_sampler,
)
from nervkit.errors import InputError, ModelError
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


class _Model:  # the two declarations a sampler reads from a Representation
    def __init__(self, batch_kind: str, needs_neighbours: bool = False) -> None:
        self.batch_kind, self.needs_neighbours = batch_kind, needs_neighbours


def test_frame_sampler_follows_the_seeded_order_and_slices_masks_per_frame() -> None:
    store = FrameStore.from_tensor(torch.rand(6, 3, 4, 5))
    holes = torch.rand(6, 1, 4, 5).round()
    options = SamplingOptions(seed=3, batch_size=2, loss_mask=holes)
    sampler = make_sampler(_Model("frames", needs_neighbours=True), store, [0, 2, 3, 5], options)
    assert isinstance(sampler, FrameSampler) and sampler.whole_frames and sampler.batches_per_epoch == 2
    keys = sampler.plan(4)
    assert [k.tolist() for k in keys] == [k.tolist() for k in epoch_batches([0, 2, 3, 5], 2, epoch=4, seed=3)]
    batch = sampler.load(keys[0])
    assert torch.equal(batch.target, store.get(keys[0])) and torch.equal(batch.weight, holes[keys[0]])
    assert torch.equal(batch.neighbours, store.neighbours(keys[0]))
    plain = make_sampler(_Model("frames"), store, [0, 2], SamplingOptions(seed=3))
    assert plain.load(plain.plan(0)[0]).neighbours is None and plain.load(plain.plan(0)[0]).weight is None
    one_mask = make_sampler(_Model("frames"), store, [0, 2], SamplingOptions(seed=3, batch_size=2,
                                                                            loss_mask=holes[:1]))
    assert one_mask.load(torch.tensor([0, 2])).weight.shape == (2, 1, 4, 5)


def test_samplers_are_chosen_by_batch_kind() -> None:
    store = FrameStore.from_tensor(torch.rand(3, 3, 4, 5))
    assert set(SAMPLERS) == {"frames", "pixels", "clips", "patches"}
    pixels = make_sampler(_Model("pixels"), store, [0, 1], SamplingOptions(seed=1, pixels_per_batch=8))
    assert isinstance(pixels, PixelSampler) and not pixels.whole_frames
    assert pixels.batches_per_epoch == 5 and len(pixels.plan(2)) == 5  # 2 frames of 20 pixels, 8 per batch
    assert torch.equal(pixels.load(pixels.plan(2)[1]).cols, pixels.batch(2, 1).cols)
    with pytest.raises(ModelError, match="no sampler for batch kind 'voxels'"):
        make_sampler(_Model("voxels"), store, [0], SamplingOptions(seed=1))


def test_batches_crop_and_measure_only_counted_values() -> None:
    target = torch.zeros(2, 3, 4, 5)
    weight = torch.zeros(2, 1, 4, 5)
    weight[:, :, :2] = 1
    frames = FrameBatch(torch.tensor([0, 1]), target, weight)
    pred = torch.full((2, 3, 6, 8), 0.5)
    pred[..., 2:4, :] = 9.0  # outside the counted rows
    assert frames.crop(pred).shape == (2, 3, 4, 5) and frames.mask is frames.weight
    assert torch.allclose(frames.mse(frames.crop(pred)), torch.tensor([0.25, 0.25]))
    pixels = PixelBatch(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([0, 0]), torch.zeros(2, 3),
                        torch.tensor([1.0, 0.0]))
    assert torch.allclose(pixels.mse(torch.tensor([[0.5] * 3, [9.0] * 3])), torch.tensor([0.25]))
    assert pixels.crop(target) is target


def test_data_imports_nothing_from_models() -> None:
    import ast

    import nervkit.data

    for path in Path(nervkit.data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert "models" not in module, (path.name, module)
            elif isinstance(node, ast.Import):
                assert not any("models" in alias.name for alias in node.names), path.name
