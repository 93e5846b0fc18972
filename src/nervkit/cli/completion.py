"""Shell completion scripts for ``nervkit`` (``nervkit completion bash|zsh``).

The script is generated once from the command's own parser, so it lists exactly the subcommands and
options ``nervkit`` has (``fit``'s architecture options of every method, ``bench``'s sub-benchmarks); it
is plain shell afterwards — completing a word starts no Python, so it answers at once. Method names
complete after ``--model``, file names everywhere else. zsh uses the same function through
``bashcompinit``.
"""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")})


def completion_script(shell: str, parser: argparse.ArgumentParser, fit_parsers: dict[str, argparse.ArgumentParser],
                      methods: list[str]) -> str:
    """The completion script for ``shell`` from the top-level ``parser``; ``fit_parsers``: fit's parser for
    each method (its architecture options differ), ``methods``: the names ``--model`` takes."""
    commands = _subparsers(parser)
    cases = []
    for name, sub in commands.items():
        options = set(_options(sub))
        if name == "fit":
            for fit in fit_parsers.values():
                options.update(_options(fit))
        nested = _subparsers(sub)
        for child in nested.values():
            options.update(_options(child))
        words = " ".join(sorted(nested) + sorted(options))
        cases.append(f"        {shlex.quote(name)}) words={shlex.quote(words)} ;;")
    body = f"""# nervkit {shell} completion: eval "$(nervkit completion {shell})"
_nervkit() {{
    local cur prev words cmd
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W {shlex.quote(" ".join(sorted(commands)) + " --help --version")} -- "$cur") )
        return
    fi
    if [[ "$prev" == "--model" ]]; then
        COMPREPLY=( $(compgen -W {shlex.quote(" ".join(methods))} -- "$cur") )
        return
    fi
    cmd="${{COMP_WORDS[1]}}"
    case "$cmd" in
{chr(10).join(cases)}
        *) words="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$words" -- "$cur") )
    else
        COMPREPLY=( $(compgen -f -- "$cur") $(compgen -W "$words" -- "$cur") )
    fi
}}
complete -o filenames -F _nervkit nervkit
"""
    if shell == "zsh":
        body = "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
