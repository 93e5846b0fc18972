"""HiNeRV's compression recipe as stages of ``nervkit compress`` (issue #16): layer-normalised one-shot
pruning (``--prune-score layer``), Quant-Noise QAT (``--qat-noise``), symmetric per-slice quantization
(``--quantizer symmetric``) written in the existing min/max form, and a method's own recipe
(``register_method(compress_defaults=…)``) applied to the settings the user did not give."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nervkit
from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.compress.config import CompressConfig
from nervkit.compress.container import pack
from nervkit.compress.model_codec import encode_model, parse_nerv, read_nerv
from nervkit.compress.prune import apply_masks, prunable_parameters, prune_masks, prune_scores, sparsity
from nervkit.compress.qat import quantization_aware
from nervkit.compress.quantize import dequantize, fake_quantize, quantize
from nervkit.compress.sections import SPARSE_THRESHOLD, choose_section
from nervkit.compress.tensor_codec import decode_quantized, encode_quantized
from nervkit.io import read_video, write_video
from nervkit.io.convert import to_uint8
from nervkit.models import VideoGeometry, create_model, registry

SMALL_MODEL = ["--mlp-hidden", "32", "--grid-channels", "16", "--lower-width", "16"]
RECIPE = {"prune_score": "layer", "quantizer": "symmetric", "qat_noise": 0.9}


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("nerv", VideoGeometry(8, 36, 64), mlp_hidden=32, grid_channels=16, lower_width=16)


# -- pruning ----------------------------------------------------------------------------------------
class TwoLayers(nn.Module):
    """A 4x4 and a 64x64 layer whose weights come from one distribution."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.small, self.big = nn.Linear(4, 4), nn.Linear(64, 64)
        with torch.no_grad():
            self.small.weight.copy_(torch.rand(4, 4, generator=gen) * 2 - 1)
            self.big.weight.copy_(torch.rand(64, 64, generator=gen) * 2 - 1)


def test_layer_score_prunes_large_layers_more_than_magnitude_does() -> None:
    model = TwoLayers()
    params = prunable_parameters(model)
    assert set(params) == {"small.weight", "big.weight"}  # biases are never pruned
    scores = prune_scores(params, "layer")
    assert torch.equal(scores["small.weight"], model.small.weight.detach().abs() / 4.0)  # sqrt(16)
    assert torch.equal(scores["big.weight"], model.big.weight.detach().abs() / 64.0)  # sqrt(4096)
    n = 16 + 4096
    by_magnitude, by_layer = prune_masks(model, 0.15, "magnitude"), prune_masks(model, 0.15, "layer")
    for masks in (by_magnitude, by_layer):  # either way 15 % of all prunable weights go
        assert sum(int((~m).sum()) for m in masks.values()) == round(0.15 * n)
    # |w| alone: the small layer loses its share like the big one; |w| / sqrt(n): a small layer's weights
    # each matter more, so all of them survive and the big layer pays for them
    assert int((~by_magnitude["small.weight"]).sum()) >= 1
    assert bool(by_layer["small.weight"].all())
    assert int((~by_layer["big.weight"]).sum()) == round(0.15 * n) > int((~by_magnitude["big.weight"]).sum())
    # n counts the tensor's non-zero weights: an already pruned layer's survivors score higher
    with torch.no_grad():
        model.big.weight[:32] = 0
    assert torch.equal(prune_scores(prunable_parameters(model), "layer")["big.weight"],
                       model.big.weight.detach().abs() / math.sqrt(2048))


def test_layer_pruning_of_a_nerv_removes_15_percent_and_spares_the_head() -> None:
    model = tiny_model()
    head = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("head")}
    masks = prune_masks(model, 0.15, "layer")
    apply_masks(model, masks)
    total = sum(p.numel() for p in prunable_parameters(model).values())
    assert abs(sparsity(model) - 0.15) <= 1.5 / total
    assert all(torch.equal(p, head[n]) for n, p in model.named_parameters() if n.startswith("head"))
    # the layer score differs from the magnitude ranking on a real model: not the same weights go
    assert any(not torch.equal(a, b) for a, b in zip(masks.values(), prune_masks(tiny_model(), 0.15).values()))


