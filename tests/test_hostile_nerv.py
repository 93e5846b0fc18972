"""Hostile inputs to the .nerv reader and to the model sizing (review hostile-inputs-2026-11, F6, F10, F12).

A real tiny NeRV file is made once; crafted variants of its header (valid CRCs: unpacked, edited and
repacked with the container module) must each give one ``nervkit: error:`` line and exit 2 from
``inspect``, ``decompress`` and ``interpolate``, leave no output behind, and allocate nothing the
header asks for. Absurd parameter budgets are refused before any model is built.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.compress.container import Section, pack, unpack
from nervkit.compress.model_codec import parse_nerv, read_nerv
from nervkit.errors import BitstreamError, ConfigError
from nervkit.io import write_video
from nervkit.models import VideoGeometry, get_method
from nervkit.models.memory import build_meta_model, check_model_memory
from nervkit.models.sizing import MAX_PARAM_BUDGET, parse_bpp_budget, parse_param_count
from nervkit.resources import available_memory_bytes

FIT = ["--epochs", 1, "--size", "36x64", "--threads", 1, "--quiet", "--no-video"]
ROOT = Path(__file__).resolve().parents[1]
#: address-space limit of the subprocess checks: torch and nervkit import in well under 1 GB of it
ADDRESS_LIMIT = 2 << 30


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    """(clip, .nerv file of a ~20k-parameter NeRV fitted for one epoch), made once."""
    root = tmp_path_factory.mktemp("hostile")
    clip = write_video(gradient_clip(8, 36, 64), root / "clip.mkv", lossless=True)
    run = root / "run"
    cli_ok("fit", clip, "-o", run, "--model", "nerv", "--params", "20k", *FIT)
    nerv = root / "video.nerv"
    cli_ok("compress", run, "-o", nerv, "--no-eval")
    return clip, nerv


def craft(data: bytes, edit: Callable[[dict], None], sections: Callable[[list], list] | None = None) -> bytes:
    """``data`` with its header JSON changed by ``edit`` (and its sections by ``sections``), repacked:
    every CRC is valid."""
    parts = unpack(data)
    header = json.loads(parts[0].payload)
    edit(header)
    rest = sections(parts[1:]) if sections else parts[1:]
    return pack([Section("header", "header", json.dumps(header).encode()), *rest])


def _set(path: str, value) -> Callable[[dict], None]:
    def edit(header: dict) -> None:
        *keys, last = path.split(".")
        target = header
        for k in keys:
            target = target[k]
        target[last] = value

    return edit


def _swap_first_two_weights(sections: list) -> list:
    """Two tensors' payloads exchanged (names kept): same names and totals, different shapes."""
    a, b = sections[0], sections[2]
    out = list(sections)
    out[0], out[2] = Section(a.kind, a.name, b.payload), Section(b.kind, b.name, a.payload)
    return out


def _swap_values(header: dict) -> None:
    t = header["tensors"]
    t[0]["values"], t[2]["values"] = t[2]["values"], t[0]["values"]


def _drop_last_tensor(header: dict) -> None:
    header["tensors"].pop()


