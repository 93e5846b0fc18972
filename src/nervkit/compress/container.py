"""The ``.nerv`` container: a magic number, a format version, CRC-checked sections and an end marker.

Layout (little-endian throughout; ``docs/bitstream.md`` is the full specification)::

    magic      8 bytes   89 4E 45 52 56 0D 0A 1A  ("\\x89NERV\\r\\n\\x1a", PNG-style)
    version    u16       FORMAT_VERSION
    section*   kind_len u8 (1..32) | kind (ASCII) | name_len u8 | name (UTF-8)
               | payload_len u64 | payload | crc32 u32 of everything from kind_len to the payload's end
    end        0x00 u8 | section count u32 | crc32 u32 of the whole file before these 4 bytes

The magic follows PNG's design (a high-bit byte catches 7-bit transfers, CR LF / LF catch newline
conversion, ^Z stops DOS ``type``). Each section carries its own CRC-32 (ISO-HDLC / zlib polynomial)
so corruption can be pinned to a section; the end marker's CRC covers every byte before it, so *any*
single changed byte is detected, including bytes of the magic, version or framing. The parser never
allocates more than the input's size: every length is checked against the bytes that remain before
it is used.

Every problem is a one-line :class:`~nervkit.errors.BitstreamError`. Sections are numbered from 1 in
messages.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import BitstreamError
from ..io.atomic import write_bytes_atomic

MAGIC = b"\x89NERV\r\n\x1a"
FORMAT_VERSION = 1
MAX_KIND_BYTES = 32
MAX_NAME_BYTES = 255
END_MARKER = 0x00
_KIND_RE = re.compile(r"[a-z0-9_.\-]{1,32}\Z")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_PREAMBLE = len(MAGIC) + _U16.size
_END_SIZE = 1 + _U32.size + _U32.size


@dataclass(frozen=True)
class Section:
    """One section: ``kind`` (lowercase ASCII tag, 1..32 chars of ``a-z 0-9 _ . -``), ``name``
    (UTF-8, at most 255 bytes) and an opaque ``payload``."""

    kind: str
    name: str
    payload: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND_RE.match(self.kind):
            raise ValueError(f"section kind must match [a-z0-9_.-]{{1,32}}, got {self.kind!r}")
        if not isinstance(self.name, str) or len(self.name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ValueError(f"section name must be a string of at most {MAX_NAME_BYTES} UTF-8 bytes")
        if not isinstance(self.payload, (bytes, bytearray, memoryview)):
            raise ValueError("section payload must be bytes")
        object.__setattr__(self, "payload", bytes(self.payload))


def pack(sections, *, version: int = FORMAT_VERSION) -> bytes:
    """Serialize ``sections`` (an iterable of :class:`Section`) into a complete ``.nerv`` byte string."""
    if not 0 < version < 1 << 16:
        raise ValueError(f"format version must be in 1..65535, got {version}")
    out = bytearray(MAGIC + _U16.pack(version))
    n = 0
    for s in sections:
        if not isinstance(s, Section):
            raise ValueError(f"expected a Section, got {type(s).__name__}")
        kind, name = s.kind.encode("ascii"), s.name.encode("utf-8")
        body = bytes([len(kind)]) + kind + bytes([len(name)]) + name + _U64.pack(len(s.payload)) + s.payload
        out += body + _U32.pack(zlib.crc32(body))
        n += 1
    if n >= 1 << 32:
        raise ValueError("too many sections")
    out += bytes([END_MARKER]) + _U32.pack(n)
    out += _U32.pack(zlib.crc32(out))
    return bytes(out)


def unpack(data: bytes) -> list[Section]:
    """Parse a ``.nerv`` byte string; raise :class:`BitstreamError` (one line) if it is not valid."""
    data = bytes(data)
    size = len(data)
    if size == 0:
        raise BitstreamError("empty file")
    if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
        raise BitstreamError("not a .nerv file (wrong magic bytes)")
    if size < _PREAMBLE:
        raise BitstreamError(f"truncated: the header ends at byte {_PREAMBLE} but the file has {size}")
    (version,) = _U16.unpack_from(data, len(MAGIC))
    if version > FORMAT_VERSION:
        raise BitstreamError(
            f"written by a newer nervkit: format version {version}, this reads <= {FORMAT_VERSION}"
        )
    if version == 0:
        raise BitstreamError("invalid format version 0")
    view = memoryview(data)
    sections: list[Section] = []
    pos = _PREAMBLE
    while True:
        number = len(sections) + 1
        if pos >= size:
            raise BitstreamError(f"truncated: no end marker (the file ends at byte {size})")
        kind_len = data[pos]
        if kind_len == END_MARKER:
            return _finish(data, pos, sections)
        if kind_len > MAX_KIND_BYTES:
            raise BitstreamError(f"section {number}: invalid kind length {kind_len} at byte {pos}")
        name_at = pos + 1 + kind_len
        if name_at >= size:
            raise BitstreamError(
                f"truncated: section {number} header ends past byte {name_at} but the file has {size}"
            )
        name_len = data[name_at]
        len_at = name_at + 1 + name_len
        payload_at = len_at + _U64.size
        if payload_at > size:
            raise BitstreamError(
                f"truncated: section {number} header ends at byte {payload_at} but the file has {size}"
            )
        (payload_len,) = _U64.unpack_from(data, len_at)
        end = payload_at + payload_len + _U32.size
        if end > size:
            raise BitstreamError(f"truncated: section {number} ends at byte {end} but the file has {size}")
        kind_raw = view[pos + 1 : name_at]
        name_raw = view[name_at + 1 : len_at]
        label = _label(kind_raw, name_raw)
        (stored_crc,) = _U32.unpack_from(data, end - _U32.size)
        if zlib.crc32(view[pos : end - _U32.size]) != stored_crc:
            raise BitstreamError(f"section {number} ({label}) checksum mismatch")
        try:
            kind = bytes(kind_raw).decode("ascii")
            name = bytes(name_raw).decode("utf-8")
            section = Section(kind, name, bytes(view[payload_at : end - _U32.size]))
        except (UnicodeDecodeError, ValueError):
            raise BitstreamError(f"section {number}: invalid kind or name") from None
        sections.append(section)
        pos = end


def _label(kind_raw: memoryview, name_raw: memoryview) -> str:
    """A printable label for messages: the section's name (or kind), safely decoded."""
    raw = bytes(name_raw) or bytes(kind_raw)
    text = raw.decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64]


