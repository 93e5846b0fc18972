"""nervkit.io writers: exact lossless round trips, lossy quality, output kinds, atomicity, errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from nervkit.errors import ConfigError, InputError
from nervkit.io import VideoWriter, probe_video, read_video, write_video

N, H, W = 10, 72, 128


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def read_hwc(path) -> np.ndarray:
    return read_video(path).frames.permute(0, 2, 3, 1).numpy()


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", ["out.mkv", "frames/", "frames", "out.mp4", "out.mov"])
def test_lossless_round_trip_is_exact(name, tmp_path, io_clip):
    source = io_clip(N, H, W)
    path = write_video(
        source, tmp_path / name if not name.endswith("/") else str(tmp_path / name), fps=25, lossless=True
    )
    assert path.exists()
    np.testing.assert_array_equal(read_hwc(path), np.stack(source))
    info = probe_video(path)
    assert (info.num_frames, info.size, info.fps) == (N, (H, W), 25.0)


def test_png_folder_layout(tmp_path, io_clip):
    path = write_video(io_clip(3, 36, 64), str(tmp_path / "out") + "/")
    # the frames, and the marker that lets a later write replace this folder (nervkit.io.outputs)
    assert sorted(p.name for p in path.iterdir()) == [".nervkit-frames", "frame_00000.png", "frame_00001.png",
                                                      "frame_00002.png"]
    assert probe_video(path).kind == "frame_folder"


def test_output_codecs(tmp_path, io_clip):
    source = io_clip(2, 36, 64)
    expected = {
        "a.mp4": ({}, "h264", "yuv420p"),
        "b.mkv": ({}, "h264", "yuv420p"),
        "c.mkv": ({"lossless": True}, "ffv1", "bgr0"),
        "d.mp4": ({"lossless": True}, "h264", "gbrp"),  # libx264rgb
    }
    for name, (kw, codec, pix_fmt) in expected.items():
        path = write_video(source, tmp_path / name, **kw)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == (codec, pix_fmt), name


@pytest.mark.parametrize("name", ["lossy.mp4", "lossy.mkv"])
def test_lossy_h264_has_high_psnr(name, tmp_path, io_clip):
    source = io_clip(N, H, W)
    path = write_video(source, tmp_path / name, fps=25)
    assert psnr(read_hwc(path), np.stack(source)) > 35
    assert path.stat().st_size < sum(f.nbytes for f in source) / 10


def test_crf_trades_size_for_quality(tmp_path, io_clip):
    source = io_clip(N, H, W)
    fine = write_video(source, tmp_path / "fine.mp4", crf=5)
    coarse = write_video(source, tmp_path / "coarse.mp4", crf=35)
    assert fine.stat().st_size > coarse.stat().st_size
    assert psnr(read_hwc(fine), np.stack(source)) > psnr(read_hwc(coarse), np.stack(source))


def test_odd_size_mp4_uses_yuv444p(tmp_path, io_clip):
    source = [f[:35, :63] for f in io_clip(4, 36, 64)]
    path = write_video(source, tmp_path / "odd.mp4")
    info = probe_video(path)
    assert (info.size, info.pix_fmt, info.num_frames) == ((35, 63), "yuv444p", 4)
    assert psnr(read_hwc(path), np.stack(source)) > 35
    lossless = write_video(source, tmp_path / "odd.mkv", lossless=True)
    np.testing.assert_array_equal(read_hwc(lossless), np.stack(source))


def test_fps_is_kept(tmp_path, io_clip):
    for fps in (30, 29.97, 12.5):
        path = write_video(io_clip(3, 36, 64), tmp_path / f"r{fps}.mp4", fps=fps)
        assert probe_video(path).fps == pytest.approx(fps, rel=1e-3)


def test_writer_accepts_tensors_and_arrays(tmp_path, io_clip):
    source = np.stack(io_clip(6, 36, 64))
    chw = torch.from_numpy(source).permute(0, 3, 1, 2)
    path = tmp_path / "mixed.mkv"
    with VideoWriter(path, 25, lossless=True) as writer:
        writer.write(source[0])  # numpy (H, W, 3) uint8
        writer.write(chw[1])  # torch (3, H, W) uint8
        writer.write(chw[2:4].float() / 255)  # torch (N, 3, H, W) float in [0, 1]
        writer.write(source[4:6])  # numpy (N, H, W, 3)
        assert writer.frames_written == 6
    np.testing.assert_array_equal(read_hwc(path), source)
    # write_video takes a whole (N, 3, H, W) tensor
    path2 = write_video(chw.float() / 255, tmp_path / "tensor.mkv", lossless=True)
    np.testing.assert_array_equal(read_hwc(path2), source)


def test_exception_inside_with_leaves_nothing(tmp_path, io_clip):
    source = io_clip(3, 36, 64)
    for name in ["out.mp4", "out.mkv", "frames/"]:
        with pytest.raises(RuntimeError, match="boom"):
            with VideoWriter(str(tmp_path / name), lossless=name != "out.mp4") as writer:
                writer.write(source[0])
                writer.write(source[1])
                raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_failure_keeps_an_existing_destination(tmp_path, io_clip):
    source = io_clip(3, 36, 64)
    path = write_video(source, tmp_path / "keep.mkv", lossless=True)
    before = path.read_bytes()
    with pytest.raises(InputError, match="share one size"):
        with VideoWriter(path, lossless=True) as writer:
            writer.write(source[0])
            writer.write(source[1][:34])  # a frame of another size
    assert path.read_bytes() == before and leftovers(tmp_path) == ["keep.mkv"]
    folder = write_video(source, tmp_path / "frames")
    with pytest.raises(RuntimeError):
        with VideoWriter(folder) as writer:
            writer.write(source[0])
            raise RuntimeError
    assert len(list(folder.glob("frame_*.png"))) == 3 and leftovers(tmp_path) == ["frames", "keep.mkv"]


def test_existing_destination_is_replaced_on_success(tmp_path, io_clip):
    source = io_clip(4, 36, 64)
    folder = write_video(source, tmp_path / "frames")
    write_video(source[:2], folder)  # nervkit's own frame folder (marker): replaced
    assert sorted(p.name for p in folder.iterdir()) == [".nervkit-frames", "frame_00000.png", "frame_00001.png"]
    path = write_video(source, tmp_path / "a.mkv", lossless=True)
    write_video(source[:1], path, lossless=True)
    assert probe_video(path).num_frames == 1


def test_no_frames_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="no frames to write to"):
        write_video([], tmp_path / "empty.mp4")
    with pytest.raises(InputError, match="no frames to write to"):
        with VideoWriter(tmp_path / "empty"):
            pass
    assert leftovers(tmp_path) == []


def test_close_and_abort_without_with(tmp_path, io_clip):
    source = io_clip(2, 36, 64)
    writer = VideoWriter(tmp_path / "a.mkv", lossless=True)
    writer.write(source[0])
    assert writer.close() == tmp_path / "a.mkv"
    assert probe_video(tmp_path / "a.mkv").num_frames == 1
    other = VideoWriter(tmp_path / "b.mkv", lossless=True)
    other.write(source[0])
    other.abort()
    assert leftovers(tmp_path) == ["a.mkv"]


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("out.avi", {}, "unsupported output format '.avi'"),
        ("out.gif", {}, "unsupported output format"),
        ("out.mp4", {"crf": 60}, "invalid crf"),
        ("out.mp4", {"crf": 1.5}, "invalid crf"),
        ("out.mp4", {"fps": 0}, "invalid frame rate"),
        ("out.mp4", {"fps": float("inf")}, "invalid frame rate"),
        ("out.mp4", {"codec": "no-such-codec"}, "not available"),
        ("out.mp4", {"codec": "aac"}, "not available"),
        ("frames/", {"codec": "libx264"}, "cannot write the PNG frame folder"),
    ],
)
def test_bad_writer_options(name, kw, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        VideoWriter(tmp_path / name, **kw)
    assert leftovers(tmp_path) == []


def test_bad_frames(tmp_path):
    for bad in [
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        torch.zeros(4, 8, 8),
        torch.zeros(2, 3, 8, dtype=torch.int64),
        [1, 2, 3],
    ]:
        with pytest.raises(InputError, match="cannot write"):
            with VideoWriter(tmp_path / "x.mkv", lossless=True) as writer:
                writer.write(bad)
    assert leftovers(tmp_path) == []


def test_explicit_codec(tmp_path, io_clip):
    source = io_clip(3, 36, 64)
    path = write_video(source, tmp_path / "x265.mkv", codec="libx265")
    assert probe_video(path).num_frames == 3
    assert psnr(read_hwc(path), np.stack(source)) > 30


def test_explicit_lossless_x265_is_exact_in_yuv444(tmp_path, io_clip):
    source = io_clip(2, 36, 64)
    path = write_video(source, tmp_path / "x265.mkv", codec="libx265", lossless=True)
    assert probe_video(path).pix_fmt == "yuv444p"
    yuv = [
        av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv444p").to_ndarray(format="rgb24")
        for f in source
    ]
    np.testing.assert_array_equal(read_hwc(path), np.stack(yuv))


def test_writing_prints_nothing(tmp_path, io_clip, capfd):
    source = io_clip(3, 36, 64)
    for name, kw in [
        ("a.mp4", {}),
        ("b.mp4", {"lossless": True}),
        ("c.mkv", {"lossless": True}),
        ("d.mkv", {"codec": "libx265"}),
        ("e", {}),
    ]:
        write_video(source, tmp_path / name, **kw)
        read_video(tmp_path / name)
    assert capfd.readouterr() == ("", "")