# -- symmetric quantization -------------------------------------------------------------------------
def _weights() -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(12, 6, 3, 3, generator=gen) * torch.logspace(-3, 1, 12)[:, None, None, None]
    w[w.abs() < 0.2 * w.abs().amax(dim=(1, 2, 3), keepdim=True)] = 0  # pruned weights
    w[4] = 0  # an all-zero slice
    return w


@pytest.mark.parametrize("bits", [2, 6, 8, 16])
def test_symmetric_codes_are_hinervs_in_the_min_max_form(bits) -> None:
    w = _weights()
    qt = quantize(w, bits, quantizer="symmetric")
    half = 1 << (bits - 1)
    assert qt.axis == 0 and qt.q.dtype == (np.uint8 if bits <= 8 else np.uint16)
    assert int(qt.q.min()) >= 0 and int(qt.q.max()) <= 2**bits - 1
    # HiNeRV's scale and codes: scale = 2 max|w| / (2^b - 1) per output channel, q in [-2^(b-1), 2^(b-1) - 1]
    amax = w.abs().reshape(12, -1).amax(dim=1)
    scale = 2 * amax / (2**bits - 1)
    assert torch.equal(torch.from_numpy(qt.scales), scale)
    assert torch.equal(torch.from_numpy(qt.mins), torch.where(scale > 0, -half * scale, torch.zeros(12)))
    safe = torch.where(scale > 0, scale, torch.ones(12))[:, None, None, None]
    signed = torch.from_numpy(qt.q.astype(np.int64)) - half
    expected = torch.round(w / safe).clamp(-half, half - 1).long()
    expected[4] = 0
    assert torch.equal(signed, expected)
    w_hat = dequantize(qt)
    # zero is a code of its own and decodes to exactly 0; the rest within half a step, and equal to HiNeRV's
    # scale * q up to the float32 rounding of scale * (q + 2^(b-1)) and of scale * q
    assert torch.equal(w_hat[w == 0], torch.zeros(int((w == 0).sum())))
    top = scale * half
    ulp = (torch.nextafter(top, torch.tensor(math.inf)) - top)[:, None, None, None]
    assert bool(((w_hat - w).abs() <= 0.5 * safe + 2 * ulp).all())
    hinerv = expected.float() * scale[:, None, None, None]
    assert bool(((w_hat - hinerv).abs() <= 2 * ulp).all())
    # the file's payload reproduces it exactly, and QAT's fake quantizer gives the same bits
    assert torch.equal(dequantize(decode_quantized(encode_quantized(qt))), w_hat)
    assert torch.equal(fake_quantize(w, bits, quantizer="symmetric"), w_hat)


def test_symmetric_leaves_1d_tensors_to_min_max_and_keeps_pruned_tensors_dense() -> None:
    bias = torch.linspace(0.1, 0.9, 7)  # HiNeRV keeps 1-D tensors in float: nervkit's min/max rule
    sym, plain = quantize(bias, 6, quantizer="symmetric"), quantize(bias, 6)
    assert sym.axis is None and np.array_equal(sym.q, plain.q) and np.array_equal(sym.mins, plain.mins)
    w = _weights()
    assert (w == 0).float().mean() >= SPARSE_THRESHOLD
    assert choose_section("weights", w, CompressConfig()) == "sparse"
    assert choose_section("weights", w, CompressConfig(quantizer="symmetric")) == "tensor"
    with pytest.raises(ValueError, match="quantizer"):
        quantize(w, 8, quantizer="asymmetric")


@pytest.mark.parametrize("quantizer", ["minmax", "symmetric"])
def test_qat_then_compress_reproduces_the_weights_bit_exactly(quantizer) -> None:
    model = tiny_model()
    apply_masks(model, prune_masks(model, 0.25, "layer"))
    model.eval()
    names = [name for group in model.stored_groups() for name in group.tensors]
    seen = {}
    with quantization_aware(model, bits=5, embed_bits=5, sparse_threshold=SPARSE_THRESHOLD, quantizer=quantizer,
                            noise=0.9):
        for name in names:  # the parametrized values: what the QAT forward (eval) uses
            module, _, attr = name.rpartition(".")
            seen[name] = getattr(model.get_submodule(module), attr).detach().clone()
    nerv = parse_nerv(pack(encode_model(model, CompressConfig(bits=5, embed_bits=5, quantizer=quantizer))))
    assert set(nerv.tensors) == set(seen)
    for name, tensor in nerv.tensors.items():
        assert torch.equal(tensor, seen[name]), name
    kinds = {s.kind for s in nerv.sizes}
    assert ("sparse" in kinds) == (quantizer == "minmax")  # symmetric codes pruned zeros exactly in place
    assert nerv.header["quantization"].get("quantizer", "minmax") == quantizer


