"""The key-frame intra codecs (``nervkit.io.intra``: av1, hevc, vvc, jpeg) on real frames of the bundled Big
Buck Bunny clip: round trips whose PSNR rises as the quality number falls, bit-exact encoding and
decoding, every key-frame decoding on its own, odd sizes padded and cropped back, one-line errors for a
bad quality, an unknown codec and a damaged bitstream, and — through ``nervkit fit`` in a subprocess
whose ffmpeg binary is missing — a codec the installation lacks refused before any run folder is left.

VVC encodes through the ffmpeg binary (about 0.5 s per call even for a tiny frame): it gets 36x64 frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, run_cli

from nervkit.errors import ConfigError, InputError
from nervkit.io import FrameRange, intra, read_video

BUNNY = Path(__file__).resolve().parents[1] / "src" / "nervkit" / "assets" / "bigbuckbunny.mp4"
CODECS = ("av1", "hevc", "vvc", "jpeg")
#: per codec: a quality well above, the default, and one well below (lower number = better)
SWEEP = {"av1": (16, 32, 48), "hevc": (16, 28, 40), "vvc": (20, 32, 48), "jpeg": (2, 3, 12)}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()


@pytest.fixture(scope="module")
def bunny() -> torch.Tensor:
    """Two real frames (40 and 70) of the Bunny clip at 90x160, uint8 (2, 3, 90, 160)."""
    frames = read_video(BUNNY, frames=FrameRange.parse("40:100:30"), size=(90, 160)).frames
    assert frames.shape == (2, 3, 90, 160) and frames.dtype == torch.uint8
    return frames


@pytest.fixture(scope="module")
def samples(bunny: torch.Tensor) -> dict[str, torch.Tensor]:
    """The frames each codec codes: the two 90x160 frames, for VVC a 36x64 crop of them."""
    tiny = bunny[:, :, 20:56, 40:104].contiguous()
    return {c: tiny if c == "vvc" else bunny for c in CODECS}


@pytest.fixture(scope="module")
def coded(samples) -> dict[str, list[bytes]]:
    """Each codec's bitstreams of its sample at its default quality."""
    return {c: intra.encode_images(samples[c], c) for c in CODECS}


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_psnr_rises_as_the_quality_number_falls(codec, samples, coded) -> None:
    frames = samples[codec]
    results = []
    for q in SWEEP[codec]:
        streams = coded[codec] if q == intra.DEFAULT_QUALITY[codec] else intra.encode_images(frames, codec, q)
        decoded = intra.decode_images(streams, codec)
        assert decoded.shape == frames.shape and decoded.dtype == torch.uint8
        results.append((q, sum(map(len, streams)), psnr(decoded, frames)))
    (_, big, best), (_, mid, default), (_, small, worst) = results
    assert big > mid > small, results  # fewer bytes as the quantizer grows
    assert best > default + 1 > worst + 2, results  # and a lower PSNR
    assert 28 < default < 40 and worst > 20, results  # sensible: the default is good, the worst still a picture


@pytest.mark.parametrize("codec", CODECS)
def test_encoding_and_decoding_are_bit_exact(codec, samples, coded) -> None:
    again = intra.encode_images(samples[codec], codec)
    assert again == coded[codec]  # the same bitstreams, byte for byte
    first = intra.decode_images(coded[codec], codec)
    assert torch.equal(intra.decode_images(coded[codec], codec), first)


@pytest.mark.parametrize("codec", CODECS)
def test_every_key_frame_decodes_on_its_own(codec, samples, coded) -> None:
    streams = coded[codec]
    assert len(streams) == 2 and streams[0] != streams[1]
    together = intra.decode_images(streams, codec)
    for i, stream in enumerate(streams):
        assert torch.equal(intra.decode_images([stream], codec)[0], together[i])
    # in any order: no state carried from one bitstream to the next
    assert torch.equal(intra.decode_images(streams[::-1], codec), together.flip(0))


