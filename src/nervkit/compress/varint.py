"""Unsigned LEB128 varints (the little-endian base-128 code of DWARF / protobuf / WebAssembly).

Each byte carries 7 value bits, least significant group first; the high bit says "more bytes
follow". The reader is strict: it refuses codes longer than ``max_bytes`` (10 bytes = 64 bits), a
code cut off by the end of the data, and non-minimal codes (a final ``0x00`` byte after a
continuation), so every value has exactly one encoding and a flipped byte cannot hide.
"""

from __future__ import annotations

from ..errors import BitstreamError

MAX_VARINT_BYTES = 10


def encode_uvarint(value: int) -> bytes:
    """The LEB128 encoding of the non-negative integer ``value`` (< 2**64)."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_uvarints(values) -> bytes:
    """The concatenated LEB128 encodings of ``values``."""
    return b"".join(encode_uvarint(int(v)) for v in values)


def read_uvarint(data: bytes | memoryview, pos: int, *, what: str = "varint") -> tuple[int, int]:
    """Read one varint from ``data`` at ``pos``; return ``(value, position after it)``.

    Raises :class:`BitstreamError` naming ``what`` when the code is truncated, too long or not minimal.
    """
    value = 0
    shift = 0
    end = len(data)
    for i in range(MAX_VARINT_BYTES):
        if pos >= end:
            raise BitstreamError(f"truncated {what}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise BitstreamError(f"non-minimal {what} encoding")
            if value >= 1 << 64:
                raise BitstreamError(f"{what} out of range")
            return value, pos
        shift += 7
    raise BitstreamError(f"{what} longer than {MAX_VARINT_BYTES} bytes")