# -- Quant-Noise ------------------------------------------------------------------------------------
def _noisy_reads(seed: int, reads: int = 2) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """``reads`` training-mode values of a 16x16x3x3 conv weight under Quant-Noise 0.9, its latent value
    and its fully quantized value."""
    model = tiny_model().train()
    name = next(n for n, p in model.named_parameters() if p.ndim == 4 and p.numel() >= 2000)
    module, _, attr = name.rpartition(".")
    with quantization_aware(model, bits=4, embed_bits=4, sparse_threshold=SPARSE_THRESHOLD,
                            quantizer="symmetric", noise=0.9, seed=seed):
        conv = model.get_submodule(module)
        values = [getattr(conv, attr) for _ in range(reads)]
        latent = conv.parametrizations[attr].original
        conv.eval()
        quantized = getattr(conv, attr).detach()
        values[0].sum().backward()  # straight-through on both paths: the identity
        assert torch.equal(latent.grad, torch.ones_like(latent))
        latent = latent.detach().clone()
    return values, latent, quantized


def test_quant_noise_keeps_a_tenth_in_float_and_is_seeded() -> None:
    values, latent, quantized = _noisy_reads(seed=7)
    changed = quantized != latent  # where quantization moves the value at all
    assert changed.float().mean() > 0.9
    for v in values:
        v = v.detach()
        assert bool(((v == latent) | (v == quantized)).all())  # each value: float or quantized, nothing else
        float_share = float((v == latent)[changed].float().mean())
        assert 0.08 < float_share < 0.12, float_share
    assert not torch.equal(values[0], values[1])  # a new mask on every forward
    again, _, _ = _noisy_reads(seed=7)
    assert all(torch.equal(a, b) for a, b in zip(values, again))  # the same seed draws the same masks
    other, _, _ = _noisy_reads(seed=8)
    assert not torch.equal(values[0], other[0])


def test_qat_noise_one_is_the_plain_quantizer() -> None:
    model = tiny_model().train()
    with quantization_aware(model, bits=4, embed_bits=4, sparse_threshold=SPARSE_THRESHOLD):
        plain = model.decode(torch.tensor([0, 5])).detach()
    with quantization_aware(model, bits=4, embed_bits=4, sparse_threshold=SPARSE_THRESHOLD, noise=1.0, seed=3):
        assert torch.equal(model.decode(torch.tensor([0, 5])).detach(), plain)


# -- through the CLI and the API ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """(clip, a tiny NeRV run fitted on it)."""
    root = tmp_path_factory.mktemp("hinerv-recipe")
    clip = write_video(gradient_clip(), root / "clip.mkv", lossless=True)
    run = root / "run"
    cli_ok("fit", clip, "-o", run, "--epochs", 2, "--lr", "2e-3", "--quiet", "--no-video", "--threads", 1,
           *SMALL_MODEL)
    return clip, run


HINERV_FLAGS = ("--prune", "0.15", "--prune-score", "layer", "--finetune-epochs", "1", "--qat-epochs", "1",
                "--qat-noise", "0.9", "--quantizer", "symmetric")


