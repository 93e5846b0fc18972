"""Truncated input (issue F8): a cut-off file of every container kind is refused with the frame counts
in a one-line InputError, valid files (VFR, no duration, audio outlasting the video, an mp4 edit list)
are never refused, frame ranges within the decodable part still read, and the frame store turns
"cannot hold these frames" (memory, disk, address space) into one line. All files are real encodes of
tiny noisy clips."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from nervkit.data import frame_store, load_frames
from nervkit.errors import ConfigError, InputError
from nervkit.io import FrameRange, iter_frames, probe_video, read_video

N, H, W = 40, 36, 64
VP9_FAST = {"deadline": "realtime", "cpu-used": "8"}
FASTSTART = {"movflags": "+faststart"}  # the index at the front: a cut file still declares every frame

# kind -> (codec, pix_fmt, codec options, container options)
KINDS = {
    "mp4": ("libx264", "yuv420p", {}, FASTSTART),
    "mov": ("libx264", "yuv420p", {}, FASTSTART),
    "mkv": ("libx264", "yuv420p", {}, {}),
    "webm": ("libvpx-vp9", "yuv420p", VP9_FAST, {}),
    "avi": ("mjpeg", "yuvj420p", {}, {}),
    "y4m": ("rawvideo", "yuv420p", {}, {}),
}
COUNT = re.compile(
    r"the container declares (?:about )?(\d+) frames \((\d+\.\d\d) s at 25 fps\) "
    r"but only (\d+) could be decoded"
)


@pytest.fixture(scope="module")
def noisy() -> list[np.ndarray]:
    """Noise compresses badly, so every frame takes about the same number of bytes and a file cut in
    half keeps about half of its frames."""
    rng = np.random.default_rng(8)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(N)]


def encode(path: Path, frames, kind: str, container_options: dict | None = None) -> Path:
    codec, pix_fmt, options, default_options = KINDS[kind]
    options_for_file = default_options if container_options is None else container_options
    with av.open(str(path), "w", options=options_for_file) as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width, stream.pix_fmt = H, W, pix_fmt
        stream.options = options
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def cut(path: Path, target: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def pyav_count(path: Path) -> int:
    """Frames PyAV decodes, independently of nervkit (errors end the count)."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.FFmpegError:
            pass
    return count


def refused(path: Path, **kw) -> str:
    """``path`` is refused by the probe and by both readers with the same one-line InputError."""
    with pytest.raises(InputError) as probe:
        probe_video(path, **kw)
    message = str(probe.value)
    assert "\n" not in message and message.startswith(f"{path} is truncated or corrupt: "), message
    for call in (read_video, iter_frames):
        with pytest.raises(InputError) as other:
            call(path, **kw)
        assert str(other.value) == message
    return message


@pytest.mark.parametrize("kind", list(KINDS))
def test_complete_file_reads_every_frame(kind, tmp_path, noisy):
    path = encode(tmp_path / f"a.{kind}", noisy, kind)
    info = probe_video(path)
    assert (info.num_frames, info.size, info.fps) == (N, (H, W), 25.0)
    assert read_video(path).frames.shape == (N, 3, H, W)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "y4m"])
def test_half_truncated_container_is_refused_with_the_counts(kind, tmp_path, noisy):
    path = cut(encode(tmp_path / f"a.{kind}", noisy, kind), tmp_path / f"cut.{kind}")
    message = refused(path)
    match = COUNT.search(message)
    assert match, message
    declared, seconds, decoded = int(match[1]), float(match[2]), int(match[3])
    assert (declared, seconds) == (N, 1.6)
    assert 0 < decoded < N // 2 + 5
    assert decoded <= pyav_count(path)
    if decoded:
        assert message.endswith(f"; a frame range within frames 0-{decoded - 1} can still be read")


