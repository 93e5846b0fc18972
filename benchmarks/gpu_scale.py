"""The paper-scale configurations on a GPU, in resumable commands of bounded length (issue #16).

NeRV-S/M/L, E-NeRV 12.49 M, HNeRV and DNeRV at the papers' 3 M size (Bunny at 640×1280, their protocol),
NVP-S and HiNeRV-S (``bunny-S``) on Big Buck Bunny 720×1280 (132 frames), each in the variants asked for
(``fp32``, ``bf16``, ``fp16``, ``compile``, ``bf16+compile``; ``nervkit fit --precision`` / ``--compile``).
Every number comes from the real command line, run in child processes: ``nervkit fit`` (per-epoch seconds
and PSNR from the run's ``history.jsonl``; peak GPU memory of the process from PyTorch's allocator), then
``nervkit compress`` (8-bit weights, entropy-coded, no pruning or fine-tuning; bpp of the written file,
PSNR of the model decoded from it), and the classical anchors x265 (slow, CRF ladder) and VVC (vvenc fast,
QP ladder; where the bundled ffmpeg has libvvenc) on the same frames.

**Time-sliced and resumable.** One invocation works until ``--budget-seconds`` (default 540) are spent
and stops cleanly: a fit still training when its time is up gets SIGINT, checkpoints and exits (SIGKILL
after ``--grace-seconds`` if it does not); the next invocation with the same ``--out`` resumes it with
``nervkit fit --resume``. Finished fits, files and codec points are never redone; the summary
(``benchmarks/results/<name>.json`` / ``.md`` / ``.png``) is rewritten at the end of every invocation
from what is finished so far. So every command stays under 10 minutes by construction::

    # on a GPU machine, as often as needed (each call ≤ 9 minutes), until it prints "all finished"
    python benchmarks/gpu_scale.py --device cuda --variants fp32,bf16,compile --out benchmarks/out/gpu_scale
    # a subset, shorter trainings (epochs sized from a 1-epoch probe of each config: ~5 minutes of fp32)
    python benchmarks/gpu_scale.py --device cuda --configs nerv-S,hinerv-bunny-S --train-minutes 5
    python benchmarks/gpu_scale.py --list            # the configurations
    python benchmarks/gpu_scale.py --budget-seconds 0  # only rewrite the summary of what is finished

    # CI / CPU: every path at 36x64, 4 frames, 2 epochs, NeRV and HiNeRV, x265 at two CRFs (< 1 minute)
    python benchmarks/gpu_scale.py --tiny --out /tmp/gpu_scale_tiny --results /tmp/gpu_scale_tiny

A variant the installed ``nervkit fit`` does not offer (no ``--precision`` / ``--compile``) is reported
as unsupported, the others still run; a method that ``nervkit models`` does not list is skipped with a
note (and picked up by a later invocation once it is registered).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PRECISIONS = ("fp32", "bf16", "fp16")
PAPER_SIZE = "720x1280"
T0 = time.monotonic()  # the budget counts from the start of the process


@dataclass(frozen=True)
class Config:
    """One configuration: ``nervkit fit --model METHOD --preset PRESET`` (or ``--params``) at ``size``."""

    method: str
    preset: str | None = None
    params: str | None = None
    size: str = PAPER_SIZE  # the size the preset is made for (the paper's protocol)
    params_elsewhere: str | None = None  # the budget used instead of the preset at any other size
    options: tuple[str, ...] = ()  # more fit options
    tiny_params: str = "30k"  # --tiny: a budget for 36x64 instead of the preset
    note: str = ""


CONFIGS: dict[str, Config] = {
    "nerv-S": Config("nerv", "S", note="NeRV-S (C 26): 3,201,905 parameters"),
    "nerv-M": Config("nerv", "M", note="NeRV-M (C 58): 6,282,001 parameters"),
    "nerv-L": Config("nerv", "L", note="NeRV-L (C 112): 12,524,563 parameters"),
    "enerv-12.49M": Config("enerv", "12.49M", note="E-NeRV, cfgs/E-NeRV-bunny.yaml: 12,490,602 parameters"),
    "hnerv-3M": Config("hnerv", "640x1280-3M", size="640x1280", params_elsewhere="3M",
                       note="HNeRV 3 M (3,028,499), Bunny at 640x1280 (the paper's size; frames resized)"),
    "dnerv-3M": Config("dnerv", "640x1280-3M", size="640x1280",
                       note="DNeRV 3 M (C 95; 3,373,473), Bunny at 640x1280 (the paper's size; resized)"),
    "nvp-s": Config("nvp", "nvp-s", note="NVP-S: 51,567,267 values at 720x1280, 132 frames (mostly latent grids)"),
    "hinerv-bunny-S": Config("hinerv", "bunny-S", note="HiNeRV-S, the official Bunny config: 3,249,819 parameters"),
}
TINY_CONFIGS = ("nerv-S", "hinerv-bunny-S")


# -- small helpers -----------------------------------------------------------------------------------------
def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def history(run: Path) -> list[dict[str, Any]]:
    """The run's per-epoch records (``history.jsonl``), one per epoch (the last record of an epoch wins)."""
    by_epoch: dict[int, dict[str, Any]] = {}
    try:
        lines = (run / "history.jsonl").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(record, dict) and "epoch" in record:
            by_epoch[int(record["epoch"])] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def fit_complete(run: Path) -> bool:
    meta = read_json(run / "run.json", {}) or {}
    return meta.get("status") == "complete" and (run / "metrics.json").is_file()


def finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def capture_cli(argv: list[str]) -> tuple[int, str]:
    """Run ``nervkit ARGV`` in this process; (exit code, its stdout)."""
    from nervkit.cli.main import main as nervkit_main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = nervkit_main(argv)
        except SystemExit as exc:  # --help exits
            code = exc.code if isinstance(exc.code, int) else 0
    return int(code or 0), buf.getvalue()


def cli_capabilities() -> tuple[set[str], set[str]]:
    """(methods that ``nervkit models`` lists, options that ``nervkit fit --help`` lists)."""
    _, models = capture_cli(["models"])
    methods = {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_-]+): ", models, re.MULTILINE)}
    _, help_text = capture_cli(["fit", "--help"])
    options = set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))
    return methods, options


class Unsupported(Exception):
    """A variant the installed ``nervkit fit`` cannot run."""


def variant_options(variant: str, fit_options: set[str]) -> list[str]:
    """``nervkit fit`` options of ``variant`` (``fp32``, ``bf16``, ``fp16``, ``compile``, ``bf16+compile``…);
    :class:`Unsupported` when this nervkit lacks an option it needs, ValueError for an unknown name."""
    parts = variant.split("+")
    unknown = [p for p in parts if p not in PRECISIONS and p != "compile"]
    precisions = [p for p in parts if p in PRECISIONS]
    if unknown or len(precisions) > 1 or not parts:
        raise ValueError(f"unknown variant {variant!r}: use fp32, bf16, fp16, compile, or e.g. bf16+compile")
    precision = precisions[0] if precisions else "fp32"
    options: list[str] = []
    if "--precision" in fit_options:
        options += ["--precision", precision]
    elif precision != "fp32":
        raise Unsupported(f"variant {variant}: this nervkit fit has no --precision option (needs a nervkit with "
                          "TrainConfig.precision)")
    if "compile" in parts:
        if "--compile" not in fit_options:
            raise Unsupported(f"variant {variant}: this nervkit fit has no --compile option (needs a nervkit with "
                              "TrainConfig.compile)")
        options += ["--compile", "true"]
    return options


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


