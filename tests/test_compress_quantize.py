"""nervkit.compress.quantize and .tensor_codec: uniform min/max quantization, STE, tensor payloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nervkit.compress.entropy import empirical_entropy_bits
from nervkit.compress.quantize import QuantizedTensor, dequantize, fake_quantize, quantize
from nervkit.compress.tensor_codec import decode_quantized, encode_quantized
from nervkit.errors import BitstreamError, ModelError


def _weights(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # channels with very different ranges: per-channel quantization should win
    return torch.randn(16, 8, 3, 3, generator=g) * torch.linspace(0.01, 2.0, 16)[:, None, None, None]


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 12, 16])
def test_error_is_at_most_half_a_step(bits: int) -> None:
    w = _weights()
    qt = quantize(w, bits)
    assert qt.q.dtype == (np.uint8 if bits <= 8 else np.uint16)
    assert qt.q.shape == tuple(w.shape) and int(qt.q.max()) <= (1 << bits) - 1
    assert qt.mins.dtype == np.float32 and qt.scales.dtype == np.float32
    w_hat = dequantize(qt)
    assert w_hat.dtype == torch.float32 and w_hat.shape == w.shape
    rows = 1 if qt.axis is None else w.shape[0]
    scales = torch.from_numpy(qt.scales)
    step = scales.reshape(rows, *([1] * (w.dim() - 1))) if qt.axis == 0 else scales[0]
    assert bool(((w_hat - w).abs() <= step / 2 + 1e-6).all())


def _err(qt, ref: torch.Tensor) -> float:
    return float((dequantize(qt) - ref).abs().mean())


def _rate(qt) -> float:
    """What the file pays per value: entropy of the codes + 64 bits per stored range."""
    return empirical_entropy_bits(qt.q) / qt.q.size + 64 * len(qt.mins) / qt.q.size


def test_the_choice_compares_errors_at_equal_rate_and_can_be_forced() -> None:
    g = torch.Generator().manual_seed(0)
    # rows far apart, each narrow: one range per tensor wastes most levels on the gaps between rows
    shifted = torch.arange(16.0)[:, None] + 0.1 * torch.randn(16, 72, generator=g)
    # rows of very different spread around 0: per-channel is more accurate but spends ~4 bits on
    # every tiny row that one range codes almost for free
    spread = _weights()
    # a wide layer with 2 values per row: 64 bits of ranges per row cost more than the weights
    wide = torch.randn(512, 2, generator=torch.Generator().manual_seed(3)) * torch.linspace(0.5, 1.5, 512)[:, None]
    chosen = {}
    for name, w, bits in (("shifted", shifted, 8), ("spread", spread, 4), ("wide", wide, 8)):
        tensor, channel = quantize(w, bits, per_channel=False), quantize(w, bits, per_channel=True)
        assert tensor.axis is None and channel.axis == 0
        assert channel.mins.shape == (w.shape[0],) and tensor.mins.shape == (1,)
        assert _err(channel, w) < _err(tensor, w)  # per-channel is always the more accurate here
        at_equal_rate = _err(channel, w) * 2 ** _rate(channel) < _err(tensor, w) * 2 ** _rate(tensor)
        chosen[name] = quantize(w, bits).axis
        assert chosen[name] == (0 if at_equal_rate else None)
    assert chosen == {"shifted": 0, "spread": None, "wide": None}
    # a 1-D tensor (a bias) has no channel axis
    assert quantize(torch.randn(10), 8).axis is None
    with pytest.raises(ValueError):
        quantize(torch.randn(10), 8, per_channel=True)


def test_equal_channel_ranges_keep_the_per_tensor_form() -> None:
    # every channel spans exactly the same range, so per-channel cannot be strictly better
    w = torch.linspace(-1, 1, 9).repeat(4, 1)
    assert quantize(w, 3).axis is None


def test_constant_tensors_and_edge_shapes_are_exact() -> None:
    qt = quantize(torch.full((3, 4), 2.5), 8)
    assert qt.scales.tolist() == [0.0] and int(qt.q.max()) == 0
    assert torch.equal(dequantize(qt), torch.full((3, 4), 2.5))
    scalar = quantize(torch.tensor(-3.25), 4)
    assert dequantize(scalar).shape == () and float(dequantize(scalar)) == -3.25
    empty = quantize(torch.zeros(0, 3), 4)
    assert dequantize(empty).shape == (0, 3)
    # one constant channel among varying ones
    w = torch.randn(3, 5)
    w[1] = 7.0
    qt = quantize(w, 6, per_channel=True)
    assert qt.scales[1] == 0 and torch.equal(dequantize(qt)[1], w[1])


def test_invalid_input() -> None:
    for bits in (0, 17, 2.5):
        with pytest.raises(ValueError):
            quantize(torch.randn(4), bits)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        quantize(torch.tensor([1.0, float("nan")]), 8)


def test_dequantization_is_the_fixed_float32_formula() -> None:
    qt = quantize(_weights(1), 7, per_channel=True)
    w_hat = dequantize(qt).numpy()
    # element by element with float32 scalars: scale * q, rounded, then + min, rounded
    flat_q = qt.q.reshape(qt.shape[0], -1)
    for c in (0, 5, 15):
        for i in (0, 17, 71):
            prod = np.float32(qt.scales[c]) * np.float32(flat_q[c, i])
            expect = np.float32(prod + np.float32(qt.mins[c]))
            assert w_hat.reshape(qt.shape[0], -1)[c, i].tobytes() == expect.tobytes()
    # and torch does the same two float32 operations
    rows = torch.from_numpy(flat_q.astype(np.float32))
    t = torch.add(torch.mul(torch.from_numpy(qt.scales)[:, None], rows), torch.from_numpy(qt.mins)[:, None])
    assert t.numpy().tobytes() == w_hat.reshape(qt.shape[0], -1).tobytes()


@pytest.mark.parametrize("per_channel", [None, False, True])
def test_fake_quantize_forward_matches_and_backward_is_identity(per_channel) -> None:
    w = _weights(2).requires_grad_(True)
    out = fake_quantize(w, 5, per_channel=per_channel)
    expect = dequantize(quantize(w.detach(), 5, per_channel=per_channel))
    assert out.detach().numpy().tobytes() == expect.numpy().tobytes()
    g = torch.randn_like(w)
    (out * g).sum().backward()
    assert torch.equal(w.grad, g)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 7)),
           elements=st.floats(-1e4, 1e4, width=32)),
    st.integers(1, 16),
    st.sampled_from([None, False, True]),
)
def test_quantize_property(w: np.ndarray, bits: int, per_channel) -> None:
    t = torch.from_numpy(w)
    qt = quantize(t, bits, per_channel=per_channel)
    w_hat = dequantize(qt)
    rows = qt.scales.reshape(-1, 1) if qt.axis == 0 else qt.scales.reshape(1, 1)
    tol = torch.from_numpy(rows) / 2 + 1e-3 * (1 + t.abs().max())
    assert bool(((w_hat - t).abs() <= tol).all())
    back = decode_quantized(encode_quantized(qt))
    assert back.shape == qt.shape and back.axis == qt.axis and back.bits == qt.bits
    assert np.array_equal(back.q, qt.q) and back.q.dtype == qt.q.dtype
    assert dequantize(back).numpy().tobytes() == w_hat.numpy().tobytes()


@pytest.mark.parametrize("shape", [(), (0,), (5,), (4, 0), (3, 1, 2), (2, 3, 1, 1, 2)])
def test_tensor_payload_round_trip_edge_shapes(shape) -> None:
    t = torch.randn(shape) if shape else torch.tensor(1.5)
    qt = quantize(t, 3)
    back = decode_quantized(encode_quantized(qt))
    assert torch.equal(dequantize(back), dequantize(qt))


def test_tensor_payload_errors() -> None:
    good = encode_quantized(quantize(_weights(), 4))
    bad = [b"", good[:2], bytes([0]) + good[1:], bytes([17]) + good[1:], good[:1] + b"\x05" + good[2:],
           good[:2] + b"\x09" + good[3:], good[:20], good[:-3]]
    for data in bad:
        with pytest.raises(BitstreamError):
            decode_quantized(data)
    assert isinstance(decode_quantized(good), QuantizedTensor)