def test_half_truncated_y4m_is_refused_with_the_counts(tmp_path, noisy):
    path = cut(encode(tmp_path / "a.y4m", noisy, "y4m"), tmp_path / "cut.y4m")
    frame_record = len(b"FRAME\n") + H * W * 3 // 2
    message = refused(path)
    match = re.search(
        r"it ends (\d+) bytes into frame (\d+) \(a Y4M file holds whole frames of (\d+) bytes\) "
        r"so only (\d+) could be decoded",
        message,
    )
    assert match, message
    assert int(match[3]) == frame_record and int(match[2]) == int(match[4]) + 1 == N // 2
    assert 0 < int(match[1]) < frame_record


def test_y4m_cut_at_a_frame_boundary_is_a_valid_shorter_file(tmp_path, noisy):
    path = encode(tmp_path / "a.y4m", noisy, "y4m")
    data = path.read_bytes()
    record = len(b"FRAME\n") + H * W * 3 // 2
    (tmp_path / "short.y4m").write_bytes(data[: len(data) - 3 * record])
    assert probe_video(tmp_path / "short.y4m").num_frames == N - 3


def test_truncated_mp4_with_its_index_at_the_end(tmp_path, noisy):
    path = cut(encode(tmp_path / "a.mp4", noisy, "mp4", container_options={}), tmp_path / "cut.mp4")
    message = refused(path)  # no index, so no count: the message says what is missing
    assert "an mp4/mov file without its index (no 'moov' box; its 'mdat' box ends " in message, message
    assert message.endswith("bytes past the end of the file), as when a file is cut off before its end")


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm", "avi", "y4m"])
def test_a_range_within_the_decodable_frames_is_read(kind, tmp_path, noisy):
    full = encode(tmp_path / f"a.{kind}", noisy, kind)
    path = cut(full, tmp_path / f"cut.{kind}")
    message = refused(path)
    decoded = int(re.search(r"only (\d+) could be decoded", message)[1])
    assert decoded >= 2
    # a range with a stop inside the decodable frames: read, and num_frames is the decodable count
    part = read_video(path, frames=FrameRange(0, decoded))
    assert part.indices == list(range(decoded)) and part.info.num_frames == decoded
    expected = read_video(full, frames=FrameRange(0, decoded - 1)).frames
    assert np.array_equal(part.frames[: decoded - 1].numpy(), expected.numpy())
    assert probe_video(path, frames=FrameRange(1, decoded, 2)).num_frames == decoded
    assert len(list(iter_frames(path, frames=FrameRange(1, decoded, 2)))) == len(range(1, decoded, 2))
    store = load_frames(path, frames=FrameRange(0, decoded - 1))
    assert len(store) == decoded - 1
    # ranges that reach past the decodable frames, or to the end, still get the truncation error
    too_far = [FrameRange(0, decoded + 1), FrameRange(), FrameRange(1), FrameRange(decoded, N)]
    too_far.append(FrameRange(0, 1000))
    for frames in too_far:
        with pytest.raises(InputError, match="is truncated or corrupt") as info:
            read_video(path, frames=frames)
        assert str(info.value) == message
        with pytest.raises(InputError, match="is truncated or corrupt"):
            load_frames(path, frames=frames)


# ---- valid files that a naive "duration x rate" rule would refuse -------------------------------------


def encode_vfr(path: Path, frames, codec: str, options=None) -> Path:
    """20 frames 20 ms apart, then 20 frames 100 ms apart (time base 1 ms)."""
    pts, t = [], 0
    for i in range(len(frames)):
        pts.append(t)
        t += 20 if i < len(frames) // 2 else 100
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width, stream.pix_fmt = H, W, "yuv420p"
        stream.options = options or {}
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for frame, when in zip(frames, pts):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = when, Fraction(1, 1000)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("kind", ["mkv", "webm", "mp4"])
def test_variable_frame_rate_files_are_read_whole(kind, tmp_path, noisy):
    codec, options = ("libvpx-vp9", VP9_FAST) if kind == "webm" else ("libx264", {})
    path = encode_vfr(tmp_path / f"vfr.{kind}", noisy, codec, options)
    if kind != "mp4":  # (an mp4 declares its count; FFmpeg derives its average rate from it)
        with av.open(str(path)) as container:
            naive = container.duration / av.time_base * float(container.streams.video[0].average_rate)
        assert abs(naive - N) > 5  # duration x average rate says little about the count of a VFR file
    assert probe_video(path).num_frames == N
    assert read_video(path).frames.shape[0] == N
    if kind != "mp4":  # and cutting one is still found, by time rather than by count
        message = refused(cut(path, tmp_path / f"cut.{kind}"))
        assert COUNT.search(message), message


