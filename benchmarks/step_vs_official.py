"""Benchmark (issue #13): nervkit's bare training step side by side with an official implementation.

Both models are built at the identical configuration — nervkit's config resolved for ``--params`` at
``--size`` and translated into the official code's arguments — checked to have the same number of
trainable parameters, and stepped on the same batch of random frames (the method's recipe batch size):
forward, the method's loss, backward, Adam. The steps run in interleaved paired rounds (one nervkit
step and one official step per round, the order alternating from round to round), so that the load of
a shared machine falls on both sides alike; the report gives the median step of each side, the ratio
nervkit / official of every pair and its median, in wall seconds and in process CPU seconds, the FLOPs
of one step (forward + loss + backward, counted) and the fp32 matmul throughput measured before and
after the rounds.

    python benchmarks/step_vs_official.py --method hnerv --official /tmp/HNeRV    # haochen-rye/HNeRV
    python benchmarks/step_vs_official.py --method nerv --official /tmp/NeRV      # haochen-rye/NeRV
    python benchmarks/step_vs_official.py --method enerv --official /tmp/E-NeRV   # kyleleey/E-NeRV

``--official`` is a checkout of the official repository; its model and loss code are imported from
there at run time (nothing of it is part of nervkit). Packages that the official modules import only
for data loading or configuration files and that are not installed here (timm, decord, pytorchvideo,
torchvision, einops, yaml, tkinter) are replaced by small stand-ins: the model code uses two of
them — timm's truncated-normal initialiser (→ ``torch.nn.init.trunc_normal_``) and einops'
``rearrange`` (→ a reshape/permute/reshape written here). E-NeRV is compared with the official code's
temporal-norm activation (``norm_activation=True``), the architecture the official code builds.

Writes ``--out`` (JSON, schema ``nervkit-step-vs-official/1``; one entry per method, earlier entries of
other methods kept) and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_peak_gflops, step_flops, summary, timed_call, write_json

from nervkit.models import FrameBatch, Representation, VideoGeometry, create_model, get_method
from nervkit.models.config import config_to_dict
from nervkit.models.sizing import parse_param_count
from nervkit.train import ReconstructionLoss, TrainConfig

ROOT = Path(__file__).resolve().parent
SCHEMA = "nervkit-step-vs-official/1"
REPOS = {"hnerv": "haochen-rye/HNeRV", "nerv": "haochen-rye/NeRV", "enerv": "kyleleey/E-NeRV"}


# -- stand-ins for packages the official modules import but do not need for their models -------------
def _unavailable(what: str) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{what} is a stand-in in step_vs_official.py (not installed here)")

    return fail


def _axis_groups(side: str) -> list[list[str]]:
    groups: list[list[str]] = []
    current: list[str] | None = None
    for token in side.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            current = []
        elif token == ")":
            groups.append(current or [])
            current = None
        elif current is not None:
            current.append(token)
        else:
            groups.append([token])
    return groups


def rearrange(tensor: torch.Tensor, pattern: str, **sizes: int) -> torch.Tensor:
    """einops.rearrange for pure axis rearrangements (named axes and parenthesised groups; no ellipsis,
    no literals): reshape to the elementary axes, permute, reshape to the output groups."""
    left, right = (_axis_groups(side) for side in pattern.split("->"))
    if len(left) != tensor.dim():
        raise ValueError(f"pattern {pattern!r} does not match a {tensor.dim()}-d tensor")
    known = dict(sizes)
    for group, dim in zip(left, tensor.shape):
        unknown = [a for a in group if a not in known]
        if len(unknown) > 1:
            raise ValueError(f"cannot infer the sizes of {unknown} in {pattern!r}")
        if unknown:
            known[unknown[0]] = dim // math.prod(known[a] for a in group if a in known)
    order = [a for g in left for a in g]
    x = tensor.reshape([known[a] for a in order])
    x = x.permute([order.index(a) for g in right for a in g])
    return x.reshape([math.prod(known[a] for a in g) for g in right])


def _no_drop_path(*_args: Any, **_kwargs: Any) -> nn.Module:
    raise RuntimeError("drop path is not used by the benchmarked configurations (rate 0)")


STAND_INS: dict[str, dict[str, Any]] = {
    "timm": {},
    "timm.models": {},
    "timm.models.layers": {"trunc_normal_": nn.init.trunc_normal_, "DropPath": _no_drop_path},
    "decord": {"VideoReader": _unavailable("decord.VideoReader")},
    "decord.bridge": {"set_bridge": lambda *_a, **_k: None},
    "pytorchvideo": {},
    "pytorchvideo.data": {},
    "pytorchvideo.data.encoded_video": {"EncodedVideo": _unavailable("pytorchvideo EncodedVideo")},
    "torchvision": {},
    "torchvision.transforms": {},
    "torchvision.transforms.functional": {
        "center_crop": _unavailable("torchvision center_crop"),
        "resize": _unavailable("torchvision resize"),
    },
    "torchvision.io": {"read_image": _unavailable("torchvision read_image")},
    "einops": {"rearrange": rearrange},
    "yaml": {
        "safe_load": _unavailable("yaml.safe_load"),
        "load": _unavailable("yaml.load"),
        "dump": _unavailable("yaml.dump"),
    },
    "tkinter": {},
    "tkinter.messagebox": {"NO": "no"},
}


def install_stand_ins() -> list[str]:
    """Register a stand-in for every package of :data:`STAND_INS` that is not installed; returns their
    names."""
    missing = [
        top
        for top in dict.fromkeys(n.split(".")[0] for n in STAND_INS)
        if top not in sys.modules and importlib.util.find_spec(top) is None
    ]
    for name, attrs in STAND_INS.items():
        if name.split(".")[0] not in missing:
            continue
        module = sys.modules.setdefault(name, types.ModuleType(name))
        for key, value in attrs.items():
            setattr(module, key, value)
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)
    return missing


# -- the official models at nervkit's configuration -----------------------------------------------------
#: the official model and a closure running its forward pass and loss on the benchmark batch
OfficialStep = tuple[nn.Module, Callable[[], torch.Tensor]]


def _integral(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def official_hnerv(model: Representation, batch: FrameBatch, loss: str) -> OfficialStep:
    """haochen-rye/HNeRV ``model_all.HNeRV`` (ConvNeXt encoder, pixel-shuffle decoder) and its L2 loss
    (``hnerv_utils.loss_fn``), as in ``train_nerv_all.py``."""
    model_all = importlib.import_module("model_all")
    hnerv_utils = importlib.import_module("hnerv_utils")
    c = model.config
    args = argparse.Namespace(
        embed="",
        ks=f"0_{c.kernel_min}_{c.kernel_max}",
        enc_strds=list(c.strides),
        dec_strds=list(c.strides),
        enc_dim=f"{c.encoder_width}_{c.embed_channels}",
        fc_dim=c.channels,
        fc_hw="1_1",
        reduce=c.reduction,
        lower_width=c.lower_width,
        num_blks="1_1",
        conv_type=["convnext", "pshuffel"],
        norm=c.norm,
        act=c.activation,
        out_bias=c.output,
    )
    official = model_all.HNeRV(args)
    frames = batch.target

    def forward_loss() -> torch.Tensor:
        img_out, _, _ = official(frames)
        return hnerv_utils.loss_fn(img_out, frames, loss)

    return official, forward_loss


def official_nerv(model: Representation, batch: FrameBatch, loss: str) -> OfficialStep:
    """haochen-rye/NeRV ``model_nerv.Generator`` with ``utils.PositionalEncoding`` and
    ``utils.loss_fn`` (Fusion6 = 0.7·L1 + 0.3·(1−SSIM), the README recipe)."""
    model_nerv = importlib.import_module("model_nerv")
    utils = importlib.import_module("utils")
    c = model.config
    if c.pe_order != "interleaved" or c.output not in ("tanh", "sigmoid"):
        raise SystemExit("the official NeRV code has the interleaved encoding and a tanh/sigmoid output")
    encoding = utils.PositionalEncoding(f"{c.pe_base}_{c.pe_levels}")
    official = model_nerv.Generator(
        embed_length=encoding.embed_length,
        stem_dim_num=f"{c.mlp_hidden}_{c.mlp_layers}",
        fc_hw_dim=f"{c.grid_height}_{c.grid_width}_{c.grid_channels}",
        expansion=c.expansion,
        num_blocks=c.blocks_per_stage,
        norm=c.norm,
        act=c.activation,
        bias=True,
        reduction=_integral(c.reduction),
        conv_type="conv",
        stride_list=list(c.strides),
        sin_res=True,
        lower_width=c.lower_width,
        sigmoid=c.output == "sigmoid",
    )
    t, frames = model.frame_time(batch.indices), batch.target
    loss_args = argparse.Namespace(loss_type=loss)

    def forward_loss() -> torch.Tensor:
        return utils.loss_fn(official(encoding(t))[-1], frames, loss_args)

    return official, forward_loss


def official_enerv(model: Representation, batch: FrameBatch, loss: str) -> OfficialStep:
    """kyleleey/E-NeRV ``model.E_NeRV.E_NeRV_Generator`` and ``utils.misc.loss_compute`` (Fusion6), as in
    ``engine.train_one_epoch``."""
    e_nerv = importlib.import_module("model.E_NeRV")
    misc = importlib.import_module("utils.misc")
    c = model.config
    expected = {
        "stem": "disentangled",
        "fusion": "transformer",
        "spatial_attention": True,
        "temporal_norm": True,
        "first_block": "upgraded",
        "heads": 8,
        "head_dim": 64,
        "norm_dim": 128,
        "norm_activation": True,
    }
    wrong = {k: getattr(c, k) for k, v in expected.items() if getattr(c, k) != v}
    if wrong:
        raise SystemExit(f"the official E-NeRV code hard-codes {expected}; this config has {wrong}")
    cfg = {
        "pos_b": c.pe_base,
        "pos_l": c.pe_levels,
        "xypos_b": c.xy_pe_base,
        "xypos_l": c.xy_pe_levels,
        "pos_b_tm": c.in_pe_base,
        "pos_l_tm": c.in_pe_levels,
        "stem_dim_num": str(c.temporal_hidden),
        "fc_hw_dim": f"{c.grid_height}_{c.grid_width}_{c.grid_channels}",
        "act": c.activation,
        "stride_list": list(c.strides),
        "expansion": c.expansion,
        "reduction": _integral(c.reduction),
        "lower_width": c.lower_width,
        "num_blocks": 1,
        "bias": True,
        "norm": "none",
        "conv_type": "conv",
        "sin_res": True,
        "sigmoid": c.output == "sigmoid",
        "block_dim": c.embed_dim,
        "mlp_dim": c.ffn_dim,
        "additional_loss": False,
    }
    official = e_nerv.E_NeRV_Generator(cfg)
    data = {"img_id": model.frame_time(batch.indices)}
    frames = batch.target

    def forward_loss() -> torch.Tensor:
        out = official(data)
        return sum(misc.loss_compute(out, [frames] * len(out), loss))

    return official, forward_loss


OFFICIAL = {"hnerv": official_hnerv, "nerv": official_nerv, "enerv": official_enerv}
OFFICIAL_LOSSES = {"1*l2": "L2", "0.7*l1+0.3*ssim": "Fusion6"}


def recipe(method: str) -> dict[str, Any]:
    """The method's training recipe (TrainConfig defaults overridden by the method's own)."""
    base = TrainConfig()
    return {
        k: get_method(method).train_defaults.get(k, getattr(base, k))
        for k in ("loss", "lr", "beta1", "beta2", "batch_size")
    }


def official_loss_name(loss: ReconstructionLoss) -> str:
    """The official codes' name of the loss (their ``--loss``)."""
    if str(loss) not in OFFICIAL_LOSSES:
        raise SystemExit(f"no official equivalent of the loss {loss}")
    return OFFICIAL_LOSSES[str(loss)]