def _finish(data: bytes, pos: int, sections: list[Section]) -> list[Section]:
    size = len(data)
    end = pos + _END_SIZE
    if end > size:
        raise BitstreamError(f"truncated: the end marker ends at byte {end} but the file has {size}")
    (count,) = _U32.unpack_from(data, pos + 1)
    (stored_crc,) = _U32.unpack_from(data, pos + 5)
    if count != len(sections):
        raise BitstreamError(f"end marker says {count} sections but the file has {len(sections)}")
    if zlib.crc32(memoryview(data)[: pos + 5]) != stored_crc:
        raise BitstreamError("file checksum mismatch")
    if end != size:
        raise BitstreamError(f"{size - end} bytes of trailing garbage after the end marker at byte {pos}")
    return sections


def write_container(path: str | os.PathLike[str], sections, *, version: int = FORMAT_VERSION) -> None:
    """Write ``sections`` to ``path`` as a ``.nerv`` file, atomically (temporary file + rename)."""
    write_bytes_atomic(path, pack(sections, version=version))


def read_container(path: str | os.PathLike[str]) -> list[Section]:
    """Read and validate the ``.nerv`` file at ``path``; every problem is a :class:`BitstreamError`."""
    p = Path(path)
    if p.is_dir():
        raise BitstreamError(f"{p} is a directory, not a .nerv file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BitstreamError(f"no such file: {p}") from None
    except OSError as exc:
        raise BitstreamError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        return unpack(data)
    except BitstreamError as exc:
        raise BitstreamError(f"{p}: {exc}") from None
