"""The payload of one quantized, entropy-coded tensor (a :class:`~.quantize.QuantizedTensor`).

Layout (``docs/bitstream.md``, "Quantized-tensor payload")::

    bits      u8        1..16
    axis      u8        0 = one range for the tensor, 1 = one range per output channel (axis 0)
    ndim      varint    0..8
    dims      ndim varints
    mins      R float32 little-endian   (R = 1, or dims[0] for per-channel)
    scales    R float32 little-endian
    symbols   the rest: :func:`~.entropy.encode_symbols` of the flattened codes, alphabet 2**bits

The element count is the product of ``dims`` (at most ``MAX_ELEMENTS``, so a corrupt shape cannot
make the decoder allocate an absurd array).
"""

from __future__ import annotations

import numpy as np

from ..errors import BitstreamError
from .entropy import decode_symbols, encode_symbols
from .quantize import MAX_BITS, MIN_BITS, QuantizedTensor, code_dtype
from .varint import encode_uvarint, read_uvarint

MAX_NDIM = 8
MAX_ELEMENTS = 1 << 28  # 268M values: far above any NeRV-family model, bounds decoder memory


def encode_shape(shape: tuple[int, ...] | list[int]) -> bytes:
    """``ndim`` then each dim, as varints."""
    if len(shape) > MAX_NDIM:
        raise ValueError(f"at most {MAX_NDIM} dims are supported")
    out = bytearray(encode_uvarint(len(shape)))
    for d in shape:
        out += encode_uvarint(int(d))
    return bytes(out)


def read_shape(data: bytes, pos: int) -> tuple[list[int], int, int]:
    """Parse :func:`encode_shape` at ``pos``: (shape, element count, next offset); bounded."""
    ndim, pos = read_uvarint(data, pos, what="tensor rank")
    if ndim > MAX_NDIM:
        raise BitstreamError(f"tensor rank {ndim} exceeds {MAX_NDIM}")
    shape, numel = [], 1
    for _ in range(ndim):
        d, pos = read_uvarint(data, pos, what="tensor dim")
        numel *= d
        if numel > MAX_ELEMENTS:
            raise BitstreamError(f"tensor has more than {MAX_ELEMENTS} elements")
        shape.append(d)
    return shape, numel, pos


def encode_quantized(qt: QuantizedTensor) -> bytes:
    """Serialize ``qt``: header, float32 ranges, then the entropy-coded codes."""
    out = bytearray([qt.bits, 0 if qt.axis is None else 1])
    out += encode_shape(qt.shape)
    out += np.asarray(qt.mins, dtype="<f4").tobytes() + np.asarray(qt.scales, dtype="<f4").tobytes()
    out += encode_symbols(np.asarray(qt.q).reshape(-1), 1 << qt.bits)
    return bytes(out)


def decode_quantized(data: bytes) -> QuantizedTensor:
    """Parse a payload written by :func:`encode_quantized`; raise :class:`BitstreamError` if malformed."""
    data = bytes(data)
    if len(data) < 3:
        raise BitstreamError("truncated tensor header")
    bits, axis_flag = data[0], data[1]
    if not MIN_BITS <= bits <= MAX_BITS:
        raise BitstreamError(f"invalid bit depth {bits}")
    if axis_flag > 1:
        raise BitstreamError(f"invalid quantization axis flag {axis_flag}")
    shape, numel, pos = read_shape(data, 2)
    ndim = len(shape)
    if axis_flag and (ndim < 2 or shape[0] == 0):
        raise BitstreamError("per-channel ranges need a tensor with >= 2 dims and >= 1 channel")
    n_ranges = shape[0] if axis_flag else 1
    ranges_end = pos + 8 * n_ranges
    if ranges_end > len(data):
        raise BitstreamError("truncated tensor ranges")
    mins = np.frombuffer(data, dtype="<f4", count=n_ranges, offset=pos).astype(np.float32)
    scales_at = pos + 4 * n_ranges
    scales = np.frombuffer(data, dtype="<f4", count=n_ranges, offset=scales_at).astype(np.float32)
    with np.errstate(all="ignore"):  # corrupt ranges may hold NaN/inf bit patterns: checked right here
        top = mins.astype(np.float64) + scales.astype(np.float64) * ((1 << bits) - 1)
        finite = (np.isfinite(mins).all() and np.isfinite(scales).all() and np.isfinite(top).all()
                  and (np.abs(top) < np.finfo(np.float32).max).all() and (scales >= 0).all())
    if not finite:
        raise BitstreamError("tensor quantization ranges are not finite")
    symbols = decode_symbols(data[ranges_end:], numel, 1 << bits)
    q = symbols.astype(code_dtype(bits), copy=False).reshape(shape)
    return QuantizedTensor(tuple(shape), int(bits), 0 if axis_flag else None, q, mins, scales)
