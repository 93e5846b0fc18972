"""The payload of a pruned (sparse) tensor: its zero/non-zero mask and its quantized non-zeros.

Layout::

    ndim      varint, then ndim varint dims
    mask_len  varint: byte length of the mask payload
    mask      encode_symbols of the flattened keep-mask (alphabet 2): ≈ H(sparsity) bits per weight
    values    encode_quantized of the non-zero values (1-D, one range)

A pruned weight decodes to exactly 0; the dense zeros are never quantized or coded one by one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BitstreamError
from .entropy import decode_symbols, encode_symbols
from .quantize import dequantize, quantize
from .tensor_codec import decode_quantized, encode_quantized, encode_shape, read_shape
from .varint import encode_uvarint, read_uvarint


def encode_sparse(t: torch.Tensor, bits: int) -> bytes:
    flat = t.detach().float().reshape(-1)
    keep = flat != 0
    out = bytearray(encode_shape(tuple(t.shape)))
    mask = encode_symbols(keep.numpy().astype(np.uint8), 2)
    out += encode_uvarint(len(mask)) + mask
    out += encode_quantized(quantize(flat[keep], bits, per_channel=False))
    return bytes(out)


def decode_sparse(data: bytes) -> torch.Tensor:
    data = bytes(data)
    shape, numel, pos = read_shape(data, 0)
    mask_len, pos = read_uvarint(data, pos, what="mask length")
    if pos + mask_len > len(data):
        raise BitstreamError("truncated sparsity mask")
    keep = decode_symbols(data[pos : pos + mask_len], numel, 2).astype(bool)
    values = dequantize(decode_quantized(data[pos + mask_len :]))
    if values.numel() != int(keep.sum()):
        raise BitstreamError("sparse tensor: the mask and the values disagree")
    out = torch.zeros(numel, dtype=torch.float32)
    out[torch.from_numpy(keep)] = values.reshape(-1)
    return out.reshape(shape)