# -- timing -----------------------------------------------------------------------------------------------
def train_step(
    params: list[nn.Parameter],
    forward_loss: Callable[[], torch.Tensor],
    lr: float,
    betas: tuple[float, float],
) -> Callable[[], None]:
    optimizer = torch.optim.Adam(params, lr=lr, betas=betas)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_loss().backward()
        optimizer.step()

    return step


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def profile_step(step: Callable[[], None], rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def repo_ref(path: Path) -> str | None:
    """The commit of ``path`` when it is a git checkout of its own."""
    if not (path / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    official_path = Path(args.official).resolve()
    if not official_path.is_dir():
        raise SystemExit(f"--official {official_path}: not a directory (a checkout of {REPOS[args.method]})")
    stand_ins = install_stand_ins()
    sys.path.insert(0, str(official_path))

    height, width = (int(v) for v in args.size.lower().split("x"))
    geometry = VideoGeometry(args.frames, height, width)
    rec = recipe(args.method)
    batch_size = args.batch or int(rec["batch_size"])
    overrides = {"norm_activation": True} if args.method == "enerv" else {}
    torch.manual_seed(args.seed)
    model = create_model(args.method, geometry, params=parse_param_count(args.params), **overrides)
    gen = torch.Generator().manual_seed(args.seed)
    indices = torch.arange(batch_size) * max(args.frames // batch_size, 1)
    batch = FrameBatch(indices, torch.rand(batch_size, 3, height, width, generator=gen))
    loss_fn = ReconstructionLoss.parse(rec["loss"])
    torch.manual_seed(args.seed)
    official, official_forward_loss = OFFICIAL[args.method](model, batch, official_loss_name(loss_fn))

    def nervkit_forward_loss() -> torch.Tensor:
        return loss_fn(model.crop(model(batch)), batch.target)

    counts = {"nervkit": trainable(model), "official": trainable(official)}
    print(
        f"{args.method} {args.params} at {args.size}, batch {batch_size}: trainable parameters "
        f"nervkit {counts['nervkit']:,}, official {counts['official']:,}; "
        f"official accounting (nervkit) {model.parameter_counts().official:,}"
    )
    if counts["nervkit"] != counts["official"]:
        raise SystemExit("the two models differ in size: not the same configuration")
    flops = {"nervkit": step_flops(nervkit_forward_loss), "official": step_flops(official_forward_loss)}
    print(
        f"FLOPs per step (forward + loss + backward): nervkit {flops['nervkit'] / 1e9:.2f} G, "
        f"official {flops['official'] / 1e9:.2f} G"
    )

    betas = (float(rec["beta1"]), float(rec["beta2"]))
    steps = {
        "nervkit": train_step(list(model.parameters()), nervkit_forward_loss, rec["lr"], betas),
        "official": train_step(
            [p for p in official.parameters() if p.requires_grad], official_forward_loss, rec["lr"], betas
        ),
    }
    if args.profile:
        for side, step in steps.items():
            step()
            print(f"--- {side}: one step, top {args.profile} operators by self CPU time")
            print(profile_step(step, args.profile))

    peak_before = matmul_peak_gflops()
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    wall: dict[str, list[float]] = {"nervkit": [], "official": []}
    cpu: dict[str, list[float]] = {"nervkit": [], "official": []}
    for r in range(args.rounds):
        order = ("nervkit", "official") if r % 2 == 0 else ("official", "nervkit")
        for side in order:
            w, c = timed_call(steps[side])
            wall[side].append(w)
            cpu[side].append(c)
        print(
            f"round {r + 1:2d}/{args.rounds}: nervkit {wall['nervkit'][-1]:.3f} s, official "
            f"{wall['official'][-1]:.3f} s, ratio {wall['nervkit'][-1] / wall['official'][-1]:.2f} "
            f"(CPU s {cpu['nervkit'][-1]:.3f} / {cpu['official'][-1]:.3f})",
            flush=True,
        )
    peak_after = matmul_peak_gflops()

    def side_by_side(times: dict[str, list[float]]) -> dict[str, Any]:
        ratios = [a / b for a, b in zip(times["nervkit"], times["official"])]
        return {
            "nervkit": summary(times["nervkit"]),
            "official": summary(times["official"]),
            "ratio_per_pair": ratios,
            "ratio_median": statistics.median(ratios),
            "ratio_of_medians": statistics.median(times["nervkit"]) / statistics.median(times["official"]),
            "ratio_of_minima": min(times["nervkit"]) / min(times["official"]),
            "raw": times,
        }

    result = {
        "method": args.method,
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": "python benchmarks/step_vs_official.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "official": {
            "repository": REPOS[args.method],
            "path": str(official_path),
            "ref": args.official_ref or repo_ref(official_path),
            "stand_ins": stand_ins,
        },
        "config": {
            "params": args.params,
            "size": args.size,
            "frames": args.frames,
            "batch_size": batch_size,
            "loss": str(loss_fn),
            "official_loss": official_loss_name(loss_fn),
            "lr": rec["lr"],
            "betas": betas,
            "nervkit_config": config_to_dict(model.config),
            "rounds": args.rounds,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "trainable_parameters": counts,
        "official_accounting": model.parameter_counts().official,
        "flops_per_step": flops,
        "matmul_gflops": {"before": peak_before, "after": peak_after},
        "wall_s": side_by_side(wall),
        "cpu_s": side_by_side(cpu),
    }
    w, c = result["wall_s"], result["cpu_s"]
    print(
        f"median step: nervkit {w['nervkit']['median']:.3f} s, official {w['official']['median']:.3f} s; "
        f"median ratio {w['ratio_median']:.2f} (CPU seconds: {c['nervkit']['median']:.3f} / "
        f"{c['official']['median']:.3f}, ratio {c['ratio_median']:.2f}); fp32 matmul {peak_before:.1f} / "
        f"{peak_after:.1f} GFLOP/s"
    )
    return result


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# nervkit vs the official code: bare training step, interleaved paired rounds",
        "",
        (
            "| run | params (trainable) | batch | threads | GFLOP/step | nervkit s (median / min) "
            "| official s (median / min) | ratio, median of pairs (min–max) | ratio of minima "
            "| CPU-s ratio, median of pairs | fp32 matmul GFLOP/s before / after | machine, date |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(data["runs"].items()):
        w, c, m = r["wall_s"], r["cpu_s"], r["machine"]
        lines.append(
            f"| {name} {r['config']['params']} {r['config']['size']} | {r['trainable_parameters']['nervkit']:,} / "
            f"{r['trainable_parameters']['official']:,} | {r['config']['batch_size']} | "
            f"{m.get('torch_threads')} | "
            f"{r['flops_per_step']['nervkit'] / 1e9:.2f} / {r['flops_per_step']['official'] / 1e9:.2f} | "
            f"{w['nervkit']['median']:.3f} / {w['nervkit']['min']:.3f} | "
            f"{w['official']['median']:.3f} / {w['official']['min']:.3f} | **{w['ratio_median']:.2f}** "
            f"({min(w['ratio_per_pair']):.2f}–{max(w['ratio_per_pair']):.2f}) | {w['nervkit']['min'] / w['official']['min']:.2f} | "
            f"{c['ratio_median']:.2f} | "
            f"{r['matmul_gflops']['before']:.1f} / {r['matmul_gflops']['after']:.1f} | "
            f"{m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, {r['date']} |"
        )
    lines += ["", "Commands:", ""] + [f"    {r['command']}" for _, r in sorted(data["runs"].items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", choices=sorted(OFFICIAL), required=True)
    ap.add_argument(
        "--official", required=True, help=f"checkout of the official repository ({', '.join(REPOS.values())})"
    )
    ap.add_argument("--official-ref", default=None, help="commit of that checkout, recorded in the JSON")
    ap.add_argument("--params", default="1.5M")
    ap.add_argument(
        "--size", default="180x320", help="frame size HxW (Bunny 180x320, the official CPU baseline)"
    )
    ap.add_argument("--frames", type=int, default=132, help="video length (sizes HNeRV's embeddings, sets t)")
    ap.add_argument("--batch", type=int, default=0, help="batch size (0 = the method's recipe)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument(
        "--profile", type=int, default=0, help="print the top N operators of one step of each side"
    )
    ap.add_argument("--name", default="", help="key of this run in the JSON (default: the method)")
    ap.add_argument("--out", default=str(ROOT / "results" / "step_vs_official.json"))
    args = ap.parse_args()
    result = run(args)
    out = Path(args.out)
    data: dict[str, Any] = {"schema": SCHEMA, "runs": {}}
    if out.is_file():
        old = json.loads(out.read_text())
        if old.get("schema") == SCHEMA:
            data["runs"].update(old.get("runs", {}))
    data["runs"][args.name or args.method] = result
    write_json(out, data)
    out.with_suffix(".md").write_text(markdown(data))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
