"""Behaviour pinned before the middle layer was restructured (issue #13): ``.nerv`` files written then
still decode to the same tensors and frames, and fits at a fixed seed still end with the same weights.

The inputs in tests/golden/ were written by tests/golden/make_golden.py before the change. Dequantized
tensors are compared bit for bit (a fixed float32 formula, the same on every machine). Decoded frames
and trained weights come out of float convolutions whose kernels may differ between CPUs, so they are
compared bit for bit where this machine matches the one that wrote them and otherwise within one 8-bit
level (frames) and a relative 1e-4 (weights) — a restructuring bug changes them by far more.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nervkit
from nervkit.compress.model_codec import read_nerv

GOLDEN = Path(__file__).parent / "golden"
SUMMARY = json.loads((GOLDEN / "golden.json").read_text())
sys.path.insert(0, str(GOLDEN))
from make_golden import FITS, clip_path, tensor_digest  # noqa: E402


@pytest.mark.parametrize("name", sorted(SUMMARY))
def test_files_written_before_decode_the_same(name: str, tmp_path: Path) -> None:
    nerv = read_nerv(GOLDEN / f"{name}.nerv")
    assert tensor_digest(nerv.tensors) == SUMMARY[name]["tensors_sha256"]
    model = nerv.build_model()
    frames = (model.decode_frames(list(range(nerv.geometry.num_frames))) * 255).round().to(torch.uint8).numpy()
    expected = np.load(GOLDEN / f"{name}.frames.npy")
    assert frames.shape == expected.shape
    diff = np.abs(frames.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999, (diff.max(), (diff == 0).mean())
    # and through the CLI, as a user decodes it
    nervkit.decompress(GOLDEN / f"{name}.nerv", tmp_path / "out", lossless=True)
    assert len(list((tmp_path / "out").glob("frame_*.png"))) == nerv.geometry.num_frames


@pytest.mark.parametrize("name", sorted(SUMMARY))
def test_fits_at_a_fixed_seed_end_with_the_same_weights(name: str, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        fitted = nervkit.fit(clip_path(tmp_path), out=tmp_path / "run", progress=False, write_video=False,
                             **FITS[name])
    finally:
        torch.set_num_threads(threads)
    golden = torch.load(GOLDEN / f"{name}_fit.pt", weights_only=True)
    state = fitted.model.state_dict()
    assert state.keys() == golden["model"].keys()
    for key, value in golden["model"].items():
        torch.testing.assert_close(state[key], value, rtol=1e-4, atol=1e-6, msg=key)
    np.testing.assert_allclose([e["loss"] for e in fitted.history], golden["losses"], rtol=1e-4)