def test_files_without_a_duration_are_read_whole(tmp_path):
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    source = ["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=25", "-frames:v", str(N)]
    for name, codec in [
        ("pipe.mkv", ["-c:v", "libx264", "-f", "matroska"]),
        ("pipe.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-f", "webm"]),
    ]:
        command = [ffmpeg, "-v", "error", *source, *codec, "pipe:1"]  # a pipe is not seekable: no duration
        data = subprocess.run(command, capture_output=True, check=True).stdout
        path = tmp_path / name
        path.write_bytes(data)
        with av.open(str(path)) as container:
            assert container.duration is None and container.streams.video[0].frames == 0
        assert probe_video(path).num_frames == N
        assert read_video(path).frames.shape[0] == N


def test_audio_longer_than_the_video_is_valid(tmp_path, noisy):
    path = tmp_path / "audio.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.height, video.width, video.pix_fmt = H, W, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000)
        audio.layout = "mono"
        for i in range(30):  # 3 s of audio next to 1.6 s of video
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 8000, 800 * i
            container.mux(audio.encode(samples))
            if i < N:
                container.mux(video.encode(av.VideoFrame.from_ndarray(noisy[i], format="rgb24")))
        for i in range(30, N):
            container.mux(video.encode(av.VideoFrame.from_ndarray(noisy[i], format="rgb24")))
        container.mux(video.encode())
        container.mux(audio.encode())
    with av.open(str(path)) as container:
        assert container.duration / av.time_base > 2.5  # the container lasts as long as its audio
    assert probe_video(path).num_frames == N
    assert read_video(path).frames.shape[0] == N


def test_mp4_edit_list_that_skips_frames(tmp_path, noisy):
    import imageio_ffmpeg

    source = encode(tmp_path / "a.mp4", noisy, "mp4")
    path = tmp_path / "trimmed.mp4"  # a lossless trim: an edit list hides the first packets
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    trim = [ffmpeg, "-v", "error", "-ss", "0.5", "-i", str(source), "-c", "copy", str(path)]
    subprocess.run(trim, check=True)
    with av.open(str(path)) as container:
        declared = container.streams.video[0].frames
    shown = pyav_count(path)
    assert shown < declared  # the container declares every packet, FFmpeg shows fewer frames
    assert probe_video(path).num_frames == shown
    assert read_video(path).frames.shape[0] == shown


# ---- raw YUV and frame folders ------------------------------------------------------------------------


