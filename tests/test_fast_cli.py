"""The light command lines (``nervkit``, ``--help``, ``--version``, ``models``, ``completion bash|zsh``)
answer from the shipped CLI catalog without importing torch, with exactly the full CLI's output; the
catalog is fresh; it is not trusted where it could be wrong (a plugin, another version, a bad file).

Every process-level check runs in a fresh interpreter: this one has torch and the models loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nervkit
from nervkit.cli import catalog, fast

LIGHT = [[], ["--help"], ["-h"], ["--version"], ["models"], ["completion", "bash"], ["completion", "zsh"]]
HEAVY = ("torch", "nervkit.models", "nervkit.api")

#: run nervkit.cli.main.main on each argv of the JSON list in argv[1]; print the (code, stdout, stderr)
#: of each and which heavy modules the process imported
RUNNER = """
import contextlib, io, json, sys
{prelude}
from nervkit.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps({{"results": results, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "80", **extra}  # the same help layout in every process
    env.pop("NERVKIT_DEBUG", None)
    return env


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or _env(), timeout=300,
                          check=False)


def _run(argvs: list[list[str]], prelude: str = "", env: dict[str, str] | None = None) -> dict:
    """The RUNNER in a fresh interpreter."""
    done = _python("-c", RUNNER.format(prelude=prelude, heavy=HEAVY), json.dumps(argvs), env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def live() -> list[list]:
    """Each light command line answered by the full CLI (the models imported first: the catalog is not
    trusted then)."""
    prelude = "import nervkit.models\nfrom nervkit.cli import catalog\nassert catalog.load() is None"
    ran = _run(LIGHT, prelude=prelude)
    assert "torch" in ran["heavy"]
    return ran["results"]


@pytest.mark.parametrize("argv", LIGHT, ids=lambda argv: " ".join(argv) or "no-args")
def test_light_command_lines_skip_torch_and_print_what_the_full_cli_prints(argv: list[str], live) -> None:
    ran = _run([argv])  # a fresh process for each
    assert ran["heavy"] == [], f"nervkit {' '.join(argv)} imported {ran['heavy']}"
    assert ran["results"][0] == live[LIGHT.index(argv)]


def test_the_live_answers_are_the_real_ones(live) -> None:
    answers = dict(zip(map(tuple, LIGHT), live))
    assert answers[()][0] == 2 and answers[()][2].strip() == ("nervkit: error: the following arguments are "
                                                              "required: COMMAND (see nervkit --help)")
    assert answers[("--version",)] == [0, f"nervkit {nervkit.version.version()}\n", ""]
    code, out, _ = answers[("--help",)]
    assert code == 0 and out.startswith("usage: nervkit")
    for command in ("fit", "decode", "compress", "bench", "models", "completion"):
        assert f"\n    {command} " in out or f"\n    {command}\n" in out, command
    assert answers[("models",)][1].startswith("d-nerv: ") and "\nnerv: " in answers[("models",)][1]
    assert "complete -o filenames -F _nervkit nervkit" in answers[("completion", "bash")][1]


def test_the_shipped_catalog_is_fresh() -> None:
    done = _python("-m", "nervkit.cli.catalog")
    assert done.returncode == 0, done.stderr
    shipped = json.loads(catalog.PATH.read_text(encoding="utf-8"))
    assert json.loads(done.stdout) == shipped, (
        f"{catalog.PATH} is stale (a subcommand, option or method changed): regenerate it with "
        f"`{catalog.REGENERATE}` and commit it")


def _shipped() -> dict:
    return json.loads(catalog.PATH.read_text(encoding="utf-8"))


def test_the_catalog_is_trusted_only_when_it_describes_this_nervkit(tmp_path: Path) -> None:
    def read(data: object) -> dict | None:
        path = tmp_path / "catalog.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return catalog.read(path)

    assert catalog.read(catalog.PATH) == _shipped()
    assert catalog.read(tmp_path / "missing.json") is None
    assert read("{not json") is None
    assert read([1, 2]) is None
    assert read({**_shipped(), "nervkit": "0.0.0-other"}) is None
    assert read({**_shipped(), "format": "nervkit-cli-catalog/999"}) is None
    assert read({k: v for k, v in _shipped().items() if k != "methods"}) is None
    # an entry-point group with entries stands for an installed method plugin (nervkit's own script)
    assert read({**_shipped(), "plugin_group": "console_scripts"}) is None
    import nervkit.models  # noqa: F401  (a method may be registered in this process: the live answer)

    assert catalog.load() is None


def test_a_damaged_catalog_leaves_the_answer_to_the_full_cli() -> None:
    damaged = {**_shipped(), "methods": [{"name": "nerv"}], "commands": "fit", "completion": {}}
    for argv in LIGHT:
        assert fast.respond(argv, damaged) is None, argv
    assert fast.answer(["fit", "--help"]) is None  # not a light command line


def test_an_installed_plugin_is_listed_and_completed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "toy_nervkit_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "toy_method.py").write_text((Path(__file__).parent / "plugins" / "toy_method.py").read_text())
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-nervkit-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nervkit.methods]\ntoy = toy_method\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    ran = _run([["models"], ["completion", "bash"]], env=env)
    (code, listed, _), (_, script, _) = ran["results"]
    assert code == 0 and "toy: test fixture" in listed
    assert "compgen -W 'd-nerv dnerv enerv hinerv hnerv nerv nvp toy'" in script
    assert "torch" in ran["heavy"]  # the live path


LAZY_API = """
import sys, nervkit
assert not [m for m in sys.modules if m == "torch" or m.startswith("nervkit.")], sorted(sys.modules)
assert set(nervkit.__all__) <= set(dir(nervkit))
from nervkit import fit, compress, NervkitError, TrainConfig
from nervkit.api import fit as api_fit
from nervkit.errors import NervkitError as error
import nervkit.compress.config  # the subpackage of the same name does not hide the function
assert fit is api_fit and NervkitError is error
assert compress is nervkit.compression.compress is nervkit.compress
assert all(getattr(nervkit, name) is not None for name in nervkit.__all__)
try:
    nervkit.no_such_name
except AttributeError:
    pass
else:
    raise SystemExit("no AttributeError")
"""


def test_import_nervkit_is_light_and_the_api_is_there() -> None:
    done = _python("-c", LAZY_API)
    assert done.returncode == 0, done.stderr


NERV_CLIPS = """
from nervkit.data import NervVideoDataset
from nervkit.data.video_dataset import registered_suffixes
assert ".nerv" in registered_suffixes()
import nervkit
print(len(NervVideoDataset(nervkit.sample_nerv(), clip_length=4)))
"""


def test_a_fresh_process_reads_a_nerv_file_as_clips_without_importing_the_compressor_first() -> None:
    """``import nervkit`` no longer imports everything: the .nerv opener is imported when first needed."""
    done = _python("-c", NERV_CLIPS)
    assert done.returncode == 0 and int(done.stdout) > 0, done.stderr
