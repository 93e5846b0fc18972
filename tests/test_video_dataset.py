"""The neural dataloader (issue #14): ``nervkit.data.NervVideoDataset`` yields decoded clips of a ``.nerv``
file of a collection (or of one video) to a standard DataLoader. A tiny NeRV is fitted to two real videos
through the CLI and compressed; the items equal ``nervkit decompress --video NAME`` bit for bit, worker
processes give the batches the main process gives, and bad inputs are one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from helpers import cli_ok, gradient_clip
from nervkit.data import NervVideoDataset, open_clip_source, register_opener
from nervkit.data.video_dataset import ModelFileSource, registered_suffixes
from nervkit.errors import BitstreamError, ConfigError, InputError
from nervkit.io import read_video, to_uint8, write_video

TINY = ["--mlp-hidden", "16", "--grid-channels", "8", "--lower-width", "8", "--threads", "1", "--quiet",
        "--no-video"]


def _clip(n: int, shift: int) -> list[np.ndarray]:
    return [np.roll(f, shift, axis=1) for f in gradient_clip(n, 36, 64)]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 2-video collection (a: 8 frames at 25 fps, b: 6 frames at 10 fps, 36x64) and a single video,
    each fitted for one epoch by a tiny NeRV and compressed to a .nerv file."""
    root = tmp_path_factory.mktemp("video_dataset")
    (root / "videos").mkdir()
    write_video(_clip(8, 0), root / "videos" / "a.mkv", fps=25, lossless=True)
    write_video(_clip(6, 17), root / "videos" / "b.mkv", fps=10, lossless=True)
    cli_ok("fit", root / "videos", "--epochs", 1, "-o", root / "run", *TINY)
    cli_ok("compress", root / "run", "-o", root / "c.nerv", "--no-eval")
    cli_ok("fit", root / "videos" / "b.mkv", "--epochs", 1, "-o", root / "one", *TINY)
    cli_ok("compress", root / "one", "-o", root / "one.nerv", "--no-eval")
    return {"root": root, "collection": root / "c.nerv", "single": root / "one.nerv"}


