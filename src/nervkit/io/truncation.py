"""Is a container file whole? The rules that compare what a file promises with what it holds.

:mod:`nervkit.io.container` scans a file once (demuxing, or decoding when no frame count is declared)
and asks the functions here whether what it found is short of the promise: a declared frame count,
a declared duration (mkv/webm: the video's own ``DURATION`` tag), whole y4m ``FRAME`` records, an
mp4/mov index cut off with the end of the file. Each returns the problem as the message less the
leading path (``"is truncated or corrupt: ..."``), or None. The rules and tolerances are stated in
:mod:`nervkit.io.container`'s docstring.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import av

#: The data may end this many frame intervals (or this fraction of the duration, if more) before the
#: declared duration, and the count may fall short of ``duration x rate`` by this many frames (or
#: fraction), before a file without a declared frame count counts as truncated.
TOLERANCE_FRAMES = 2
TOLERANCE_FRACTION = 0.01

_Y4M_FRAME = b"FRAME\n"
_TAG_DURATION = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*$")


@dataclass
class Scan:
    """What one pass over a file found."""

    frames: int = 0  # decoded video frames (or non-empty video packets when only demuxing)
    first: av.VideoFrame | None = None
    first_packet_size: int = 0
    discarded: int = 0  # video packets flagged to be discarded (edit lists)
    # stream index -> [time base, earliest packet time, latest packet end, ticks of one video frame]
    spans: dict[int, list] = field(default_factory=dict)
    error: str | None = None  # the FFmpeg error that ended the pass early

    @property
    def data_start(self) -> float | None:
        """Earliest packet time of any stream, in seconds (``None`` without timestamps)."""
        return min((float(first * tb) for tb, first, _, _ in self.spans.values()), default=None)

    @property
    def data_end(self) -> float | None:
        """Latest packet end (time + duration) of any stream, in seconds (``None`` without timestamps)."""
        return max((float(end * tb) for tb, _, end, _ in self.spans.values()), default=None)


def track_time(spans: dict[int, list], packet: av.Packet, fps: float) -> None:
    """Widen the span of ``packet``'s stream by its presentation interval, in integer ticks of the
    stream's time base (a packet without a duration lasts ``1/fps``, or nothing when ``fps`` is 0)."""
    t = packet.pts if packet.pts is not None else packet.dts
    if t is None:
        return
    span = spans.get(packet.stream_index)
    if span is None:
        time_base = packet.time_base
        if not time_base:
            return
        frame_ticks = round(1 / (fps * time_base)) if fps > 0 else 0
        span = spans[packet.stream_index] = [time_base, t, t, frame_ticks]
    end = t + (packet.duration or span[3])
    if t < span[1]:
        span[1] = t
    if end > span[2]:
        span[2] = end


def mp4_missing_index(path: str) -> str | None:
    """For an ISO media file (mp4/mov: starts with an ``ftyp`` box) that has no ``moov`` box among its
    top-level boxes: ``""``, or ``"; its 'mdat' box ends N bytes past the end of the file"`` when it
    was cut inside a box. ``None`` for any other file."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset, boxes = 0, 0
            while offset + 8 <= size and boxes < 10_000:
                f.seek(offset)
                header = f.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if boxes == 0 and kind != b"ftyp":
                    return None
                if kind == b"moov":
                    return None
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                elif length == 0:
                    length = size - offset
                if length < 8:
                    return None  # not a box structure: leave it to FFmpeg's message
                if offset + length > size:
                    name = kind.decode("ascii", "replace")
                    past = offset + length - size
                    return f"; its '{name}' box ends {past:,} bytes past the end of the file"
                offset += length
                boxes += 1
    except OSError:
        return None
    return "" if boxes else None


def _seconds(value: int | None, time_base) -> float | None:
    """``value * time_base`` in seconds, or ``None`` when unknown or not positive."""
    if not value or not time_base or value <= 0:
        return None
    return float(value * time_base)


def _tag_seconds(text: str | None) -> float | None:
    """A Matroska ``DURATION`` tag (``"00:00:02.400000000"``) in seconds, or ``None``."""
    match = _TAG_DURATION.match(text or "")
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return value if value > 0 else None


def _rate(fps: float) -> str:
    """A frame rate for messages: ``25``, ``29.97``, ``23.98``."""
    return f"{fps:.4g}"


def count_problem(declared: int, decoded: int, fps: float, error: str | None) -> str:
    """The problem (the message less the path) of a file that declares ``declared`` frames but yields
    ``decoded``."""
    text = (
        f"is truncated or corrupt: the container declares {declared} frames "
        f"({declared / fps:.2f} s at {_rate(fps)} fps) but only {decoded} could be decoded"
    )
    return text + (f" ({error})" if error else "")


def error_problem(decoded: int, error: str) -> str:
    """The problem of a file whose decoding fails after ``decoded`` frames."""
    return f"is truncated or corrupt: decoding failed after {decoded} frames: {error}"


def duration_problem(container, stream, scan: Scan, fps: float) -> str | None:
    """The problem if the packets end well before the declared duration (see the module docstring)."""
    total = container.duration / av.time_base if container.duration and container.duration > 0 else None
    if total is None:
        durations = [_seconds(s.duration, s.time_base) for s in container.streams]
        total = max((d for d in durations if d is not None), default=None)
    if total is None or scan.data_end is None or fps <= 0:
        return None
    container_start = container.start_time / av.time_base if container.start_time is not None else 0.0
    origin = min(0.0, container_start, scan.data_start if scan.data_start is not None else 0.0)
    missing_time = origin + total - scan.data_end
    if missing_time <= max(TOLERANCE_FRAMES / fps, TOLERANCE_FRACTION * total):
        return None
    video_seconds = (
        _tag_seconds(stream.metadata.get("DURATION"))
        or _seconds(stream.duration, stream.time_base)
        or total
    )
    expected = round(video_seconds * fps)
    if expected - scan.frames <= max(TOLERANCE_FRAMES, TOLERANCE_FRACTION * expected):
        return None
    text = (
        f"is truncated or corrupt: the container declares about {expected} frames "
        f"({video_seconds:.2f} s at {_rate(fps)} fps) but only {scan.frames} could be decoded"
    )
    return text + (f" ({scan.error})" if scan.error else "")


def y4m_problem(path: str, scan: Scan) -> str | None:
    """The problem if a Y4M file ends inside a frame (it must be whole ``FRAME`` records)."""
    if not scan.first_packet_size:
        return None
    try:
        with open(path, "rb") as f:
            header = f.readline(1 << 16)
            if not header.startswith(b"YUV4MPEG2") or not header.endswith(b"\n"):
                return None
            if f.read(len(_Y4M_FRAME)) != _Y4M_FRAME:  # frame headers with parameters: not checked
                return None
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    record = len(_Y4M_FRAME) + scan.first_packet_size
    whole, extra = divmod(size - len(header), record)
    if not extra:
        return None
    return (
        f"is truncated or corrupt: it ends {extra} bytes into frame {whole + 1} (a Y4M file holds "
        f"whole frames of {record} bytes) so only {scan.frames} could be decoded"
    )