def test_half_a_raw_yuv_file_is_not_a_whole_number_of_frames(tmp_path):
    path = tmp_path / "clip.yuv"
    frame = H * W * 3 // 2
    path.write_bytes(bytes(frame * 5 + frame // 2))
    expected = rf"{re.escape(str(path))} is not a whole number of {H}x{W} yuv420p frames"
    with pytest.raises(InputError, match=expected):
        read_video(path, raw_size=(H, W))


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_frame_folder_with_a_cut_image(suffix, tmp_path, noisy):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(noisy[i]).save(folder / f"f{i}.{suffix}")
    cut(folder / f"f2.{suffix}", folder / f"f2.{suffix}")
    assert probe_video(folder).num_frames == 4  # the header is intact: found when the frame is read
    for call in (read_video, lambda p: load_frames(p)):
        with pytest.raises(InputError) as info:
            call(folder)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"cannot read image {folder / f'f2.{suffix}'}: ")
        assert "truncated" in message.lower()
    assert read_video(folder, frames=FrameRange(0, 2)).frames.shape[0] == 2


# ---- the frame store: frames that fit nowhere ---------------------------------------------------------


def test_frames_beyond_memory_and_disk_are_one_line(tmp_path, monkeypatch, noisy):
    path = encode(tmp_path / "a.mkv", noisy[:4], "mkv")
    monkeypatch.setattr(frame_store, "available_memory_bytes", lambda: 1 << 30)
    monkeypatch.setattr(frame_store, "_free_disk_bytes", lambda folder: 1 << 30)
    monkeypatch.setattr(frame_store, "address_space_headroom", lambda: 2 << 30)
    with pytest.raises(ConfigError) as info:
        load_frames(path, size=(20000, 20000), cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert f"{path}: 4 frames of 20000x20000 need 4.8 GB (4,800,000,000 bytes)" in message
    assert "more than the memory budget (357.9 MB)" in message
    assert "free disk space for the frame cache" in message and "address space" in message
    assert message.endswith("use a smaller --size or fewer --frames")
    assert not (tmp_path / "cache" / "frames.npy").exists()


@pytest.mark.parametrize("where", ["open_memmap", "posix_fallocate"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.ENOMEM, errno.EFBIG])
def test_no_room_while_creating_the_cache_is_one_line(where, code, tmp_path, monkeypatch, noisy):
    path = encode(tmp_path / "a.mkv", noisy[:4], "mkv")

    def no_room(*args, **kwargs):
        raise OSError(code, "simulated")

    target = np.lib.format if where == "open_memmap" else frame_store.os
    monkeypatch.setattr(target, where, no_room)
    with pytest.raises(ConfigError) as info:
        load_frames(path, memory_budget=0, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: 4 frames of {H}x{W} need ")
    assert f"cannot create the frame cache {tmp_path / 'cache' / 'frames.npy'}: " in message
    assert frame_store._NO_ROOM[code] in message
    assert message.endswith("use a smaller --size or fewer --frames")
    assert not (tmp_path / "cache" / "frames.npy").exists()


def test_the_cache_fits_and_is_reserved_on_disk(tmp_path, noisy):
    path = encode(tmp_path / "a.mkv", noisy[:4], "mkv")
    store = load_frames(path, memory_budget=0, cache_dir=tmp_path / "cache")
    assert store.memory_mapped and len(store) == 4
    cache = tmp_path / "cache" / "frames.npy"
    assert cache.stat().st_blocks * 512 >= 4 * 3 * H * W  # blocks allocated, not a sparse file


def test_address_space_limit_gives_one_line_in_a_real_process(tmp_path, noisy):
    """Under RLIMIT_AS (``ulimit -v``): refused up front; and if that check is skipped, the real ENOMEM
    from mapping the cache is the same kind of one-line error."""
    path = encode(tmp_path / "a.mkv", noisy, "mkv")
    script = textwrap.dedent(f"""
        import resource
        from nervkit.data import frame_store, load_frames
        from nervkit.errors import ConfigError
        with open("/proc/self/status") as f:
            used = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
        for skip_check in (False, True):
            if skip_check:
                frame_store.address_space_headroom = lambda: None
                frame_store._free_disk_bytes = lambda folder: None
            try:
                load_frames({str(path)!r}, size=(4000, 4000), cache_dir={str(tmp_path / "cache")!r})
            except ConfigError as exc:
                print(exc)
            else:
                print("no error")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    upfront, mapping = result.stdout.splitlines()
    need = f"{path}: {N} frames of 4000x4000 need 1.9 GB (1,920,000,000 bytes)"
    assert upfront.startswith(need) and "the address space this process may still map" in upfront, upfront
    assert mapping.startswith(need) and "cannot create the frame cache" in mapping, mapping
    assert "not enough memory" in mapping and mapping.endswith("use a smaller --size or fewer --frames")
    assert not (tmp_path / "cache" / "frames.npy").exists()
