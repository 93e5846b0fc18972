"""Benchmark (issue #14): the neural dataloader — throughput of ``nervkit.data.NervVideoDataset`` (clips of
8 decoded frames from a ``.nerv`` file of a small collection) through a ``torch.utils.data.DataLoader``,
against the same clips decoded from H.264 files with PyAV and read from raw uint8 frames in a ``.npy``.

The collection: Bunny cut into 120×160 tiles the way ``--tile 240x320 --size 120x160`` cuts it (tiles of
240×320, resized), ``--tiles`` of the 12 tiles (every other one), the first ``--frames`` frames of each.
They are written to a temporary folder as lossless FFV1 ``.mkv`` (what the models are fitted to), as
H.264 ``.mp4`` (libx264 through nervkit's writer, CRF ``--crf``, x264's default GOP: one key-frame per
video) and as one ``.npy`` of uint8 frames. A tiny D-NeRV and a tiny NeRV (``--params`` each) are fitted
over the collection for ``--epochs`` epochs (batch 4) and compressed (8-bit); the quality they reach is
reported but is not the point (far from converged).

Every source yields the same items: the clips of 8 consecutive frames of every video, float32 (8, 3, H, W)
in [0, 1]. The H.264 dataset opens the file in each item, decodes from the video's start (its only
key-frame) up to the clip's end and keeps the clip's frames (what random access into a long-GOP file
costs); the ``.npy`` dataset slices a memory map. For each source and ``num_workers`` in ``--workers``
a DataLoader (batch ``--batch-size``, persistent workers) makes one untimed warm-up pass (worker start,
model build), then ``--passes`` timed passes over every clip; clips/s, videos/s and frames/s are the
medians over the passes. NervVideoDataset decodes an item with one CPU thread (its default
``threads=1``), so one worker process uses one core.

    python benchmarks/dataloader.py                     # 3-5 min on 2 shared CPU cores
    python benchmarks/dataloader.py --device cuda       # decode the .nerv items on the GPU (workers: spawn)
    python benchmarks/dataloader.py --passes 2 --frames 16 --tiles 2 --epochs 1 --out /tmp/dl.json  # smoke

Writes ``--out`` (JSON, schema ``nervkit-dataloader-bench/1``) and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import av
import numpy as np
import torch
from common import machine, summary, write_json
from torch.utils.data import DataLoader, Dataset

import nervkit
from nervkit.data import NervVideoDataset
from nervkit.data.collection import find_videos, load_collection
from nervkit.io import FrameRange, to_uint8, write_video

ROOT = Path(__file__).resolve().parent
CLIP = 8


# -- the baselines: the same clips from H.264 files and from raw frames ------------------------------------
class H264Clips(Dataset):
    """Clips of ``clip_length`` frames of H.264 files (one item per clip, in order), decoded with PyAV:
    float32 (T, 3, H, W) in [0, 1], the same dict as NervVideoDataset's items."""

    def __init__(self, paths: list[Path], frames: int, clip_length: int = CLIP) -> None:
        self.paths, self.clip_length = [str(p) for p in paths], clip_length
        self.clips = [(v, s) for v in range(len(paths)) for s in range(0, frames - clip_length + 1, clip_length)]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, start = self.clips[index]
        out = []
        with av.open(self.paths[v]) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= start:
                    out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == self.clip_length:
                    break
        frames = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div_(255.0)
        return {"frames": frames, "video_index": v, "start": start, "valid": len(out)}


class NpyClips(Dataset):
    """The same clips from raw uint8 frames (videos, N, H, W, 3) in a ``.npy`` file, memory-mapped (opened
    once per process)."""

    def __init__(self, path: Path, clip_length: int = CLIP) -> None:
        self.path, self.clip_length = str(path), clip_length
        shape = np.load(self.path, mmap_mode="r").shape
        self.clips = [(v, s) for v in range(shape[0]) for s in range(0, shape[1] - clip_length + 1, clip_length)]
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.clips)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        v, start = self.clips[index]
        clip = np.array(self._array[v, start : start + self.clip_length])  # a copy: out of the memory map
        frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div_(255.0)
        return {"frames": frames, "video_index": v, "start": start, "valid": self.clip_length}


