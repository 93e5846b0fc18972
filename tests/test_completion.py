"""``nervkit completion bash|zsh``: the script, run by a real bash, completes subcommands, options and methods."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers import cli_ok, run_cli


def _complete(script: Path, words: list[str]) -> list[str]:
    """COMPREPLY of the script's function for the command line ``words`` (the last one being completed)."""
    program = (f"source {script}; COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
               "_nervkit; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.split()


def test_bash_completes_subcommands_options_and_methods(tmp_path: Path) -> None:
    assert shutil.which("bash")
    script = tmp_path / "nervkit.bash"
    script.write_text(cli_ok("completion", "bash"))
    assert "fit" in _complete(script, ["nervkit", "f"]) and "models" not in _complete(script, ["nervkit", "f"])
    assert _complete(script, ["nervkit", "fit", "--model", "hi"]) == ["hinerv"]
    fit_options = _complete(script, ["nervkit", "fit", "--pat"])
    assert "--patch-size" in fit_options  # a training option
    assert "--encoding-channels" in _complete(script, ["nervkit", "fit", "--enc"])  # an architecture option (hinerv)
    assert _complete(script, ["nervkit", "decompress", "--sam"]) == ["--sample"]
    assert "plot" in _complete(script, ["nervkit", "bench", "p"])


def test_zsh_script_uses_bashcompinit_and_bad_shell_is_one_line() -> None:
    out = cli_ok("completion", "zsh")
    assert out.startswith("autoload -U +X bashcompinit && bashcompinit") and "complete -o filenames -F _nervkit nervkit" in out
    code, _, err = run_cli("completion", "fish")
    assert code == 2 and len(err.splitlines()) == 1 and "invalid choice: 'fish'" in err and "Traceback" not in err
