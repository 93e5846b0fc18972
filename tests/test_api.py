"""Python API: fit / load / decode / info mirror the CLI."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import nervkit
from nervkit.errors import ConfigError

TINY_NERV = {"mlp_hidden": 32, "grid_channels": 16, "lower_width": 16}


def _raw_yuv(path: Path, n: int = 4, h: int = 32, w: int = 48) -> Path:
    y, x = np.mgrid[0:h, 0:w]
    with open(path, "wb") as f:
        for i in range(n):
            rgb = np.stack([(x * 5 + 11 * i) % 256, (y * 7) % 256, (x + y) % 256], -1).astype(np.uint8)
            f.write(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().tobytes())
    return path


def test_fit_raw_yuv_with_size_then_load_and_decode(tmp_path: Path) -> None:
    src = _raw_yuv(tmp_path / "clip.yuv")
    run = nervkit.fit(src, out=tmp_path / "run", size="32x48", epochs=2, progress=False, write_video=False,
                      model_options=TINY_NERV)
    assert (run.model.geometry.num_frames, run.model.geometry.height, run.model.geometry.width) == (4, 32, 48)
    assert run.meta["data"]["raw_size"] == [32, 48] and run.meta["data"]["size"] is None
    loaded = nervkit.load(tmp_path / "run")
    assert torch.equal(loaded.decode([0, 3]), run.model.decode_frames([0, 3]))
    assert nervkit.info(tmp_path / "run")["history"]["epochs"][-1]["epoch"] == 2
    with pytest.raises(ConfigError, match="out of range"):
        loaded.decode([4])
    out = nervkit.decode(tmp_path / "run", tmp_path / "frames/", lossless=True)
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(4)]
