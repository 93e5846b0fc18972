"""Rate–distortion training (nervkit.compress.learned_quant / parametric / learned_codec): the entropy models'
bits against what the file's coder really writes, the rounding surrogates and the training phases, the learned
section's payload (exact round trip, the histogram fallback, only BitstreamError for damaged payloads), every
method fitted with --rate-lambda and compressed (the estimate against the file, deterministic decoding, the
fit's PSNR is the file's), compress's rate-distortion fine-tune, one-line errors for bad settings and damaged
learned sections, and an interrupted rate-trained fit that resumes bit-identically."""

from __future__ import annotations

import json
import math
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import nervkit
from helpers import TINY_MODELS, cli_ok, run_cli
from nervkit.compress.container import Section, pack, unpack
from nervkit.compress.learned_codec import decode_learned, encode_learned, peek_learned_shape
from nervkit.compress.learned_quant import (
    STEP_RES,
    TEMPERATURE,
    LearnedQuantizer,
    Phase,
    RateOptions,
    quantizer_axes,
    soft_round,
)
from nervkit.compress.model_codec import read_nerv
from nervkit.compress.parametric import FAMILIES, bits_numpy, bits_torch, decode_codes, encode_codes
from nervkit.errors import BitstreamError
from nervkit.models import list_methods

BUNNY = Path(nervkit.__file__).parent / "assets" / "bigbuckbunny.mp4"
#: the bundled clip, cut small: 8 frames of 36x64
CLIP = ["--size", "36x64", "--frames", "0:8"]
FIT = ["--threads", 1, "--quiet", "--no-video", "--seed", 3]