# -- the child process: nervkit commands in-process, with their peak memory --------------------------------
def child_main(job_path: str) -> int:
    """Run the job in ``job_path`` (written by the parent) and write its result file."""
    job = json.loads(Path(job_path).read_text())
    import resource

    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    result: dict[str, Any] = {"steps": []}
    out = Path(job["result"])

    def save() -> None:
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        write_json(out, result)

    try:
        if job["kind"] == "codecs":
            codec_points(job, result, save)
        else:
            for step in job["steps"]:
                started = time.perf_counter()
                if torch.cuda.is_available() and torch.cuda.is_initialized():  # a step after the first
                    torch.cuda.reset_peak_memory_stats()
                code, stdout = capture_cli(step["argv"])
                entry: dict[str, Any] = {"name": step["name"], "rc": code,
                                         "seconds": time.perf_counter() - started}
                if step.get("capture"):
                    entry["stdout"] = stdout[-200_000:]
                if torch.cuda.is_available() and torch.cuda.is_initialized():
                    entry["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
                    entry["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
                    entry["gpu"] = torch.cuda.get_device_name()
                result["steps"].append(entry)
                save()
                if code != 0:
                    break
    except KeyboardInterrupt:
        result["interrupted"] = True
    save()
    return 0


def codec_points(job: dict[str, Any], result: dict[str, Any], save: Any) -> None:
    """Encode + decode the reference frames at every (codec, quality) of the job not measured yet."""
    import numpy as np

    from nervkit.bench.codecs import codec_spec, encode_decode
    from nervkit.bench.quality import measure_quality
    from nervkit.data import load_frames
    from nervkit.io import FrameRange

    store = load_frames(job["video"], frames=FrameRange.parse(job["frames"]), size=tuple(job["size"]))
    reference = np.ascontiguousarray(store.frames.permute(0, 2, 3, 1).numpy())
    for codec, quality, path in job["points"]:
        if Path(path).is_file():
            continue
        spec = codec_spec(codec)
        coded = encode_decode(reference, spec, int(quality), fps=store.fps)
        q = measure_quality(reference, coded.frames, vmaf=False, fps=store.fps, device=job["device"])
        write_json(Path(path), {"codec": codec, "encoder": spec.encoder, "option": spec.quality_option,
                                "quality": int(quality), "bytes": coded.bytes, "bpp": coded.bpp, "psnr": q.psnr,
                                "ssim": q.ssim, "ms_ssim": q.ms_ssim, "encode_seconds": coded.encode_seconds,
                                "decode_seconds": coded.decode_seconds, "frames": coded.num_frames,
                                "size": [coded.height, coded.width]})
        result.setdefault("points", []).append(Path(path).name)
        save()


# -- the parent: planning, time slices, records -------------------------------------------------------------
@dataclass
class Budget:
    """The wall-clock budget of this invocation (monotonic seconds)."""

    seconds: float
    grace: float
    min_slice: float
    reserve: float
    start: float = T0

    def left(self) -> float:
        """Seconds left for new work (the grace of a stop and the summary kept back)."""
        return self.start + self.seconds - self.reserve - time.monotonic()

    def can_start(self) -> bool:
        return self.seconds > 0 and self.left() - self.grace >= self.min_slice


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.budget = Budget(args.budget_seconds, args.grace_seconds, args.min_slice_seconds, args.reserve_seconds)
        self.methods, self.fit_options = cli_capabilities()
        self.notes: list[str] = []
        self.work: list[str] = []
        self.stopped_by_budget = False
        self.halt = False
        self.video = str(args.video) if args.video else None

    # -- child processes -----------------------------------------------------------------------------------
    def run_child(self, name: str, job: dict[str, Any], watch: Path | None = None) -> dict[str, Any]:
        """Run ``job`` in a child process until it ends or the budget is spent (then SIGINT, and SIGKILL
        after the grace); its result (steps, peak memory), plus ``wall``, ``interrupted``, ``killed``."""
        jobs = self.out / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        job_path, result_path = jobs / f"{name}.json", jobs / f"{name}.result.json"
        result_path.unlink(missing_ok=True)
        job = {**job, "result": str(result_path), "threads": self.args.threads}
        write_json(job_path, job)
        log_path = self.out / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        stop_at = started + max(0.0, self.budget.left() - self.budget.grace)
        watch_base = len(history(watch)) if watch is not None else 0
        interrupted = killed = False
        kill_at = math.inf
        with open(log_path, "a") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {name}\n")
            log.flush()
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_child", str(job_path)],
                                    stdout=log, stderr=log, env=env, start_new_session=True)
            try:
                while proc.poll() is None:
                    now = time.monotonic()
                    trigger = now >= stop_at
                    if (not trigger and watch is not None and self.args.stop_fit_after_epochs
                            and len(history(watch)) - watch_base >= self.args.stop_fit_after_epochs):
                        trigger = True  # testing: as if the budget ran out now
                    if trigger and not interrupted:
                        proc.send_signal(signal.SIGINT)
                        interrupted = True
                        kill_at = now + self.budget.grace
                    if now >= kill_at and not killed:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        killed = True
                    time.sleep(0.1)
            except KeyboardInterrupt:  # Ctrl-C of this script: stop the child cleanly, then stop
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=self.budget.grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                raise
            with contextlib.suppress(ProcessLookupError):  # compile workers and the like
                os.killpg(proc.pid, signal.SIGKILL)
        result = read_json(result_path, {}) or {}
        result.update(wall=time.monotonic() - started, interrupted=interrupted, killed=killed, rc=proc.returncode)
        if interrupted:  # the budget is spent (or the test hook fired): no new work in this invocation
            self.stopped_by_budget = self.halt = True
        return result

    def log_tail(self, name: str, lines: int = 6) -> str:
        try:
            text = (self.out / "logs" / f"{name}.log").read_text().strip().splitlines()
        except OSError:
            return ""
        text = [line.strip() for line in text if line.strip() and not line.startswith("==== ")]
        return " | ".join(text[-lines:])[-1500:]

    # -- fit arguments -------------------------------------------------------------------------------------
    def data_args(self, size: str) -> list[str]:
        source = [self.video] if self.video else ["--sample"]
        return [*source, "--size", size, "--frames", self.args.frames]

    def config_size(self, cfg: Config) -> str:
        return self.args.size or cfg.size

    def model_args(self, cfg: Config, size: str) -> list[str]:
        if self.args.tiny:
            return ["--model", cfg.method, "--params", cfg.tiny_params]
        if cfg.params:
            return ["--model", cfg.method, "--params", cfg.params]
        if size != cfg.size and cfg.params_elsewhere:
            return ["--model", cfg.method, "--params", cfg.params_elsewhere]
        return ["--model", cfg.method, "--preset", cfg.preset] if cfg.preset else ["--model", cfg.method]

    def runtime_args(self) -> list[str]:
        args = ["--device", self.args.device, "--quiet", "--no-video"]
        if self.args.threads:
            args += ["--threads", str(self.args.threads)]
        return args

    def fit_core(self, cfg: Config, size: str, epochs: int, variant_opts: list[str]) -> list[str]:
        """The options that define a run (a resumed run must have been started with the same ones)."""
        eval_every = max(1, math.ceil(epochs / max(1, self.args.eval_points)))
        return ["fit", *self.data_args(size), *self.model_args(cfg, size), "--epochs", str(epochs),
                "--eval-every", str(eval_every), *variant_opts, *shlex.split(self.args.fit_args)]

    def fresh_fit(self, cfg: Config, size: str, epochs: int, variant_opts: list[str], run: Path) -> list[str]:
        return [*self.fit_core(cfg, size, epochs, variant_opts), *self.runtime_args(), "-o", str(run)]

    # -- epochs: fixed, or sized from a probe --------------------------------------------------------------
    def epochs_for(self, name: str, cfg: Config) -> int | None:
        """The epochs of ``name``'s runs: ``--epochs``, or with ``--train-minutes`` as many as a 1-epoch fp32
        probe says fit in that time (at most ``--epochs``); None while the probe is not finished."""
        if not self.args.train_minutes:
            return self.args.epochs
        path = self.out / "probes" / f"{slug(name)}.json"
        probe = read_json(path)
        if probe:
            return int(probe["epochs"])
        run = self.out / "probes" / slug(name)
        if not fit_complete(run):
            if not self.budget.can_start():
                return None
            self.prepare_run_folder(run)
            size = self.config_size(cfg)
            argv = (["fit", "--resume", *self.runtime_args(), "-o", str(run)] if (run / "run.json").is_file()
                    else self.fresh_fit(cfg, size, 1, variant_options("fp32", self.fit_options), run))
            result = self.run_child(f"probe-{slug(name)}", {"kind": "fit", "steps": [{"name": "fit", "argv": argv}]})
            self.work.append(f"probe {name}: {result['wall']:.0f} s")
            if not fit_complete(run):
                if not result.get("interrupted"):
                    raise ProbeFailed(f"probe fit of {name} failed: {self.log_tail('probe-' + slug(name))}")
                return None
        seconds = float(history(run)[-1]["seconds"])
        epochs = max(1, min(self.args.epochs, int(self.args.train_minutes * 60 / seconds)))
        write_json(path, {"seconds_per_epoch": seconds, "train_minutes": self.args.train_minutes,
                          "max_epochs": self.args.epochs, "epochs": epochs})
        if self.args.compact:
            (run / "checkpoint.pt").unlink(missing_ok=True)
        return epochs

    @staticmethod
    def prepare_run_folder(run: Path) -> None:
        """A run folder that a child left without ``run.json`` (stopped while it started) is started over."""
        if run.exists() and not (run / "run.json").is_file():
            shutil.rmtree(run)
        run.parent.mkdir(parents=True, exist_ok=True)

    # -- one (config, variant) ---------------------------------------------------------------------------------
    def unit_paths(self, name: str, variant: str) -> tuple[str, Path, Path]:
        key = slug(f"{name}--{variant}")
        return key, self.out / "units" / f"{key}.json", self.out / "runs" / key

    def file_path(self, key: str, bits: int) -> Path:
        return self.out / "files" / f"{key}-{bits}bit.nerv"

    def run_unit(self, name: str, cfg: Config, variant: str) -> None:
        key, state_path, run = self.unit_paths(name, variant)
        state = read_json(state_path, {}) or {}
        if state.get("status") == "done" or (state.get("status") == "failed" and not self.args.retry_failed):
            return
        if cfg.method not in self.methods:
            self.notes.append(f"{name}: method {cfg.method!r} is not registered in this nervkit (`nervkit models`); "
                              "skipped, a later invocation runs it once it is")
            return
        try:
            opts = variant_options(variant, self.fit_options)
        except Unsupported as exc:
            self.notes.append(f"{name} {variant}: unsupported: {exc}")
            return
        epochs = self.epochs_for(name, cfg)
        if epochs is None or not self.budget.can_start():
            self.stopped_by_budget = self.halt = True
            return
        size = self.config_size(cfg)
        fresh = self.fresh_fit(cfg, size, epochs, opts, run)
        core = self.fit_core(cfg, size, epochs, opts)
        if state.get("fit_core") and state["fit_core"] != core:
            raise SystemExit(f"gpu_scale: {run} was started with other settings:\n  {shlex.join(state['fit_core'])}\n"
                             f"now:\n  {shlex.join(core)}\nuse another --out (or delete that run)")
        state.update(config=name, variant=variant, method=cfg.method, size=size, epochs=epochs, fit_core=core,
                     fit_argv=state.get("fit_argv", fresh), status=state.get("status", "pending"))
        state.setdefault("slices", [])
        state.setdefault("files", {})
        steps = []
        if not fit_complete(run):
            self.prepare_run_folder(run)
            argv = (["fit", "--resume", *self.runtime_args(), "-o", str(run)] if (run / "run.json").is_file()
                    else fresh)
            steps.append({"name": "fit", "argv": argv})
        for bits in self.args.bits:
            if str(bits) in state["files"]:
                continue
            path = self.file_path(key, bits)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            steps.append({"name": f"compress-{bits}", "capture": True,
                          "argv": ["compress", str(run), "-o", str(path), "--json", "--quiet", "--device",
                                   self.args.device, "--bits", str(bits), "--prune", "0", "--finetune-epochs",
                                   "0", "--qat-epochs", "0"]})
        if steps:
            before = len(history(run))
            result = self.run_child(key, {"kind": "fit", "steps": steps}, watch=run)
            slice_ = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall": result["wall"],
                      "interrupted": result["interrupted"], "killed": result["killed"],
                      "epochs_before": before, "epochs_after": len(history(run)),
                      "steps": [{k: v for k, v in s.items() if k != "stdout"} for s in result.get("steps", [])],
                      "peak_rss_mib": result.get("peak_rss_mib")}
            state["slices"].append(slice_)
            for step in result.get("steps", []):
                if step["name"].startswith("compress-") and step["rc"] == 0:
                    report = json.loads(step["stdout"][step["stdout"].index("{"):])
                    report["compress_seconds"] = step["seconds"]
                    state["files"][step["name"].split("-", 1)[1]] = report
            self.work.append(f"{name} {variant}: {result['wall']:.0f} s, epochs {before} -> {slice_['epochs_after']}"
                             + (" (stopped: budget)" if result["interrupted"] else ""))
            failed = [s for s in result.get("steps", []) if s["rc"] not in (0, 130)]
            if failed or (not result["interrupted"] and not result.get("steps")):
                state["status"] = "failed"
                state["error"] = self.log_tail(key)
        if state.get("status") != "failed":
            done = fit_complete(run) and all(str(b) in state["files"] for b in self.args.bits)
            state["status"] = "done" if done else ("training" if not fit_complete(run) else "fitted")
        if state["status"] == "done" and self.args.compact:
            (run / "checkpoint.pt").unlink(missing_ok=True)
        write_json(state_path, state)

    # -- codecs --------------------------------------------------------------------------------------------
    def codec_plan(self, size: str) -> list[tuple[str, int, str]]:
        from nervkit.bench.codecs import available_codecs, codec_spec

        have = set(available_codecs())
        points = []
        for codec in self.args.codecs:
            if codec not in have:
                self.notes.append(f"codec {codec}: this ffmpeg lacks its encoder; no {codec} anchor")
                continue
            spec = codec_spec(codec)
            for q in self.args.codec_qualities or spec.ladder:
                path = self.out / "codecs" / size / f"{codec}-{spec.quality_option}{q}.json"
                points.append((codec, int(q), str(path)))
        return points

    def run_codecs(self, sizes: list[str]) -> None:
        for size in sizes:
            todo = [p for p in self.codec_plan(size) if not Path(p[2]).is_file()]
            if not todo:
                continue
            if not self.budget.can_start():
                self.stopped_by_budget = self.halt = True
                return
            from nervkit.train import resolve_device

            device = str(resolve_device(self.args.device))
            job = {"kind": "codecs", "video": self.video or str(sample_path()), "frames": self.args.frames,
                   "size": list(parse_size(size)), "points": todo, "device": device}
            result = self.run_child(f"codecs-{size}", job)
            self.work.append(f"codecs {size}: {len(result.get('points', []))} points, {result['wall']:.0f} s")
            if not result["interrupted"] and any(not Path(p[2]).is_file() for p in todo):
                self.notes.append(f"codecs {size} failed: {self.log_tail('codecs-' + size)}")


