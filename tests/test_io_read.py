"""nervkit.io readers on real files the tests make: every input kind, frame ranges, raw YUV, frame folders,
the colour convention and the Big Buck Bunny baseline frames."""

from __future__ import annotations

import itertools
import types

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nervkit.errors import ConfigError
from nervkit.io import FrameRange, Video, VideoInfo, iter_frames, probe_video, read_video

N, H, W = 12, 72, 128
VP9_FAST = {"deadline": "realtime", "cpu-used": "8"}


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def frames_hwc(video: Video) -> np.ndarray:
    return video.frames.permute(0, 2, 3, 1).numpy()


def yuv_bytes(frame: av.VideoFrame) -> bytes:
    """The planes of a frame without FFmpeg's line padding: what a .yuv file holds."""
    return b"".join(
        np.frombuffer(bytes(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width].tobytes()
        for p in frame.planes
    )


def write_pngs(folder, frames, names=None):
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / (names[i] if names else f"f_{i:03d}.png"))
    return folder


def make_input(kind, tmp_path, frames, io_encode):
    """(path, read kwargs, lossless?) of ``frames`` stored as ``kind``."""
    if kind == "mp4":
        return io_encode(tmp_path / "a.mp4", frames, "libx264", "yuv420p", options={"crf": "10"}), {}, False
    if kind == "mov":
        return io_encode(tmp_path / "a.mov", frames, "libx264", "yuv420p", options={"crf": "10"}), {}, False
    if kind == "mkv":
        return io_encode(tmp_path / "a.mkv", frames, "ffv1", "bgr0"), {}, True
    if kind == "webm":
        return io_encode(tmp_path / "a.webm", frames, "libvpx-vp9", "yuv420p", options=VP9_FAST), {}, False
    if kind == "y4m":
        return io_encode(tmp_path / "a.y4m", frames, "rawvideo", "yuv420p"), {}, False
    if kind == "avi":
        return io_encode(tmp_path / "a.avi", frames, "mjpeg", "yuvj420p", options={"q:v": "2"}), {}, False
    if kind == "yuv":
        path = tmp_path / "a.yuv"
        path.write_bytes(
            b"".join(
                yuv_bytes(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p"))
                for f in frames
            )
        )
        return path, {"raw_size": frames[0].shape[:2]}, False
    if kind == "png":
        return write_pngs(tmp_path / "frames", frames), {}, True
    raise AssertionError(kind)


KINDS = ["mp4", "mov", "mkv", "webm", "y4m", "avi", "yuv", "png"]


@pytest.mark.parametrize("kind", KINDS)
def test_probe_every_kind(kind, tmp_path, io_clip, io_encode):
    path, kw, _ = make_input(kind, tmp_path, io_clip(N, H, W), io_encode)
    info = probe_video(path, **kw)
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.height, info.width, info.fps) == (N, H, W, 25.0)
    assert info.size == (H, W)
    assert info.path == str(path)
    expected_kind = {"yuv": "raw_yuv", "png": "frame_folder"}.get(kind, "container")
    assert info.kind == expected_kind
    assert info.pix_fmt == {"mkv": "bgr0", "avi": "yuvj420p", "png": "rgb24"}.get(kind, "yuv420p")


@pytest.mark.parametrize("kind", ["mkv", "webm", "y4m"])
def test_probe_counts_when_the_container_declares_no_count(kind, tmp_path, io_clip, io_encode):
    path, _, _ = make_input(kind, tmp_path, io_clip(7, 36, 64), io_encode)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # nothing declared: the probe has to count
    assert probe_video(path).num_frames == 7


@pytest.mark.parametrize("kind", KINDS)
def test_read_every_kind(kind, tmp_path, io_clip, io_encode):
    source = io_clip(N, H, W)
    path, kw, lossless = make_input(kind, tmp_path, source, io_encode)
    video = read_video(path, **kw)
    assert video.frames.dtype == torch.uint8 and video.frames.shape == (N, 3, H, W)
    assert video.indices == list(range(N)) and video.fps == 25.0
    assert video.info == probe_video(path, **kw)
    if lossless:
        np.testing.assert_array_equal(frames_hwc(video), np.stack(source))
    else:
        assert psnr(frames_hwc(video), np.stack(source)) > 30


