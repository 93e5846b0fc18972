"""nervkit.compress.latent_codec: NVP's 8-bit quantization and JPEG/HEVC latent coding (spec §2.4)."""

from __future__ import annotations

import pytest
import torch

from nervkit.compress.latent_codec import (
    decode_latent_images,
    decode_latent_video,
    dequantize_channels,
    encode_latent_images,
    encode_latent_video,
    quantize_channels,
)
from nervkit.errors import BitstreamError, ConfigError


def _field(*shape: int, seed: int = 0) -> torch.Tensor:
    """A smooth random field (cumulative sums of noise along every spatial axis), float32."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    for ax in range(1, len(shape)):
        x = x.cumsum(ax)
    return x.float()


def _rel_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of b against a with the per-channel range of a as the peak (worst channel)."""
    worst = float("inf")
    for ca, cb in zip(a, b):
        rng = float(ca.max() - ca.min())
        mse = float(((ca - cb) ** 2).mean())
        worst = min(worst, 10 * torch.log10(torch.tensor(rng * rng / max(mse, 1e-30))).item())
    return worst


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return _field(4, 40, 54)


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return _field(2, 6, 30, 40, seed=1)


@pytest.fixture(scope="module")
def jpeg_q2(images) -> bytes:
    return encode_latent_images(images, quality=2)


@pytest.fixture(scope="module")
def hevc_crf10(video) -> bytes:
    return encode_latent_video(video, crf=10)


def test_quantize_rule_round_half_up_and_constant_channel():
    # lo = 0, hi = 255: q = floor(v + 0.5), so 0.5 -> 1, 1.5 -> 2, 2.4999 -> 2 (not banker's rounding)
    t = torch.tensor([[0.0, 0.5, 1.5, 2.4999, 254.5, 255.0], [3.0] * 6, [-1.0, -1.0, 1.0, 0.0, -0.5, 1.0]])
    q, lo, hi = quantize_channels(t)
    assert q.dtype == torch.uint8 and lo.dtype == torch.float32 and hi.dtype == torch.float32
    assert q[0].tolist() == [0, 1, 2, 2, 255, 255]
    assert q[1].tolist() == [0] * 6  # constant channel
    assert lo.tolist() == [0.0, 3.0, -1.0] and hi.tolist() == [255.0, 3.0, 1.0]
    # 255*(v+1)/2 + 0.5 floored: 0 -> 128 (127.5 rounds up), -0.5 -> 64 (63.75 + .5)
    assert q[2].tolist() == [0, 0, 255, 128, 64, 255]
    d = dequantize_channels(q, lo, hi)
    assert d.dtype == torch.float32 and d.shape == t.shape
    assert torch.all(d[1] == 3.0)


def test_dequantize_error_bound_per_channel():
    t = _field(5, 7, 9, 11, seed=3) * torch.tensor([1e-4, 1.0, 30.0, 0.01, 5.0]).view(5, 1, 1, 1)
    q, lo, hi = quantize_channels(t)
    d = dequantize_channels(q, lo, hi)
    for c in range(5):
        bound = float(hi[c] - lo[c]) / 510 * (1 + 1e-5) + 1e-6 * float(t[c].abs().max())
        assert float((d[c] - t[c]).abs().max()) <= bound
    assert torch.equal(d, dequantize_channels(q, lo, hi))  # deterministic


def test_jpeg_round_trip_and_quality_tradeoff(images, jpeg_q2):
    out = decode_latent_images(jpeg_q2)
    assert out.dtype == torch.float32 and out.shape == images.shape
    err2 = float(((out - images) ** 2).mean())
    assert _rel_psnr(images, out) > 38
    p20 = encode_latent_images(images, quality=20)
    out20 = decode_latent_images(p20)
    assert float(((out20 - images) ** 2).mean()) > err2
    assert len(jpeg_q2) > len(p20)


