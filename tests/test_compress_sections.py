"""compress/sections.py: every storage kind has a codec, one rule picks it, and every section codec
round-trips through its payload (the shape read back without decoding)."""

from __future__ import annotations

import pytest
import torch

from nervkit.compress.config import CompressConfig
from nervkit.compress.container import Section
from nervkit.compress.model_checks import peek_shape
from nervkit.compress.sections import (
    SECTION_CODECS,
    SPARSE_THRESHOLD,
    STORAGES,
    bit_depth,
    choose_section,
    encode_section,
)
from nervkit.errors import BitstreamError
from nervkit.models.base import STORAGE_KINDS

CONFIG = CompressConfig()


def _smooth(*shape: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    for axis in range(1, len(shape)):
        x = x.cumsum(axis)
    return x.float()


def _pruned(*shape: int) -> torch.Tensor:
    t = _smooth(*shape)
    t[t.abs() < t.abs().median()] = 0
    return t


def test_every_storage_kind_has_an_entry_and_every_entry_a_codec():
    assert set(STORAGES) == set(STORAGE_KINDS)
    for storage, entry in STORAGES.items():
        assert entry.media is None or entry.media in SECTION_CODECS
        for codec in ("codec", "weights"):
            config = CompressConfig(latent_codec=codec)
            for tensor in (_smooth(4, 6), _pruned(4, 6), torch.arange(6)):
                assert choose_section(storage, tensor, config) in SECTION_CODECS
    assert set(SECTION_CODECS) == {"tensor", "sparse", "raw", "jpeg", "hevc", "learned"}
    assert all(kind == codec.kind for kind, codec in SECTION_CODECS.items())


def test_the_choose_rule():
    weights = CompressConfig(latent_codec="weights")
    assert choose_section("weights", _smooth(4, 6), CONFIG) == "tensor"
    assert choose_section("weights", _pruned(4, 6), CONFIG) == "sparse"
    assert choose_section("weights", _pruned(24), CONFIG) == "tensor"  # 1-D (a bias): never sparse
    assert choose_section("weights", torch.arange(5), CONFIG) == "raw"
    assert choose_section("per_frame", _smooth(3, 8), CONFIG) == "tensor"
    assert choose_section("latent_image", _smooth(2, 8, 8), CONFIG) == "jpeg"
    assert choose_section("latent_video", _smooth(2, 3, 8, 8), CONFIG) == "hevc"
    assert choose_section("latent_image", _smooth(2, 8, 8), weights) == "tensor"
    assert choose_section("latent_video", _pruned(2, 3, 8, 8), weights) == "sparse"
    few_zeros = _smooth(10, 10)
    few_zeros.view(-1)[: int(SPARSE_THRESHOLD * 100) - 1] = 0
    assert choose_section("weights", few_zeros, CONFIG) == "tensor"


def test_bit_depths():
    config = CompressConfig(bits=6, embed_bits=4)
    assert bit_depth("weights", config) == 6 and bit_depth("weights", config, min_bits=16) == 16
    assert bit_depth("per_frame", config) == 4 and bit_depth("per_frame", config, min_bits=16) == 4
    assert bit_depth("key_frames", config) == 6


@pytest.mark.parametrize(
    "storage, tensor, kind, tolerance",
    [
        ("weights", _smooth(6, 5, 3, 3), "tensor", 0.05),
        ("weights", _pruned(6, 10), "sparse", 0.05),
        ("weights", torch.arange(12, dtype=torch.int64).reshape(3, 4), "raw", 0.0),
        ("latent_image", _smooth(3, 20, 24), "jpeg", 0.1),
        ("latent_video", _smooth(2, 3, 16, 20), "hevc", 0.1),
    ],
)
def test_round_trip_through_each_codec(storage, tensor, kind, tolerance):
    got_kind, payload, bits = encode_section(storage, tensor, CONFIG)
    assert bits == 8 * len(payload)  # the estimate of a section not rate-trained is its size
    assert got_kind == kind
    codec = SECTION_CODECS[kind]
    assert codec.peek_shape(payload, "section 2 (x)") == tuple(tensor.shape)
    assert peek_shape(Section(kind, "x", payload), 2) == tuple(tensor.shape)
    decoded = codec.decode(payload)
    assert decoded.shape == tensor.shape
    if tolerance == 0.0:
        assert torch.equal(decoded, tensor)
    else:
        span = float(tensor.max() - tensor.min())
        assert float((decoded - tensor.float()).abs().max()) <= tolerance * span
    if kind == "sparse":
        assert torch.equal(decoded == 0, tensor == 0)  # pruned weights decode to exactly 0
    assert encode_section(storage, tensor, CONFIG)[:2] == (kind, payload)  # deterministic


def test_peeking_refuses_unknown_kinds_and_bad_headers():
    with pytest.raises(BitstreamError, match="section 3 has unknown kind 'png'"):
        peek_shape(Section("png", "x", b"\x00"), 3)
    for kind in SECTION_CODECS:
        with pytest.raises(BitstreamError):
            peek_shape(Section(kind, "x", b""), 2)
