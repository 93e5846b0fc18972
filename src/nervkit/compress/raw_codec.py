"""Raw tensors in a ``.nerv`` file (section kind ``raw``): non-float buffers stored exactly.

Payload: 4-byte little-endian length n, n bytes of JSON ``{"dtype", "shape"}``, then the values in
C order. A plain numeric dtype, at most MAX_NDIM dimensions and MAX_ELEMENTS values, and exactly the
bytes they need — anything else is a malformed section.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from ..errors import BitstreamError
from .tensor_codec import MAX_ELEMENTS, MAX_NDIM

_RAW_DTYPE_KINDS = "biuf"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def raw_meta(payload: bytes, where: str = "a raw tensor section") -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, data offset) of a raw payload, checked: a plain numeric dtype, at most MAX_NDIM
    dims and MAX_ELEMENTS values, and exactly the bytes they need."""
    try:
        n = int.from_bytes(payload[:4], "little")
        if len(payload) < 4 or 4 + n > len(payload):
            raise ValueError
        meta = json.loads(payload[4 : 4 + n])
        dtype = np.dtype(meta["dtype"]) if isinstance(meta["dtype"], str) else None
        shape = meta["shape"]
        if (dtype is None or dtype.kind not in _RAW_DTYPE_KINDS or dtype.shape != () or dtype.itemsize > 16
                or not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and 0 <= d <= MAX_ELEMENTS for d in shape)
                or math.prod(shape) > MAX_ELEMENTS
                or len(payload) - 4 - n != math.prod(shape) * dtype.itemsize):
            raise ValueError
    except (ValueError, TypeError, KeyError, RecursionError):
        raise BitstreamError(f"{where} is malformed") from None
    return dtype, tuple(shape), 4 + n


def encode_raw(t: torch.Tensor) -> bytes:
    meta = json.dumps({"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}).encode()
    return len(meta).to_bytes(4, "little") + meta + t.contiguous().numpy().tobytes()


def decode_raw(payload: bytes) -> torch.Tensor:
    dtype, shape, offset = raw_meta(payload)
    try:
        array = np.frombuffer(payload[offset:], dtype=dtype).reshape(shape)
        return torch.from_numpy(array.copy())
    except (ValueError, TypeError):  # e.g. a dtype torch has no counterpart for
        raise BitstreamError("a raw tensor section is malformed") from None