@pytest.mark.parametrize("codec", CODECS)
def test_odd_sizes_are_padded_and_cropped_back(codec, bunny) -> None:
    odd = bunny[:1, :, 11:46, 31:94].contiguous()  # 35x63
    streams = intra.encode_images(odd, codec)
    padded = intra.decode_images(streams, codec)
    assert padded.shape == (1, 3, 36, 64)  # coded at even sizes (4:2:0)
    cropped = intra.decode_images(streams, codec, size=(35, 63))
    assert cropped.shape == (1, 3, 35, 63) and torch.equal(cropped, padded[:, :, :35, :63])
    assert psnr(cropped, odd) > 28
    # the padding replicates the last row and column: the extra ones decode close to them
    assert (padded[:, :, 35].float() - padded[:, :, 34].float()).abs().mean() < 12
    assert (padded[:, :, :, 63].float() - padded[:, :, :, 62].float()).abs().mean() < 12
    with pytest.raises(InputError, match="smaller than 37x63"):
        intra.decode_images(streams, codec, size=(37, 63))


@pytest.mark.parametrize("codec,bad", [("av1", 64), ("av1", -1), ("hevc", 52), ("vvc", 64), ("jpeg", 1),
                                       ("jpeg", 32)])
def test_quality_out_of_range_is_a_one_line_config_error(codec, bad, bunny) -> None:
    lo, hi = intra.CODECS[codec].quality_range
    for call in (lambda: intra.check_codec(codec, bad), lambda: intra.encode_images(bunny[:1], codec, bad)):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and f"{lo}..{hi}" in message and str(bad) in message, message


def test_quality_out_of_range_through_the_cli(tmp_path) -> None:
    run = tmp_path / "run"
    line = one_line_error(run_cli("fit", BUNNY, "--model", "d-nerv", "--frames", "0:9", "--size", "36x64",
                                  "--keyframe-codec", "hevc", "--keyframe-quality", 60, "--params", "60k",
                                  "--epochs", 1, "-o", run, "--quiet", "--no-video", "--threads", 1),
                          "hevc", "0..51", "60")
    assert not run.exists(), line


def test_unknown_codec_is_a_config_error(bunny, coded) -> None:
    for call in (lambda: intra.get_codec("webp"), lambda: intra.check_codec("webp"),
                 lambda: intra.encode_images(bunny[:1], "webp"), lambda: intra.decode_images(coded["jpeg"], "webp")):
        with pytest.raises(ConfigError, match="unknown key-frame codec 'webp'; choose one of av1, hevc, vvc, jpeg"):
            call()
    assert set(intra.available_codecs()) == set(CODECS)  # this installation has them all


def test_frames_that_are_not_uint8_rgb_are_refused(bunny) -> None:
    with pytest.raises(InputError, match="uint8"):
        intra.encode_images(bunny.float() / 255, "jpeg")
    with pytest.raises(InputError, match="uint8"):
        intra.encode_images(bunny[:, :1], "jpeg")


@pytest.mark.parametrize("codec", CODECS)
def test_a_damaged_bitstream_is_a_one_line_input_error(codec, coded) -> None:
    """Truncated anywhere (HEVC and JPEG decoders show a cut picture without an error: their bitstreams
    end with a marker the decoder checks), garbage, or empty: an InputError naming the key-frame."""
    good = coded[codec][0]
    n = len(good)
    damaged = [good[:cut] for cut in (10, n // 4, n // 2, 9 * n // 10, n - 1)]
    damaged += [bytes(range(256)) * 4, b""]
    for bad in damaged:
        with pytest.raises(InputError) as info:
            intra.decode_images([coded[codec][1], bad], codec)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{codec} key-frame 1 "), (len(bad), message)


def test_a_codec_the_installation_lacks_is_refused_before_the_run_folder(tmp_path) -> None:
    """``nervkit fit --keyframe-codec vvc`` with no usable ffmpeg binary (vvc encodes through it; av1,
    hevc and jpeg through PyAV): exit 2, one line naming the codec, the encoder and why, no run folder."""
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "NERVKIT_DEBUG"}
    env["IMAGEIO_FFMPEG_EXE"] = "/nonexistent"
    proc = subprocess.run([sys.executable, "-m", "nervkit", "fit", str(BUNNY), "--model", "d-nerv",
                           "--keyframe-codec", "vvc", "--frames", "0:9", "--size", "36x64", "--params", "60k",
                           "--epochs", "1", "-o", str(run), "--quiet", "--no-video", "--threads", "1"],
                          check=False, capture_output=True, text=True, timeout=120, env=env)
    line = one_line_error((proc.returncode, proc.stdout, proc.stderr), "vvc", "libvvenc", "/nonexistent",
                          "IMAGEIO_FFMPEG_EXE", "--keyframe-codec (av1, hevc, jpeg)")
    assert not run.exists() and list(tmp_path.iterdir()) == [], line