CASES = {
    # name: (header edit, section edit or None, words the error names)
    "mlp_hidden_bomb": (_set("config.mlp_hidden", 1_000_000), None, ("describes a nerv model", "parameters")),
    "geometry_extra": (_set("geometry.depth", 3), None, ("geometry", "depth")),
    "geometry_str": (_set("geometry.height", "36"), None, ("geometry.height", "integer")),
    "geometry_missing": (lambda h: h["geometry"].pop("width"), None, ("geometry",)),
    "fps_str": (_set("video.fps", "abc"), None, ("video.fps",)),
    "fps_huge": (_set("video.fps", 1e300), None, ("video.fps",)),
    "fps_negative": (_set("video.fps", -1), None, ("video.fps",)),
    "fps_zero": (_set("video.fps", 0), None, ("video.fps",)),
    "fps_bool": (_set("video.fps", True), None, ("video.fps",)),
    "video_null": (_set("video", None), None, ("video",)),
    "method_unknown": (_set("method", "foo"), None, ("method", "'foo'")),
    "method_not_str": (_set("method", ["nerv"]), None, ("method",)),
    "config_unknown_key": (_set("config.turbo", 1), None, ("config", "turbo")),
    "config_strides_str": (_set("config.strides", "abc"), None, ("config.strides",)),
    "config_hidden_str": (_set("config.mlp_hidden", "512"), None, ("config.mlp_hidden", "integer")),
    "config_hidden_float": (_set("config.mlp_hidden", 32.5), None, ("config.mlp_hidden",)),
    "config_layers_huge": (_set("config.mlp_layers", 10**9), None, ("config.mlp_layers",)),
    "config_layers_many": (_set("config.mlp_layers", 100_000), None, ("layers and tensors",)),
    "config_choice": (_set("config.activation", "lava"), None, ("config.activation", "lava")),
    "config_not_dict": (_set("config", [1, 2]), None, ("config",)),
    "config_pe_levels": (_set("config.pe_levels", 39), None, ("describes a nerv model",)),
    "frames_huge": (_set("geometry.num_frames", 10**9), None, ("1,000,000,000 frames",)),
    "frames_zero": (_set("geometry.num_frames", 0), None, ("frames",)),
    "size_huge": (lambda h: h["geometry"].update(height=36000, width=64000), None, ("36000x64000",)),
    "size_other": (lambda h: h["geometry"].update(height=72, width=128), None, ("renders 36x64",)),
    "output_size": (_set("output_size", [1, 2]), None, ("output_size",)),
    "bits": (_set("quantization.bits", 99), None, ("quantization.bits",)),
    "values_lie": (lambda h: h["tensors"][0].update(values=5), None, ("values", "header says 5")),
    "shapes_swapped": (_swap_values, _swap_first_two_weights, ("has shape", "in the file but")),
    "tensor_missing": (_drop_last_tensor, lambda s: s[:-1],
                       ("do not fit its nerv model", "lacks tensor head.bias")),
    "tensors_not_list": (_set("tensors", {}), None, ("tensors",)),
}


@pytest.fixture(scope="module")
def crafted(made, tmp_path_factory) -> dict[str, Path]:
    _, nerv = made
    root = tmp_path_factory.mktemp("crafted")
    data = nerv.read_bytes()
    files = {}
    for name, (edit, sections, _) in CASES.items():
        files[name] = root / f"{name}.nerv"
        files[name].write_bytes(craft(data, edit, sections))
    return files


def _no_output(folder: Path, keep: set[str]) -> None:
    left = sorted(p.name for p in folder.iterdir() if p.name not in keep)
    assert not left, left