def test_hevc_round_trip_and_crf_tradeoff(video, hevc_crf10):
    out = decode_latent_video(hevc_crf10)
    assert out.dtype == torch.float32 and out.shape == video.shape
    assert _rel_psnr(video, out) > 40  # near-lossless
    p40 = encode_latent_video(video, crf=40)
    out40 = decode_latent_video(p40)
    assert len(p40) < len(hevc_crf10)
    assert float(((out40 - video) ** 2).mean()) > float(((out - video) ** 2).mean())


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 9), (16, 22), (2, 17)])
def test_odd_and_tiny_sizes_images(hw):
    t = _field(2, *hw, seed=hw[0] * 31 + hw[1])
    out = decode_latent_images(encode_latent_images(t))
    assert out.shape == t.shape
    rng = (t.amax(dim=(1, 2)) - t.amin(dim=(1, 2))).view(2, 1, 1)
    assert torch.all((out - t).abs() <= 0.1 * rng + 1e-6)


@pytest.mark.parametrize("thw", [(1, 1, 1), (2, 3, 5), (1, 7, 9), (3, 16, 22), (2, 5, 70)])
def test_odd_and_tiny_sizes_video(thw):
    t = _field(1, *thw, seed=sum(thw))
    out = decode_latent_video(encode_latent_video(t, crf=5, preset="ultrafast"))
    assert out.shape == t.shape
    assert torch.all((out - t).abs() <= 0.1 * (t.max() - t.min()) + 1e-6)


def test_deterministic_bytes_and_decoding(images, video, jpeg_q2, hevc_crf10):
    assert encode_latent_images(images, quality=2) == jpeg_q2
    assert encode_latent_video(video, crf=10) == hevc_crf10
    assert torch.equal(decode_latent_images(jpeg_q2), decode_latent_images(jpeg_q2))
    assert torch.equal(decode_latent_video(hevc_crf10), decode_latent_video(hevc_crf10))


def _bad_payloads(p: bytes, tail_garbage: bool):
    yield b""
    yield p[:1]
    yield p[:5]
    yield p[:40]
    yield p[:-1]
    yield p + b"\x00"
    yield bytes([p[0] ^ 0xFF]) + p[1:]  # magic
    yield p[:1] + b"\x09" + p[2:]  # version
    # the first stream's headers (JPEG tables / HEVC parameter sets) replaced by garbage of the same
    # length: ffmpeg rejects it. (Damage inside entropy-coded picture data is not always detectable;
    # the .nerv container's CRCs catch that.)
    if tail_garbage:  # JPEG: the last picture's scan and EOI marker destroyed
        yield p[:-60] + b"\xaa" * 60
    yield p[:30] + b"\xaa" * 30 + p[60:]


def test_malformed_payloads_raise_bitstream_error(jpeg_q2, hevc_crf10):
    cases = ((jpeg_q2, decode_latent_images, True), (hevc_crf10, decode_latent_video, False))
    for payload, decode, tail in cases:
        for bad in _bad_payloads(payload, tail):
            with pytest.raises(BitstreamError) as info:
                decode(bad)
            assert "\n" not in str(info.value)
    with pytest.raises(BitstreamError):  # an image payload is not a video payload
        decode_latent_video(jpeg_q2)
    with pytest.raises(BitstreamError):
        decode_latent_images("text")  # type: ignore[arg-type]


def test_bad_arguments_raise_config_error():
    img = torch.zeros(2, 8, 8)
    vid = torch.zeros(1, 2, 8, 8)
    bad_calls = [
        lambda: encode_latent_images(torch.zeros(2, 8, 8, dtype=torch.int32)),
        lambda: encode_latent_images(torch.zeros(8, 8)),
        lambda: encode_latent_images(torch.zeros(0, 8, 8)),
        lambda: encode_latent_images(torch.tensor([[[float("nan")]]])),
        lambda: encode_latent_images(torch.tensor([[[float("inf")]]])),
        lambda: encode_latent_images(img.numpy()),  # type: ignore[arg-type]
        lambda: encode_latent_images(img, quality=1),
        lambda: encode_latent_images(img, quality=32),
        lambda: encode_latent_images(img, quality=2.0),  # type: ignore[arg-type]
        lambda: encode_latent_video(img),
        lambda: encode_latent_video(vid, crf=-1),
        lambda: encode_latent_video(vid, crf=52),
        lambda: encode_latent_video(vid, fps=0),
        lambda: encode_latent_video(vid, preset="fastest"),
        lambda: quantize_channels(torch.zeros(3, 4, dtype=torch.uint8)),
    ]
    for call in bad_calls:
        with pytest.raises(ConfigError) as info:
            call()
        assert "\n" not in str(info.value)
