"""nervkit's HiNeRV beside the official code (hmkx/HiNeRV): parameter counts and output sizes, every official
model configuration (issue #16).

The official model is built from its own ``models/`` package and configuration files (``cfgs/models/*.txt``)
through its own ``set_args`` / ``build_model``; nervkit's from the matching preset. Both count every parameter
(the official ``get_num_parameters`` reports the hierarchical encodings as 0; the state dict is counted here).
The official model renders one training patch (``patch_mode``) to check its output size against nervkit's.
Nothing is copied: the official code is imported from a checkout given on the command line::

    python benchmarks/hinerv_parity.py --official /path/to/HiNeRV     # a clone of github.com/hmkx/HiNeRV

Writes benchmarks/results/hinerv_parity.json / .md. Needs only torch and numpy (timm's DropPath, imported but
unused at drop-path 0, is stubbed when timm is absent).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent

#: official configuration file → (nervkit preset, video geometry (frames, height, width))
CONFIGS = {
    **{f"uvg-hinerv-{n.lower()}_1920x1080": (n, (600, 1080, 1920)) for n in ("S", "M", "L", "XL", "XXL")},
    **{f"bunny-hinerv-{n.lower()}_1280x720": (f"bunny-{n}", (132, 720, 1280)) for n in ("XXS", "XS", "S")},
    **{f"mcl-hinerv-{n.lower()}_1920x1080": (f"mcl-{n}", (120, 1080, 1920)) for n in ("XXS", "XS", "S", "M", "L")},
}


def _import_official(checkout: Path):
    if "timm" not in sys.modules:
        try:
            import timm  # noqa: F401
        except ImportError:  # only DropPath is imported, and unused at drop-path 0
            layers = types.ModuleType("timm.models.layers")
            layers.DropPath = torch.nn.Identity
            for name, module in (("timm", types.ModuleType("timm")), ("timm.models", types.ModuleType("timm.models")),
                                 ("timm.models.layers", layers)):
                sys.modules[name] = module
    sys.path.insert(0, str(checkout))
    from models import hinerv  # the official package

    return hinerv


def official_model(hinerv, checkout: Path, name: str, geometry: tuple[int, int, int]):
    parser = argparse.ArgumentParser()
    hinerv.set_args(parser)
    args, _ = parser.parse_known_args(shlex.split((checkout / "cfgs" / "models" / f"{name}.txt").read_text()))
    logger = logging.getLogger("official")
    return hinerv.build_model(args, logger, {"video_size": geometry})


def to_nervkit(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """The official state dict in nervkit's names and layouts (grids (T·H·W, K·C) → (T, H, W, C) / (T, s, s, C))."""
    ours = model.state_dict()
    out = {}
    for i in range(len(model.base_grids)):
        out[f"base_grids.{i}"] = state[f"encoding.grids.{i}.weight"].reshape(ours[f"base_grids.{i}"].shape)
    out["stem.weight"], out["stem.bias"] = state["decoder.stem.conv.weight"], state["decoder.stem.conv.bias"]
    for k, blocks in enumerate(model.stages):
        enc = f"decoder.blocks.{k}.1.enc"
        for lvl in range(len(model.encodings[k].grids)):
            key = f"encodings.{k}.grids.{lvl}"
            out[key] = state[f"{enc}.grids.{lvl}.weight"].reshape(ours[key].shape)
        out[f"encodings.{k}.linear.weight"] = state[f"{enc}.linear.weight"]
        out[f"encodings.{k}.linear.bias"] = state[f"{enc}.linear.bias"]
        for j in range(len(blocks)):
            src = f"decoder.blocks.{k}.{j + 2}"
            out[f"stages.{k}.{j}.dconv"] = state[f"{src}.dconv.weight"]
            out[f"stages.{k}.{j}.fc1.weight"] = state[f"{src}.fc1.weight"]
            out[f"stages.{k}.{j}.fc2.weight"] = state[f"{src}.fc2.weight"]
    out["head.weight"], out["head.bias"] = state["decoder.head.linear.weight"], state["decoder.head.linear.bias"]
    return out