def _decompressed(nerv: Path, video: str, out: Path) -> torch.Tensor:
    """``nervkit decompress NERV --video VIDEO`` into a PNG folder, read back: (N, 3, H, W) uint8. Decoded
    with one thread, as the dataset decodes an item (threads=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cli_ok("decompress", nerv, "--video", video, "-o", out, "--lossless")
    finally:
        torch.set_num_threads(threads)
    return read_video(out).frames


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_clips_of_a_collection_equal_decompress_bit_for_bit(files):
    nerv = files["collection"]
    data = NervVideoDataset(nerv, clip_length=8, dtype=torch.uint8)
    assert [(v.name, v.first_frame, v.frames, v.fps) for v in data.videos] == [("a", 0, 8, 25.0), ("b", 8, 6, 10.0)]
    assert len(data) == 2 and data.video_clips("b") == [1] and data.video_clips(0) == [0]
    for name in ("a", "b"):
        expected = _decompressed(nerv, name, files["root"] / f"dec-{name}")
        (item,) = [data[i] for i in data.video_clips(name)]
        assert item["video"] == name and item["start"] == 0 and item["frames"].dtype == torch.uint8
        assert item["frames"].shape == (8, 3, 36, 64) and item["valid"] == len(expected)
        assert torch.equal(item["frames"][: item["valid"]], expected)  # bit for bit
    # float items are the same frames before rounding; padding repeats the last frame
    floats = NervVideoDataset(nerv, clip_length=8)
    b = floats[1]
    assert b["frames"].dtype == torch.float32 and 0 <= float(b["frames"].min()) <= float(b["frames"].max()) <= 1
    assert torch.equal(to_uint8(b["frames"]), data[1]["frames"])
    assert b["valid"] == 6 and all(torch.equal(b["frames"][j], b["frames"][5]) for j in (6, 7))


def test_clip_layout_stride_partial_and_selection(files):
    nerv = files["collection"]
    padded = NervVideoDataset(nerv, clip_length=4)
    assert [(c.video_index, c.start, c.valid) for c in padded.clips] == [(0, 0, 4), (0, 4, 4), (1, 0, 4), (1, 4, 2)]
    dropped = NervVideoDataset(nerv, clip_length=4, partial="drop")
    assert [(c.video_index, c.start, c.valid) for c in dropped.clips] == [(0, 0, 4), (0, 4, 4), (1, 0, 4)]
    strided = NervVideoDataset(nerv, clip_length=4, stride=2)
    assert [(c.video_index, c.start, c.valid) for c in strided.clips] == \
        [(0, 0, 4), (0, 2, 4), (0, 4, 4), (0, 6, 2), (1, 0, 4), (1, 2, 4), (1, 4, 2)]
    assert len(NervVideoDataset(nerv, clip_length=4, stride=2, partial="drop")) == 5
    # an overlapping clip shows the frames the clip it overlaps shows (same values, decoded on its own)
    assert torch.equal(to_uint8(strided[1]["frames"][:2]), to_uint8(padded[0]["frames"][2:]))
    item = padded[-1]
    assert (item["video"], item["video_index"], item["start"], item["valid"]) == ("b", 1, 4, 2)
    assert torch.equal(item["frames"][2], item["frames"][1]) and torch.equal(item["frames"][3], item["frames"][1])
    subset = Subset(padded, padded.video_clips("1"))
    assert [subset[i]["start"] for i in range(len(subset))] == [0, 4]
    with pytest.raises(ConfigError, match="no video 'c'"):
        padded.video_clips("c")
    with pytest.raises(IndexError):
        padded[len(padded)]
    # one video shorter than a clip: dropped, the other still gives clips
    long_clips = NervVideoDataset(nerv, clip_length=7, partial="drop")
    assert len(long_clips) == 1 and long_clips.video_clips("b") == []


def test_the_model_is_built_lazily_and_never_pickled(files):
    data = NervVideoDataset(files["collection"], clip_length=4)
    source = data.source()
    assert isinstance(source, ModelFileSource) and not source.built  # the header's videos only, so far
    first = data[0]["frames"]
    assert source.built and data.source() is source  # built once in this process
    blob = pickle.dumps(data)
    assert len(blob) < 4096 and b"ModelFileSource" not in blob  # path, options and the clip table
    copy = pickle.loads(blob)
    assert copy._source is None and len(copy) == len(data) and torch.equal(copy[0]["frames"], first)


def _batches(loader: DataLoader) -> list[dict]:
    return list(loader)


def _same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and x["video"] == y["video"]
        for key in ("frames", "video_index", "start", "valid"):
            assert torch.equal(x[key], y[key]), key


def test_dataloader_workers_give_the_main_process_batches(files):
    data = NervVideoDataset(files["collection"], clip_length=4)
    main = _batches(DataLoader(data, batch_size=2, num_workers=0))
    assert [b["frames"].shape for b in main] == [(2, 4, 3, 36, 64)] * 2
    assert main[1]["video"] == ["b", "b"] and main[1]["valid"].tolist() == [4, 2]
    _same_batches(main, _batches(DataLoader(data, batch_size=2, num_workers=2)))  # forked workers
    # shuffled, each item is still the same tensor
    shuffled = _batches(DataLoader(data, batch_size=2, num_workers=2, shuffle=True,
                                   generator=torch.Generator().manual_seed(3)))
    by_key = {(v, s): f for b in main for v, s, f in zip(b["video"], b["start"].tolist(), b["frames"])}
    for b in shuffled:
        for v, s, f in zip(b["video"], b["start"].tolist(), b["frames"]):
            assert torch.equal(f, by_key[(v, s)])


def test_a_spawned_worker_opens_the_file_itself(files):
    data = NervVideoDataset(files["collection"], clip_length=8, dtype=torch.uint8)
    spawned = _batches(DataLoader(data, batch_size=2, num_workers=1, multiprocessing_context="spawn"))
    _same_batches(_batches(DataLoader(data, batch_size=2)), spawned)


def test_a_single_video_file_is_a_collection_of_one(files):
    data = NervVideoDataset(files["single"], clip_length=4, dtype=torch.uint8)
    assert [(v.name, v.first_frame, v.frames, v.fps) for v in data.videos] == [("b", 0, 6, 10.0)]
    assert [(c.start, c.valid) for c in data.clips] == [(0, 4), (4, 2)]
    expected = _decompressed(files["single"], "b", files["root"] / "dec-single")
    frames = torch.cat([data[0]["frames"], data[1]["frames"][:2]])
    assert expected.shape == (6, 3, 36, 64)
    # decompress decodes all six frames at once, the dataset 4 + 2: equal after rounding to 8 bits
    assert (frames.int() - expected.int()).abs().max() <= 1
    assert len(NervVideoDataset(files["single"], clip_length=6, partial="drop")) == 1


def test_bad_inputs_are_one_line_errors(files, tmp_path):
    nerv = files["collection"]
    with pytest.raises(InputError, match="no such file"):
        NervVideoDataset(tmp_path / "missing.nerv")
    with pytest.raises(InputError, match=r"no clip reader for \.mp4 files \(readers: .*\.nerv"):
        NervVideoDataset(tmp_path / "video.mp4")
    (tmp_path / "folder.nerv").mkdir()
    with pytest.raises(InputError, match="is not a file"):
        NervVideoDataset(tmp_path / "folder.nerv")
    corrupt = tmp_path / "corrupt.nerv"
    data = nerv.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    with pytest.raises(BitstreamError) as exc:
        NervVideoDataset(corrupt)
    assert "corrupt.nerv" in _one_line(exc)
    garbage = tmp_path / "garbage.nerv"
    garbage.write_bytes(b"not a nerv file at all" * 10)
    with pytest.raises(BitstreamError) as exc:
        NervVideoDataset(garbage)
    _one_line(exc)
    for options, words in [({"clip_length": 0}, "clip_length must be at least 1, got 0"),
                           ({"clip_length": 2.5}, "clip_length must be an integer"),
                           ({"stride": 0}, "stride must be at least 1"),
                           ({"partial": "wrap"}, "partial must be one of pad, drop"),
                           ({"dtype": torch.int32}, "dtype must be a float dtype or torch.uint8"),
                           ({"threads": 0}, "threads must be at least 1"),
                           ({"device": "tpu"}, "device"),
                           ({"clip_length": 9, "partial": "drop"}, "no clip of 9 frames: the longest of its 2 "
                                                                   "video(s) has 8 frames")]:
        with pytest.raises(ConfigError) as exc:
            NervVideoDataset(nerv, **options)
        assert words in _one_line(exc), (options, str(exc.value))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            NervVideoDataset(nerv, device="cuda")


def test_a_registered_opener_serves_another_file_type(tmp_path):
    """The data layer reads any clip source: a test opener for '.fake' files."""

    class Fake:
        def __init__(self, path: Path) -> None:
            self.videos = [{"name": path.stem, "first_frame": 0, "frames": 3, "fps": 5.0}]

        def decode(self, indices):
            idx = torch.as_tensor(list(indices), dtype=torch.float32)
            return (idx / 10).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()

    assert ".fake" not in registered_suffixes()
    register_opener(".fake", Fake)
    try:
        (tmp_path / "x.fake").write_bytes(b"")
        assert isinstance(open_clip_source(tmp_path / "x.fake"), Fake)
        data = NervVideoDataset(tmp_path / "x.fake", clip_length=2)
        assert len(data) == 2 and data.videos[0].name == "x"
        assert data[1]["frames"][:, 0, 0, 0].tolist() == pytest.approx([0.2, 0.2]) and data[1]["valid"] == 1
    finally:
        from nervkit.data import video_dataset

        video_dataset._OPENERS.pop(".fake")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_decoding_in_the_main_process_and_spawned_workers(files):
    data = NervVideoDataset(files["collection"], clip_length=4, device="cuda")
    item = data[0]
    assert item["frames"].device.type == "cuda"
    cpu = NervVideoDataset(files["collection"], clip_length=4, dtype=torch.uint8)
    assert (to_uint8(item["frames"]).cpu().int() - cpu[0]["frames"].int()).abs().max() <= 1
    main = _batches(DataLoader(data, batch_size=2))
    spawned = _batches(DataLoader(data, batch_size=2, num_workers=1, multiprocessing_context="spawn"))
    _same_batches([{**b, "frames": b["frames"].cpu()} for b in main],
                  [{**b, "frames": b["frames"].cpu()} for b in spawned])
