"""Write the golden inputs of tests/test_golden.py (run once, from the repository root, before a refactor
that must not change results): two tiny fits at a fixed seed (NeRV and NVP; their final weights and loss
histories) and their ``.nerv`` files with what they decode to.

    .venv/bin/python tests/golden/make_golden.py

Written at commit 3a1c0d9+ (issue #13 starts from here): the files pin the behaviour before the middle
layer was restructured.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import nervkit  # noqa: E402
from helpers import gradient_clip  # noqa: E402
from nervkit.compress.model_codec import read_nerv  # noqa: E402
from nervkit.io import write_video  # noqa: E402

#: the two fits: (name, fit keyword arguments)
FITS = {
    "nerv": dict(model="nerv", epochs=3, seed=3, threads=1,
                 model_options={"mlp_hidden": 16, "grid_channels": 8, "lower_width": 8}),
    "nvp": dict(model="nvp", params="20k", epochs=3, seed=3, threads=1, pixels_per_batch=4096),
}


def clip_path(folder: Path) -> Path:
    return write_video(gradient_clip(), folder / "clip.mkv", fps=25, lossless=True)


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = clip_path(Path(tmp))
        for name, kwargs in FITS.items():
            run = Path(tmp) / name
            fitted = nervkit.fit(clip, out=run, progress=False, write_video=False, **kwargs)
            state = {k: v.clone() for k, v in fitted.model.state_dict().items()}
            torch.save({"model": state, "losses": [e["loss"] for e in fitted.history]}, HERE / f"{name}_fit.pt")
            nerv = HERE / f"{name}.nerv"
            nervkit.compress(run, nerv, evaluate=False)
            decoded = read_nerv(nerv)
            frames = decoded.build_model().decode_frames(list(range(decoded.geometry.num_frames)))
            np.save(HERE / f"{name}.frames.npy", (frames * 255).round().to(torch.uint8).numpy())
            summary[name] = {"tensors_sha256": tensor_digest(decoded.tensors), "fit": kwargs}
    (HERE / "golden.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
