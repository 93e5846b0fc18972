"""nervkit.compress.container: the .nerv file (magic, version, CRC-checked sections, end marker)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from nervkit.compress.container import (
    FORMAT_VERSION,
    MAGIC,
    Section,
    pack,
    read_container,
    unpack,
    write_container,
)
from nervkit.compress.entropy import encode_symbols
from nervkit.compress.quantize import quantize
from nervkit.compress.tensor_codec import encode_quantized
from nervkit.errors import BitstreamError, NervkitError

SECTIONS = [
    Section("header", "header", b'{"method": "hnerv"}'),
    Section("weights", "decoder", encode_symbols(np.arange(40) % 7, 8)),
    Section("per_frame", "embeddings", b""),
    Section("latent", "grid \u00e9\u4e2d", bytes(range(256))),
]


def test_layout_starts_with_magic_and_version_and_ends_with_the_marker() -> None:
    data = pack([])
    assert data[:8] == MAGIC == b"\x89NERV\r\n\x1a"
    assert struct.unpack_from("<H", data, 8)[0] == FORMAT_VERSION
    assert data[10] == 0 and struct.unpack_from("<I", data, 11)[0] == 0
    assert struct.unpack_from("<I", data, 15)[0] == zlib.crc32(data[:15]) and len(data) == 19
    one = pack([Section("x", "n", b"ab")])
    body = b"\x01x\x01n" + struct.pack("<Q", 2) + b"ab"
    assert one[10 : 10 + len(body) + 4] == body + struct.pack("<I", zlib.crc32(body))


def test_round_trip(tmp_path: Path) -> None:
    assert unpack(pack(SECTIONS)) == SECTIONS
    assert unpack(pack([])) == []
    path = tmp_path / "sub" / "video.nerv"
    write_container(path, SECTIONS)
    assert read_container(path) == SECTIONS
    assert [p.name for p in path.parent.iterdir()] == ["video.nerv"]  # no temporaries left


def test_invalid_sections_are_refused_on_write() -> None:
    for kind, name in [("", "a"), ("Upper", "a"), ("k" * 33, "a"), ("ok", "n" * 256)]:
        with pytest.raises(ValueError):
            Section(kind, name, b"")
    with pytest.raises(ValueError):
        pack([("weights", "w", b"")])  # type: ignore[list-item]


def _error(data: bytes) -> str:
    with pytest.raises(BitstreamError) as info:
        unpack(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_error_messages() -> None:
    good = pack(SECTIONS)
    assert _error(b"") == "empty file"
    assert "not a .nerv file" in _error(b"GIF89a" + good[6:])
    assert "not a .nerv file" in _error(b"{}")
    assert _error(good[:5]).startswith("truncated")
    newer = pack(SECTIONS, version=FORMAT_VERSION + 4)
    assert _error(newer) == (
        f"written by a newer nervkit: format version {FORMAT_VERSION + 4}, this reads <= {FORMAT_VERSION}"
    )
    assert "version 0" in _error(good[:8] + b"\0\0" + good[10:])
    # section 3 is cut off: its end lies beyond the file
    cut = len(pack(SECTIONS[:2])) - 9 + 20
    message = _error(good[:cut])
    assert message.startswith("truncated: section 3") and f"the file has {cut}" in message
    assert _error(good[:-1]).startswith("truncated: the end marker")
    assert _error(good[:-9]).startswith("truncated: no end marker")
    # a corrupted payload byte in section 2
    start = len(pack(SECTIONS[:1])) - 9
    bad = bytearray(good)
    bad[start + 30] ^= 0x40
    assert _error(bytes(bad)) == "section 2 (decoder) checksum mismatch"
    assert "trailing garbage" in _error(good + b"\0")
    assert "file checksum mismatch" == _error(good[:-4] + bytes(4))


def test_absurd_lengths_do_not_allocate() -> None:
    data = bytearray(pack([Section("weights", "w", b"abc")]))
    length_at = 10 + 1 + len("weights") + 1 + 1
    struct.pack_into("<Q", data, length_at, (1 << 64) - 1)
    assert _error(bytes(data)).startswith("truncated: section 1 ends at byte")


def test_section_count_must_match() -> None:
    one = pack([Section("a", "b", b"")])
    mixed = bytearray(one)
    struct.pack_into("<I", mixed, len(one) - 8, 2)
    assert "end marker says 2 sections" in _error(bytes(mixed))


def test_paths(tmp_path: Path) -> None:
    for path, expect in [(tmp_path, "is a directory"), (tmp_path / "missing.nerv", "no such file")]:
        with pytest.raises(BitstreamError, match=expect):
            read_container(path)
    empty = tmp_path / "empty.nerv"
    empty.write_bytes(b"")
    with pytest.raises(BitstreamError, match="empty file"):
        read_container(empty)


def test_every_single_byte_change_is_detected() -> None:
    weights = encode_symbols(np.arange(9) % 3, 3)
    data = pack([Section("header", "h", b'{"a":1}'), Section("weights", "w", weights)])
    assert len(data) < 120
    for pos in range(len(data)):
        for xor in range(1, 256):
            mutated = bytearray(data)
            mutated[pos] ^= xor
            try:
                unpack(bytes(mutated))
            except BitstreamError:
                continue
            except NervkitError as exc:  # pragma: no cover - would be a wrong error type
                pytest.fail(f"byte {pos} ^ {xor}: {type(exc).__name__}")
            pytest.fail(f"changing byte {pos} (xor {xor:#x}) was not detected")


def test_worked_example_in_docs_bitstream_md() -> None:
    payload = encode_symbols(np.array([0, 0, 0, 1, 0, 2, 0, 0]), 4)
    data = pack([Section("header", "header", b"{}"), Section("weights", "w", payload)])
    assert data.hex() == (
        "894e4552560d0a1a" "0100"
        "06686561646572" "06686561646572" "0200000000000000" "7b7d" "109de0aa"
        "0777656967687473" "0177" "0a00000000000000" "000002060101" "53006014" "b453032c"
        "00" "02000000" "1f8431a8"
    )
    qt = quantize(torch.tensor([[0.0, 0.5, 1.0], [2.0, 2.0, 2.0]]), 2, per_channel=True)
    assert encode_quantized(qt).hex() == (
        "0201020203" "0000000000000040" "abaaaa3e00000000" "00000304000101" "b2aa2a07"
    )
