"""Rate–distortion training (nervkit.compress.learned_quant / parametric / learned_codec): the entropy models'
bits against what the file's coder really writes, the rounding surrogates and the training phases, the learned
section's payload (exact round trip, the histogram fallback, the context coder, only BitstreamError for damaged
payloads), every method fitted with --rate-lambda and compressed (the estimate against the file, deterministic
decoding, the fit's PSNR is the file's), compress's rate-distortion fine-tune, one-line errors for bad settings
and damaged learned sections, and an interrupted rate-trained fit that resumes bit-identically."""

from __future__ import annotations

import json
import math
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODELS, cli_ok, run_cli

import nervkit
from nervkit.compress.container import Section, pack, unpack
from nervkit.compress.context_model import context_applies
from nervkit.compress.learned_codec import (
    decode_learned,
    encode_learned,
    learned_side_bytes,
    peek_learned_shape,
)
from nervkit.compress.learned_quant import (
    STEP_RES,
    TEMPERATURE,
    LearnedQuantizer,
    Phase,
    RateOptions,
    quantizer_axes,
    soft_round,
)
from nervkit.compress.model_codec import parse_nerv, read_nerv
from nervkit.compress.parametric import FAMILIES, bits_numpy, bits_torch, decode_codes, encode_codes
from nervkit.errors import BitstreamError
from nervkit.models import list_methods
from nervkit.runs import Run

BUNNY = Path(nervkit.__file__).parent / "assets" / "bigbuckbunny.mp4"
#: the bundled clip, cut small: 8 frames of 36x64
CLIP = ["--size", "36x64", "--frames", "0:8"]
FIT = ["--threads", 1, "--quiet", "--no-video", "--seed", 3]


