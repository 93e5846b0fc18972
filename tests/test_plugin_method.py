"""A method from outside nervkit: one file (tests/plugins/toy_method.py), registered by importing it or
through the ``nervkit.methods`` entry point of an installed package, then used through the whole CLI
(fit, resume, info, decode, interpolate, compress, inspect, decompress) with no change to nervkit.

What a new method costs: that one file. The entry-point case installs it the way a package does (a
``*.dist-info`` with ``entry_points.txt`` on the path of a fresh process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.io import write_video

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(scope="module")
def toy():
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        import toy_method  # noqa: F401  (registers "toy")
    finally:
        sys.path.remove(str(PLUGIN_DIR))
    return "toy"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("toy") / "clip.mkv", fps=25, lossless=True)


def test_a_method_registered_from_a_test_file_runs_through_the_cli(toy, clip, tmp_path):
    assert "toy: test fixture" in cli_ok("models")
    sized = tmp_path / "sized"
    summary = json.loads(cli_ok("fit", clip, "--model", "toy", "--params", "3k", "--epochs", 30, "--quiet",
                                "--no-video", "--json", "--threads", 1, "-o", sized))
    assert summary["method"] == "toy" and summary["epochs"] == 30 and summary["psnr"] > 15
    # the budget solved by the method's own hook: 8 frames of 9x15 latents, 3k values -> 2 channels
    assert json.loads((sized / "run.json").read_text())["config"] == {"channels": 2, "scale": 4}
    assert summary["parameters"] <= 3000
    run = tmp_path / "run"
    out = cli_ok("fit", clip, "--model", "toy", "--channels", 2, "--epochs", 3, "--quiet", "--no-video", "-o", run,
                 "--threads", 1)
    assert "toy:" in out
    assert json.loads((run / "run.json").read_text())["config"] == {"channels": 2, "scale": 4}
    one_line_error(run_cli("fit", clip, "--model", "toy", "--channels", 2, "--params", "3k", "-o", tmp_path / "x"),
                   "--channels and --params")
    one_line_error(run_cli("fit", clip, "--model", "toy", "--scale", 0, "-o", tmp_path / "x"), "--scale")
    assert "toy" in cli_ok("info", run)
    cli_ok("fit", "--resume", "-o", run, "--quiet", "--no-video")  # a finished run: nothing left to do
    cli_ok("decode", run, "-o", tmp_path / "frames", "--lossless")
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 8
    cli_ok("interpolate", run, "--factor", 2, "-o", tmp_path / "slow.mkv", "--lossless")
    report = json.loads(cli_ok("compress", run, "-o", tmp_path / "toy.nerv", "--json"))
    assert report["bytes"] == (tmp_path / "toy.nerv").stat().st_size and report["psnr"] > 10
    sections = json.loads(cli_ok("inspect", tmp_path / "toy.nerv", "--json"))["sections"]
    assert {s["name"] for s in sections} == {"header", "latents", "head.weight", "head.bias"}
    cli_ok("decompress", tmp_path / "toy.nerv", "-o", tmp_path / "dec", "--lossless")
    assert len(list((tmp_path / "dec").glob("frame_*.png"))) == 8


def _install_as_package(site: Path) -> None:
    """What ``pip install`` of a package declaring the entry point leaves on the path."""
    shutil.copy(PLUGIN_DIR / "toy_method.py", site / "toy_method.py")
    info = site / "toy_nervkit_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-nervkit-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nervkit.methods]\ntoy = toy_method\n")


def test_an_installed_plugin_is_found_through_its_entry_point(clip, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_as_package(site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("NERVKIT_DEBUG", None)

    def nervkit(*argv: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nervkit", *map(str, argv)], capture_output=True, text=True,
                              env=env, timeout=300)

    listed = nervkit("models")
    assert listed.returncode == 0 and "toy: test fixture" in listed.stdout, listed.stderr
    fitted = nervkit("fit", clip, "--model", "toy", "--params", "3k", "--epochs", 2, "--quiet", "-o",
                     tmp_path / "run", "--threads", 1)
    assert fitted.returncode == 0, fitted.stderr
    packed = nervkit("compress", tmp_path / "run", "-o", tmp_path / "toy.nerv", "--no-eval")
    assert packed.returncode == 0, packed.stderr
    unpacked = nervkit("decompress", tmp_path / "toy.nerv", "-o", tmp_path / "out.mkv", "--lossless")
    assert unpacked.returncode == 0 and (tmp_path / "out.mkv").is_file(), unpacked.stderr
    # a broken plugin is reported and skipped; the built-in methods still work
    (site / "toy_method.py").write_text("raise ImportError('broken on purpose')\n")
    broken = nervkit("models")
    assert broken.returncode == 0 and "nerv:" in broken.stdout
    assert "method plugin 'toy'" in broken.stderr and "broken on purpose" in broken.stderr
