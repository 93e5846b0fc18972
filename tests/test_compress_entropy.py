"""nervkit.compress.entropy: ANS coding with the data's own histogram, entropy and Huffman references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nervkit.compress.entropy import (
    decode_symbols,
    empirical_entropy_bits,
    encode_symbols,
    huffman_code_bits,
    huffman_code_lengths,
)
from nervkit.errors import BitstreamError

RNG = np.random.default_rng


def _peaked(n: int, seed: int = 0, alphabet: int = 256) -> np.ndarray:
    """Quantized Laplacian around the middle of the alphabet: what quantized weights look like."""
    x = np.rint(RNG(seed).laplace(alphabet // 2, 1.5, n))
    return np.clip(x, 0, alphabet - 1).astype(np.int64)


def _round_trip(x: np.ndarray, alphabet: int) -> bytes:
    data = encode_symbols(x, alphabet)
    y = decode_symbols(data, x.size, alphabet)
    assert y.shape == (x.size,) and np.array_equal(y, x.reshape(-1))
    return data


@pytest.mark.parametrize(
    "x, alphabet",
    [
        (RNG(1).integers(0, 256, 5000), 256),
        (RNG(2).integers(0, 1 << 16, 5000), 1 << 16),
        (_peaked(5000, 3), 256),
        (RNG(4).integers(0, 2, 1000).astype(np.uint8), 2),
        (np.array([5, 9]), 10),
        (np.array([0, 65535, 65535, 0, 1]), 1 << 16),  # sparse use of a 16-bit alphabet
        (np.array([[3, 3], [4, 3]], dtype=np.uint16), 5),  # any shape, flattened
    ],
)
def test_round_trip(x: np.ndarray, alphabet: int) -> None:
    _round_trip(x, alphabet)


def test_output_dtype_follows_the_alphabet() -> None:
    x = np.array([1, 0, 1])
    assert decode_symbols(encode_symbols(x, 256), 3, 256).dtype == np.uint8
    assert decode_symbols(encode_symbols(x, 257), 3, 257).dtype == np.uint16
    assert decode_symbols(encode_symbols(x, 1 << 17), 3, 1 << 17).dtype == np.uint32


def test_empty_and_single_symbol() -> None:
    assert encode_symbols(np.zeros(0, dtype=np.int64), 256) == b""
    assert decode_symbols(b"", 0, 256).size == 0
    x = np.full(100_000, 65535)
    data = _round_trip(x, 1 << 16)
    assert len(data) <= 8  # header only: form, symbol, count; 0 payload bits
    assert len(_round_trip(np.array([7]), 8)) <= 4


def test_sparse_histogram_is_compact_for_a_large_alphabet() -> None:
    x = np.array([0, 65535] * 50)
    assert len(_round_trip(x, 1 << 16)) < 30


def test_peaked_data_beats_huffman_and_is_within_one_percent_of_entropy() -> None:
    x = _peaked(100_000)
    coded_bits = 8 * len(_round_trip(x, 256))
    entropy = empirical_entropy_bits(x)
    huffman = huffman_code_bits(x)
    assert coded_bits < huffman
    assert coded_bits <= 1.01 * entropy
    print(f"\npeaked 100k: coded {coded_bits / x.size:.4f} b/sym, Huffman {huffman / x.size:.4f}, "
          f"entropy {entropy / x.size:.4f}")


def test_uniform_data_costs_about_its_entropy() -> None:
    x = RNG(5).integers(0, 1 << 16, 200_000)
    coded_bits = 8 * len(_round_trip(x, 1 << 16))
    assert coded_bits <= 1.01 * empirical_entropy_bits(x) + 8 * 3 * 65536  # + the dense histogram


def test_entropy_and_huffman_reference_values() -> None:
    assert empirical_entropy_bits(np.array([0, 1, 2, 3] * 10)) == pytest.approx(80.0)
    assert empirical_entropy_bits(np.zeros(0)) == 0.0 and huffman_code_bits(np.zeros(0)) == 0
    assert empirical_entropy_bits(np.array([4, 4, 4])) == 0.0
    assert huffman_code_bits(np.array([4, 4, 4])) == 3  # one symbol still needs one bit
    assert sorted(huffman_code_lengths([1, 1, 2, 4])) == [1, 2, 3, 3]
    assert huffman_code_bits(np.array([0] * 4 + [1] * 2 + [2, 3])) == 4 + 4 + 3 + 3


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=60))
def test_huffman_lengths_are_optimal_prefix_code_lengths(counts: list[int]) -> None:
    lengths = huffman_code_lengths(counts)
    assert sum(2.0 ** -n for n in lengths) == pytest.approx(1.0)  # complete prefix code (Kraft)
    total = sum(c * n for c, n in zip(counts, lengths))
    entropy = -sum(c * math.log2(c / sum(counts)) for c in counts)
    assert entropy - 1e-9 <= total < entropy + sum(counts)  # H <= L < H + 1 per symbol


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 300), max_size=200), st.integers(301, 70000))
def test_round_trip_property(values: list[int], alphabet: int) -> None:
    _round_trip(np.array(values, dtype=np.int64), alphabet)


def test_invalid_encoder_input_is_a_value_error() -> None:
    for x, alphabet in [(np.array([3]), 3), (np.array([-1]), 3), (np.array([0.5]), 3), (np.array([0]), 0)]:
        with pytest.raises(ValueError):
            encode_symbols(x, alphabet)


def test_corrupt_payloads_raise_bitstream_error() -> None:
    x = _peaked(2000, 7)
    good = encode_symbols(x, 256)
    cases = [
        (b"", 5),  # empty payload for a non-empty array
        (good, x.size + 1),  # histogram count disagrees
        (good, 0),  # data for an empty array
        (good[:-1], x.size),  # not whole words
        (good[:-4], x.size),  # a word missing
        (good[:3], x.size),  # cut inside the histogram
        (b"\x07" + good[1:], x.size),  # unknown form
        (b"\x80" * 12, x.size),  # overlong varint
        (good + b"\0\0\0\0", x.size),
        (encode_symbols(np.array([2, 2]), 3) + b"x", 2),  # bytes after a one-symbol histogram
    ]
    for data, count in cases:
        with pytest.raises(BitstreamError):
            decode_symbols(data, count, 256)
    with pytest.raises(BitstreamError):  # symbol outside a smaller alphabet
        decode_symbols(encode_symbols(np.array([200, 1]), 256), 2, 100)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.binary(max_size=64), st.integers(0, 300), st.sampled_from([2, 256, 1 << 16]))
def test_random_bytes_raise_only_bitstream_error(data: bytes, count: int, alphabet: int) -> None:
    try:
        out = decode_symbols(data, count, alphabet)
    except BitstreamError:
        return
    assert out.shape == (count,) and (out.size == 0 or int(out.max()) < alphabet)