# -- 1. parametric entropy models ----------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 40.0])
def test_model_bits_match_the_coder_and_decoding_is_exact(family, scale) -> None:
    rng = np.random.default_rng(int(scale * 10) + len(family))
    raw = rng.laplace(0.0, scale, 6000) if family == "laplace" else rng.normal(0.0, scale, 6000)
    q = np.rint(raw + 0.3).astype(np.int64)  # a mean off the integer grid
    lo, hi = int(q.min()), int(q.max())
    mean, scales = np.full(q.size, 0.3), np.full(q.size, scale)
    words = encode_codes(q, mean, scales, family, lo, hi)
    estimate = bits_numpy(q, 0.3, scales, family)
    assert len(words) % 4 == 0 and len(words) > 0
    assert abs(8 * len(words) - estimate) <= 0.01 * estimate, (8 * len(words), estimate)
    decoded = decode_codes(words, q.size, mean, scales, family, lo, hi)
    assert decoded.dtype == np.int32 and np.array_equal(decoded, q)
    # the differentiable bits of integer-valued float64 input are the same numbers
    per_value = bits_torch(torch.from_numpy(q.astype(np.float64)), 0.3, torch.from_numpy(scales), family)
    assert per_value.dtype == torch.float64
    assert float(per_value.sum()) == pytest.approx(estimate, rel=1e-9)
    one = bits_numpy(q[:1], 0.3, scales[:1], family)
    assert float(per_value[0]) == pytest.approx(one, rel=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_model_bits_have_gradients_in_scale_and_input(family) -> None:
    y = torch.tensor([-3.3, -0.6, 0.0, 0.2, 1.7, 5.1], dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    bits = bits_torch(y, 0.25, torch.exp(log_scale), family).sum()
    bits.backward()
    assert torch.isfinite(bits) and bits > 0
    assert torch.isfinite(y.grad).all() and torch.isfinite(log_scale.grad)
    assert log_scale.grad != 0 and (y.grad != 0).sum() >= 5
    # values further from the mean cost more: the gradient pushes them back towards it
    assert y.grad[0] < 0 and y.grad[-1] > 0


def test_decode_codes_refuses_damaged_words() -> None:
    q = np.array([0, 1, -2, 3, 0, 0, 1], dtype=np.int64)
    mean, scales = np.zeros(q.size), np.ones(q.size)
    words = encode_codes(q, mean, scales, "laplace", -2, 3)
    for bad in (b"", words[:-1], words[:-4], words + b"\0\0\0\0", b"\xff" * len(words)):
        with pytest.raises(BitstreamError):
            decode_codes(bad, q.size, mean, scales, "laplace", -2, 3)
    assert encode_codes(np.full(5, 7), np.zeros(5), np.ones(5), "gaussian", 7, 7) == b""
    assert np.array_equal(decode_codes(b"", 5, np.zeros(5), np.ones(5), "gaussian", 7, 7), np.full(5, 7))
    with pytest.raises(BitstreamError):
        decode_codes(b"\0\0\0\0", 5, np.zeros(5), np.ones(5), "gaussian", 7, 7)


# -- 2. rounding surrogates and the phases of rate training --------------------------------------------
def test_soft_round_goes_from_identity_to_round() -> None:
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    x = x[(x - torch.round(x)).abs() < 0.45]  # away from the half-integers, where round jumps
    errors = [float((soft_round(x, t) - torch.round(x)).abs().max()) for t in (0.5, 0.2, 0.05, 0.01, 0.002)]
    assert errors == sorted(errors, reverse=True) and errors[-2] < 1e-4 and errors[-1] < 1e-9
    assert float((soft_round(x, 50.0) - x).abs().max()) < 1e-3
    # monotone, and exact at the integers and the half-integers at any temperature
    y = soft_round(torch.linspace(-2, 2, 401, dtype=torch.float64), 0.3)
    assert (torch.diff(y) >= 0).all()
    k = torch.tensor([-2.0, -1.5, -1.0, 0.0, 0.5, 1.0, 2.5], dtype=torch.float64)
    assert torch.allclose(soft_round(k, 0.3), k, atol=1e-12)


@pytest.mark.parametrize("rounding", ["soft", "noise", "quant-noise"])
def test_phases_of_rate_training(rounding) -> None:
    options = RateOptions(rate_lambda=0.1, rate_start=0.2, ste_fraction=0.25, rounding=rounding)
    assert Phase.at(0.0, options).mode == "off" and Phase.at(0.1999, options).mode == "off"
    middle = [Phase.at(p, options) for p in np.linspace(0.2, 0.7499, 12)]
    assert {ph.mode for ph in middle} == {rounding}
    temps = [ph.temperature for ph in middle]
    assert temps[0] == pytest.approx(TEMPERATURE[0]) and temps == sorted(temps, reverse=True)
    assert temps[-1] >= TEMPERATURE[1] and temps[-1] == pytest.approx(TEMPERATURE[1], abs=1e-3)
    assert all(Phase.at(p, options).mode == "ste" for p in (0.75, 0.9, 1.0))
    # rate from the first step, no straight-through phase
    assert Phase.at(0.0, RateOptions(rate_lambda=0.1, ste_fraction=0.0)).mode == "soft"
    assert Phase.at(0.999, RateOptions(rate_lambda=0.1, ste_fraction=0.0)).mode == "soft"


# -- 3. the learned section's payload ------------------------------------------------------------------
def _quantized(tensor: torch.Tensor, kind: str, step_axes: str, family: str = "laplace", seed: int | None = 0):
    """(integers, axes) of a quantizer initialised on ``tensor``, with random per-axis offsets unless ``seed`` is
    None."""
    axes = quantizer_axes(kind, tuple(tensor.shape), step_axes)
    quantizer = LearnedQuantizer(tuple(tensor.shape), axes, family)
    quantizer.initialise(tensor)
    if seed is None:
        return quantizer.integers(), axes
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # learned steps and scales differ along every axis
        for p in [*quantizer.log2_step, *quantizer.log2_scale]:
            p.add_(torch.rand(p.shape, generator=g) * 0.8 - 0.4)
        quantizer.mean.fill_(0.3)
    return quantizer.integers(), axes


def _expected(tensor: torch.Tensor, ints: dict, axes: tuple[int, ...]) -> torch.Tensor:
    """Δ · round(w / Δ) in float32, Δ = float32(2 ** (Σ k / 32)), computed here from the integers."""
    shape = tuple(tensor.shape)
    total = np.zeros([1] * len(shape))
    for a, k in zip(axes or (None,), ints["steps"]):
        if a is None:
            total = total + k[0]
        else:
            view = [1] * len(shape)
            view[a] = shape[a]
            total = total + np.asarray(k, dtype=np.float64).reshape(view)
    step = np.broadcast_to(np.exp2(total / STEP_RES), shape).astype(np.float32)
    q = np.rint(tensor.double().numpy() / step.astype(np.float64))
    return torch.from_numpy(step * q.astype(np.float32))


def _tensors() -> list[tuple[str, torch.Tensor, str, str]]:
    g = torch.Generator().manual_seed(1)
    return [
        ("2-D dual", torch.randn(24, 40, generator=g) * 0.05, "weights", "dual"),
        ("2-D channel", torch.randn(24, 40, generator=g) * 0.05, "weights", "channel"),
        ("4-D dual", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "dual"),
        ("4-D channel", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "channel"),
        ("4-D tensor", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "tensor"),
        ("bias", torch.randn(32, generator=g) * 0.01, "weights", "dual"),
        ("per-frame", torch.randn(8, 4, 2, 4, generator=g), "per_frame", "dual"),
        ("latent", torch.randn(6, 9, 11, generator=g), "latent_image", "dual"),
        ("constant", torch.full((5, 7), 0.375), "weights", "dual"),
        ("zeros", torch.zeros(3, 4, 2, 2), "weights", "channel"),
    ]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", range(len(_tensors())), ids=[t[0] for t in _tensors()])
def test_learned_payload_round_trip(case, family) -> None:
    label, tensor, kind, step_axes = _tensors()[case]
    ints, axes = _quantized(tensor, kind, step_axes, family, seed=case)
    payload, bits = encode_learned(tensor, ints, axes, family)
    decoded = decode_learned(payload)
    assert decoded.dtype == torch.float32 and decoded.shape == tensor.shape
    assert torch.equal(decoded, _expected(tensor, ints, axes)), label
    assert torch.equal(decode_learned(payload), decoded)  # deterministic
    assert peek_learned_shape(payload, "x") == tuple(tensor.shape)
    assert payload[0] == 1 and payload[1] == FAMILIES.index(family) and payload[2] in (0, 1)
    assert bits >= 8 * (len(payload) - 4 * math.ceil(tensor.numel() / 4) - 64) and bits > 0
    if payload[2] == 0:  # the parametric coder: its estimate is the payload's size within 1 % (+ one word)
        assert abs(8 * len(payload) - bits) <= 0.01 * bits + 32, (8 * len(payload), bits)
    else:
        assert bits == 8 * len(payload)
    # the quantization error is at most half a step
    step = _expected(torch.ones_like(tensor), ints, axes)
    assert ((decoded - tensor).abs() <= 0.5 * step.abs() * (1 + 1e-6) + 1e-12).all() or label in ("constant",
                                                                                                     "zeros")


def test_histogram_fallback_when_the_model_mismatches_the_codes() -> None:
    codes = np.rint(np.random.default_rng(4).laplace(0.0, 3.0, (64, 64)))
    w = torch.from_numpy(codes * 0.25).float()
    axes = quantizer_axes("weights", (64, 64), "tensor")
    steps = [np.array([-2 * STEP_RES])]  # Δ = 0.25
    good = {"steps": steps, "scales": [np.array([25])], "mean": 0}  # b = 2**(25/16) ≈ 2.96 codes: the codes' own
    payload, bits = encode_learned(w, good, axes, "laplace")
    assert payload[2] == 0 and torch.equal(decode_learned(payload), w)
    bad = {"steps": steps, "scales": [np.array([20 * 16])], "mean": 0}  # b = 2**20 codes: ~21 bits per code
    fallback, fallback_bits = encode_learned(w, bad, axes, "laplace")
    assert fallback[2] == 1 and fallback_bits == 8 * len(fallback) and len(fallback) < 0.5 * 64 * 64 * 21 / 8
    assert torch.equal(decode_learned(fallback), w)
    assert peek_learned_shape(fallback, "x") == (64, 64)


def test_codes_wider_than_the_coders_are_refused_by_the_encoder() -> None:
    # two constant rows of opposite sign: their steps start at the 1e-6 floor, their codes are ±2**24
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(2)) * 0.05
    w[0], w[1] = 1.0, -1.0
    ints, axes = _quantized(w, "weights", "dual", seed=None)
    with pytest.raises(ValueError, match="too small"):
        encode_learned(w, ints, axes, "laplace")
    w[1] = 0.3  # a span of millions of codes still codes (and fast: no dense histogram of the span)
    ints, axes = _quantized(w, "weights", "dual", seed=None)
    payload, _ = encode_learned(w, ints, axes, "gaussian")
    assert torch.equal(decode_learned(payload), _expected(w, ints, axes))


def _payloads() -> list[bytes]:
    out = []
    for i, (_, tensor, kind, step_axes) in enumerate(_tensors()):
        if i in (0, 3, 6, 8):  # dual, channel, per-frame, constant
            ints, axes = _quantized(tensor, kind, step_axes, seed=i)
            out.append(encode_learned(tensor, ints, axes, "laplace")[0])
    w = torch.randint(-2, 3, (16, 16), generator=torch.Generator().manual_seed(4)).float() * 0.25
    ints, axes = _quantized(w, "weights", "tensor")
    out.append(encode_learned(w, {"steps": [np.array([-64])], "scales": [np.array([320])], "mean": 0}, axes,
                              "gaussian")[0])
    assert {p[2] for p in out} == {0, 1}
    return out


def _decodes_or_bitstream_error(data: bytes) -> None:
    try:
        out = decode_learned(data)
    except BitstreamError:
        return
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_damaged_learned_payloads_raise_only_bitstream_error() -> None:
    rng = random.Random(7)
    for payload in _payloads():
        for n in range(len(payload)):  # every truncation
            _decodes_or_bitstream_error(payload[:n])
            try:
                peek_learned_shape(payload[:n], "x")
            except BitstreamError as exc:
                assert str(exc).startswith("x: ")
        for _ in range(300):  # single-byte corruptions
            buf = bytearray(payload)
            i = rng.randrange(len(buf))
            buf[i] = rng.choice([buf[i] ^ (1 << rng.randrange(8)), rng.randrange(256), 0, 0xFF])
            _decodes_or_bitstream_error(bytes(buf))
        for i in range(min(len(payload), 48)):  # every header byte set to boundary values
            for value in (0, 1, 0x7F, 0x80, 0xFF):
                buf = bytearray(payload)
                buf[i] = value
                _decodes_or_bitstream_error(bytes(buf))
        _decodes_or_bitstream_error(payload + b"\0\0\0\0")
        _decodes_or_bitstream_error(payload + b"\x01")