class ProbeFailed(Exception):
    pass


def sample_path() -> Path:
    import nervkit

    return nervkit.sample_video()


# -- the summary ----------------------------------------------------------------------------------------------
def interp(x: float, xs: list[float], ys: list[float]) -> float | None:
    """Linear interpolation inside the range only (None outside)."""
    if len(xs) < 2 or not xs[0] <= x <= xs[-1]:
        return None
    import numpy as np

    return float(np.interp(x, xs, ys))


def codec_curves(out: Path, size: str) -> dict[str, list[dict[str, Any]]]:
    curves: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((out / "codecs" / size).glob("*.json")):
        point = read_json(path)
        if point:
            curves.setdefault(point["codec"], []).append(point)
    return {c: sorted(points, key=lambda p: p["bpp"]) for c, points in curves.items()}


def versus_codec(bpp: float, psnr: float, curve: list[dict[str, Any]]) -> dict[str, Any]:
    """The codec's PSNR at the same bpp and its bpp at the same PSNR (log-rate interpolation, no extrapolation)."""
    rates = [math.log(p["bpp"]) for p in curve]
    quality = [p["psnr"] for p in curve]
    at_rate = interp(math.log(bpp), rates, quality)
    by_q = sorted(zip(quality, rates))
    log_rate = interp(psnr, [q for q, _ in by_q], [r for _, r in by_q])
    return {"codec_psnr_at_same_bpp": at_rate, "psnr_gain_db": None if at_rate is None else psnr - at_rate,
            "codec_bpp_at_same_psnr": None if log_rate is None else math.exp(log_rate),
            "rate_ratio": None if log_rate is None else bpp / math.exp(log_rate)}


