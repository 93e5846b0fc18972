"""Reproducible, observable runs: ``nervkit fit -c FILE`` (a run.json fits the same run again; a JSON or
TOML settings file, the command line overriding it), the provenance every run folder records, and the
per-epoch log a run writes as it trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.io import write_video

TINY = ["--mlp-hidden", "32", "--grid-channels", "16", "--lower-width", "16"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("repro") / "clip.mkv", fps=25, lossless=True)


@pytest.fixture(scope="module")
def run_x(clip, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("repro_runs") / "x"
    cli_ok("fit", clip, "-o", run, "--epochs", 3, "--lr", "2e-3", "--threads", 1, "--quiet", "--no-video",
           "--frames", "0:6", "--seed", 5, *TINY)
    return run


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


def test_a_run_json_fits_the_same_run_again(run_x, tmp_path):
    cli_ok("fit", "-c", run_x / "run.json", "-o", tmp_path / "y", "--quiet", "--no-video")
    x = json.loads((run_x / "run.json").read_text())
    y = json.loads((tmp_path / "y" / "run.json").read_text())
    for key in ("method", "config", "train", "data", "geometry", "parameters"):
        assert x[key] == y[key], key
    assert x["run_id"] != y["run_id"]
    a, b = _weights(run_x), _weights(tmp_path / "y")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the command line overrides the file
    cli_ok("fit", "-c", run_x / "run.json", "-o", tmp_path / "z", "--epochs", 2, "--quiet", "--no-video")
    z = json.loads((tmp_path / "z" / "run.json").read_text())
    assert z["train"]["epochs"] == 2 and z["config"] == x["config"]
    one_line_error(run_cli("fit", "-c", run_x / "run.json", "-o", tmp_path / "w", "--params", "10k"),
                   "run.json", "--params")
    one_line_error(run_cli("fit", "-c", run_x / "run.json", "--resume", "-o", run_x), "-c")


def test_a_toml_settings_file_with_sections(clip, tmp_path):
    settings = tmp_path / "fit.toml"
    settings.write_text(f'video = "{clip}"\nmodel = "nerv"\nframes = "0:4"\nsize = "36x60"\n\n'
                        "[architecture]\nmlp-hidden = 32\ngrid_channels = 16\nlower_width = 16\n\n"
                        '[train]\nepochs = 2\nlr = 2e-3\nthreads = 1\nloss = "l2"\n')
    cli_ok("fit", "-c", settings, "-o", tmp_path / "r", "--quiet", "--no-video", "--lr", "1e-3")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["train"]["epochs"] == 2 and meta["train"]["loss"] == "l2" and meta["train"]["lr"] == 1e-3
    assert meta["config"]["mlp_hidden"] == 32 and meta["geometry"]["num_frames"] == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"video": str(clip), "epochs": 1, "colour": "blue"}))
    one_line_error(run_cli("fit", "-c", bad, "-o", tmp_path / "b"), "unknown setting", "colour")
    (tmp_path / "broken.json").write_text("{not json")
    one_line_error(run_cli("fit", "-c", tmp_path / "broken.json", "-o", tmp_path / "b"), "not valid JSON")
    one_line_error(run_cli("fit", "-c", tmp_path / "none.json", "-o", tmp_path / "b"), "no such file")
    assert not (tmp_path / "b").exists()


def test_every_run_records_its_provenance_and_an_epoch_log(run_x):
    meta = json.loads((run_x / "run.json").read_text())
    prov = meta["provenance"]
    assert prov["command"].startswith("nervkit fit ") and "--seed 5" in prov["command"]
    assert prov["torch"] == torch.__version__ and prov["nervkit"] == meta["nervkit_version"]
    assert prov["device"] == "cpu" and prov["threads"] == 1 and "git_commit" in prov and "python" in prov
    lines = [json.loads(line) for line in (run_x / "history.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2, 3]
    history = json.loads((run_x / "history.json").read_text())["epochs"]
    assert [e["loss"] for e in lines] == [e["loss"] for e in history]