# -- 1. parametric entropy models ----------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 40.0])
def test_model_bits_match_the_coder_and_decoding_is_exact(family, scale) -> None:
    rng = np.random.default_rng(int(scale * 10) + len(family))
    raw = rng.laplace(0.0, scale, 6000) if family == "laplace" else rng.normal(0.0, scale, 6000)
    q = np.rint(raw + 0.3).astype(np.int64)  # a mean off the integer grid
    lo, hi = int(q.min()), int(q.max())
    mean, scales = np.full(q.size, 0.3), np.full(q.size, scale)
    words = encode_codes(q, mean, scales, family, lo, hi)
    estimate = bits_numpy(q, 0.3, scales, family)
    assert len(words) % 4 == 0 and len(words) > 0
    assert abs(8 * len(words) - estimate) <= 0.01 * estimate, (8 * len(words), estimate)
    decoded = decode_codes(words, q.size, mean, scales, family, lo, hi)
    assert decoded.dtype == np.int32 and np.array_equal(decoded, q)
    # the differentiable bits of integer-valued float64 input are the same numbers
    per_value = bits_torch(torch.from_numpy(q.astype(np.float64)), 0.3, torch.from_numpy(scales), family)
    assert per_value.dtype == torch.float64
    assert float(per_value.sum()) == pytest.approx(estimate, rel=1e-9)
    one = bits_numpy(q[:1], 0.3, scales[:1], family)
    assert float(per_value[0]) == pytest.approx(one, rel=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_model_bits_have_gradients_in_scale_and_input(family) -> None:
    y = torch.tensor([-3.3, -0.6, 0.0, 0.2, 1.7, 5.1], dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    bits = bits_torch(y, 0.25, torch.exp(log_scale), family).sum()
    bits.backward()
    assert torch.isfinite(bits) and bits > 0
    assert torch.isfinite(y.grad).all() and torch.isfinite(log_scale.grad)
    assert log_scale.grad != 0 and (y.grad != 0).sum() >= 5
    # values further from the mean cost more: the gradient pushes them back towards it
    assert y.grad[0] < 0 and y.grad[-1] > 0


def test_decode_codes_refuses_damaged_words() -> None:
    q = np.array([0, 1, -2, 3, 0, 0, 1], dtype=np.int64)
    mean, scales = np.zeros(q.size), np.ones(q.size)
    words = encode_codes(q, mean, scales, "laplace", -2, 3)
    for bad in (b"", words[:-1], words[:-4], words + b"\0\0\0\0", b"\xff" * len(words)):
        with pytest.raises(BitstreamError):
            decode_codes(bad, q.size, mean, scales, "laplace", -2, 3)
    assert encode_codes(np.full(5, 7), np.zeros(5), np.ones(5), "gaussian", 7, 7) == b""
    assert np.array_equal(decode_codes(b"", 5, np.zeros(5), np.ones(5), "gaussian", 7, 7), np.full(5, 7))
    with pytest.raises(BitstreamError):
        decode_codes(b"\0\0\0\0", 5, np.zeros(5), np.ones(5), "gaussian", 7, 7)


# -- 2. rounding surrogates and the phases of rate training --------------------------------------------
def test_soft_round_goes_from_identity_to_round() -> None:
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    x = x[(x - torch.round(x)).abs() < 0.45]  # away from the half-integers, where round jumps
    errors = [float((soft_round(x, t) - torch.round(x)).abs().max()) for t in (0.5, 0.2, 0.05, 0.01, 0.002)]
    assert errors == sorted(errors, reverse=True) and errors[-2] < 1e-4 and errors[-1] < 1e-9
    assert float((soft_round(x, 50.0) - x).abs().max()) < 1e-3
    # monotone, and exact at the integers and the half-integers at any temperature
    y = soft_round(torch.linspace(-2, 2, 401, dtype=torch.float64), 0.3)
    assert (torch.diff(y) >= 0).all()
    k = torch.tensor([-2.0, -1.5, -1.0, 0.0, 0.5, 1.0, 2.5], dtype=torch.float64)
    assert torch.allclose(soft_round(k, 0.3), k, atol=1e-12)


@pytest.mark.parametrize("rounding", ["soft", "noise", "quant-noise"])
def test_phases_of_rate_training(rounding) -> None:
    options = RateOptions(rate_lambda=0.1, rate_start=0.2, ste_fraction=0.25, rounding=rounding)
    assert Phase.at(0.0, options).mode == "off" and Phase.at(0.1999, options).mode == "off"
    middle = [Phase.at(p, options) for p in np.linspace(0.2, 0.7499, 12)]
    assert {ph.mode for ph in middle} == {rounding}
    temps = [ph.temperature for ph in middle]
    assert temps[0] == pytest.approx(TEMPERATURE[0]) and temps == sorted(temps, reverse=True)
    assert temps[-1] >= TEMPERATURE[1] and temps[-1] == pytest.approx(TEMPERATURE[1], abs=1e-3)
    assert all(Phase.at(p, options).mode == "ste" for p in (0.75, 0.9, 1.0))
    # rate from the first step, no straight-through phase
    assert Phase.at(0.0, RateOptions(rate_lambda=0.1, rate_start=0.0, ste_fraction=0.0)).mode == "soft"
    assert Phase.at(0.999, RateOptions(rate_lambda=0.1, rate_start=0.0, ste_fraction=0.0)).mode == "soft"
    assert Phase.at(0.29, RateOptions(rate_lambda=0.1)).mode == "off"  # the default waits for 30 %


# -- 3. the learned section's payload ------------------------------------------------------------------
def _quantized(tensor: torch.Tensor, kind: str, step_axes: str, family: str = "laplace", seed: int | None = 0):
    """(integers, axes) of a quantizer initialised on ``tensor``, with random per-axis offsets unless ``seed`` is
    None."""
    axes = quantizer_axes(kind, tuple(tensor.shape), step_axes)
    quantizer = LearnedQuantizer(tuple(tensor.shape), axes, family,
                                 context=context_applies(kind, tuple(tensor.shape)))
    quantizer.initialise(tensor)
    if seed is None:
        return quantizer.integers(), axes
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # learned steps and scales differ along every axis
        for p in [*quantizer.log2_step, *quantizer.log2_scale]:
            p.add_(torch.rand(p.shape, generator=g) * 0.8 - 0.4)
        quantizer.mean.fill_(0.3)
        if quantizer.context is not None:
            quantizer.context.copy_(torch.rand(quantizer.context.shape, generator=g) - 0.5)
    return quantizer.integers(), axes


def _expected(tensor: torch.Tensor, ints: dict, axes: tuple[int, ...]) -> torch.Tensor:
    """Δ · round(w / Δ) in float32, Δ = float32(2 ** (Σ k / 32)), computed here from the integers."""
    shape = tuple(tensor.shape)
    total = np.zeros([1] * len(shape))
    for a, k in zip(axes or (None,), ints["steps"]):
        if a is None:
            total = total + k[0]
        else:
            view = [1] * len(shape)
            view[a] = shape[a]
            total = total + np.asarray(k, dtype=np.float64).reshape(view)
    step = np.broadcast_to(np.exp2(total / STEP_RES), shape).astype(np.float32)
    q = np.rint(tensor.double().numpy() / step.astype(np.float64))
    return torch.from_numpy(step * q.astype(np.float32))


def _tensors() -> list[tuple[str, torch.Tensor, str, str]]:
    g = torch.Generator().manual_seed(1)
    return [
        ("2-D dual", torch.randn(24, 40, generator=g) * 0.05, "weights", "dual"),
        ("2-D channel", torch.randn(24, 40, generator=g) * 0.05, "weights", "channel"),
        ("4-D dual", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "dual"),
        ("4-D channel", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "channel"),
        ("4-D tensor", torch.randn(16, 8, 3, 3, generator=g) * 0.1, "weights", "tensor"),
        ("bias", torch.randn(32, generator=g) * 0.01, "weights", "dual"),
        ("per-frame", torch.randn(8, 4, 2, 4, generator=g), "per_frame", "dual"),
        ("latent", torch.randn(6, 9, 11, generator=g), "latent_image", "dual"),
        ("constant", torch.full((5, 7), 0.375), "weights", "dual"),
        ("zeros", torch.zeros(3, 4, 2, 2), "weights", "channel"),
    ]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", range(len(_tensors())), ids=[t[0] for t in _tensors()])
def test_learned_payload_round_trip(case, family) -> None:
    label, tensor, kind, step_axes = _tensors()[case]
    ints, axes = _quantized(tensor, kind, step_axes, family, seed=case)
    payload, bits = encode_learned(tensor, ints, axes, family)
    decoded = decode_learned(payload)
    assert decoded.dtype == torch.float32 and decoded.shape == tensor.shape
    assert torch.equal(decoded, _expected(tensor, ints, axes)), label
    assert torch.equal(decode_learned(payload), decoded)  # deterministic
    assert peek_learned_shape(payload, "x") == tuple(tensor.shape)
    assert payload[0] == 1 and payload[1] == FAMILIES.index(family) and payload[2] in (0, 1, 2)
    assert ("context" in ints) == (kind != "weights" and tensor.ndim >= 3) or payload[2] != 2
    assert 4 < learned_side_bytes(payload) <= len(payload)
    assert bits >= 8 * (len(payload) - 4 * math.ceil(tensor.numel() / 4) - 64) and bits > 0
    if payload[2] != 1:  # the parametric coders: their estimate is the payload's size within 1 % (+ one word)
        assert abs(8 * len(payload) - bits) <= 0.01 * bits + 32, (8 * len(payload), bits)
    else:
        assert bits == 8 * len(payload)
    # the quantization error is at most half a step
    step = _expected(torch.ones_like(tensor), ints, axes)
    assert ((decoded - tensor).abs() <= 0.5 * step.abs() * (1 + 1e-6) + 1e-12).all() or label in ("constant",
                                                                                                     "zeros")


def test_histogram_fallback_when_the_model_mismatches_the_codes() -> None:
    codes = np.rint(np.random.default_rng(4).laplace(0.0, 3.0, (64, 64)))
    w = torch.from_numpy(codes * 0.25).float()
    axes = quantizer_axes("weights", (64, 64), "tensor")
    steps = [np.array([-2 * STEP_RES])]  # Δ = 0.25
    good = {"steps": steps, "scales": [np.array([25])], "mean": 0}  # b = 2**(25/16) ≈ 2.96 codes: the codes' own
    payload, _ = encode_learned(w, good, axes, "laplace")
    assert payload[2] == 0 and torch.equal(decode_learned(payload), w)
    bad = {"steps": steps, "scales": [np.array([20 * 16])], "mean": 0}  # b = 2**20 codes: ~21 bits per code
    fallback, fallback_bits = encode_learned(w, bad, axes, "laplace")
    assert fallback[2] == 1 and fallback_bits == 8 * len(fallback) and len(fallback) < 0.5 * 64 * 64 * 21 / 8
    assert torch.equal(decode_learned(fallback), w)
    assert peek_learned_shape(fallback, "x") == (64, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_context_coder_for_smooth_embeddings(family) -> None:
    """A smooth per-frame embedding with taps that predict each value from its anchor neighbours: coder 2,
    cheaper than the per-channel model, and exact."""
    y, x = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    t = torch.arange(6.0).reshape(6, 1, 1, 1)
    c = torch.arange(3.0).reshape(1, 3, 1, 1)
    emb = torch.sin(x / 4 + t / 3 + c) + torch.cos(y / 5 - c)  # (6, 3, 12, 16)
    axes = quantizer_axes("per_frame", tuple(emb.shape), "dual")
    quantizer = LearnedQuantizer(tuple(emb.shape), axes, family, context=True)
    quantizer.initialise(emb)
    plain = {k: v for k, v in quantizer.integers().items() if k != "context"}
    with torch.no_grad():
        quantizer.context.copy_(torch.tensor([0.5, 0.5, -2.0, 0.0, 0.0]))
    ints = quantizer.integers()
    payload, bits = encode_learned(emb, ints, axes, family)
    without, _ = encode_learned(emb, plain, axes, family)
    assert payload[2] == 2 and without[2] != 2 and len(payload) < 0.9 * len(without), (len(payload), len(without))
    assert abs(8 * len(payload) - bits) <= 0.01 * bits + 32
    decoded = decode_learned(payload)
    assert torch.equal(decoded, _expected(emb, ints, axes)) and torch.equal(decoded, decode_learned(without))


def test_codes_wider_than_the_coders_are_refused_by_the_encoder() -> None:
    # constant rows start at the tensor's step / 1000, not at an absolute floor: their codes stay codable
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(2)) * 0.05
    w[0], w[1] = 1.0, -1.0
    ints, axes = _quantized(w, "weights", "dual", seed=None)
    payload, _ = encode_learned(w, ints, axes, "laplace")
    assert torch.equal(decode_learned(payload), _expected(w, ints, axes))
    # a step far too small for its values (codes of ±2**24) is refused by the encoder
    ints["steps"][0] = ints["steps"][0] - 32 * 30
    with pytest.raises(ValueError, match="too small"):
        encode_learned(w, ints, axes, "laplace")
    w[1] = 0.3  # a span of millions of codes still codes (and fast: no dense histogram of the span)
    ints["steps"][0] = ints["steps"][0] + 32 * 26  # 4 octaves below the start: millions of codes
    payload, _ = encode_learned(w, ints, axes, "gaussian")
    assert torch.equal(decode_learned(payload), _expected(w, ints, axes))


def _payloads() -> list[bytes]:
    out = []
    for i, (_, tensor, kind, step_axes) in enumerate(_tensors()):
        if i in (0, 3, 6, 8):  # dual, channel, per-frame, constant
            ints, axes = _quantized(tensor, kind, step_axes, seed=i)
            out.append(encode_learned(tensor, ints, axes, "laplace")[0])
    w = torch.randint(-2, 3, (16, 16), generator=torch.Generator().manual_seed(4)).float() * 0.25
    ints, axes = _quantized(w, "weights", "tensor")
    out.append(encode_learned(w, {"steps": [np.array([-64])], "scales": [np.array([320])], "mean": 0}, axes,
                              "gaussian")[0])
    y, x = torch.meshgrid(torch.arange(8.0), torch.arange(10.0), indexing="ij")
    emb = (torch.sin(x / 4 + torch.arange(4.0).reshape(4, 1, 1, 1)) + torch.cos(y / 5)).expand(4, 2, 8, 10)
    quantizer = LearnedQuantizer(tuple(emb.shape), (1,), "laplace", context=True)
    quantizer.initialise(emb)
    with torch.no_grad():
        quantizer.context.copy_(torch.tensor([0.5, 0.5, -2.0, 0.1, -0.1]))
    out.append(encode_learned(emb, quantizer.integers(), (1,), "laplace")[0])
    assert {p[2] for p in out} == {0, 1, 2}
    return out


def _decodes_or_bitstream_error(data: bytes) -> None:
    try:
        out = decode_learned(data)
    except BitstreamError:
        return
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_damaged_learned_payloads_raise_only_bitstream_error() -> None:
    rng = random.Random(7)
    for payload in _payloads():
        for n in range(len(payload)):  # every truncation
            _decodes_or_bitstream_error(payload[:n])
            try:
                peek_learned_shape(payload[:n], "x")
            except BitstreamError as exc:
                assert str(exc).startswith("x: ")
        for _ in range(300):  # single-byte corruptions
            buf = bytearray(payload)
            i = rng.randrange(len(buf))
            buf[i] = rng.choice([buf[i] ^ (1 << rng.randrange(8)), rng.randrange(256), 0, 0xFF])
            _decodes_or_bitstream_error(bytes(buf))
        for i in range(min(len(payload), 48)):  # every header byte set to boundary values
            for value in (0, 1, 0x7F, 0x80, 0xFF):
                buf = bytearray(payload)
                buf[i] = value
                _decodes_or_bitstream_error(bytes(buf))
        _decodes_or_bitstream_error(payload + b"\0\0\0\0")
        _decodes_or_bitstream_error(payload + b"\x01")


# -- 4. every method: fit with the rate term, compress, decode -----------------------------------------
@pytest.fixture(autouse=True)
def one_thread():
    """The API calls here train and decode in this process: one thread, like the fits' --threads 1 (two threads
    on a shared two-core machine make fine-tuning ten times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rate_names(run: Path) -> set[str]:
    """The tensors a run's checkpoint holds learned quantizers for."""
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["rate"]["state"]
    return {k.split(".")[1].replace(":", ".") for k in state if k.startswith("quantizers.")}


@pytest.mark.parametrize("method", list_methods())
def test_every_method_fits_for_rate_and_the_file_is_what_it_estimated(method, tmp_path) -> None:
    assert method in TINY_MODELS, f"no tiny configuration for {method}"
    run, out = tmp_path / "run", tmp_path / "video.nerv"
    cli_ok("fit", BUNNY, *CLIP, "-o", run, "--model", method, *TINY_MODELS[method], "--epochs", 3,
           "--rate-lambda", 0.05, *FIT)
    report = nervkit.compress(run, out)
    rate = report["rate"]
    assert rate["file_bytes"] == report["bytes"] == out.stat().st_size
    assert abs(rate["estimate_error"]) < 0.01, rate
    assert rate["estimated_bytes"] == pytest.approx(rate["file_bytes"], rel=0.0101)
    assert rate["lambda"] == pytest.approx(0.05) and rate["entropy_model"] == "laplace"

    info = nervkit.inspect(out)
    learned = [s for s in info["sections"] if s["kind"] == "learned"]
    assert learned and rate["learned_tensors"] == len(learned)
    assert rate["learned_bytes"] == sum(s["bytes"] for s in learned)
    assert all(0 < s["entropy_model_bytes"] < s["bytes"] for s in learned)
    assert info["entropy_model_bytes"] == sum(s["entropy_model_bytes"] for s in learned) > 0
    assert sum(g["entropy_model_bytes"] for g in info["groups"].values()) == info["entropy_model_bytes"]
    # the learned sections are exactly the tensors the run trained quantizers for
    assert {s["name"] for s in learned} == _rate_names(run)

    # the run's model was committed to the quantized values: the file holds them bit for bit
    nerv = read_nerv(out)
    fitted = Run.at(run).load().model
    stored = {n: t for g in fitted.stored_groups() for n, t in g.tensors.items()}
    for s in learned:
        assert torch.equal(nerv.tensors[s["name"]], stored[s["name"]].float()), s["name"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert report["psnr"] == pytest.approx(metrics["psnr"], abs=1e-3), (report["psnr"], metrics["psnr"])

    # decoding is deterministic: the same file gives the same model and the same frames
    a, b = nerv.build_model(), read_nerv(out).build_model()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    nervkit.decompress(out, tmp_path / "a/", lossless=True)
    nervkit.decompress(out, tmp_path / "b/", lossless=True)
    frames = sorted((tmp_path / "a").glob("frame_*.png"))
    assert len(frames) == 8
    assert all(f.read_bytes() == (tmp_path / "b" / f.name).read_bytes() for f in frames)


@pytest.mark.parametrize("method", list_methods())
def test_rate_training_covers_every_weight_latent_and_side_information_tensor(method) -> None:
    """learned_quant's contract: every stored float tensor a method trains (weights, latent grids, per-frame
    side information; groups of a fixed bit depth excepted) gets a learned quantizer."""
    from nervkit.compress.learned_quant import RATE_STORAGES, rate_targets
    from nervkit.models import VideoGeometry, create_model

    model = create_model(method, VideoGeometry(8, 36, 64), params=200_000)
    covered = {name for name, _, _ in rate_targets(model)}
    missing = [f"{g.name}/{g.kind}: {name}" for g in model.stored_groups() if g.kind in RATE_STORAGES and not g.min_bits
               for name, t in g.tensors.items() if t.is_floating_point() and t.numel() and name not in covered]
    assert covered and not missing, f"{len(missing)} stored tensors are not rate-trained: {missing[:3]}"


# -- 5. rate-distortion fine-tuning of a run fitted without the rate term ------------------------------
@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> tuple[Path, dict]:
    """(a NeRV run fitted without rate training, its plain compress report)."""
    root = tmp_path_factory.mktemp("plain_run")
    run = root / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cli_ok("fit", BUNNY, *CLIP, "-o", run, *TINY_MODELS["nerv"], "--epochs", 3, "--lr", "2e-3", *FIT)
        report = json.loads(cli_ok("compress", run, "-o", root / "plain.nerv", "--json", "--quiet"))
    finally:
        torch.set_num_threads(threads)
    return run, report


def test_rd_finetune_of_a_plain_run_writes_a_smaller_file(plain_run, tmp_path) -> None:
    run, plain = plain_run
    assert "rate" not in plain
    assert {s["kind"] for s in nervkit.inspect(plain["file"])["sections"]} == {"header", "tensor"}
    out = tmp_path / "rd.nerv"
    rd = json.loads(cli_ok("compress", run, "-o", out, "--rd-lambda", 0.1, "--rd-epochs", 2, "--json", "--quiet"))
    assert rd["bytes"] == out.stat().st_size < 0.85 * plain["bytes"], (rd["bytes"], plain["bytes"])
    assert abs(rd["rate"]["estimate_error"]) < 0.01 and rd["rate"]["lambda"] == pytest.approx(0.1)
    assert rd["rd_finetune"]["epochs"] == 2 and rd["rd_finetune"]["final_bpp_estimate"] > 0
    info = nervkit.inspect(out)
    assert {s["kind"] for s in info["sections"]} == {"header", "learned"} and info["entropy_model_bytes"] > 0
    assert rd["psnr"] > plain["psnr"] - 1.0  # the fine-tune trains the model for distortion too
    # the run folder is untouched: compressing it plainly again gives the same file
    again = nervkit.compress(run, tmp_path / "again.nerv")
    assert (tmp_path / "again.nerv").read_bytes() == Path(plain["file"]).read_bytes() and again["psnr"] == plain["psnr"]


# -- 6. bad settings and damaged learned sections: one line, exit 2, nothing written -------------------
def _fails(*argv: object, words: tuple[str, ...] = (), absent: Path | None = None) -> str:
    code, out, err = run_cli(*argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("nervkit: error:"), (code, out, err)
    assert "Traceback" not in err and "internal error" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    if absent is not None:
        assert not absent.exists(), absent
        assert not [p for p in absent.parent.iterdir() if p.name.startswith(f".{absent.name}")]
    return lines[0]


@pytest.mark.parametrize("bad, flag", [
    (["--rate-lambda", "-1"], "--rate-lambda"),
    (["--rate-lambda", "nan"], "--rate-lambda"),
    (["--rate-lambda", "inf"], "--rate-lambda"),
    (["--target-bpp", "-1"], "--target-bpp"),
    (["--rate-lambda", "0.1", "--rate-start", "0.95", "--ste-fraction", "0.1"], "--rate-start"),
])
def test_bad_rate_settings_of_fit(bad, flag, tmp_path) -> None:
    _fails("fit", BUNNY, *CLIP, "-o", tmp_path / "run", "--epochs", 1, *bad, *FIT, words=(flag,),
           absent=tmp_path / "run")


def test_bad_rate_settings_of_compress(plain_run, tmp_path) -> None:
    run, _ = plain_run
    out = tmp_path / "out.nerv"
    _fails("compress", run, "-o", out, "--rd-epochs", 2, "--quiet", words=("--rd-lambda", "without rate training"),
           absent=out)
    _fails("compress", run, "-o", out, "--rd-lambda", 0.1, "--quiet", words=("--rd-epochs",), absent=out)
    _fails("compress", run, "-o", out, "--target-bpp", 0.5, "--quiet", words=("--rd-epochs",), absent=out)
    _fails("compress", run, "-o", out, "--rd-epochs", 2, "--qat-epochs", 2, "--rd-lambda", 0.1, "--quiet",
           words=("--qat-epochs", "--rd-epochs"), absent=out)
    _fails("compress", run, "-o", out, "--rd-epochs", 2, "--rd-lambda", -0.5, "--quiet", words=("--rd-lambda",),
           absent=out)
    _fails("compress", run, "-o", out, "--rd-epochs", 2, "--rd-lambda", "nan", "--quiet", words=("--rd-lambda",),
           absent=out)
    # far below what even the header costs: refused (before or after the fine-tune), naming the smallest rate
    line = _fails("compress", run, "-o", out, "--rd-epochs", 1, "--target-bpp", 1e-7, "--quiet",
                  words=("--target-bpp", "smallest"), absent=out)
    assert " bpp" in line


def test_an_unreachable_target_bpp_is_refused_before_training(plain_run, tmp_path) -> None:
    """1e-7 bpp is less than the file's header alone: refused up front, with the smallest reachable rate."""
    run, _ = plain_run
    out = tmp_path / "out.nerv"
    code, _, err = run_cli("compress", run, "-o", out, "--rd-epochs", 1, "--target-bpp", 1e-7)
    assert code == 2 and not out.exists()
    assert err.startswith("nervkit: error:") and len(err.splitlines()) == 1, err  # no epoch was trained
    assert "--target-bpp" in err and "smallest reachable rate" in err, err


def _damaged(nerv: Path, damage: str) -> bytes:
    """``nerv`` with its largest learned payload damaged, repacked: every CRC is valid."""
    sections = unpack(nerv.read_bytes())
    index = max((i for i, s in enumerate(sections) if s.kind == "learned"), key=lambda i: len(sections[i].payload))
    payload = bytearray(sections[index].payload)
    if damage == "truncated":
        payload = payload[: len(payload) // 2]
    elif damage == "last word":
        payload = payload[:-4]
    elif damage == "version":
        payload[0] = 9
    elif damage == "family":
        payload[1] = 7
    elif damage == "coder":
        payload[2] = 5
    elif damage == "shape":
        payload[4] += 1  # the first dimension: no longer the model's
    elif damage == "extra word":
        payload += b"\x01\x02\x03\x04"
    elif damage == "empty":
        payload = bytearray()
    s = sections[index]
    sections[index] = Section(s.kind, s.name, bytes(payload))
    data = pack(sections)
    assert zlib.crc32(data[:-4]) == int.from_bytes(data[-4:], "little")  # nothing but the payload is wrong
    return data


@pytest.fixture(scope="module")
def rate_file(tmp_path_factory) -> Path:
    """A .nerv file of a HNeRV fitted with the rate term (learned weights and embeddings)."""
    root = tmp_path_factory.mktemp("rate_file")
    cli_ok("fit", BUNNY, *CLIP, "-o", root / "run", "--model", "hnerv", *TINY_MODELS["hnerv"], "--epochs", 2,
           "--rate-lambda", 0.05, *FIT)
    cli_ok("compress", root / "run", "-o", root / "video.nerv", "--no-eval", "--quiet")
    return root / "video.nerv"


@pytest.mark.parametrize("damage", ["truncated", "last word", "version", "family", "coder", "shape", "extra word",
                                    "empty"])
def test_damaged_learned_sections_give_one_line_errors(rate_file, damage, tmp_path) -> None:
    bad = tmp_path / "bad.nerv"
    bad.write_bytes(_damaged(rate_file, damage))
    _fails("decompress", bad, "-o", tmp_path / "out/", absent=tmp_path / "out")
    _fails("decompress", bad, "-o", tmp_path / "out.mkv", "--lossless", absent=tmp_path / "out.mkv")
    _fails("inspect", bad)
    with pytest.raises(BitstreamError):
        read_nerv(bad).build_model()


def test_corrupted_learned_codes_never_crash_the_reader(rate_file) -> None:
    """Single bytes of the learned payloads changed (CRCs fixed up): a BitstreamError, or a model."""
    sections = unpack(rate_file.read_bytes())
    learned = [i for i, s in enumerate(sections) if s.kind == "learned"]
    rng = random.Random(11)
    outcomes = {"refused": 0, "decoded": 0}
    for _ in range(150):
        index = rng.choice(learned)
        payload = bytearray(sections[index].payload)
        i = rng.randrange(len(payload))
        payload[i] ^= 1 << rng.randrange(8)
        parts = list(sections)
        parts[index] = Section("learned", sections[index].name, bytes(payload))
        try:
            parse_nerv(pack(parts)).build_model()
            outcomes["decoded"] += 1
        except BitstreamError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0, outcomes


# -- 7. an interrupted rate-trained fit resumes bit-identically -----------------------------------------
def test_interrupted_rate_training_resumes_bit_identically(tmp_path) -> None:
    """fit --rate-lambda for 4 epochs straight, and the same fit SIGKILLed once its checkpoint holds 2 epochs,
    then fit --resume: the same weights, the same learned quantizers and λ (checkpoint key "rate"), the same
    history. The rate term starts after the first epoch and adapts λ towards a target, so the interruption
    falls inside the noisy phase with the rate state moving."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [BUNNY, *CLIP, "--model", "hnerv", *TINY_MODELS["hnerv"], "--epochs", 4, "--checkpoint-every", 1,
            "--eval-every", 4, "--rate-lambda", 0.05, "--target-bpp", 3, "--rate-start", 0.25, "--ste-fraction",
            0.25, *FIT]
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NERVKIT_DEBUG")}
    victim = subprocess.Popen([sys.executable, "-m", "nervkit", "fit", "-o", str(killed), *map(str, args)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        ckpt, seen, epoch = killed / "checkpoint.pt", None, -1
        deadline = time.monotonic() + 300
        while victim.poll() is None and time.monotonic() < deadline:
            if ckpt.is_file() and ckpt.stat().st_mtime_ns != seen:
                seen = ckpt.stat().st_mtime_ns
                try:
                    epoch = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
                except Exception:  # noqa: BLE001, S112 - replaced while being read
                    continue
                if epoch >= 2:
                    os.kill(victim.pid, signal.SIGKILL)
                    break
            time.sleep(0.005)
        victim.wait(timeout=60)
    finally:
        victim.kill()
        victim.wait()
        err = victim.stderr.read().decode()
        victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL, f"the fit was not interrupted ({victim.returncode}): {err}"
    cli_ok("fit", "-o", straight, *args)  # the same fit, uninterrupted, in this process
    at_kill = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert 2 <= at_kill["epoch"] < 4 and at_kill["rate"]["state"]
    assert json.loads((killed / "run.json").read_text())["status"] == "training"
    cli_ok("fit", "--resume", "-o", killed, "--quiet", "--no-video")

    a = torch.load(killed / "checkpoint.pt", map_location="cpu", weights_only=True)
    b = torch.load(straight / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == 4
    assert a["model"].keys() == b["model"].keys()
    assert [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])] == []
    assert a["rate"]["options"] == b["rate"]["options"]
    ra, rb = a["rate"]["state"], b["rate"]["state"]
    assert ra.keys() == rb.keys() and "log_lambda" in ra
    assert [k for k in ra if not torch.equal(ra[k], rb[k])] == []
    assert float(ra["log_lambda"]) != math.log(0.05)  # λ moved towards the target, the same way in both
    assert [(e["epoch"], e["loss"], e.get("bpp")) for e in a["history"]] == \
           [(e["epoch"], e["loss"], e.get("bpp")) for e in b["history"]]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (killed, straight)]
    assert metrics[0]["psnr"] == metrics[1]["psnr"]


def test_an_unreachable_target_bpp_of_fit_leaves_no_run(tmp_path) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("fit", BUNNY, "--size", "36x64", "--frames", "0:8", "--model", "nerv", *TINY_MODELS["nerv"],
                           "--epochs", 1, "--target-bpp", 1e-6, "-o", out, "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "smallest reachable rate" in err, err
    assert not out.exists()
