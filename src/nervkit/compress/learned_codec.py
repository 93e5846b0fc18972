"""The payload of a rate-trained tensor (section kind ``learned``): its codes coded with the entropy model
the training used, and that model's own parameters, coded too.

Layout (``docs/bitstream.md``, "Learned-quantizer payload"; integers are LEB128 varints, signed ones
zigzag-coded)::

    version   u8        1
    family    u8        0 = Laplace, 1 = Gaussian (:data:`.parametric.FAMILIES`)
    coder     u8        0 = the parametric model, 1 = the codes' own histogram (the fallback, kept when shorter),
                        2 = the parametric model with the checkerboard context model (:mod:`.context_model`)
    shape     ndim varint, dims varints
    axes      u8 count, then one u8 per axis that has its own step and scale
    steps     one integer block per axis (one integer when no axis): log₂ Δ in 1/32
    scales    (coder 0) one integer block per axis: log₂ b in 1/16
    mean      (coder 0, 2) signed varint: μ in 1/16 of a code
    taps      (coder 2) one integer block of the context model's 5 taps, in 1/256
    lo, hi    signed varints: the codes' range
    codes     the rest: coder 0 = ANS words of QuantizedLaplace/Gaussian(lo, hi), one (μ, b) per code;
              coder 1 = :func:`~.entropy.encode_symbols` of ``q − lo``; coder 2 = ANS words of the anchors (in
              row-major order, the channel's (μ, b)) followed by the other codes (their predicted (μ, b)), one
              stream decoded in that order

An integer block is a signed varint ``m`` (the least value), an unsigned varint ``n`` (the byte length),
then ``n`` bytes of :func:`~.entropy.encode_symbols` of ``values − m``. The value is ``Δ · q`` in float32
with ``Δ = float32(2 ** (Σ_axes k / 32))``, so the same file decodes to the same bits every time.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BitstreamError
from .context_model import TAPS, anchor_mask, context_params_numpy
from .entropy import MAX_ALPHABET, decode_symbols, encode_symbols
from .learned_quant import entropy_arrays, integer_codes, step_array
from .parametric import FAMILIES, ans_decoder, bits_numpy, decode_codes, decode_next, encode_codes, finish
from .tensor_codec import encode_shape, read_shape
from .varint import encode_uvarint, read_uvarint

VERSION = 1
PARAMETRIC, HISTOGRAM, CONTEXT = 0, 1, 2
#: the largest |code| and |stored integer| accepted (far beyond any real model; bounds the decoder)
MAX_CODE = 1 << 30


def _zigzag(v: int) -> bytes:
    return encode_uvarint((v << 1) if v >= 0 else ((-v << 1) - 1))


def _read_signed(data: bytes, pos: int, what: str) -> tuple[int, int]:
    u, pos = read_uvarint(data, pos, what=what)
    v = (u >> 1) if not u & 1 else -((u + 1) >> 1)
    if abs(v) > MAX_CODE:
        raise BitstreamError(f"{what} {v} is out of range")
    return v, pos


def _int_block(values: np.ndarray) -> bytes:
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    low = int(values.min())
    coded = encode_symbols(values - low, int(values.max()) - low + 1)
    return _zigzag(low) + encode_uvarint(len(coded)) + coded


def _read_int_block(data: bytes, pos: int, count: int, what: str) -> tuple[np.ndarray, int]:
    low, pos = _read_signed(data, pos, what)
    n, pos = read_uvarint(data, pos, what=f"{what} length")
    if pos + n > len(data):
        raise BitstreamError(f"truncated {what}")
    if count == 0 or n == 0:
        raise BitstreamError(f"empty {what}")
    values = decode_symbols(data[pos:pos + n], count, MAX_ALPHABET).astype(np.int64) + low
    return values, pos + n


def encode_learned(tensor: torch.Tensor, ints: dict, axes: tuple[int, ...], family: str) -> tuple[bytes, float]:
    """(payload, estimated bits) of ``tensor`` under its quantizer's stored integers (:meth:`LearnedQuantizer.
    integers`); the estimate is the payload's side information in bytes plus the codes' model bits (or the
    histogram coder's real size where that is shorter)."""
    shape = tuple(int(s) for s in tensor.shape)
    q, _ = integer_codes(tensor, ints["steps"], axes)
    if q.size and np.abs(q).max() > MAX_CODE:
        raise ValueError("a code exceeds the format's range (a step far too small for its values)")
    lo, hi = (int(q.min()), int(q.max())) if q.size else (0, 0)
    if hi - lo + 1 > MAX_ALPHABET:  # both coders' limit (24-bit probabilities): a ValueError, not a Rust panic
        raise ValueError(f"the codes span {lo}..{hi}, more than the {MAX_ALPHABET} values a coder can code (a step "
                         "far too small for its values)")
    family_byte = bytes([VERSION, FAMILIES.index(family)])
    steps = encode_shape(shape) + bytes([len(axes), *axes]) + b"".join(_int_block(s) for s in ints["steps"])
    model = b"".join(_int_block(s) for s in ints["scales"]) + _zigzag(ints["mean"])  # coders 0 and 2 only
    span = _zigzag(lo) + _zigzag(hi)
    flat = q.reshape(-1)
    mean, scale = entropy_arrays(ints, axes, shape)
    parametric = family_byte + bytes([PARAMETRIC]) + steps + model + span
    parametric_bits = 8 * len(parametric) + bits_numpy(flat, mean, scale.reshape(-1), family)
    histogram = family_byte + bytes([HISTOGRAM]) + steps + span + encode_symbols(flat - lo, hi - lo + 1)
    options = [(parametric_bits, PARAMETRIC), (8.0 * len(histogram), HISTOGRAM)]
    if "context" in ints:
        context = family_byte + bytes([CONTEXT]) + steps + model + _int_block(ints["context"]) + span
        order, means, scales = _context_order(q, mean, scale, ints["context"])
        options.append((8 * len(context) + bits_numpy(flat[order], means, scales, family), CONTEXT))
    bits, coder = min(options)
    if coder == HISTOGRAM:
        return histogram, bits
    if coder == CONTEXT:
        return context + encode_codes(flat[order], means, scales, family, lo, hi), bits
    words = encode_codes(flat, np.full(flat.size, mean), np.ascontiguousarray(scale.reshape(-1)), family, lo, hi)
    return parametric + words, bits


def _context_order(q: np.ndarray, mean: float, scale: np.ndarray, taps: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                          np.ndarray]:
    """The coding order (anchors, then the rest, each row-major) of ``q``'s flat codes and their float64 means
    and scales in that order."""
    anchors = anchor_mask(q.shape).reshape(-1)
    order = np.concatenate([np.flatnonzero(anchors), np.flatnonzero(~anchors)])
    means, scales = context_params_numpy(q, mean, scale, taps)
    return order, np.ascontiguousarray(means.reshape(-1)[order]), np.ascontiguousarray(scales.reshape(-1)[order])


def _read_head(data: bytes) -> tuple[int, int, list[int], int, tuple[int, ...], int]:
    if len(data) < 4:
        raise BitstreamError("truncated learned-tensor header")
    version, family, coder = data[0], data[1], data[2]
    if version != VERSION:
        raise BitstreamError(f"learned-tensor payload of version {version}, expected {VERSION}")
    if family >= len(FAMILIES):
        raise BitstreamError(f"unknown entropy-model family {family}")
    if coder not in (PARAMETRIC, HISTOGRAM, CONTEXT):
        raise BitstreamError(f"unknown learned-tensor coder {coder}")
    shape, numel, pos = read_shape(data, 3)
    if pos >= len(data):
        raise BitstreamError("truncated learned-tensor axes")
    naxes = data[pos]
    axes = tuple(data[pos + 1:pos + 1 + naxes])
    if len(axes) != naxes or naxes > len(shape) or len(set(axes)) != naxes or any(a >= len(shape) for a in axes):
        raise BitstreamError("invalid learned-tensor axes")
    return family, coder, shape, numel, axes, pos + 1 + naxes


def peek_learned_shape(data: bytes, where: str) -> tuple[int, ...]:
    """The shape a learned payload declares (nothing decoded)."""
    try:
        return tuple(_read_head(bytes(data))[2])
    except BitstreamError as exc:
        raise BitstreamError(f"{where}: {exc}") from None


def _read_models(data: bytes, pos: int, coder: int, shape: list[int], axes: tuple[int, ...]) -> tuple[dict, int]:
    """The stored integers after the axes (log-steps; for coders 0 and 2 log-scales and the mean; for coder 2
    the context taps) and the offset after them: where the codes' range starts."""
    lengths = [shape[a] for a in axes] or [1]
    ints: dict = {"steps": []}
    for n in lengths:
        block, pos = _read_int_block(data, pos, n, "step block")
        ints["steps"].append(block)
    if coder in (PARAMETRIC, CONTEXT):
        ints["scales"] = []
        for n in lengths:
            block, pos = _read_int_block(data, pos, n, "scale block")
            ints["scales"].append(block)
        ints["mean"], pos = _read_signed(data, pos, "entropy-model mean")
    if coder == CONTEXT:
        if len(shape) < 3 or shape[-1] < 2 or shape[-2] < 2:
            raise BitstreamError("a context-coded tensor needs a grid of at least 2x2 in its last two dims")
        ints["context"], pos = _read_int_block(data, pos, TAPS, "context taps")
    return ints, pos


def decode_learned(data: bytes) -> torch.Tensor:
    """The float32 tensor of a payload written by :func:`encode_learned` (BitstreamError when malformed)."""
    data = bytes(data)
    family_index, coder, shape, numel, axes, pos = _read_head(data)
    family = FAMILIES[family_index]
    ints, pos = _read_models(data, pos, coder, shape, axes)
    steps = ints["steps"]
    lo, pos = _read_signed(data, pos, "lowest code")
    hi, pos = _read_signed(data, pos, "highest code")
    if hi < lo:
        raise BitstreamError(f"code range {lo}..{hi} is empty")
    if numel == 0:
        q = np.zeros(0, dtype=np.int64)
    elif coder == PARAMETRIC:
        mean, scale = entropy_arrays(ints, axes, tuple(shape))
        q = decode_codes(data[pos:], numel, np.full(numel, mean), np.ascontiguousarray(scale.reshape(-1)), family,
                         lo, hi).astype(np.int64)
    elif coder == CONTEXT:
        q = _decode_context(data[pos:], tuple(shape), ints, axes, family, lo, hi)
    else:
        if hi - lo + 1 > MAX_ALPHABET:
            raise BitstreamError(f"code range {lo}..{hi} is too wide for the histogram coder")
        q = decode_symbols(data[pos:], numel, hi - lo + 1).astype(np.int64) + lo
    step = step_array(steps, axes, tuple(shape))
    with np.errstate(all="ignore"):
        values = np.multiply(step, q.reshape(shape).astype(np.float32), dtype=np.float32)
    if values.size and not np.isfinite(values).all():
        raise BitstreamError("learned-tensor values are not finite")
    return torch.from_numpy(np.ascontiguousarray(values))


def _decode_context(data: bytes, shape: tuple[int, ...], ints: dict, axes: tuple[int, ...], family: str, lo: int,
                    hi: int) -> np.ndarray:
    """The codes of a context-coded payload: the anchors with the channel's model, then the rest with the
    model predicted from the decoded anchors, from one ANS stream."""
    mean, scale = entropy_arrays(ints, axes, shape)
    anchors = anchor_mask(shape)
    flat_anchors = anchors.reshape(-1)
    a_idx, r_idx = np.flatnonzero(flat_anchors), np.flatnonzero(~flat_anchors)
    if lo == hi:
        return decode_codes(data, int(np.prod(shape)), np.zeros(0), np.zeros(0), family, lo, hi)
    q = np.zeros(int(np.prod(shape)), dtype=np.int64)
    coder = ans_decoder(data)
    q[a_idx] = decode_next(coder, family, lo, hi, np.full(a_idx.size, mean),
                           np.ascontiguousarray(scale.reshape(-1)[a_idx]))
    means, scales = context_params_numpy(q.reshape(shape), mean, scale, ints["context"])
    q[r_idx] = decode_next(coder, family, lo, hi, np.ascontiguousarray(means.reshape(-1)[r_idx]),
                           np.ascontiguousarray(scales.reshape(-1)[r_idx]))
    finish(coder)
    return q


def learned_side_bytes(data: bytes) -> int:
    """Bytes of a learned payload that are the quantizer's and entropy model's own parameters (everything
    before the codes' range), for ``inspect``."""
    data = bytes(data)
    _, coder, shape, _, axes, pos = _read_head(data)
    return _read_models(data, pos, coder, shape, axes)[1]