def test_cli_hinerv_recipe_compresses_deterministically_and_decompresses(fitted, tmp_path) -> None:
    _, run = fitted
    out = tmp_path / "recipe.nerv"
    report = json.loads(cli_ok("compress", run, "-o", out, *HINERV_FLAGS, "--quiet", "--json"))
    assert (report["quantizer"], report["prune_score"], report["qat_noise"]) == ("symmetric", "layer", 0.9)
    assert abs(report["sparsity"] - 0.15) < 0.01 and "method_defaults" not in report
    assert report["psnr"] > 10
    data = json.loads(cli_ok("inspect", out, "--json"))
    assert data["quantization"]["quantizer"] == "symmetric"
    assert not any(s["kind"] == "sparse" for s in data["sections"])
    model = read_nerv(out).build_model()
    assert abs(sparsity(model) - 0.15) < 0.01  # the pruned weights decode to exact zeros
    # two identical compressions (Quant-Noise masks included) write the same file
    twice = tmp_path / "twice.nerv"
    cli_ok("compress", run, "-o", twice, *HINERV_FLAGS, "--quiet", "--no-eval")
    assert twice.read_bytes() == out.read_bytes()
    # decompress gives the frames of the file's model
    frames = tmp_path / "frames/"
    cli_ok("decompress", out, "-o", frames, "--lossless")
    expected = to_uint8(model.decode_frames(torch.arange(8)))
    assert torch.equal(to_uint8(read_video(frames).frames), expected)


@pytest.mark.parametrize("flags, words", [
    (("--qat-epochs", "1", "--qat-noise", "0"), ("--qat-noise", "(0, 1]")),
    (("--qat-noise", "1.5"), ("--qat-noise",)),
    (("--qat-noise", "nan"), ("--qat-noise",)),
    (("--quantizer", "foo"), ("--quantizer", "minmax, symmetric")),
    (("--prune", "0.1", "--prune-score", "l1"), ("--prune-score", "magnitude, layer")),
])
def test_bad_recipe_options_are_one_line_errors(fitted, tmp_path, flags, words) -> None:
    _, run = fitted
    one_line_error(run_cli("compress", run, "-o", tmp_path / "x.nerv", *flags), *words)
    assert not (tmp_path / "x.nerv").exists()


# -- a method's own recipe ------------------------------------------------------------------------------
@pytest.fixture
def nerv_with_recipe(monkeypatch):
    """NeRV's registry entry with HiNeRV's compression recipe, for this test only."""
    spec = registry.get_method("nerv")
    monkeypatch.setitem(registry._REGISTRY, "nerv", dataclasses.replace(spec, compress_defaults=dict(RECIPE)))


def test_register_method_keeps_the_compress_defaults(monkeypatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # forgotten after the test
    nerv_cls = registry.get_method("nerv").model_cls

    @registry.register_method("nerv-recipe", registry.get_method("nerv").config_cls, description="test",
                              compress_defaults=RECIPE)
    class WithRecipe(nerv_cls):
        pass

    assert registry.get_method("nerv-recipe").compress_defaults == RECIPE
    assert registry.get_method("nerv").compress_defaults == {}


def test_the_methods_recipe_fills_in_what_the_user_did_not_set(fitted, tmp_path, nerv_with_recipe) -> None:
    _, run = fitted
    report = nervkit.compress(run, tmp_path / "a.nerv", bits=6, evaluate=False)
    assert report["method_defaults"] == RECIPE
    assert (report["quantizer"], report["prune_score"], report["qat_noise"]) == ("symmetric", "layer", 0.9)
    # a setting given wins over the recipe; an explicit config object takes no recipe at all
    report = nervkit.compress(run, tmp_path / "b.nerv", quantizer="minmax", evaluate=False)
    assert report["method_defaults"] == {"prune_score": "layer", "qat_noise": 0.9}
    assert report["quantizer"] == "minmax"
    report = nervkit.compress(run, tmp_path / "c.nerv", CompressConfig(evaluate=False))
    assert "method_defaults" not in report and report["quantizer"] == "minmax"
    # the CLI passes only the options given
    text = cli_ok("compress", run, "-o", tmp_path / "d.nerv", "--quantizer", "minmax", "--no-eval")
    assert "--prune-score layer --qat-noise 0.9" in text and "symmetric" not in text
    report = json.loads(cli_ok("compress", run, "-o", tmp_path / "e.nerv", "--no-eval", "--json"))
    assert report["method_defaults"] == RECIPE and report["quantizer"] == "symmetric"
    assert read_nerv(tmp_path / "e.nerv").header["quantization"]["quantizer"] == "symmetric"