def unit_record(state: dict[str, Any], run: Path) -> dict[str, Any]:
    """The numbers of one (config, variant) from its state file and run folder."""
    hist = history(run)
    meta = read_json(run / "run.json", {}) or {}
    metrics = read_json(run / "metrics.json", {}) or {}
    firsts = {s["epochs_before"] + 1 for s in state.get("slices", []) if s["epochs_after"] > s["epochs_before"]}
    seconds = [h["seconds"] for h in hist if finite(h.get("seconds")) is not None]
    steady = [h["seconds"] for h in hist if h["epoch"] not in firsts and finite(h.get("seconds")) is not None]
    spe = statistics.median(steady or seconds) if seconds else None
    warm = [h["seconds"] - spe for h in hist if h["epoch"] in firsts and spe is not None and "seconds" in h]
    fit_steps = [st for s in state.get("slices", []) for st in s.get("steps", []) if st["name"] == "fit"]
    peaks = [st["peak_allocated_bytes"] for st in fit_steps if st.get("peak_allocated_bytes") is not None]
    reserved = [st["peak_reserved_bytes"] for st in fit_steps if st.get("peak_reserved_bytes") is not None]
    gpus = [st["gpu"] for st in fit_steps if st.get("gpu")]
    rss = [s["peak_rss_mib"] for s in state.get("slices", []) if s.get("peak_rss_mib")]
    provenance = meta.get("provenance") or {}
    frames = (meta.get("geometry") or {}).get("num_frames")
    record = {
        "config": state["config"], "variant": state["variant"], "method": state.get("method"),
        "status": state.get("status"), "error": state.get("error"), "size": state.get("size"),
        "frames": frames, "epochs": state.get("epochs"), "epochs_done": len(hist),
        "preset": meta.get("preset"), "parameters": (meta.get("parameters") or {}).get("official"),
        "device": provenance.get("device"), "gpu": gpus[-1] if gpus else None,
        "precision": (meta.get("train") or {}).get("precision"), "compile": (meta.get("train") or {}).get("compile"),
        "seconds_per_epoch": spe, "frames_per_second": (frames / spe) if spe and frames else None,
        "warmup_seconds": sum(warm) if warm else None,
        "train_seconds": finite(meta.get("train_seconds")) or (hist[-1].get("elapsed") if hist else None),
        "wall_seconds": sum(s["wall"] for s in state.get("slices", [])), "slices": len(state.get("slices", [])),
        "resumes": len(meta.get("resumed", [])),
        "peak_gpu_memory_gib": max(peaks) / 2**30 if peaks else None,
        "peak_gpu_reserved_gib": max(reserved) / 2**30 if reserved else None,
        "peak_rss_mib": max(rss) if rss else None,
        "memory_note": None if peaks else "no CUDA: peak GPU memory not measured (peak_rss_mib: the process's RSS)",
        "psnr": finite(metrics.get("psnr")), "ms_ssim": finite(metrics.get("ms_ssim")),
        "psnr_curve": [[h["epoch"], h["eval_psnr"]] for h in hist if finite(h.get("eval_psnr")) is not None],
        "train_psnr_curve": [[h["epoch"], h["psnr"]] for h in hist if finite(h.get("psnr")) is not None],
        "files": [],
    }
    for bits, report in sorted(state.get("files", {}).items(), key=lambda kv: -int(kv[0])):
        record["files"].append({"bits": int(bits), "bytes": report.get("bytes"), "bpp": report.get("bpp"),
                                "psnr": report.get("psnr"), "ms_ssim": report.get("ms_ssim"),
                                "compress_seconds": report.get("compress_seconds"),
                                "method_defaults": report.get("method_defaults")})
    return record