# -- the collection -----------------------------------------------------------------------------------------
def prepare(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Tiles of Bunny as lossless .mkv, H.264 .mp4 and one .npy (module docstring)."""
    store = load_collection(find_videos([nervkit.sample_video()]), tile=(240, 320), size=(120, 160),
                            frames=FrameRange(0, args.frames))
    step = max(1, len(store.segments) // args.tiles)
    chosen = list(range(0, len(store.segments), step))[: args.tiles]
    starts = np.cumsum((0, *store.segments))
    for folder in ("mkv", "mp4"):
        (work / folder).mkdir()
    raw, names = [], []
    for v in chosen:
        name = store.names[v]
        frames = store.frames[starts[v] : starts[v + 1]].permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, 3)
        write_video(frames, work / "mkv" / f"{name}.mkv", fps=25, lossless=True)
        write_video(frames, work / "mp4" / f"{name}.mp4", fps=25, crf=args.crf)
        raw.append(frames)
        names.append(name)
    np.save(work / "frames.npy", np.stack(raw))
    mp4 = [work / "mp4" / f"{n}.mp4" for n in names]
    return {"names": names, "mkv": [work / "mkv" / f"{n}.mkv" for n in names], "mp4": mp4,
            "npy": work / "frames.npy", "raw": np.stack(raw),
            "bytes": {"h264": sum(p.stat().st_size for p in mp4), "npy": (work / "frames.npy").stat().st_size}}


def fit_and_compress(work: Path, method: str, videos: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """A tiny ``method`` fitted over the videos and compressed to ``work/<method>.nerv``."""
    start = time.perf_counter()
    fitted = nervkit.fit(videos, model=method, params=args.params, epochs=args.epochs, out=work / f"run-{method}",
                         write_video=False, progress=False, threads=args.threads or 0, batch_size=4,
                         device=args.device, eval_every=args.epochs)
    nerv = work / f"{method}.nerv"
    report = nervkit.compress(fitted.run_dir.path, nerv, bits=8, device=args.device)
    counts = fitted.model.parameter_counts()
    return {"path": nerv, "parameters": counts.official, "bytes": nerv.stat().st_size,
            "psnr_from_file": report.get("psnr"), "fit_and_compress_seconds": time.perf_counter() - start}


# -- measuring --------------------------------------------------------------------------------------------------
def passes(dataset: Dataset, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """One warm-up pass, then ``args.passes`` timed passes of a DataLoader over every item. Workers that
    decode on a GPU are started by spawn (CUDA cannot be used in a forked child of a CUDA process)."""
    on_gpu = isinstance(dataset, NervVideoDataset) and dataset.device.type == "cuda"
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=workers,
                        persistent_workers=workers > 0,
                        multiprocessing_context="spawn" if workers > 0 and on_gpu else None)
    times, clips, frames = [], 0, 0
    start = time.perf_counter()
    for batch in loader:  # warm-up: worker start, model build, file opening
        clips += batch["frames"].shape[0]
        frames += int(torch.as_tensor(batch["valid"]).sum())
    cold = time.perf_counter() - start
    for _ in range(args.passes):
        start = time.perf_counter()
        for batch in loader:
            batch["frames"].sum()  # touch the data, as a consumer would
        times.append(time.perf_counter() - start)
    del loader
    t = statistics.median(times)
    videos = len(dataset.videos) if isinstance(dataset, NervVideoDataset) else len({v for v, _ in dataset.clips})
    return {"num_workers": workers, "clips": clips, "frames": frames, "videos": videos,
            "seconds_per_pass": summary(times), "warmup_seconds": cold,
            "clips_per_s": clips / t, "videos_per_s": videos / t, "frames_per_s": frames / t}


def quality(dataset: Dataset, raw: np.ndarray) -> float | None:
    """PSNR (dB, over every frame of every clip; None: identical) of a source's items, rounded to 8 bits
    as nervkit's writers round, against the raw frames."""
    sse, count = 0.0, 0
    for i in range(len(dataset)):
        item = dataset[i]
        v, s = item["video_index"], item["start"]
        ref = torch.from_numpy(raw[v, s : s + CLIP]).permute(0, 3, 1, 2).double()
        sse += float((to_uint8(item["frames"].cpu()).double() - ref).square().sum())
        count += ref.numel()
    return None if sse == 0 else float(10 * np.log10(255.0**2 / (sse / count)))


def markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    title = (f"# Neural dataloader throughput: {c['videos']} videos of {c['frames']} frames at {c['size']}, "
             f"clips of {c['clip_length']}, batch {c['batch_size']}")
    lines = [title, "",
             ("| source | bytes | PSNR vs raw (dB) | num_workers | clips/s | videos/s | frames/s "
              "| s/pass median (min–max) |"),
             "|---|---|---|---|---|---|---|---|"]
    for name, s in result["sources"].items():
        for r in s["runs"]:
            p = r["seconds_per_pass"]
            psnr = "exact" if s["psnr"] is None else f"{s['psnr']:.2f}"
            lines.append(f"| {name} | {s['bytes']:,} | {psnr} | {r['num_workers']} | {r['clips_per_s']:.1f} "
                         f"| {r['videos_per_s']:.2f} | {r['frames_per_s']:.0f} | {p['median']:.3f} "
                         f"({p['min']:.3f}–{p['max']:.3f}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=6, help="videos: this many of Bunny's 12 tiles")
    ap.add_argument("--frames", type=int, default=24, help="frames per video (a multiple of 8: no padding)")
    ap.add_argument("--params", default="0.2M", help="budget of each tiny model")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of each model (batch 4: 4 clips "
                    "of D-NeRV, 4 frames of NeRV)")
    ap.add_argument("--crf", type=int, default=23, help="H.264 CRF of the .mp4 baseline")
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="training threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu", help="where the .nerv items are decoded, and the models fitted")
    ap.add_argument("--out", default=str(ROOT / "results" / "dataloader.json"))
    args = ap.parse_args(argv)
    if args.frames % CLIP:
        ap.error(f"--frames must be a multiple of {CLIP}")
    workers = [int(w) for w in args.workers.split(",")]
    began = time.perf_counter()
    result: dict[str, Any] = {
        "schema": "nervkit-dataloader-bench/1",
        "command": "python benchmarks/dataloader.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "config": {"videos": args.tiles, "frames": args.frames, "size": "120x160", "clip_length": CLIP,
                   "batch_size": args.batch_size, "passes": args.passes, "params": args.params,
                   "epochs": args.epochs, "h264_crf": args.crf, "device": args.device,
                   "nerv_threads_per_item": 1, "torch_threads_main": torch.get_num_threads()},
        "sources": {},
        "load_average_start": os.getloadavg(),  # a shared machine: how busy it was
    }
    with tempfile.TemporaryDirectory(prefix="nervkit-dataloader-") as tmp:
        work = Path(tmp)
        data = prepare(work, args)
        result["config"]["names"] = data["names"]
        models = {m: fit_and_compress(work, m, data["mkv"], args) for m in ("d-nerv", "nerv")}
        print(f"prepared and fitted in {time.perf_counter() - began:.0f} s", flush=True)
        sources: dict[str, tuple[Dataset, dict[str, Any]]] = {}
        for m, info in models.items():
            ds = NervVideoDataset(info["path"], clip_length=CLIP, device=args.device)
            sources[f"{m} .nerv"] = (ds, {"bytes": info["bytes"], "parameters": info["parameters"],
                                         "psnr_from_file": info["psnr_from_file"],
                                         "fit_and_compress_seconds": info["fit_and_compress_seconds"]})
        sources[f"H.264 .mp4 (PyAV, CRF {args.crf})"] = (H264Clips(data["mp4"], args.frames),
                                                         {"bytes": data["bytes"]["h264"]})
        sources["raw uint8 .npy (memory-mapped)"] = (NpyClips(data["npy"]), {"bytes": data["bytes"]["npy"]})
        for name, (ds, info) in sources.items():
            entry = {**info, "psnr": quality(ds, data["raw"]), "runs": []}
            for w in workers:
                entry["runs"].append(passes(ds, w, args))
                r = entry["runs"][-1]
                print(f"{name}, num_workers {w}: {r['clips_per_s']:.1f} clips/s, {r['videos_per_s']:.2f} videos/s",
                      flush=True)
            result["sources"][name] = entry
    result["seconds"] = time.perf_counter() - began
    result["load_average_end"] = os.getloadavg()
    out = Path(args.out)
    write_json(out, result)
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
