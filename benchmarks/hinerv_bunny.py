"""Benchmark (issue #16): HiNeRV vs NeRV, E-NeRV and NVP on Bunny 180×320 (frames 0:32 by default) at one
parameter budget and equal training time — PSNR curves against epochs and training seconds, seconds per
epoch, FLOPs of a training step and the fraction of the fp32 matmul peak (one thread, measured in the same
run), and the cost of HiNeRV's patch training (receptive-field padding) against whole frames.

Seconds per epoch come from bare training steps (forward + loss + backward + update of a fresh model with
its own recipe, on the trainer's batches of the real frames; this process, one thread, the methods
interleaved so that they share whatever else loads the machine; median of ``--step-repeats``), with their
FLOPs (``torch.utils.flop_counter``: convolutions and matrix products of forward + backward) and the
fraction of the one-thread matmul peak measured before and after. Equal time: every method is fitted with
its own recipe for epochs = ``--minutes`` / its bare seconds per epoch, so the warm-up + cosine schedule ends
at the budget; its PSNR curve is drawn against epoch × bare s/epoch. Every fit is ``nervkit fit --threads 1``
(OMP_NUM_THREADS=1) in its own process, two at a time (``--pairs`` run side by side on the 2 cores); the
trainer's own seconds per epoch and the CPU seconds of each process are recorded beside (on a machine shared
with other work the trainer's wall seconds stretch with its load, the bare steps' ratios do not).

Runs are nervkit run folders under ``--run-root`` (``<method>``); finished ones are reused and interrupted ones
resumed when the script is run again (the CPU seconds of finished fits are kept in ``cpu_seconds.json``).

    python benchmarks/hinerv_bunny.py                         # 0.4M, 3 min per method (~15 min on 2 quiet cores)
    python benchmarks/hinerv_bunny.py --minutes 0.3 --frames 0:4 --size 90x160 --params 0.1M \\
        --run-root /tmp/hb --out /tmp/hb.json                 # smoke test

Writes ``--out`` (JSON, schema ``nervkit-hinerv-bench/1``), ``<out>.md`` (tables) and ``<out>.png``
(PSNR vs training seconds and vs epoch, seconds per epoch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_peak_gflops, save_figure, summary, write_json  # noqa: E402

import nervkit  # noqa: E402
from nervkit.data import load_frames  # noqa: E402
from nervkit.data.batches import SamplingOptions  # noqa: E402
from nervkit.data.samplers import make_sampler  # noqa: E402
from nervkit.io import FrameRange  # noqa: E402
from nervkit.models import VideoGeometry, create_model, get_method  # noqa: E402
from nervkit.models.sizing import parse_param_count  # noqa: E402
from nervkit.train import ReconstructionLoss, TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent
LABELS = {"hinerv": "HiNeRV", "nerv": "NeRV", "enerv": "E-NeRV", "nvp": "NVP", "hnerv": "HNeRV",
          "hinerv-whole": "HiNeRV, whole frames"}
#: a --patch-size at least the output frame's sides: HiNeRV trains on whole frames (no patch padding)
WHOLE = 100_000
#: runs that are a method with other training options: run name -> (method, nervkit fit options, Step keywords)
VARIANTS = {"hinerv-whole": ("hinerv", ["--patch-size", str(WHOLE)], {"patch_size": WHOLE})}


def method_of(name: str) -> tuple[str, list[str], dict[str, Any]]:
    return VARIANTS.get(name, (name, [], {}))


# -- fits in subprocesses, two at a time ----------------------------------------------------------------
def fit_command(run_dir: Path, args: argparse.Namespace, method: str, epochs: int, eval_every: int,
                extra: list[str]) -> list[str]:
    """The ``nervkit fit`` command line of a run (``--resume`` when an interrupted one is there)."""
    base = [sys.executable, "-m", "nervkit", "fit", "-o", str(run_dir), "--threads", "1", "--quiet", "--no-video"]
    if (run_dir / "run.json").is_file():
        return base + ["--resume"]
    method, options, _ = method_of(method)
    return base + ["--sample", "--model", method, *options, "--params", args.params, "--size", args.size,
                   "--frames", args.frames, "--epochs", str(epochs), "--eval-every", str(eval_every),
                   "--seed", str(args.seed), "--checkpoint-every", "1000", "--checkpoint-seconds", "120", *extra]


def run_side_by_side(jobs: list[tuple[Path, list[str]]]) -> dict[str, float]:
    """Run the fits of ``jobs`` at the same time (one thread each), unfinished ones only; the CPU seconds (user +
    system) of each process that ran, by run name."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = []
    for run_dir, cmd in jobs:
        if (run_dir / "metrics.json").is_file():
            continue
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(run_dir.parent / f"{run_dir.name}.log", "a")  # noqa: SIM115 - closed below
        print(f"  fitting {run_dir.name}: {' '.join(cmd[2:])}", flush=True)
        procs.append((run_dir, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    cpu = {}
    for run_dir, proc, log in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        log.close()
        cpu[run_dir.name] = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"nervkit fit failed for {run_dir}; see {run_dir.parent / run_dir.name}.log")
    return cpu


def history(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "history.json").read_text())