def bd_rates(records: list[dict[str, Any]], codecs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """BD-rate of every (size, method, variant) curve (its configs × bit depths) against each codec."""
    import warnings

    from nervkit.bench.bdrate import bd_rate

    groups: dict[tuple[str, str, str], list[tuple[float, float, str]]] = {}
    for r in records:
        for f in r["files"]:
            if finite(f.get("bpp")) and finite(f.get("psnr")):
                groups.setdefault((r["size"], r["method"], r["variant"]), []).append(
                    (f["bpp"], f["psnr"], f"{r['config']}@{f['bits']}bit"))
    rows = []
    for (size, method, variant), points in sorted(groups.items()):
        if len({p[0] for p in points}) < 2:
            continue
        points.sort()
        row: dict[str, Any] = {"size": size, "method": method, "variant": variant, "points": [p[2] for p in points]}
        for codec, curve in codecs.get(size, {}).items():
            value = None
            if len(curve) >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        value = bd_rate([p["bpp"] for p in curve], [p["psnr"] for p in curve],
                                        [p[0] for p in points], [p[1] for p in points])
                    except Exception:  # noqa: BLE001 - repeated or non-overlapping qualities
                        value = None
            row[f"bd_rate_vs_{codec}"] = finite(value)
        rows.append(row)
    return rows


def summarize(bench: Bench, names: list[str], variants: list[str]) -> dict[str, Any]:
    out, args = bench.out, bench.args
    records = []
    for name in names:
        for variant in variants:
            _, state_path, run = bench.unit_paths(name, variant)
            state = read_json(state_path)
            if state:
                records.append(unit_record(state, run))
    sizes = sorted({r["size"] for r in records} | set(planned_sizes(bench, names)))
    codecs = {size: codec_curves(out, size) for size in sizes}
    by_key = {(r["config"], r["variant"]): r for r in records}
    for r in records:
        base = by_key.get((r["config"], "fp32"))
        if r["variant"] != "fp32" and base:
            speed = (base["seconds_per_epoch"] / r["seconds_per_epoch"]
                     if base.get("seconds_per_epoch") and r.get("seconds_per_epoch") else None)
            file_diff = None
            mine, theirs = (r["files"] or [{}])[0].get("psnr"), (base["files"] or [{}])[0].get("psnr")
            if mine is not None and theirs is not None:
                file_diff = mine - theirs
            r["vs_fp32"] = {"speedup": speed,
                            "psnr_diff_db": (r["psnr"] - base["psnr"]) if r["psnr"] is not None
                            and base["psnr"] is not None else None,
                            "file_psnr_diff_db": file_diff,
                            "memory_ratio": (r["peak_gpu_memory_gib"] / base["peak_gpu_memory_gib"])
                            if r["peak_gpu_memory_gib"] and base["peak_gpu_memory_gib"] else None}
        for f in r["files"]:
            for codec, curve in codecs.get(r["size"], {}).items():
                if f.get("bpp") and f.get("psnr") is not None and len(curve) >= 2:
                    f[f"vs_{codec}"] = versus_codec(f["bpp"], f["psnr"], curve)
    planned = len(names) * len(variants)
    done = sum(r["status"] == "done" for r in records)
    codec_todo = sum(not Path(p[2]).is_file() for s in planned_sizes(bench, names) for p in bench.codec_plan(s))
    machine_info = read_json(out / "machine.json", {})
    return {
        "benchmark": "gpu_scale", "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info.get("machine"), "matmul_peak_gflops": machine_info.get("matmul_peak_gflops"),
        "settings": {"tiny": args.tiny, "video": bench.video or "bundled Big Buck Bunny", "frames": args.frames,
                     "size": args.size, "epochs": args.epochs, "train_minutes": args.train_minutes,
                     "configs": names, "variants": variants, "bits": args.bits, "codecs": args.codecs,
                     "codec_qualities": args.codec_qualities, "device": args.device, "fit_args": args.fit_args},
        "complete": done == planned and codec_todo == 0,
        "progress": {"runs_done": done, "runs_planned": planned, "codec_points_left": codec_todo},
        "notes": sorted(set(bench.notes)),
        "configs": {n: {"method": CONFIGS[n].method, "preset": CONFIGS[n].preset, "paper_size": CONFIGS[n].size,
                        "note": CONFIGS[n].note} for n in names},
        "runs": records,
        "codecs": codecs,
        "bd_rates": bd_rates(records, codecs),
    }


def planned_sizes(bench: Bench, names: list[str]) -> list[str]:
    return sorted({bench.config_size(CONFIGS[n]) for n in names})


def fmt(x: Any, spec: str, dash: str = "–") -> str:
    return dash if x is None else format(x, spec)


def markdown(summary: dict[str, Any]) -> str:
    m = summary.get("machine") or {}
    s = summary["settings"]
    length = (f"epochs {s['epochs']}" if not s["train_minutes"]
              else f"{s['train_minutes']} min of fp32 training per config (≤ {s['epochs']} epochs)")
    progress = summary["progress"]
    header = (f"{m.get('gpu') or m.get('cpu')} ({m.get('device')}), torch {m.get('torch')}, {summary['date']}; "
              f"{s['video']}, frames {s['frames']}, {length}; progress {progress['runs_done']}/"
              f"{progress['runs_planned']} runs"
              f"{'' if summary['complete'] else ' (unfinished: run the same command again)'}.")
    columns = ("config", "variant", "size", "params", "epochs", "s/epoch", "speed-up vs fp32", "peak GPU mem (GiB)",
               "PSNR", "ΔPSNR vs fp32", "file bpp (8-bit)", "file PSNR", "x265 PSNR at that bpp")
    lines = [f"# GPU scale ({'tiny CPU check' if s['tiny'] else 'paper configurations'})", "", header, "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in summary["runs"]:
        f = r["files"][0] if r["files"] else {}
        vs = r.get("vs_fp32") or {}
        x265 = (f.get("vs_x265") or {}).get("codec_psnr_at_same_bpp")
        epochs = f"{r['epochs_done']}/{r['epochs']}" if r["status"] != "done" else str(r["epochs"])
        status = "" if r["status"] == "done" else f" ({r['status']})"
        lines.append(
            f"| {r['config']} | {r['variant']}{status} | {r['size']} | {fmt(r['parameters'], ',')} | {epochs} | "
            f"{fmt(r['seconds_per_epoch'], '.3f')} | {fmt(vs.get('speedup'), '.2f')}"
            f"{'' if vs.get('speedup') is None else '×'} | "
            f"{fmt(r['peak_gpu_memory_gib'], '.2f')} | {fmt(r['psnr'], '.2f')} | "
            f"{fmt(vs.get('psnr_diff_db'), '+.2f')} | {fmt(f.get('bpp'), '.4f')} | {fmt(f.get('psnr'), '.2f')} | "
            f"{fmt(x265, '.2f')} |")
    for size, curves in summary["codecs"].items():
        for codec, curve in curves.items():
            pts = ", ".join(f"{p['bpp']:.4f}/{p['psnr']:.2f}" for p in curve)
            lines.append(f"\n{codec} at {size} (bpp / PSNR): {pts}")
    if summary["bd_rates"]:
        lines += ["", "| size | method | variant | points | " + " | ".join(
            sorted({k for r in summary["bd_rates"] for k in r if k.startswith("bd_rate")})) + " |"]
        keys = sorted({k for r in summary["bd_rates"] for k in r if k.startswith("bd_rate")})
        lines.append("|---|---|---|---|" + "---|" * len(keys))
        for r in summary["bd_rates"]:
            lines.append(f"| {r['size']} | {r['method']} | {r['variant']} | {', '.join(r['points'])} | "
                         + " | ".join(fmt(r.get(k), '+.1f') + ('' if r.get(k) is None else ' %') for k in keys) + " |")
    for r in summary["runs"]:
        if r.get("error"):
            lines.append(f"\n- {r['config']} {r['variant']} failed: {r['error']}")
    for note in summary["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(HERE))
    from common import save_figure
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for r in summary["runs"]:
        curve = r["psnr_curve"]
        if curve:
            ax1.plot([c[0] for c in curve], [c[1] for c in curve], "o-", ms=3, label=f"{r['config']} {r['variant']}")
    ax1.set_xlabel("epoch")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylabel("PSNR (dB), all frames")
    ax1.set_title("training")
    ax1.grid(alpha=0.3)
    markers = "osD^v<>pPX*h"
    for i, r in enumerate(summary["runs"]):
        pts = [(f["bpp"], f["psnr"]) for f in r["files"] if f.get("bpp") and f.get("psnr") is not None]
        if pts:
            ax2.scatter([p[0] for p in pts], [p[1] for p in pts], marker=markers[i % len(markers)], s=36,
                        label=f"{r['config']} {r['variant']} ({r['size']})")
    styles = iter(["k--", "k:", "k-.", "C7--", "C7:", "C7-."] * 4)
    for size, curves in summary["codecs"].items():
        for codec, curve in curves.items():
            ax2.plot([p["bpp"] for p in curve], [p["psnr"] for p in curve], next(styles), lw=1, marker="x", ms=4,
                     label=f"{codec} ({size})")
    ax2.set_xscale("log")
    ax2.set_xlabel("bits per pixel (file)")
    ax2.set_ylabel("PSNR (dB)")
    ax2.set_title("rate–distortion: 8-bit files vs codecs")
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


# -- main -------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--tiny", action="store_true",
                    help="CPU check: 36x64, frames 0:4, 2 epochs, nerv-S and hinerv-bunny-S at 30k parameters, "
                         "fp32, x265 at CRF 28 and 36")
    ap.add_argument("--configs", default=None, help=f"comma list or 'all' (default: all; --tiny: "
                                                   f"{','.join(TINY_CONFIGS)}): {', '.join(CONFIGS)}")
    ap.add_argument("--variants", default="fp32", help="comma list of fp32, bf16, fp16, compile, bf16+compile, …")
    ap.add_argument("--video", type=Path, default=None, help="input video (default: the bundled Bunny)")
    ap.add_argument("--size", default=None, help="HxW for every config (default: each config's paper size, "
                                                 "720x1280; HNeRV/DNeRV 640x1280; --tiny 36x64)")
    ap.add_argument("--frames", default=None, help="frame range (default 0:132; --tiny 0:4)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs of every run (default 300; --tiny 2)")
    ap.add_argument("--train-minutes", type=float, default=0.0,
                    help="size each config's epochs to this many minutes of fp32 training (a 1-epoch probe), at "
                         "most --epochs; all variants of a config train as many epochs")
    ap.add_argument("--eval-points", type=int, default=10, help="points of each PSNR curve (--eval-every)")
    ap.add_argument("--bits", default="8", help="bit depths of the .nerv files of every run, e.g. 8,6")
    ap.add_argument("--codecs", default=None, help="codec anchors (default x265,vvc; --tiny x265; 'none')")
    ap.add_argument("--codec-qualities", default=None,
                    help="CRF/QP values of every codec (default: each codec's ladder; --tiny 28,36)")
    ap.add_argument("--fit-args", default="", help="more nervkit fit options for every new run (quoted)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of the child processes (0 = default)")
    ap.add_argument("--budget-seconds", type=float, default=540.0,
                    help="wall-clock budget of this invocation; 0 = only write the summary [default: 540]")
    ap.add_argument("--grace-seconds", type=float, default=None,
                    help="time a stopped fit gets to checkpoint before SIGKILL (default: 10 %% of the budget, "
                         "5..60 s)")
    ap.add_argument("--min-slice-seconds", type=float, default=None,
                    help="do not start a child with less time than this (default 60; --tiny 1)")
    ap.add_argument("--reserve-seconds", type=float, default=None,
                    help="time kept back for the summary (default: 5 %% of the budget, at most 15 s)")
    ap.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    ap.add_argument("--compact", action="store_true",
                    help="delete the checkpoint of every finished run (its .nerv files, history and metrics stay): "
                         "a small --out to copy between machines; more --bits later need the checkpoints")
    ap.add_argument("--out", type=Path, default=None,
                    help="work folder: runs, files, codec points, state (default benchmarks/out/<name>)")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where <name>.json/.md/.png go")
    ap.add_argument("--name", default=None, help="results name (default gpu_scale; --tiny gpu_scale_tiny)")
    ap.add_argument("--list", action="store_true", help="list the configurations and exit")
    ap.add_argument("--stop-fit-after-epochs", type=int, default=0, help=argparse.SUPPRESS)  # tests
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.configs = args.configs or (",".join(TINY_CONFIGS) if tiny else "all")
    args.size = args.size or ("36x64" if tiny else None)
    args.frames = args.frames or ("0:4" if tiny else "0:132")
    args.epochs = args.epochs or (2 if tiny else 300)
    args.codecs = [] if args.codecs == "none" else (args.codecs or ("x265" if tiny else "x265,vvc")).split(",")
    args.codec_qualities = ([int(q) for q in args.codec_qualities.split(",")] if args.codec_qualities
                            else [28, 36] if tiny else None)
    args.bits = [int(b) for b in str(args.bits).split(",")]
    if args.grace_seconds is None:
        args.grace_seconds = min(60.0, max(5.0, 0.1 * args.budget_seconds))
    if args.min_slice_seconds is None:
        args.min_slice_seconds = 1.0 if tiny else 60.0
    if args.reserve_seconds is None:
        args.reserve_seconds = min(15.0, max(3.0, 0.05 * args.budget_seconds))
    args.name = args.name or ("gpu_scale_tiny" if tiny else "gpu_scale")
    args.out = (args.out or HERE / "out" / args.name).resolve()
    if args.tiny and not args.threads and args.device in ("auto", "cpu"):
        args.threads = 1
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_child"]:
        return child_main(argv[1])
    args = parse_args(argv)
    if args.list:
        for name, cfg in CONFIGS.items():
            what = f"--preset {cfg.preset}" if cfg.preset else f"--params {cfg.params}"
            print(f"{name:16s} --model {cfg.method} {what} at {cfg.size}: {cfg.note}")
        return 0
    names = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"gpu_scale: unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    variants = args.variants.split(",")
    for v in variants:
        try:
            variant_options(v, {"--precision", "--compile"})
        except ValueError as exc:
            raise SystemExit(f"gpu_scale: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    import fcntl

    lock = open(args.out / ".lock", "w")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"gpu_scale: another invocation is working in {args.out}") from None

    sys.path.insert(0, str(HERE))
    from common import machine, matmul_peak_gflops

    bench = Bench(args)
    if not (args.out / "machine.json").is_file() or args.budget_seconds > 0:
        info = read_json(args.out / "machine.json", {}) or {}
        info["machine"] = machine()
        if info["machine"].get("gpu") is None and "matmul_peak_gflops" not in info:
            info["matmul_peak_gflops"] = matmul_peak_gflops(n=1024 if args.tiny else 2048)
        write_json(args.out / "machine.json", info)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    if args.budget_seconds > 0:
        try:
            for name in names:
                for variant in variants:
                    if bench.halt:
                        break
                    bench.run_unit(name, CONFIGS[name], variant)
            if not bench.halt:
                bench.run_codecs(planned_sizes(bench, names))
        except ProbeFailed as exc:
            bench.notes.append(str(exc))
    summary = summarize(bench, names, variants)
    summary["invocation"] = {"started": started, "budget_seconds": args.budget_seconds,
                             "seconds": time.monotonic() - bench.budget.start, "work": bench.work}
    with open(args.out / "invocations.jsonl", "a") as log:
        log.write(json.dumps(summary["invocation"]) + "\n")
    args.results.mkdir(parents=True, exist_ok=True)
    base = args.results / args.name
    write_json(base.with_suffix(".json"), summary)
    base.with_suffix(".md").write_text(markdown(summary))
    plot(summary, base.with_suffix(".png"))
    for line in bench.work:
        print(f"  {line}")
    progress = summary["progress"]
    state = ("all finished" if summary["complete"] else
             "budget spent: run the same command again to continue" if bench.stopped_by_budget else "unfinished")
    print(f"gpu_scale: {progress['runs_done']}/{progress['runs_planned']} runs done, "
          f"{progress['codec_points_left']} codec points left, {time.monotonic() - bench.budget.start:.0f} s: "
          f"{state}; summary {base.with_suffix('.md')}")
    for note in summary["notes"]:
        print(f"  note: {note}")
    for r in summary["runs"]:
        if r["status"] == "failed":
            print(f"  failed: {r['config']} {r['variant']}: {r['error']} (--retry-failed runs it again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
