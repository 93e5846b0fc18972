"""nervkit.io.resize_frame and to_uint8: exact box averages (== PIL reduce), antialiasing, rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nervkit.errors import ConfigError
from nervkit.io import resize_frame, to_uint8


def _random(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("kh", "kw"), [(2, 2), (3, 3), (4, 4), (5, 5), (2, 3), (4, 1)])
def test_integer_downscale_equals_pil_reduce(kh, kw):
    frame = _random(12 * kh, 10 * kw)
    out = resize_frame(frame, (12, 10))
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3)
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(frame).reduce((kw, kh))))


@pytest.mark.parametrize("k", [2, 4, 8])
def test_power_of_two_downscale_is_mean_rounded_half_up(k):
    frame = _random(6 * k, 5 * k, seed=k)
    n = k * k
    sums = frame.reshape(6, k, 5, k, 3).sum(axis=(1, 3), dtype=np.int64)
    np.testing.assert_array_equal(resize_frame(frame, (6, 5)), ((sums + n // 2) // n).astype(np.uint8))


def test_half_rounds_up():
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[0, 0] = frame[0, 1] = 1  # mean 0.5 -> 1
    assert resize_frame(frame, (1, 1)).tolist() == [[[1, 1, 1]]]


def test_non_integer_downscale_is_antialiased():
    # a one-pixel checkerboard averages to flat grey when antialiased; point sampling would keep 0/255
    checker = ((np.indices((60, 90)).sum(0) % 2) * 255).astype(np.uint8)
    frame = np.repeat(checker[..., None], 3, axis=2)
    out = resize_frame(frame, (25, 40))
    assert out.shape == (25, 40, 3)
    inner = out[3:-3, 3:-3].astype(int)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 12


def test_upscale_and_same_size():
    frame = _random(9, 16)
    up = resize_frame(frame, (18, 33))
    assert up.shape == (18, 33, 3) and up.dtype == np.uint8
    same = resize_frame(frame, (9, 16))
    np.testing.assert_array_equal(same, frame)
    assert same is not frame


def test_smooth_content_survives_resize(io_clip):
    frame = io_clip(1, 72, 128)[0]
    small = resize_frame(frame, (30, 50))
    back = resize_frame(small, (72, 128)).astype(float)
    assert np.abs(back - frame).mean() < 12


@pytest.mark.parametrize("size", [(0, 4), (4, -1), (4,), "4x4", (2.0, 3)])
def test_bad_sizes(size):
    with pytest.raises(ConfigError):
        resize_frame(_random(8, 8), size)


def test_bad_frames():
    for bad in [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8)]:
        with pytest.raises(ConfigError):
            resize_frame(bad, (4, 4))


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.5 / 255, 0.6 / 255, 0.5, 254.5 / 255, 1.0, 1.7, float("nan")])
    assert to_uint8(x).tolist() == [0, 0, 0, 1, 1, 128, 255, 255, 255, 0]


def test_to_uint8_shapes_and_passthrough():
    frames = torch.rand(2, 3, 4, 5)
    out = to_uint8(frames)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert torch.equal(out, torch.floor(frames * 255 + 0.5).to(torch.uint8))
    u8 = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    assert to_uint8(u8) is u8
    exact = torch.arange(256, dtype=torch.float32) / 255
    assert torch.equal(to_uint8(exact), torch.arange(256, dtype=torch.uint8))
    with pytest.raises(TypeError):
        to_uint8(torch.zeros(3, dtype=torch.int64))