def epoch_seconds(run_dir: Path) -> list[float]:
    """Training seconds of every epoch after the first (the first holds one-time costs), or the first alone."""
    seconds = [e["seconds"] for e in history(run_dir)["epochs"]]
    return seconds[1:] or seconds


def paired_matmul_gflops() -> list[float]:
    """The one-thread fp32 matmul rate of each of two processes run at the same time, as the fits run."""
    code = (f"import sys, torch; torch.set_num_threads(1); sys.path.insert(0, {str(ROOT)!r}); "
            "from common import matmul_peak_gflops; print(matmul_peak_gflops())")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    return [float(p.communicate()[0].split()[-1]) for p in procs]


# -- bare training steps and their FLOPs ------------------------------------------------------------------
class Step:
    """One training step of a fresh model of ``method`` with its own recipe, on batches of the real frames
    drawn by the trainer's sampler (``patch_size``: HiNeRV's --patch-size)."""

    def __init__(self, method: str, store: Any, params: int, *, patch_size: int = 0,
                 model_options: dict[str, Any] | None = None, seed: int = 1) -> None:
        geometry = VideoGeometry(len(store), store.height, store.width)
        self.model = create_model(method, geometry, params=params, **(model_options or {}))
        recipe = {**{f: getattr(TrainConfig(), f) for f in ("loss", "lr", "batch_size", "grad_clip", "optimizer",
                                                           "pixels_per_batch")},
                  **get_method(method).train_defaults}
        self.loss = ReconstructionLoss.parse("l2" if self.model.batch_kind == "pixels" else recipe["loss"])
        opt = torch.optim.AdamW if recipe["optimizer"] == "adamw" else torch.optim.Adam
        self.optimizer = opt(self.model.parameters(), lr=1e-5)
        self.grad_clip = float(recipe["grad_clip"] or 0.0)
        options = SamplingOptions(seed=seed, batch_size=int(recipe["batch_size"]),
                                  pixels_per_batch=int(recipe["pixels_per_batch"]), patch_size=patch_size)
        self.sampler = make_sampler(self.model, store, list(range(len(store))), options)
        keys = self.sampler.plan(0)
        self.steps_per_epoch = len(keys)
        self.batches = [self.sampler.load(k) for k in keys[:2]]
        self.frames_per_step = len(store) / self.steps_per_epoch
        self.patch = getattr(self.sampler, "shape", None)
        self.calls = 0

    def loss_of(self, batch: Any) -> torch.Tensor:
        return self.loss(batch.crop(self.model(batch)), batch.target, batch.weight)

    def flops(self) -> int:
        with FlopCounterMode(display=False) as counter:
            self.loss_of(self.batches[0]).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    def __call__(self) -> float:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_of(batch).backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return time.perf_counter() - start


