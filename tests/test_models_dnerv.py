"""DNeRV: official parameter counts (spec §5.2, §10; official-baselines-cpu.md), both budget accountings,
the paper's Table 8 presets, the fusion variants and the CCU of Eq. 5, the frame differences at the edges
and for 1- and 2-frame videos, any frame size, bad input, both embeddings stored and the encoders not,
fit → compress → decompress through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_decodes_identically, cli_ok, clip_tensor, gradient_clip, meta_model, run_cli
from nervkit.fitting import train_config as _train_config
from nervkit.compress.model_codec import read_nerv, write_nerv
from nervkit.compress.prune import prunable_parameters
from nervkit.data import FrameStore
from nervkit.errors import ConfigError, InputError, ModelError
from nervkit.io import write_video
from nervkit.models import FrameBatch, VideoGeometry, create_model, get_method
from nervkit.models.dnerv import CollaborativeContentUnit, DNeRV, diff_grid, frame_differences
from nervkit.train import Trainer, evaluate_model

BUNNY_SMALL = VideoGeometry(132, 180, 320)
BUNNY_640 = VideoGeometry(132, 640, 1280)
TINY = {"strides": (2, 1, 1, 1, 2), "channels": 12, "embed_channels": 4, "encoder_width": 8}
CODE = {"head_kernel": 3, "encoder": "dnerv-code"}  # the official code's variants of the paper's choices






def size(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- official counts ---------------------------------------------------------------------------------
def test_official_yaml_preset_has_the_official_count() -> None:
    model = meta_model("dnerv", VideoGeometry(600, 960, 1920), preset="960x1920-official")
    assert size(model) == 3_948_426  # everything the official module holds, encoders included
    parts = model.parameter_counts().parts
    assert [size(b) for b in model.blocks] == [176_700, 690_480, 1_311_232, 503_487, 150_640]
    assert (parts["stem"], parts["head"]) == (1_564, 948)
    assert (parts["diff_stem"], parts["diff_blocks"]) == (189, 472_576)
    assert parts["fusion"] == 4 * 24_388 and parts["encoder"] == 372_480 + 1_040
    assert parts["diff_encoder"] == 169_408 + 130
    assert parts["decoder_official"] == 3_403_804  # the code's "not enc" sub-total
    assert model.content_embeddings.shape == (600, 16, 2, 4)
    assert model.diff_embeddings.shape == (600, 2, 40, 80)


@pytest.mark.parametrize("preset,widths,decoder,everything",
                         [("640x1280-0.35M", [32, 26, 21, 17, 14, 11], 345_297, 896_387),
                          ("640x1280-0.75M", [48, 40, 33, 27, 22, 18], 851_276, 1_402_638),
                          ("640x1280-1.5M", [68, 56, 46, 38, 31, 25], 1_668_884, 2_220_586),
                          ("640x1280-3M", [95, 79, 65, 54, 45, 37], 3_357_465, 3_909_626)])
def test_bunny_presets_match_table_8_and_the_official_counts(preset, widths, decoder, everything) -> None:
    code = meta_model("dnerv", BUNNY_640, preset=preset, overrides=CODE)
    assert [code.config.channels, *code.config.widths] == widths and code.config.diff_strides == (2, 2, 2, 2)
    assert diff_grid(code.config) == (40, 80)
    assert code.parameter_counts().parts["decoder_official"] == decoder
    assert size(code) == everything
    paper = meta_model("dnerv", BUNNY_640, preset=preset)  # head 1x1 (Eq. 6) instead of the code's 3x3
    assert paper.parameter_counts().official == decoder - 24 * widths[-1] + 132 * 16 * 8


@pytest.mark.parametrize("geometry,preset,c1,c5,kc,grid,diff_blocks",
                         [(VideoGeometry(600, 480, 960), "480x960-3M", 91, 42, 1, (40, 80), 1),
                          (VideoGeometry(600, 960, 1920), "960x1920-3M", 76, 35, 1, (40, 80), 1),
                          (VideoGeometry(600, 960, 1920), "960x1920-3M-small-diff", 76, 35, 1, (10, 20), 2),
                          (VideoGeometry(600, 960, 1920), "960x1920-1.58M", 56, 25, 1, (10, 20), 2)])
def test_other_table_8_presets(geometry, preset, c1, c5, kc, grid, diff_blocks) -> None:
    model = meta_model("dnerv", geometry, preset=preset)
    widths = [model.config.channels, *model.config.widths]
    assert (widths[1], widths[-1], model.config.fusion_kernel) == (c1, c5, kc)
    assert diff_grid(model.config) == grid and len(model.diff_blocks) == diff_blocks
    assert model.head.kernel_size == (1, 1)


def test_the_two_official_180x320_baselines_and_both_budget_accountings() -> None:
    paper = meta_model("dnerv", BUNNY_SMALL, params=1_500_000, overrides={"budget_counts": "paper", "head_kernel": 3})
    stored = meta_model("dnerv", BUNNY_SMALL, params=1_500_000, overrides={"head_kernel": 3})  # default: stored
    for model in (paper, stored):
        cfg = model.config
        assert cfg.strides == (5, 1, 1, 2, 2) and (cfg.embed_height, cfg.embed_width) == (9, 16)
        assert diff_grid(model.config) == (45, 80)  # fusion after stage 3 at 45x80
    assert paper.config.channels == 111 and stored.config.channels == 51
    counts = paper.parameter_counts()
    assert counts.parts["decoder_official"] == 1_179_630 and counts.parts["content_embeddings"] == 304_128
    assert counts.official == 1_179_630 + 304_128
    counts = stored.parameter_counts()
    assert counts.parts["decoder_official"] == 251_249 and counts.parts["diff_embeddings"] == 950_400
    assert counts.total == 251_249 + 304_128 + 950_400 + counts.parts["stem"] == 1_506_644


def test_options_and_budgets_that_do_not_fit() -> None:
    geometry = VideoGeometry(4, 36, 60)
    with pytest.raises(ConfigError, match="--channels and --params"):
        create_model("dnerv", geometry, params=90_000, channels=16)
    with pytest.raises(ModelError, match="too small for DNeRV"):
        meta_model("dnerv", BUNNY_SMALL, params=1_000_000)  # the embeddings alone take 1,254,528
    with pytest.raises(ConfigError, match="must multiply to 2"):
        create_model("dnerv", geometry, **{**TINY, "diff_strides": (4,)})
    # option mistakes (ConfigError since issue #13; they were ModelErrors)
    with pytest.raises(ConfigError, match="--fusion-stage"):
        create_model("dnerv", geometry, **{**TINY, "strides": (2, 2)})
    with pytest.raises(ConfigError, match="--head-kernel must be odd, got 2"):
        create_model("dnerv", geometry, **{**TINY, "head_kernel": 2})
    with pytest.raises(ConfigError, match="--fusion"):
        create_model("dnerv", geometry, **{**TINY, "fusion": "concat"})


# -- the fusion unit ---------------------------------------------------------------------------------
def test_ccu_follows_equation_5() -> None:
    torch.manual_seed(0)
    ccu = CollaborativeContentUnit(2, 1)
    b, z = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    def conv(m: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:  # a 1x1 conv by hand
        return torch.einsum("oi,nihw->nohw", m.weight[:, :, 0, 0], x) + m.bias[None, :, None, None]

    u = torch.tanh(conv(ccu.u_content, b) + conv(ccu.u_diff, z))
    v = torch.sigmoid(conv(ccu.v_content, b) + conv(ccu.v_diff, z))
    with torch.no_grad():
        assert torch.allclose(ccu(b, z), u * v + (1 - v) * b, atol=1e-6)
        for m in (ccu.v_content, ccu.v_diff):  # gate closed (v = 0): the content passes unchanged
            m.weight.zero_()
            m.bias.fill_(-1e4)
        assert torch.equal(ccu(b, z), b)


def test_fusion_variants_differ_by_their_convs_and_all_train() -> None:
    geometry = VideoGeometry(4, 36, 60)
    store = FrameStore.from_tensor(clip_tensor(4))
    models = {}
    for fusion in ("sum", "conv", "ccu"):
        torch.manual_seed(0)
        models[fusion] = create_model("dnerv", geometry, fusion=fusion, **TINY)
        cfg = _train_config(None, {"epochs": 3, "threads": 1, "device": "cpu", "eval_every": 3},
                            get_method("dnerv").train_defaults)
        state = Trainer(models[fusion], store, cfg, device=torch.device("cpu"), progress=False).fit()
        losses = [h["loss"] for h in state.history]
        assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    width = models["ccu"].config.widths[2]  # the output of stage 3, where the streams fuse
    one_conv = width * width * 9 + width
    totals = {k: m.parameter_counts().total for k, m in models.items()}
    assert totals["conv"] - totals["sum"] == one_conv and totals["ccu"] - totals["sum"] == 4 * one_conv


# -- differences, edge frames, short videos ------------------------------------------------------------
def test_neighbours_repeat_the_edge_frames_so_outer_differences_are_zero() -> None:
    frames = torch.rand(4, 3, 8, 8)
    store = FrameStore.from_tensor(frames)
    got = store.get(range(4))
    nb = store.neighbours([0, 2, 3])
    assert nb.shape == (3, 2, 3, 8, 8)
    assert torch.equal(nb[0, 0], got[0]) and torch.equal(nb[0, 1], got[1])
    assert torch.equal(nb[1, 0], got[1]) and torch.equal(nb[1, 1], got[3])
    assert torch.equal(nb[2, 1], got[3])
    diff = frame_differences(got[[0, 2, 3]], nb)
    assert not diff[0, :3].any() and not diff[2, 3:].any()  # backward at the first, forward at the last
    assert torch.equal(diff[1, :3], got[2] - got[1]) and torch.equal(diff[1, 3:], got[3] - got[2])


@pytest.mark.parametrize("frames", [1, 2])
def test_one_and_two_frame_videos_train_with_zero_outer_differences(frames: int) -> None:
    torch.manual_seed(0)
    store = FrameStore.from_tensor(clip_tensor(frames))
    model = create_model("dnerv", VideoGeometry(frames, 36, 60), **TINY)
    cfg = _train_config(None, {"epochs": 4, "threads": 1, "device": "cpu", "lr": 2e-3},
                        get_method("dnerv").train_defaults)
    Trainer(model, store, cfg, device=torch.device("cpu"), progress=False).fit()
    diffs = frame_differences(store.get(range(frames)), store.neighbours(range(frames)))
    if frames == 1:  # its own neighbour on both sides: both differences are zero
        assert not diffs.any()
        with torch.no_grad():
            zero = model.diff_encoder(torch.zeros(1, 6, *model.output_size))
        assert torch.allclose(model.diff_embeddings, zero)
    else:
        assert not diffs[0, :3].any() and not diffs[1, 3:].any() and diffs[0, 3:].any()
    assert model.decode_frames(list(range(frames))).shape == (frames, 3, 36, 60)


# -- any frame size, bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("shape,strides",
                         [((37, 61), ()), ((19, 33), (2, 1, 1, 1, 1)), ((36, 60), (2, 2, 1))])
def test_any_frame_size_pads_and_crops(shape, strides) -> None:
    torch.manual_seed(0)
    geometry = VideoGeometry(3, *shape)
    model = create_model("dnerv", geometry, **{**TINY, "strides": strides})
    oh, ow = model.output_size
    assert oh >= shape[0] and ow >= shape[1]
    batch = FrameBatch(torch.tensor([0, 2]), torch.rand(2, 3, *shape), neighbours=torch.rand(2, 2, 3, *shape))
    assert model(batch).shape == (2, 3, oh, ow)
    model.refresh_side_info(FrameStore.from_tensor(torch.rand(3, 3, *shape)))
    assert model.decode_frames([0, 1, 2]).shape == (3, 3, *shape)


def test_bad_frames_and_missing_neighbours_are_one_line_errors() -> None:
    model = create_model("dnerv", VideoGeometry(3, 36, 60), **TINY)
    frames = torch.rand(2, 3, 36, 60)
    with pytest.raises(ModelError, match="needs the previous and next frame"):
        model(FrameBatch(torch.tensor([0, 1]), frames))
    with pytest.raises(InputError, match="fitted to 3x36x60 frames"):
        wrong = torch.rand(2, 3, 40, 60)
        model(FrameBatch(torch.tensor([0, 1]), wrong, neighbours=torch.stack([wrong, wrong], 1)))
    with pytest.raises(InputError, match="neighbouring frames have shape"):
        model(FrameBatch(torch.tensor([0, 1]), frames, neighbours=torch.rand(2, 2, 3, 36, 64)))
    with pytest.raises(ModelError, match="2 frames but the model was fitted to 3"):
        model.refresh_side_info(FrameStore.from_tensor(frames))


# -- stored state -------------------------------------------------------------------------------------
def test_refresh_fills_both_embeddings_that_decode_uses() -> None:
    torch.manual_seed(1)
    store = FrameStore.from_tensor(clip_tensor(5))
    model = create_model("dnerv", VideoGeometry(5, 36, 60), **TINY).eval()
    model.refresh_side_info(store)
    idx = list(range(5))
    with torch.no_grad():
        content, diff = model.encode(store.get(idx), store.neighbours(idx))
        assert torch.equal(model.content_embeddings, content) and torch.equal(model.diff_embeddings, diff)
        predicted = model(FrameBatch(torch.arange(5), store.get(idx), neighbours=store.neighbours(idx)))
        assert torch.allclose(model.decode(torch.arange(5)), predicted, atol=1e-6)


def test_encoders_are_not_stored_and_a_file_decodes_identically(tmp_path: Path) -> None:
    torch.manual_seed(2)
    store = FrameStore.from_tensor(clip_tensor(4))
    model = create_model("dnerv", VideoGeometry(4, 36, 60), **TINY).eval()
    model.refresh_side_info(store)
    groups = {g.name: g for g in model.stored_groups()}
    assert {k: g.kind for k, g in groups.items()} == {
        "decoder": "weights", "content_embeddings": "per_frame", "diff_embeddings": "per_frame"}
    names = {n for g in groups.values() for n in g.tensors}
    assert names == {n for n in model.state_dict() if not n.startswith(("encoder.", "diff_encoder."))}
    assert {"fusion.u_content.weight", "stem.weight", "head.weight"} <= names
    assert not [n for n in prunable_parameters(model) if n.startswith(("encoder", "diff_encoder", "head"))]
    counts = model.parameter_counts()
    assert counts.total == sum(t.numel() for g in groups.values() for t in g.tensors.values())

    path = tmp_path / "m.nerv"
    write_nerv(path, model, bits=12, embed_bits=10)
    rebuilt = read_nerv(path).build_model()
    assert rebuilt.encoder is None and rebuilt.diff_encoder is None
    assert not [n for n in rebuilt.state_dict() if "encoder" in n]
    decoded = rebuilt.decode_frames(list(range(4)))
    assert torch.equal(decoded, read_nerv(path).build_model().decode_frames(list(range(4))))
    assert (decoded - model.decode_frames(list(range(4)))).square().mean() < 1e-4
    with pytest.raises(ModelError, match="holds no encoders"):
        rebuilt.refresh_side_info(store)


def test_official_code_encoder_skips_its_layer_norm_and_layer_scale() -> None:
    torch.manual_seed(3)
    model = create_model("dnerv", VideoGeometry(3, 36, 60), **{**TINY, "encoder": "dnerv-code"})
    frames = torch.rand(1, 3, 36, 60)
    model(FrameBatch(torch.tensor([1]), frames, neighbours=torch.rand(1, 2, 3, 36, 60))).mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused and all(n.startswith(("encoder.stages.", "diff_encoder.stages."))
                          and (".2.norm." in n or n.endswith(".2.gamma")) for n in unused)


def test_training_defaults_are_the_official_recipe() -> None:
    defaults = get_method("dnerv").train_defaults
    assert defaults == {"loss": "l2", "lr": 5e-4, "beta1": 0.5, "batch_size": 1, "warmup": 0.2,
                        "grad_clip": 0.1}


# -- end to end through the CLI -----------------------------------------------------------------------


def test_cli_fit_compress_decompress_round_trip(tmp_path: Path) -> None:
    clip = write_video(gradient_clip(6), tmp_path / "clip.mkv", lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", clip, "--model", "dnerv", "--strides", "2,1,1,1,2", "--channels", 12, "--encoder-width", 8,
       "-o", run, "--epochs", 4, "--quiet", "--no-video", "--threads", 1)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["train"]["loss"], meta["train"]["grad_clip"], meta["train"]["batch_size"]) == ("l2", 0.1, 1)
    parts = meta["parameters"]["parts"]
    assert parts["content_embeddings"] == 6 * 16 * 9 * 15 and parts["diff_embeddings"] == 6 * 2 * 18 * 30

    nerv = tmp_path / "v.nerv"
    report = json.loads(cli_ok("compress", run, "-o", nerv, "--json"))
    groups = json.loads(cli_ok("inspect", nerv, "--json"))["groups"]
    assert groups["content_embeddings"]["values"] == parts["content_embeddings"]
    assert groups["diff_embeddings"]["values"] == parts["diff_embeddings"]
    assert sum(g["values"] for g in groups.values()) == meta["parameters"]["total"]
    assert report["bpp"] == pytest.approx(nerv.stat().st_size * 8 / (6 * 36 * 60))
    assert abs(report["psnr"] - meta["psnr"]) < 0.5

    assert_decodes_identically(nerv, tmp_path, frames=6)
