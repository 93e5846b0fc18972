"""Classical codecs through imageio-ffmpeg: real encodes of a tiny clip (no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from nervkit.bench import (
    CODECS,
    available_codecs,
    codec_rd_curve,
    codec_spec,
    describe_ffmpeg,
    encode_decode,
    measure_quality,
    read_results,
    vmaf_score,
    write_results,
)
from nervkit.errors import ConfigError, InputError, NervkitError
from nervkit.io.ffmpeg import has_filter, run_ffmpeg

N, H, W = 6, 64, 112


def _clip(n: int = N, height: int = H, width: int = W) -> np.ndarray:
    """Smooth moving gradients with a sliding square: (N, H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        rgb = np.stack(
            [128 + 90 * np.sin((x + 3 * i) / 17.0), 128 + 90 * np.cos((y - 2 * i) / 13.0),
             128 + 90 * np.sin((x + y + 4 * i) / 23.0)], -1)
        top, left = (6 + 2 * i) % (height - 12), (8 + 4 * i) % (width - 12)
        rgb[top : top + 12, left : left + 12] = (240, 236, 224)
        frames.append(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return np.stack(frames)


CLIP = _clip()


def test_ffmpeg_has_the_benchmark_encoders():
    info = describe_ffmpeg()
    assert info["encoders"]["libx264"] and info["encoders"]["libx265"]
    assert info["filters"]["scale"]
    assert set(available_codecs()) <= set(CODECS)
    assert {"x264", "x265"} <= set(available_codecs())


@pytest.mark.parametrize("codec", list(CODECS))
def test_encode_decode_each_codec(codec, tmp_path):
    if codec not in available_codecs():
        pytest.skip(f"this ffmpeg has no encoder for {codec}")
    spec = codec_spec(codec)
    high, low = spec.ladder[0], spec.ladder[-1]
    best = encode_decode(CLIP, codec, high, fps=25, workdir=tmp_path)
    assert best.bitstream_path is not None and best.bitstream_path.suffix == spec.suffix
    size = best.bitstream_path.stat().st_size
    assert size > 0 and best.bytes == size
    assert best.bpp == pytest.approx(size * 8 / (N * H * W))
    assert best.frames.shape == CLIP.shape and best.frames.dtype == np.uint8
    assert best.encode_seconds > 0 and best.decode_seconds > 0
    quality = measure_quality(CLIP, best.frames, vmaf=False)
    assert 30 < quality.psnr < 45  # 4:2:0 alone caps this clip near 41 dB
    assert 0.9 < quality.ms_ssim <= 1
    worst = encode_decode(CLIP, codec, low, fps=25)
    assert worst.bitstream_path is None  # temporary folder, removed
    assert worst.bytes < best.bytes
    assert measure_quality(CLIP, worst.frames, vmaf=False, ms_ssim=False).psnr < quality.psnr


def test_odd_size_is_padded_and_cropped_back():
    clip = _clip(3, 37, 61)
    result = encode_decode(clip, "x264", 18)
    assert result.frames.shape == clip.shape
    assert result.bpp == pytest.approx(result.bytes * 8 / (3 * 37 * 61))
    assert measure_quality(clip, result.frames, vmaf=False, ms_ssim=False).psnr > 30


def test_colour_round_trip_matches_nervkit_convention():
    # lossless x264 (CRF 0): what is left is the RGB -> yuv420p -> RGB round trip, which must match
    # PyAV's (= nervkit's writer/reader) BT.601 limited-range conversion
    import av

    clip = CLIP[:2]
    lossless = encode_decode(clip, "x264", 0).frames
    pyav = np.stack(
        [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray(format="rgb24") for f in clip]
    )
    mse = np.mean((lossless.astype(np.float64) - pyav) ** 2)
    assert 10 * np.log10(255**2 / mse) > 45  # a full-range or BT.709 mix-up would give < 35 dB


def test_video_path_input(tmp_path):
    from nervkit.io import write_video

    path = tmp_path / "clip.mp4"
    write_video(CLIP[:3], path, fps=25)
    result = encode_decode(path, "x264", 23)
    assert result.frames.shape == (3, H, W, 3)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown codec"):
        encode_decode(CLIP, "mpeg9", 20)
    with pytest.raises(ConfigError, match="outside"):
        encode_decode(CLIP, "x264", 99)
    with pytest.raises(InputError, match="uint8"):
        encode_decode(CLIP.astype(np.float32), "x264", 20)


def test_ffmpeg_failure_names_what_and_the_cause():
    with pytest.raises(NervkitError, match=r"^probing nothing failed: ffmpeg: .*No such file"):
        run_ffmpeg(["-i", "/no_such_file.mp4", "-f", "null", "-"], what="probing nothing")


def test_vmaf_identical_is_about_100_and_drops_with_distortion():
    if not has_filter("libvmaf"):
        pytest.skip("no libvmaf in this ffmpeg")
    clip = CLIP[:4]
    score, per_frame = vmaf_score(clip, clip)
    assert len(per_frame) == 4
    # every frame but the first (whose motion feature is 0 by definition) scores exactly 100
    assert per_frame[1:] == pytest.approx([100.0] * 3, abs=1e-3)
    assert 95 < per_frame[0] <= 100 and 98.5 < score <= 100
    coded = encode_decode(clip, "x264", 38)
    assert vmaf_score(clip, coded.frames)[0] < score - 5


def test_vmaf_refuses_frames_too_small():
    tiny = _clip(2, 16, 16)
    with pytest.raises(NervkitError, match="at least"):
        vmaf_score(tiny, tiny)
    point = measure_quality(tiny, tiny, ms_ssim=False)
    assert point.vmaf is None and "smaller" in point.vmaf_note


def test_codec_rd_curve_round_trips_through_json(tmp_path):
    rd = codec_rd_curve(CLIP[:4], "x264", [20, 34], vmaf=True)
    assert len(rd) == 2 and rd.results["bpp"][0] > rd.results["bpp"][1]
    assert rd.results["psnr-rgb"][0] > rd.results["psnr-rgb"][1]
    path = write_results(tmp_path / "x264.json", rd)
    back = read_results(path)
    assert back.to_dict() == rd.to_dict()
    assert back.meta["encoder"] == "libx264" and back.meta["frames"] == 4
