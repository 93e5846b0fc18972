"""The bundled .nerv sample: `nervkit decompress --sample` and `nervkit inspect --sample` work at once (issue #17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

import nervkit
from helpers import cli_ok, one_line_error, run_cli
from nervkit.compress.model_codec import read_nerv


def test_the_sample_is_shipped_and_decodes(tmp_path: Path) -> None:
    path = nervkit.sample_nerv()
    assert path.is_file() and path.stat().st_size < 64_000
    nerv = read_nerv(path)
    assert nerv.header["method"] == "nerv" and (nerv.geometry.num_frames, nerv.geometry.height, nerv.geometry.width) == (16, 90, 160)
    cli_ok("decompress", "--sample", "-o", tmp_path / "frames/")
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 16
    image = np.asarray(Image.open(frames[0]))
    assert image.shape == (90, 160, 3) and image.std() > 10  # a picture, not a flat frame
    info = json.loads(cli_ok("inspect", "--sample", "--json"))
    assert info["method"] == "nerv"


def test_sample_and_file_together_or_neither_are_one_line_errors(tmp_path: Path) -> None:
    one_line_error(run_cli("decompress", nervkit.sample_nerv(), "--sample", "-o", tmp_path / "a/"), "--sample")
    one_line_error(run_cli("decompress", "-o", tmp_path / "b/"), "--sample")
    one_line_error(run_cli("inspect"), "--sample")