def same_weights_outputs(hinerv, checkout: Path) -> dict:
    """Whole frames and training patches of the official model and of nervkit's with the same weights."""
    from nervkit.data.patches import patch_origins
    from nervkit.models import VideoGeometry, create_model

    frames, height, width = 8, 80, 160
    torch.manual_seed(0)
    ref = official_model(hinerv, checkout, "bunny-hinerv-xxs_1280x720", (frames, height, width))
    with torch.no_grad():
        for p in ref.parameters():  # away from the initialisation, so that every part shows
            p.add_(torch.randn_like(p) * 0.3)
    ours = create_model("hinerv", VideoGeometry(frames, height, width), preset="bunny-XXS")
    ours.load_state_dict(to_nervkit(ref.state_dict(), ours))
    shape = (40, 40)
    idx_max = (frames, height // shape[0], width // shape[1])
    t = torch.tensor([0, 5])
    with torch.no_grad():
        ref.eval()
        theirs = ref({"idx": torch.stack([t, 0 * t, 0 * t], 1), "idx_max": (frames, 1, 1),
                      "video_size": (frames, height, width), "patch_size": (1, height, width)})[:, :, 0]
        mine = ours.decode(t)
        ref.train()
        origins = patch_origins((height, width), shape)
        pidx = torch.tensor([[5, y // shape[0], x // shape[1]] for y, x in origins.tolist()])
        their_patches = ref({"idx": pidx, "idx_max": idx_max, "video_size": (frames, height, width),
                             "patch_size": (1, *shape)})[:, :, 0]
        my_patches = ours.render_patches(torch.full((len(origins),), 5.0), origins[:, 0], origins[:, 1], shape)
    return {"geometry": f"{frames}x{height}x{width}", "frames_max_abs": float((theirs - mine).abs().max()),
            "patches": len(origins), "patches_max_abs": float((their_patches - my_patches).abs().max()),
            "output_std": float(mine.std())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="a checkout of github.com/hmkx/HiNeRV")
    parser.add_argument("--name", default="hinerv_parity")
    args = parser.parse_args(argv)
    from nervkit.models import VideoGeometry
    from nervkit.models.registry import count_parameter_kinds, get_method

    hinerv = _import_official(args.official)
    rows = []
    for name, (preset, (frames, height, width)) in CONFIGS.items():
        with torch.device("meta"):
            ref = official_model(hinerv, args.official, name, (frames, height, width))
        official_total = sum(v.numel() for v in ref.state_dict().values())
        official_reported = ref.get_num_parameters()["Upsampling Encoding"]  # the counter's bug: 0
        spec = get_method("hinerv")
        geometry = VideoGeometry(frames, height, width)
        config = spec.build_config(geometry, preset=preset)
        counts = count_parameter_kinds(spec, config, geometry)
        rows.append({"official_config": name, "preset": preset, "geometry": [frames, height, width],
                     "official_params": official_total, "official_reported": official_reported,
                     "nervkit_params": counts.total, "nervkit_encodings": counts.parts["encodings"],
                     "equal": official_total == counts.total})
        print(f"{name:32s} {preset:10s} official {official_total:>11,}  (its counter's encodings: {official_reported:,})  "
              f"nervkit {counts.total:>11,}  {'equal' if official_total == counts.total else 'DIFFERENT'}")
    outputs = same_weights_outputs(hinerv, args.official)
    # output size of one official training patch vs nervkit's patch (bunny-XXS, 80x80 patches at 720p)
    torch.manual_seed(0)
    ref = official_model(hinerv, args.official, "bunny-hinerv-xxs_1280x720", (132, 720, 1280)).train()
    with torch.no_grad():
        out = ref({"idx": torch.tensor([[3, 4, 7]]), "idx_max": (132, 9, 16), "video_size": (132, 720, 1280),
                   "patch_size": (1, 80, 80)})
    from nervkit.models import create_model

    ours = create_model("hinerv", VideoGeometry(132, 720, 1280), preset="bunny-XXS")
    patch = ours.patch_shape()
    result = {"configs": rows, "same_weights": outputs, "patch": {"official_output": list(out.shape), "nervkit_patch": list(patch),
                                         "nervkit_output_size": list(ours.output_size)}}
    out_dir = ROOT / "results"
    (out_dir / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| official config | nervkit preset | frames×H×W | official params (state dict) | official counter's encodings | "
             "nervkit params | of which encodings | equal |", "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        f, h, w = r["geometry"]
        lines.append(f"| {r['official_config']} | {r['preset']} | {f}×{h}×{w} | {r['official_params']:,} | "
                     f"{r['official_reported']:,} | {r['nervkit_params']:,} | {r['nervkit_encodings']:,} | "
                     f"{'yes' if r['equal'] else 'NO'} |")
    lines.append(f"\nOne official training patch (bunny-XXS, patch 1×80×80): output {list(out.shape)}; nervkit's "
                 f"default patch at 720×1280: {patch[0]}×{patch[1]}, output frame {ours.output_size[0]}×"
                 f"{ours.output_size[1]}.")
    lines.append(f"\nThe same weights in both (the official bunny-XXS configuration on {outputs['geometry']}, every "
                 f"weight perturbed): largest difference of the whole frames {outputs['frames_max_abs']:.1e}, of "
                 f"{outputs['patches']} training patches {outputs['patches_max_abs']:.1e} (values in [0, 1]; "
                 f"output std {outputs['output_std']:.3f}).")
    (out_dir / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