def test_the_real_file_passes_every_check(made, tmp_path: Path) -> None:
    _, nerv = made
    info = json.loads(cli_ok("inspect", nerv, "--json"))
    assert info["method"] == "nerv" and info["frames"] == 8 and info["size"] == [36, 64]
    cli_ok("decompress", nerv, "-o", tmp_path / "out.mkv")
    assert (tmp_path / "out.mkv").stat().st_size > 0
    # a repack without edits is as good as the original
    (tmp_path / "same.nerv").write_bytes(craft(nerv.read_bytes(), lambda h: None))
    assert read_nerv(tmp_path / "same.nerv").build_model().geometry == VideoGeometry(8, 36, 64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_headers_are_one_line_errors(case: str, crafted, tmp_path: Path) -> None:
    path, words = crafted[case], CASES[case][2]
    line = one_line_error(run_cli("inspect", path), *words)
    assert " --" not in line, line  # a problem of the file, not of a command-line option
    out = tmp_path / "out.mkv"
    assert one_line_error(run_cli("decompress", path, "-o", out), *words) == line
    _no_output(tmp_path, set())
    with pytest.raises(BitstreamError):
        parse_nerv(path.read_bytes())


@pytest.mark.parametrize("case", ["mlp_hidden_bomb", "frames_huge", "fps_str", "config_strides_str"])
def test_interpolate_refuses_crafted_files(case: str, crafted, tmp_path: Path) -> None:
    one_line_error(run_cli("interpolate", crafted[case], "--factor", 2, "-o", tmp_path / "x.mkv"),
                   *CASES[case][2])
    _no_output(tmp_path, set())


def test_a_wrong_type_is_reported_as_a_file_problem_not_a_cli_option(crafted) -> None:
    line = one_line_error(run_cli("inspect", crafted["config_strides_str"]))
    assert "--strides" not in line and "header" in line


def _limited(code: str, limit: int = ADDRESS_LIMIT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter under an address-space limit of ``limit`` bytes; the child
    reports its peak RSS on its last stdout line."""
    prologue = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
        def peak():
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_the_mlp_bomb_allocates_nothing_under_an_address_space_limit(crafted, tmp_path: Path) -> None:
    """F10: 3.9 GB RSS before the fix; now refused before the model exists (peak RSS stays small)."""
    out = tmp_path / "x.mkv"
    result = _limited(f"""
        from nervkit.cli.main import main
        code = main(["decompress", {str(crafted["mlp_hidden_bomb"])!r}, "-o", {str(out)!r}])
        peak()
        sys.exit(code)
    """)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nervkit: error:") and "describes a nerv model" in lines[0]
    assert int(result.stdout.splitlines()[-1]) < 1.5e9  # torch + nervkit alone: ~0.5 GB
    assert not out.exists()


def _constant_tensor(shape: tuple[int, ...], value: float = 0.25) -> bytes:
    """A quantized-tensor payload of a constant (one symbol: the histogram alone), built by hand so
    that the test allocates nothing of its size."""
    from nervkit.compress.tensor_codec import encode_shape
    from nervkit.compress.varint import encode_uvarint

    return (bytes([8, 0]) + encode_shape(shape) + struct.pack("<ff", value, 0.0) + b"\x00\x00\x00"
            + encode_uvarint(math.prod(shape)))


def test_a_consistent_but_huge_model_is_refused_by_the_memory_check(made, tmp_path: Path) -> None:
    """Header and tensors agree (constant tensors of the right shapes: a 60 KB file) but decoding them
    needs ~2 GB: refused from the shapes alone, before a tensor is decoded."""
    _, nerv = made
    hidden = 300_000
    header = json.loads(unpack(nerv.read_bytes())[0].payload)
    header["config"]["mlp_hidden"] = hidden
    meta = build_meta_model("nerv", header["config"], VideoGeometry(**header["geometry"]))
    shapes = {name: tuple(t.shape) for g in meta.stored_groups() for name, t in g.tensors.items()}
    for entry in header["tensors"]:
        entry["values"] = math.prod(shapes[entry["name"]])
    sections = [Section("tensor", e["name"], _constant_tensor(shapes[e["name"]])) for e in header["tensors"]]
    bomb = tmp_path / "consistent.nerv"
    bomb.write_bytes(pack([Section("header", "header", json.dumps(header).encode()), *sections]))
    assert bomb.stat().st_size < 100_000
    out = tmp_path / "x.mkv"
    result = _limited(f"""
        from nervkit.cli.main import main
        code = main(["decompress", {str(bomb)!r}, "-o", {str(out)!r}])
        peak()
        sys.exit(code)
    """)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "decoding the file's 8 tensors" in lines[0], lines
    assert "needs about" in lines[0], lines
    assert int(result.stdout.splitlines()[-1]) < 1.5e9
    assert not out.exists()


def test_build_model_checks_the_memory_it_needs(made) -> None:
    _, nerv = made
    parsed = read_nerv(nerv)
    with pytest.raises(BitstreamError, match="the file's nerv model has .* loading it needs about"):
        parsed.build_model(memory_limit=100_000)
    assert parsed.build_model(memory_limit=1 << 40).geometry.num_frames == 8
    del parsed.tensors["head.bias"]
    with pytest.raises(BitstreamError, match="do not fit its nerv model: it lacks tensor head.bias"):
        parsed.build_model()


# ------------------------------------------------------------------------------------------------ F6


@pytest.mark.parametrize("params", ["1e100", "1e30bpp", "inf", "2e11", "1001bpp"])
def test_absurd_budgets_are_refused_before_anything_is_built(params: str, made, tmp_path: Path) -> None:
    clip, _ = made
    out = tmp_path / "big"
    one_line_error(run_cli("fit", clip, "-o", out, "--params", params, *FIT), "--params", "absurd")
    assert not out.exists()


def test_parsers_bound_budgets() -> None:
    assert parse_param_count("1e11") == MAX_PARAM_BUDGET
    assert parse_bpp_budget("24bpp") == 24.0
    for text in ("1e100", "1.1e11", "inf", 10**400):
        with pytest.raises(ConfigError, match="absurd"):
            parse_param_count(text)
    with pytest.raises(ConfigError, match="absurd"):
        parse_bpp_budget("1e30bpp")
    with pytest.raises(ConfigError, match="absurd"):
        get_method("nerv").build_config(VideoGeometry(8, 36, 64), params=10**12)


@pytest.mark.parametrize("method, params, largest", [("nerv", 10**10, "2,7"), ("dnerv", 10**10, ""),
                                                     ("nvp", 3_000_000, "")])
def test_a_budget_above_the_largest_model_is_a_config_error(method: str, params: int, largest: str) -> None:
    """The solver's cap (NeRV's C = 4096: about 2.4-2.7 G parameters at 36x64) or NVP's full-resolution
    sparse grid: the error names the largest model the method builds for this video."""
    with pytest.raises(ConfigError, match=f"largest {method} model for this video has about {largest}"):
        get_method(method).build_config(VideoGeometry(8, 36, 64), params=params)


def test_fit_with_an_unreachable_budget_fails_on_one_line(made, tmp_path: Path) -> None:
    clip, _ = made
    out = tmp_path / "big"
    one_line_error(run_cli("fit", clip, "-o", out, "--params", "1e10", *FIT), "largest nerv model")
    assert not out.exists()


def test_check_model_memory_counts_training_copies_and_refuses() -> None:
    geometry = VideoGeometry(8, 36, 64)
    spec = get_method("nerv")
    config = spec.build_config(geometry, params=1_000_000)
    fits = check_model_memory(spec, config, geometry, training=False, limit=1 << 40)
    assert 0.9e6 < fits.parameters < 1.1e6 and fits.bytes == fits.weight_bytes
    training = check_model_memory("nerv", config, geometry, training=True, limit=1 << 40)
    assert training.bytes >= 4 * 4 * training.parameters
    # between the two: decoding fits, training does not
    limit = (fits.bytes + training.bytes) // 2
    check_model_memory(spec, config, geometry, training=False, limit=limit)
    with pytest.raises(ConfigError, match="training it needs about .* Adam"):
        check_model_memory(spec, config, geometry, training=True, limit=limit)
    with pytest.raises(BitstreamError, match="the file's nerv model"):
        check_model_memory(spec, config, geometry, training=False, limit=1000, error=BitstreamError)
    # a stored config dict works too, and a bad one is a one-line error of the chosen type
    from nervkit.models.config import config_to_dict

    check_model_memory("nerv", config_to_dict(config), geometry, training=True, limit=1 << 40)
    with pytest.raises(BitstreamError):
        check_model_memory("nerv", {"warp": 9}, geometry, training=True, error=BitstreamError)


def test_check_model_memory_reads_the_real_address_space_limit() -> None:
    """A 5e8-parameter NeRV (2 GB of weights, 8 GB to train) under a 2 GB RLIMIT_AS: refused from the
    limit alone, with nothing allocated."""
    result = _limited("""
        from nervkit.errors import ConfigError
        from nervkit.models import VideoGeometry, get_method
        from nervkit.models.memory import build_meta_model, check_model_memory
        from nervkit.resources import available_memory_bytes
        g = VideoGeometry(8, 36, 64)
        spec = get_method("nerv")
        config = spec.build_config(g, params=500_000_000)
        assert available_memory_bytes() < 2 << 30
        try:
            check_model_memory(spec, config, g, training=True)
        except ConfigError as exc:
            print(exc)
        peak()
    """)
    assert result.returncode == 0, result.stderr
    message, rss = result.stdout.splitlines()[-2:]
    assert message.startswith("the nerv model has") and "training it needs" in message, message
    assert int(rss) < 1.5e9


def test_available_memory_is_positive_and_bounded_by_meminfo() -> None:
    available = available_memory_bytes()
    assert 0 < available < 1 << 50
    from nervkit.data.frame_store import available_memory_bytes as old_name

    assert old_name is available_memory_bytes
