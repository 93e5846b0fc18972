"""Interpolation: frame splits (held-out frames scored apart) and decode_at / nervkit interpolate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nervkit
from helpers import gradient_clip, N, one_line_error, run_cli, TINY_NERV
from nervkit.data import FrameStore
from nervkit.errors import ConfigError, ModelError
from nervkit.io import probe_video, write_video
from nervkit.models import Representation, VideoGeometry, create_model, list_methods
from nervkit.tasks import FrameSplit, SplitFrameStore, TaskOptions, prepare
from nervkit.train import load_checkpoint

TINY = {"nerv": {"model_options": TINY_NERV}, "hnerv": {"params": "20k"}}




@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("interp") / "clip.mkv", fps=25, lossless=True)


def test_split_indices() -> None:
    assert FrameSplit.parse("even").indices(8) == ([0, 2, 4, 6], [1, 3, 5, 7])
    assert FrameSplit.parse("odd").indices(8) == ([1, 3, 5, 7], [0, 2, 4, 6])
    assert FrameSplit.parse("3:1").indices(9) == ([0, 1, 2, 4, 5, 6, 8], [3, 7])
    assert FrameSplit.parse("all").indices(3) == ([0, 1, 2], [])
    assert FrameSplit.parse(None).indices(2) == ([0, 1], [])
    assert FrameSplit.parse("1:2").indices(6) == ([0, 3], [1, 2, 4, 5])
    for bad in ("half", "0:1", "3:", "a:b", "-1:1"):
        with pytest.raises(ConfigError, match="train-frames"):
            FrameSplit.parse(bad)
    with pytest.raises(ConfigError, match="no training frame"):
        FrameSplit.parse("odd").indices(1)


def test_t_is_normalised_on_the_full_video() -> None:
    """NeRV is built for all N frames: a held-out frame i keeps t = i/N (E-NeRV: before the split)."""
    model = create_model("nerv", VideoGeometry(N, 36, 60), **TINY_NERV)
    assert torch.allclose(model.frame_time(torch.tensor([0, 3, 7])), torch.tensor([0, 3, 7]) / N)


def test_split_store_neighbours_are_training_frames() -> None:
    store = SplitFrameStore.wrap(FrameStore.from_tensor(torch.rand(8, 3, 4, 5)), [0, 2, 4, 6])
    pairs = store.neighbour_indices([0, 2, 3, 6, 7]).tolist()
    assert pairs == [[0, 2], [0, 4], [2, 4], [4, 6], [6, 7]]
    got = store.neighbours([3])
    assert got.shape == (1, 2, 3, 4, 5)
    assert torch.equal(got[0, 0], store.get([2])[0]) and torch.equal(got[0, 1], store.get([4])[0])
    data = prepare(TaskOptions(train_frames="even"), FrameStore.from_tensor(torch.rand(8, 3, 4, 5)))
    assert isinstance(data.store, SplitFrameStore) and data.heldout_indices == [1, 3, 5, 7]


@pytest.mark.parametrize("method", list_methods())
def test_decode_at_integer_positions_equal_decode(method: str) -> None:
    torch.manual_seed(0)
    geometry = VideoGeometry(N, 36, 60)
    model = create_model(method, geometry, **({"params": 120_000} if method != "nerv" else TINY_NERV)).eval()
    with torch.no_grad():
        for buf in model.buffers():  # give per-frame side information distinct values
            buf.copy_(torch.randn_like(buf)) if buf.is_floating_point() and buf.dim() > 1 else None
        idx = torch.tensor([0, 3, N - 1])
        assert torch.equal(model.decode_at(idx.float()), model.decode(idx))
        between = model.decode_frames_at([0.5, 2.25])
        assert between.shape == (2, 3, 36, 60) and between.min() >= 0 and between.max() <= 1
        if method == "nerv":  # continuous t
            assert torch.allclose(model.decode_at(torch.tensor([2.5])), model.decode_time(torch.tensor([2.5 / N])))
        if hasattr(model, "embeddings") and hasattr(model, "decode_embeddings"):
            mixed = 0.75 * model.embeddings[2] + 0.25 * model.embeddings[3]
            expected = model.decode_embeddings(mixed[None])
            assert torch.allclose(model.decode_at(torch.tensor([2.25])), expected, atol=1e-6)
            # the generic default (interpolated per-frame buffers) agrees with the method's override
            assert torch.allclose(Representation.decode_at(model, torch.tensor([2.25])), expected, atol=1e-6)
        with pytest.raises(ModelError, match="positions"):
            model.decode_at(torch.tensor([N - 0.5]))


@pytest.mark.parametrize("method", ["nerv", "hnerv"])
def test_heldout_frames_scored_apart_and_never_trained_on(method: str, clip: Path, tmp_path: Path) -> None:
    run = nervkit.fit(clip, out=tmp_path / "run", model=method, epochs=2, progress=False, write_video=False,
                      train_frames="even", threads=1, **TINY[method])
    section = run.tasks["interpolation"]
    assert section["heldout_protocol"] == ("encoder" if method == "hnerv" else "index")
    assert section["train_indices"] == [0, 2, 4, 6] and section["heldout_indices"] == [1, 3, 5, 7]
    assert section["train"]["frames"] == 4 and section["heldout"]["frames"] == 4
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["interpolation"]["heldout"]["psnr"] == pytest.approx(section["heldout"]["psnr"])
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data"]["train_frames"] == "even"
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["train_indices"] == [0, 2, 4, 6]
    # the held-out numbers are those of the decoded held-out frames against the original ones
    frames = torch.from_numpy(np.stack(gradient_clip())).permute(0, 3, 1, 2).float() / 255
    mse = (run.model.decode_frames([1, 3, 5, 7]) - frames[[1, 3, 5, 7]]).square().flatten(1).mean(1)
    assert section["heldout"]["psnr"] == pytest.approx(float((-10 * torch.log10(mse)).mean()), abs=1e-4)
    # garbage in the held-out frames changes no trained weight (held-out frames are never trained on)
    garbled = [f if i % 2 == 0 else np.random.default_rng(i).integers(0, 256, f.shape, dtype=np.uint8)
               for i, f in enumerate(gradient_clip())]
    other_clip = write_video(garbled, tmp_path / "garbled.mkv", fps=25, lossless=True)
    other = nervkit.fit(other_clip, out=tmp_path / "other", model=method, epochs=2, progress=False,
                        write_video=False, train_frames="even", threads=1, **TINY[method])
    a, b = run.model.state_dict(), other.model.state_dict()
    for name in a:
        if name != "embeddings":  # held-out embeddings come from the (different) held-out frames
            assert torch.equal(a[name], b[name]), name
    if method == "hnerv":
        assert torch.equal(a["embeddings"][0::2], b["embeddings"][0::2])


@pytest.mark.parametrize("method", ["nerv", "hnerv"])
def test_interpolate_writes_factor_frames_at_factor_fps(method: str, clip: Path, tmp_path: Path) -> None:
    opts = TINY[method]
    argv = ["fit", clip, "-o", tmp_path / "run", "--model", method, "--epochs", 1, "--quiet", "--no-video",
            "--threads", 1]
    argv += ["--params", opts["params"]] if "params" in opts else \
        [x for k, v in TINY_NERV.items() for x in ("--" + k.replace("_", "-"), v)]
    code, _, err = run_cli(*argv)
    assert code == 0, err
    code, out, err = run_cli("interpolate", tmp_path / "run", "--factor", 4, "-o", tmp_path / "x4.mkv",
                             "--lossless", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["frames"] == N + (N - 1) * 3 == 29 and result["fps"] == 100
    info = probe_video(tmp_path / "x4.mkv")
    assert info.num_frames == 29 and info.fps == pytest.approx(100)
    result = nervkit.interpolate(tmp_path / "run", 2, tmp_path / "x2/")
    assert result["frames"] == 15 and len(list((tmp_path / "x2").glob("frame_*.png"))) == 15
    one_line_error(run_cli("interpolate", tmp_path / "run", "--factor", 0, "-o", tmp_path / "bad.mp4"), "--factor")
    assert not (tmp_path / "bad.mp4").exists()


def test_bad_splits_are_one_line_errors(tmp_path: Path) -> None:
    single = write_video(gradient_clip(1), tmp_path / "one.mkv", fps=25, lossless=True)
    fit = ("--params", "20k", "--epochs", 1, "--quiet", "--no-video")
    one_line_error(run_cli("fit", single, "-o", tmp_path / "run", "--train-frames", "odd", *fit),
                   "no training frame")
    assert not (tmp_path / "run").exists()
    one_line_error(run_cli("fit", single, "-o", tmp_path / "run", "--train-frames", "most", *fit), "--train-frames")
    assert not (tmp_path / "run").exists()


def test_resume_keeps_the_stored_split(clip: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("fit", clip, "-o", tmp_path / "run", "--params", "20k", "--epochs", 1, "--quiet",
                           "--no-video", "--threads", 1, "--train-frames", "3:1")
    assert code == 0, err
    one_line_error(run_cli("fit", "--resume", "-o", tmp_path / "run", "--train-frames", "odd"), "--resume")
    code, out, err = run_cli("fit", "--resume", "-o", tmp_path / "run", "--quiet", "--no-video", "--json")
    assert code == 0, err
    assert json.loads(out)["interpolation"]["heldout"]["frames"] == 2  # frames 3 and 7


def test_compress_uses_the_runs_task_data(clip: Path, tmp_path: Path) -> None:
    """compress fine-tunes on the run's training frames/mask and refreshes from its data; the quality is
    measured against the clean video."""
    nervkit.fit(clip, out=tmp_path / "run", model="hnerv", params="20k", epochs=1, progress=False,
                write_video=False, train_frames="even", mask="central", threads=1)
    report = nervkit.compress(tmp_path / "run", tmp_path / "run.nerv", qat_epochs=1, device="cpu")
    assert report["psnr"] > 0 and (tmp_path / "run.nerv").is_file()
