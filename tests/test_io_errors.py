"""Bad input to the nervkit.io readers: every case is a one-line InputError/ConfigError naming the path,
and no PyAV exception escapes. All files are real ones the tests make."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from helpers import write_audio_only, write_bayer_video
from nervkit.errors import ConfigError, InputError, NervkitError
from nervkit.io import FrameRange, iter_frames, probe_video, read_video
from nervkit.io.container import iter_container_frames


def fails(path, error=InputError, match=None, **kw) -> str:
    """Probe and read ``path``; both must raise ``error``; returns the message."""
    messages = []
    for call in (probe_video, read_video, iter_frames):
        with pytest.raises(error) as info:
            call(path, **kw)
        assert not isinstance(info.value, av.error.FFmpegError)
        messages.append(str(info.value))
    message = messages[0]
    assert "\n" not in message and str(path) in message, message
    if match:
        assert match in message, message
    return message


def test_missing_file(tmp_path):
    fails(tmp_path / "nope.mp4", match="no such file or folder")
    fails(tmp_path / "nope.yuv", match="no such file or folder", raw_size=(36, 64))


def test_folder_without_frames(tmp_path):
    fails(tmp_path, match="no image frames")
    (tmp_path / "readme.txt").write_text("hi")
    (tmp_path / ".hidden.png").write_bytes(b"")
    fails(tmp_path, match="no image frames")


def test_text_files(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a video\n" * 50)
    fails(notes, match="not a video file")
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video either\n")
    fails(fake, match="not a video file")


def test_random_bytes(tmp_path):
    for name in ["random.bin", "random.mp4", "random.mkv"]:
        path = tmp_path / name
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
        fails(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    fails(tmp_path / "empty.mp4", match="not a video file")


def test_audio_only(tmp_path):
    fails(write_audio_only(tmp_path / "audio.m4a"), match="no video stream")


def test_video_stream_without_frames(tmp_path):
    y4m = tmp_path / "empty.y4m"
    with av.open(str(y4m), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        container.start_encoding()
    fails(y4m, match="has a video stream but no frames")

    mkv = tmp_path / "novideo.mkv"  # a video stream that never gets a packet, next to an audio one
    with av.open(str(mkv), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 36, "yuv420p"
        audio = container.add_stream("aac", rate=8000)
        audio.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode())
    fails(mkv, match="has a video stream but no frames")


@pytest.fixture
def io_long_mp4(tmp_path, io_clip, io_encode):
    """Two 40-frame H.264 mp4s of noisy frames: moov at the end, and moov at the front (faststart)."""
    rng = np.random.default_rng(0)
    frames = [
        np.clip(f.astype(int) + rng.integers(-20, 20, f.shape), 0, 255).astype(np.uint8)
        for f in io_clip(40, 36, 64)
    ]
    end = io_encode(tmp_path / "end.mp4", frames, "libx264", "yuv420p")
    front = io_encode(
        tmp_path / "front.mp4", frames, "libx264", "yuv420p", container_options={"movflags": "+faststart"}
    )
    return end, front


def cut_half(path, target):
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_truncated_mp4_moov_at_end(tmp_path, io_long_mp4):
    end, _ = io_long_mp4
    assert probe_video(end).num_frames == 40
    fails(cut_half(end, tmp_path / "cut_end.mp4"), match="truncated or corrupt")


def test_truncated_mp4_faststart(tmp_path, io_long_mp4):
    _, front = io_long_mp4
    assert probe_video(front).num_frames == 40
    cut = cut_half(front, tmp_path / "cut_front.mp4")
    with av.open(str(cut)) as container:
        assert container.streams.video[0].frames == 40  # still declares every frame
    message = fails(cut, match="is truncated or corrupt: ")
    assert message.startswith(f"{cut} is truncated or corrupt: ")


def test_decoding_that_ends_early_is_detected(tmp_path, io_long_mp4):
    # a file that shrinks after it was probed: the decoder, not the probe, finds the missing frames
    _, front = io_long_mp4
    info = probe_video(front)
    cut_half(front, front)
    with pytest.raises(InputError, match="is truncated or corrupt"):
        list(iter_container_frames(str(front), info, range(0, 40)))


def test_unsupported_pixel_format_in_container(tmp_path):
    path = write_bayer_video(tmp_path / "bayer.nut")
    fails(path, match=f"unsupported pixel format bayer_rggb8 in {path}")


def test_unsupported_raw_pixel_format(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(36 * 64 * 3 // 2 * 2))
    fails(
        path,
        ConfigError,
        match=f"unsupported pixel format nv12 in {path}",
        raw_size=(36, 64),
        raw_pix_fmt="nv12",
    )


def test_raw_yuv_needs_a_size(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(36 * 64 * 3 // 2 * 2))
    assert "--size HxW" in fails(path, ConfigError)
    fails(path, ConfigError, raw_size=(0, 64))


def test_raw_yuv_not_a_whole_number_of_frames(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(36 * 64 * 3 // 2 * 2 + 100))
    fails(path, match="not a whole number of 36x64 yuv420p frames", raw_size=(36, 64))
    path.write_bytes(b"")
    fails(path, match="empty", raw_size=(36, 64))


def test_frame_range_past_the_end(tmp_path, io_clip, io_encode):
    path = io_encode(tmp_path / "a.mkv", io_clip(5, 36, 64), "ffv1", "bgr0")
    for frames in [FrameRange(5), FrameRange.parse("9:20")]:
        with pytest.raises(ConfigError, match=f"starts past the end of {path}: it has 5 frames"):
            read_video(path, frames=frames)
        with pytest.raises(ConfigError):
            iter_frames(path, frames=frames)  # raises on the call, before the first frame


def test_folder_with_different_frame_sizes(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (64, 36)).save(folder / "f1.png")
    Image.new("RGB", (64, 36)).save(folder / "f2.png")
    Image.new("RGB", (60, 30)).save(folder / "f10.png")
    message = fails(folder, match="differ in size")
    assert "f1.png is 36x64" in message and "f10.png is 30x60" in message


def test_folder_with_broken_or_exotic_images(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (64, 36)).save(folder / "f1.png")
    (folder / "f2.png").write_bytes(b"not really a png")
    with pytest.raises(InputError, match="cannot read image .*f2.png"):
        probe_video(folder)
    (folder / "f2.png").unlink()
    Image.new("I;16", (64, 36)).save(folder / "f2.png")
    with pytest.raises(InputError, match="unsupported pixel format I;16"):
        probe_video(folder)


def test_errors_are_nervkit_errors_with_one_line(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(NervkitError) as info:
        probe_video(path)
    assert info.value.exit_code == 2 and len(str(info.value).splitlines()) == 1


def test_stream_shorter_than_its_declared_count_is_detected(io_long_mp4):
    from dataclasses import replace

    _, front = io_long_mp4
    info = replace(probe_video(front), num_frames=50)
    with pytest.raises(InputError, match=r"is truncated or corrupt: decoding ended after 40 of 50 frames"):
        list(iter_container_frames(str(front), info, range(0, 45)))


def test_bad_input_prints_nothing(tmp_path, io_long_mp4, capfd):
    _, front = io_long_mp4
    cut = cut_half(front, tmp_path / "cut.mp4")
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(bytes(range(256)) * 50)
    for path in (cut, junk, tmp_path / "missing.mp4"):
        with pytest.raises(InputError):
            read_video(path)
    assert capfd.readouterr() == ("", "")