@pytest.mark.parametrize("kind", ["mp4", "mkv", "yuv", "png"])
def test_frame_range_selects_source_frames(kind, tmp_path, io_clip, io_encode):
    path, kw, _ = make_input(kind, tmp_path, io_clip(N, H, W), io_encode)
    full = read_video(path, **kw)
    part = read_video(path, frames=FrameRange.parse("2:10:3"), **kw)
    assert part.indices == [2, 5, 8]
    assert torch.equal(part.frames, full.frames[[2, 5, 8]])
    assert part.fps == pytest.approx(25.0 / 3)
    assert part.info.num_frames == N
    tail = read_video(path, frames=FrameRange.parse("9:"), **kw)
    assert tail.indices == [9, 10, 11] and torch.equal(tail.frames, full.frames[9:])
    single = read_video(path, frames=FrameRange.parse("11"), **kw)
    assert single.indices == [11] and torch.equal(single.frames, full.frames[11:])
    clipped = read_video(path, frames=FrameRange(10, 1000), **kw)  # stop past the end: clipped like a slice
    assert clipped.indices == [10, 11]


def test_iter_frames_streams_and_resizes(tmp_path, io_clip, io_encode):
    path, _, _ = make_input("mp4", tmp_path, io_clip(N, H, W), io_encode)
    frames = iter_frames(path, size=(36, 64), frames=FrameRange(1, 5))
    assert isinstance(frames, types.GeneratorType)
    out = list(frames)
    assert len(out) == 4
    assert all(f.shape == (36, 64, 3) and f.dtype == np.uint8 and f.flags.c_contiguous for f in out)
    resized = read_video(path, size=(36, 64), frames=FrameRange(1, 5)).frames
    np.testing.assert_array_equal(np.stack(out), resized.permute(0, 2, 3, 1).numpy())
    # stopping early is fine and releases the decoder
    gen = iter_frames(path)
    assert len(list(itertools.islice(gen, 2))) == 2
    gen.close()


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "gray"])
@pytest.mark.parametrize("size", [(36, 64), (35, 63)])
def test_raw_yuv_uses_the_same_conversion_as_decoded_video(pix_fmt, size, tmp_path, io_clip):
    source = io_clip(5, *size)
    yuv_frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt) for f in source]
    path = tmp_path / "clip.yuv"
    path.write_bytes(b"".join(yuv_bytes(f) for f in yuv_frames))
    info = probe_video(path, raw_size=size, raw_pix_fmt=pix_fmt, raw_fps=30)
    assert (info.num_frames, info.size, info.fps, info.pix_fmt, info.kind) == (
        5,
        size,
        30.0,
        pix_fmt,
        "raw_yuv",
    )
    got = frames_hwc(read_video(path, raw_size=size, raw_pix_fmt=pix_fmt))
    expected = np.stack([f.to_ndarray(format="rgb24") for f in yuv_frames])  # the one conversion
    np.testing.assert_array_equal(got, expected)
    if pix_fmt != "gray":
        assert psnr(got, np.stack(source)) > 30