def bare_steps(steps: dict[str, Step], repeats: int) -> dict[str, dict[str, Any]]:
    """Median step time of every entry of ``steps``, interleaved (one step of each in turn, after a warm-up
    step), with the FLOPs of a step, per frame and per epoch."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    out = {}
    for name, step in steps.items():
        flops = step.flops()
        s = statistics.median(times[name])
        out[name] = {"step_seconds": summary(times[name]), "gflop_per_step": flops / 1e9,
                     "gflop_per_frame": flops / step.frames_per_step / 1e9,
                     "gflop_per_epoch": flops * step.steps_per_epoch / 1e9, "steps_per_epoch": step.steps_per_epoch,
                     "gflops": flops / s / 1e9, "bare_epoch_seconds": s * step.steps_per_epoch,
                     "patch": list(step.patch) if step.patch else None,
                     "parameters": step.model.parameter_counts().official}
    return out


# -- the benchmark ------------------------------------------------------------------------------------------
def patch_sizes(store: Any, params: int, model_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """HiNeRV's output size, default patch and which square --patch-size values are valid (its own message)."""
    geometry = VideoGeometry(len(store), store.height, store.width)
    model = create_model("hinerv", geometry, params=params, **(model_options or {}))
    out: dict[str, Any] = {"output_size": list(model.output_size), "default_patch": list(model.patch_shape(0)),
                           "config": {k: getattr(model.config, k) for k in ("scales", "base_height", "base_width",
                                                                             "channels")}}
    # per stage: the region one default patch computes (its input, before the stage's valid 3x3 convolutions)
    # and all patches of a frame together against the whole frame at that resolution
    scales, plan = model.config.scales, model.plan
    cell, (ph, pw) = math.prod(scales), model.patch_shape(0)
    per_frame = (model.output_size[0] // ph) * (model.output_size[1] // pw)
    out["patches_per_frame"] = per_frame
    out["stages"] = []
    for k in range(1, len(scales) + 1):
        rh, rw = model.resolution(k)
        div = cell // math.prod(scales[:k])
        side = (ph // div + 2 * plan.inputs[k], pw // div + 2 * plan.inputs[k])
        out["stages"].append({"stage": k, "resolution": [rh, rw], "patch_region": list(side),
                              "area_over_whole_frame": per_frame * side[0] * side[1] / (rh * rw)})
    out["whole_frame_patch"] = list(model.patch_shape(WHOLE))
    try:
        model.patch_shape(cell + 1)
    except Exception as error:  # noqa: BLE001 - the message names the valid sizes
        out["valid_message"] = str(error)
    return out


def record(run_dir: Path, peak: float, paired_peak: float, step: dict[str, Any]) -> dict[str, Any]:
    """A fit's numbers; the fit's GFLOP/s against the matmul rate of two processes side by side (as the fits
    ran), the bare step's against one process alone (as the bare steps ran)."""
    fitted = nervkit.load(run_dir)
    h = history(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    per_epoch = epoch_seconds(run_dir)
    s_epoch = statistics.median(per_epoch)
    gflops_fit = step["gflop_per_epoch"] / s_epoch
    return {
        "method": fitted.meta["method"],
        "config": fitted.meta["config"],
        "train": fitted.meta["train"],
        "parameters": fitted.model.parameter_counts().official,
        "epochs": fitted.meta["train"]["epochs"],
        "train_seconds": h["train_seconds"],
        "seconds_per_epoch": summary(per_epoch),
        # budget_seconds: the epoch × the bare seconds per epoch (the time axis of equal-time)
        "evals": [{"epoch": e["epoch"], "budget_seconds": e["epoch"] * step["bare_epoch_seconds"],
                   "train_seconds": e.get("train_seconds"), "psnr": e["psnr"], "ms_ssim": e["ms_ssim"]}
                  for e in h["evals"]],
        "final": {k: metrics.get(k) for k in ("psnr", "ssim", "ms_ssim")},
        "step": step,
        "trainer_over_bare": s_epoch / step["bare_epoch_seconds"],
        # what the fit achieved: the step's FLOPs × steps per epoch / the trainer's median seconds per epoch
        "fit_gflops": gflops_fit,
        "fit_fraction_of_peak": gflops_fit / paired_peak,
        "bare_fraction_of_peak": step["gflops"] / peak,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0,
                    help="training time of every method, at the speed of its bare training step")
    ap.add_argument("--params", default="0.4M", help="the one parameter budget of every method")
    ap.add_argument("--methods", default="hinerv,nerv,enerv,nvp,hinerv-whole",
                    help="methods (hinerv-whole: HiNeRV with --patch-size past the frame, i.e. whole frames)")
    ap.add_argument("--pairs", default="hinerv+nvp,nerv+enerv", help="fits run side by side, two at a time")
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", default="0:32")
    ap.add_argument("--evals", type=int, default=8, help="evaluations along every fit")
    ap.add_argument("--step-repeats", type=int, default=7, help="interleaved bare steps per model")
    ap.add_argument("--patch-scales", default="5,3,2,2",
                    help="HiNeRV --scales of the patch-size comparison: a first grid whose sides have a common "
                         "divisor, so that larger square patches tile the output (the default scales at 180x320 "
                         "take only 36x36); '' = skip")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-root", default=str(ROOT / "out" / "hinerv_bunny"))
    ap.add_argument("--out", default=str(ROOT / "results" / "hinerv_bunny.json"))
    ap.add_argument("--rd", default=str(ROOT / "results" / "rd_training_hinerv.json"),
                    help="HiNeRV's RD results (benchmarks/rd_training.py --methods hinerv --name rd_training_hinerv)")
    ap.add_argument("--rd-others", default=str(ROOT / "results" / "rd_training.json"),
                    help="the other methods' RD results (benchmarks/rd_training.py)")
    ap.add_argument("--rd-report", action="store_true", help="only (re)make the RD part from --rd and --rd-others "
                                                             "into --out, its .md and results/hinerv_rd.png")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rd_png = out.parent / "hinerv_rd.png"
    if args.rd_report:
        result = json.loads(out.read_text())
        result["rd"] = rd_report(Path(args.rd), Path(args.rd_others), rd_png)
        write_json(out, result)
        out.with_suffix(".md").write_text(markdown(result))
        plot(result, out.with_suffix(".png"))
        print(rd_markdown(result["rd"]))
        return 0
    torch.set_num_threads(1)
    methods = args.methods.split(",")
    pairs = [p.split("+") for p in args.pairs.split(",")]
    pairs = [[m for m in p if m in methods] for p in pairs] + [[m] for m in methods if not any(m in p for p in pairs)]
    pairs = [p for p in pairs if p]
    root = Path(args.run_root)
    budget = args.minutes * 60
    params = parse_param_count(args.params)
    h, w = (int(v) for v in args.size.split("x"))
    store = load_frames(nervkit.sample_video(), frames=FrameRange.parse(args.frames), size=(h, w))
    started = time.time()

    peaks = [matmul_peak_gflops()]
    paired = paired_matmul_gflops()
    print(f"fp32 matmul, one thread: {peaks[0]:.1f} GFLOP/s alone, {paired} side by side", flush=True)

    # 1. HiNeRV's patch sizes: the default config's, and a first grid that takes larger patches (--patch-scales)
    patches: dict[str, Any] = {"default": patch_sizes(store, params)}
    alt_options = {"scales": tuple(int(v) for v in args.patch_scales.split(","))} if args.patch_scales else None
    if alt_options:
        try:
            patches["alternative"] = info = patch_sizes(store, params, alt_options)
        except Exception as error:  # noqa: BLE001 - e.g. frames too small for these scales
            patches["alternative_error"] = str(error)
            alt_options = None
    if alt_options:
        small = info["default_patch"][0]
        valid = [int(v) for v in info.get("valid_message", "").rsplit("choose one of", 1)[-1].replace(",", " ").split()
                 if v.isdigit()]
        info["compared"] = [small, *[v for v in valid if v > small]][:2]

    # 2. bare steps and FLOPs (this process, one thread, the models interleaved so that they share the load of
    # the machine): the seconds per epoch that set every method's epochs
    steps = {m: Step(method_of(m)[0], store, params, seed=args.seed, **method_of(m)[2]) for m in methods}
    if "hinerv" in methods:
        if "hinerv-whole" not in methods:
            steps["hinerv-whole"] = Step("hinerv", store, params, patch_size=WHOLE, seed=args.seed)
        if alt_options:
            for p in info["compared"]:
                steps[f"hinerv scales {args.patch_scales} patch {p}"] = Step("hinerv", store, params, patch_size=p,
                                                                             model_options=alt_options, seed=args.seed)
            steps[f"hinerv scales {args.patch_scales} whole frames"] = Step("hinerv", store, params, patch_size=WHOLE,
                                                                            model_options=alt_options, seed=args.seed)
    bare = bare_steps(steps, args.step_repeats)
    del steps
    print("bare s/epoch: " + ", ".join(f"{m} {b['bare_epoch_seconds']:.2f}" for m, b in bare.items()), flush=True)

    # 3. the equal-time fits, pair by pair: epochs = budget / the bare seconds per epoch (the trainer's own
    # seconds are recorded too; on a machine shared with other work they stretch with its load)
    epochs = {}
    for m in methods:
        run_json = root / m / "run.json"
        epochs[m] = (json.loads(run_json.read_text())["train"]["epochs"] if run_json.is_file()
                     else max(1, round(budget / bare[m]["bare_epoch_seconds"])))
    cpu: dict[str, float] = {}
    cpu_file = root / "cpu_seconds.json"
    if cpu_file.is_file():
        cpu = json.loads(cpu_file.read_text())
    for pair in pairs:
        cpu.update(run_side_by_side([(root / m, fit_command(root / m, args, m, epochs[m],
                                                            max(1, math.ceil(epochs[m] / args.evals)), []))
                                     for m in pair]))
        write_json(cpu_file, cpu)
    peaks.append(matmul_peak_gflops())
    paired += paired_matmul_gflops()
    peak, paired_peak = statistics.median(peaks), statistics.median(paired)

    result: dict[str, Any] = {
        "schema": "nervkit-hinerv-bench/1",
        "command": "python benchmarks/hinerv_bunny.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "config": {"size": args.size, "frames": args.frames, "params": args.params, "minutes": args.minutes,
                   "seed": args.seed, "threads_per_fit": 1, "pairs": pairs},
        "matmul_gflops_one_thread": peaks,
        # two one-thread processes at the same time (before, before, after, after): the conditions of the fits
        "matmul_gflops_one_thread_paired": paired,
        # CPU seconds (user + system) of every fit process, startup and evaluations included; a fit resumed
        # after an interruption counts its last process only
        "fit_cpu_seconds": cpu,
        "runs": {m: record(root / m, peak, paired_peak, bare[m]) | {"cpu_seconds": cpu.get(m)} for m in methods},
        "bare_steps": bare,
        "patches": patches,
        "wall_seconds": time.time() - started,
    }
    if Path(args.rd).is_file() and Path(args.rd_others).is_file():
        result["rd"] = rd_report(Path(args.rd), Path(args.rd_others), rd_png)
    write_json(out, result)
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
    print(markdown(result))
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return 0


# -- the RD curve beside the other methods' (benchmarks/rd_training.py) -----------------------------------------
COLOURS = {"hinerv": "tab:red", "nerv": "tab:blue", "enerv": "tab:green", "hnerv": "tab:purple", "nvp": "tab:orange"}


def as_curve(points: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {"bpp": [p["bpp"] for p in points], "psnr-rgb": [p["psnr-rgb"] for p in points]}


def overlap(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    """dB of PSNR that two curves share (what a BD-rate averages over; < 0: none)."""
    return min(max(a["psnr-rgb"]), max(b["psnr-rgb"])) - max(min(a["psnr-rgb"]), min(b["psnr-rgb"]))


def rd_report(hinerv_rd: Path, others_rd: Path, png: Path) -> dict[str, Any]:
    """BD-rates of HiNeRV's series (rd_training.py --methods hinerv) against x265 and against the other methods'
    series (rd_training.json, the same frames, size and x265), and one plot of them all."""
    from rd_training import _bd

    mine, others = json.loads(hinerv_rd.read_text()), json.loads(others_rd.read_text())
    hinerv = mine["methods"]["hinerv"]["series"]
    anchors = {"x265 slow": mine["x265"]}
    for row in others["methods"].values():
        for name, entry in row["series"].items():
            if not name.endswith("-qat"):
                anchors[name] = as_curve(entry["points"])
    with warnings.catch_warnings():  # no overlap of the PSNR ranges: None in the table
        warnings.simplefilter("ignore")
        table = {name: {anchor: {"bd_rate": _bd(curve, as_curve(entry["points"])),
                                 "overlap_db": overlap(curve, as_curve(entry["points"]))}
                         for anchor, curve in anchors.items()}
                 for name, entry in hinerv.items()}
    points = {name: [{k: p[k] for k in ("params", "bpp", "psnr-rgb", "ms-ssim-rgb", "training_time",
                                         "compression_time", "decoding_time")} for p in entry["points"]]
              for name, entry in hinerv.items()}
    plot_rd(mine, others, png)
    return {"args": mine["args"], "hinerv_points": points, "bd_rate": table,
            "bd_rate_vs_own_pipeline": {n: e.get("bd_rate_vs_own_pipeline") for n, e in hinerv.items()},
            "sources": [os.path.relpath(hinerv_rd, ROOT.parent), os.path.relpath(others_rd, ROOT.parent)]}


def plot_rd(mine: dict[str, Any], others: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"": ("--", "s"), "-qat": (":", "^"), "-recipe": ("-.", "D"), "-rd": ("-", "o"), "-rdfit": ("-", "*")}
    fig, ax = plt.subplots(figsize=(9, 5.5))
    x265 = mine["x265"]
    ax.plot(x265["bpp"], x265["psnr-rgb"], "k-", marker=".", lw=2, label="x265 slow")
    rows = list(others["methods"].items()) + [("hinerv", mine["methods"]["hinerv"])]
    for method, row in rows:
        for name, entry in row["series"].items():
            variant = name[len(method):]
            if method != "hinerv" and variant == "-qat":
                continue
            ls, marker = styles.get(variant, ("-", "o"))
            curve = as_curve(sorted(entry["points"], key=lambda p: p["bpp"]))
            ax.plot(curve["bpp"], curve["psnr-rgb"], ls=ls, marker=marker, ms=4, color=COLOURS.get(method),
                    lw=2.2 if method == "hinerv" else 1.0, alpha=1.0 if method == "hinerv" else 0.7,
                    label=f"{LABELS.get(method, method)}{variant or ' 8-bit'}")
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (file size)")
    ax.set_ylabel("PSNR (dB, RGB, decoded file)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    a = mine["args"]
    ax.set_title(f"Bunny {a['size']}, frames {a['frames']}: HiNeRV ({a['epochs']} epochs) vs the other methods "
                 f"(60 epochs) and x265", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def rd_markdown(rd: dict[str, Any]) -> str:
    a = rd["args"]
    lines = [f"## RD: Bunny {a['size']}, frames {a['frames']}, HiNeRV fits of {a['epochs']} epochs, fine-tunes of "
             f"{a['rd_epochs']} epochs", "", "| HiNeRV series | points (params: bpp / PSNR) |", "|---|---|"]
    for name, pts in rd["hinerv_points"].items():
        lines.append(f"| {name} | " + ", ".join(f"{p['params'] / 1e3:.0f}k: {p['bpp']:.3f} / {p['psnr-rgb']:.2f}"
                                                for p in pts) + " |")
    anchors = list(next(iter(rd["bd_rate"].values())))
    lines += ["", "BD-rate (PSNR, PCHIP on the overlap of the PSNR ranges, in brackets; n/a = no overlap) of each "
              "HiNeRV series against:", "", "| HiNeRV series | " + " | ".join(anchors) + " |",
              "|---|" + "---|" * len(anchors)]
    for name, row in rd["bd_rate"].items():
        cells = ["n/a" if v["bd_rate"] is None else f"{v['bd_rate']:+.1f} % ({v['overlap_db']:.2f} dB)"
                 for v in row.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    peak = statistics.median(result["matmul_gflops_one_thread"])
    paired = statistics.median(result["matmul_gflops_one_thread_paired"])
    lines = [f"# HiNeRV vs NeRV, E-NeRV, NVP: Bunny {c['size']}, frames {c['frames']}, {c['params']} parameters, "
             f"{c['minutes']:g} min of training each", "",
             f"fp32 matmul peak, one thread: {' / '.join(f'{p:.1f}' for p in result['matmul_gflops_one_thread'])} "
             "GFLOP/s alone (before / after the fits); two one-thread processes side by side, as the fits ran: "
             f"{' / '.join(f'{p:.1f}' for p in result['matmul_gflops_one_thread_paired'])} (median {paired:.1f}: "
             "the fits' % of peak is against it, the bare steps' against the median alone).", "",
             "| method | parameters | epochs | bare s/epoch | budget s | PSNR | MS-SSIM | PSNR at 25/50/75 % of the epochs "
             "| GFLOP/frame (train step) | bare GFLOP/s | % of peak | trainer s/epoch (median) | trainer / bare "
             "| trainer GFLOP/s | % of paired peak | fit CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, r in result["runs"].items():
        quarters = []
        for q in (0.25, 0.5, 0.75):
            before = [e for e in r["evals"] if e["epoch"] <= q * r["epochs"] + 1e-9]
            quarters.append(f"{before[-1]['psnr']:.2f}" if before else "–")
        s = r["step"]
        lines.append(f"| {LABELS.get(m, m)} | {r['parameters']:,} | {r['epochs']} | {s['bare_epoch_seconds']:.2f} "
                     f"| {r['epochs'] * s['bare_epoch_seconds']:.0f} | {r['final']['psnr']:.2f} "
                     f"| {r['final']['ms_ssim']:.4f} | {' / '.join(quarters)} | {s['gflop_per_frame']:.2f} "
                     f"| {s['gflops']:.1f} | {100 * r['bare_fraction_of_peak']:.0f} % "
                     f"| {r['seconds_per_epoch']['median']:.2f} | {r['trainer_over_bare']:.2f} | {r['fit_gflops']:.1f} "
                     f"| {100 * r['fit_fraction_of_peak']:.0f} % | {r['cpu_seconds'] or 0:.0f} |")
    lines += ["", "Bare training steps (this process, one thread, interleaved, median):", "",
              "| step | patch | s/step | steps/epoch | bare s/epoch | GFLOP/step | GFLOP/frame | GFLOP/s | % of peak |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, b in result["bare_steps"].items():
        patch = "×".join(map(str, b["patch"])) if b["patch"] else "–"
        lines.append(f"| {name} | {patch} | {b['step_seconds']['median']:.3f} | {b['steps_per_epoch']} "
                     f"| {b['bare_epoch_seconds']:.2f} | {b['gflop_per_step']:.2f} | {b['gflop_per_frame']:.2f} "
                     f"| {b['gflops']:.1f} | {100 * b['gflops'] / peak:.0f} % |")
    p = result["patches"]
    lines += ["", f"HiNeRV default: output {'×'.join(map(str, p['default']['output_size']))}, config "
              f"{p['default']['config']}, patch {'×'.join(map(str, p['default']['default_patch']))}; "
              f"other sizes: {p['default'].get('valid_message', '')}; --patch-size ≥ the output's sides: whole frames "
              f"({'×'.join(map(str, p['default']['whole_frame_patch']))})"]
    lines += ["", "| stage | resolution | region of one patch (input of the stage) | all patches of a frame / whole frame |",
              "|---|---|---|---|"]
    for st in p["default"]["stages"]:
        lines.append(f"| {st['stage']} | {'×'.join(map(str, st['resolution']))} | {'×'.join(map(str, st['patch_region']))} "
                     f"| {st['area_over_whole_frame']:.2f}× |")
    lines.append("")
    if p.get("alternative"):
        a = p["alternative"]
        lines.append(f"Patch comparison config (bare steps above): output {'×'.join(map(str, a['output_size']))}, "
                     f"{a['config']}, patches {a.get('compared')}")
    text = "\n".join(lines) + "\n"
    return text + ("\n" + rd_markdown(result["rd"]) if result.get("rd") else "")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names, s_epoch = [], []
    for m, r in result["runs"].items():
        label = f"{LABELS.get(m, m)} ({r['parameters'] / 1e6:.2f} M)"
        axes[0].plot([e["budget_seconds"] for e in r["evals"]], [e["psnr"] for e in r["evals"]], marker="o", ms=3,
                     label=label)
        axes[1].plot([e["epoch"] for e in r["evals"]], [e["psnr"] for e in r["evals"]], marker="o", ms=3, label=label)
        names.append(LABELS.get(m, m).replace(", ", "\n"))
        s_epoch.append(r["step"]["bare_epoch_seconds"])
    axes[0].set_xlabel("training seconds (epoch × bare s/epoch, one thread)")
    axes[1].set_xlabel("epoch")
    axes[1].set_xscale("log")
    for ax in axes[:2]:
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    bars = axes[2].bar(names, s_epoch, color="tab:gray")
    for bar, (m, r) in zip(bars, result["runs"].items()):
        axes[2].annotate(f"{r['step']['gflops']:.1f} GFLOP/s\n{100 * r['bare_fraction_of_peak']:.0f} % of peak",
                         (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    axes[2].set_ylabel("seconds per epoch (bare steps, 1 thread)")
    axes[2].set_yscale("log")
    axes[2].set_ylim(top=max(s_epoch) * 2.5)
    axes[2].tick_params(axis="x", labelsize=8)
    axes[2].grid(alpha=0.3, axis="y")
    c = result["config"]
    fig.suptitle(f"Bunny {c['size']}, frames {c['frames']}, {c['params']} parameters, {c['minutes']:g} min of "
                 "training per method (2-core CPU, 1 thread per fit)")
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