def test_raw_yuv_equals_the_same_frames_in_y4m(tmp_path, io_clip):
    source = io_clip(4, 36, 64)
    yuv_frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in source]
    (tmp_path / "a.yuv").write_bytes(b"".join(yuv_bytes(f) for f in yuv_frames))
    with av.open(str(tmp_path / "a.y4m"), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for frame in yuv_frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    raw = read_video(tmp_path / "a.yuv", raw_size=(36, 64)).frames
    assert torch.equal(raw, read_video(tmp_path / "a.y4m").frames)


def test_decoded_frames_equal_pyav_to_image(tmp_path, io_clip, io_encode):
    path, _, _ = make_input("mp4", tmp_path, io_clip(3, 36, 64), io_encode)
    with av.open(str(path)) as container:
        expected = [np.asarray(f.to_image()) for f in container.decode(video=0)]
    np.testing.assert_array_equal(frames_hwc(read_video(path)), np.stack(expected))


def test_high_bit_depth_and_alpha_sources(tmp_path, io_clip, io_encode):
    source = io_clip(4, 36, 64)
    for name, pix_fmt in [("deep.mkv", "yuv420p10le"), ("alpha.mkv", "yuva420p"), ("gray.mkv", "gray")]:
        path = io_encode(tmp_path / name, source, "ffv1", pix_fmt)
        info = probe_video(path)
        assert (info.pix_fmt, info.num_frames) == (pix_fmt, 4)
        got = frames_hwc(read_video(path))
        assert got.shape == (4, 36, 64, 3)
        if pix_fmt != "gray":
            assert psnr(got, np.stack(source)) > 35


def test_folder_natural_order_ignores_other_files(tmp_path):
    names = [f"frame{i}.png" for i in range(1, 13)]  # frame2 must come before frame10
    frames = [np.full((8, 12, 3), 10 * i, np.uint8) for i in range(1, 13)]
    folder = write_pngs(tmp_path / "frames", frames, names)
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")
    (folder / "sub").mkdir()
    info = probe_video(folder, raw_fps=30)
    assert (info.num_frames, info.size, info.fps, info.kind) == (12, (8, 12), 30.0, "frame_folder")
    video = read_video(folder)
    assert video.frames[:, 0, 0, 0].tolist() == [10 * i for i in range(1, 13)]


def test_folder_of_jpeg_bmp_gray_and_rgba(tmp_path, io_clip):
    source = io_clip(4, 36, 64)
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(source[0]).save(folder / "a1.BMP")
    Image.fromarray(source[1]).save(folder / "a2.jpg", quality=95)
    Image.fromarray(source[2]).convert("RGBA").save(folder / "a3.png")
    Image.fromarray(source[3]).convert("L").save(folder / "a4.jpeg", quality=95)
    got = frames_hwc(read_video(folder))
    np.testing.assert_array_equal(got[0], source[0])
    assert psnr(got[1], source[1]) > 30
    np.testing.assert_array_equal(got[2], source[2])
    gray = np.asarray(Image.fromarray(source[3]).convert("L"), np.float64)
    assert np.abs(got[3].astype(np.float64) - gray[..., None]).max() <= 3


def test_options_are_validated(tmp_path, io_clip, io_encode):
    path, _, _ = make_input("mp4", tmp_path, io_clip(2, 36, 64), io_encode)
    for bad in [
        dict(size=(0, 4)),
        dict(size=(36,)),
        dict(raw_fps=0),
        dict(raw_fps=float("nan")),
        dict(frames="0:2"),
    ]:
        with pytest.raises(ConfigError):
            read_video(path, **bad)


def test_bunny_probe(io_bunny):
    info = probe_video(io_bunny)
    assert (info.num_frames, info.width, info.height, info.fps) == (132, 1280, 720, 25.0)
    assert (info.pix_fmt, info.kind) == ("yuv420p", "container")


def test_bunny_180x320_equals_baseline_reduce4(io_bunny):
    video = read_video(io_bunny, frames=FrameRange(0, 61, 60), size=(180, 320))
    assert video.indices == [0, 60] and video.frames.shape == (2, 3, 180, 320)
    with av.open(str(io_bunny)) as container:
        decoded = container.decode(video=0)
        wanted = {0: None, 60: None}
        for index, frame in enumerate(decoded):
            if index in wanted:
                wanted[index] = np.asarray(frame.to_image().reduce(4))
            if index == 60:
                break
    np.testing.assert_array_equal(frames_hwc(video)[0], wanted[0])
    np.testing.assert_array_equal(frames_hwc(video)[1], wanted[60])
