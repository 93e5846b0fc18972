"""Shell completion scripts for ``nervkit`` (``nervkit completion bash|zsh``).

The script is generated once from the command's own parser, so it lists exactly the subcommands and
options ``nervkit`` has (``fit``'s architecture options of every method, ``bench``'s sub-benchmarks); it
is plain shell afterwards — completing a word starts no Python, so it answers at once. Method names
complete after ``--model``, file names everywhere else. zsh uses the same function through
``bashcompinit``.

The script is :func:`render_script` of a table of words (:func:`completion_words`: subcommand → its
options). ``nervkit completion`` takes that table from the shipped CLI catalog when it is valid
(:mod:`.catalog`, no torch), else from the live parser (:func:`live_script`); both give the same text.
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


def completion_words(parser: argparse.ArgumentParser,
                     fit_parsers: dict[str, argparse.ArgumentParser]) -> dict[str, list[str]]:
    """Each subcommand of the top-level ``parser`` (in its order) → the words it completes: its
    sub-subcommands, then its ``--options`` (``fit``: those of every method's parser in ``fit_parsers``)."""
    words = {}
    for name, sub in _subparsers(parser).items():
        options = set(_options(sub))
        if name == "fit":
            for fit in fit_parsers.values():
                options.update(_options(fit))
        nested = _subparsers(sub)
        for child in nested.values():
            options.update(_options(child))
        words[name] = sorted(nested) + sorted(options)
    return words


def render_script(shell: str, words: dict[str, list[str]], methods: list[str]) -> str:
    """The script for ``shell`` from :func:`completion_words`' table and the method names (no parser
    needed: the CLI catalog's fast path renders it from stored words)."""
    cases = [f"        {shlex.quote(name)}) words={shlex.quote(' '.join(w))} ;;" for name, w in words.items()]
    body = f"""# nervkit {shell} completion: eval "$(nervkit completion {shell})"
_nervkit() {{
    local cur prev words cmd
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W {shlex.quote(" ".join(sorted(words)) + " --help --version")} -- "$cur") )
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


def live_table() -> tuple[dict[str, list[str]], list[str]]:
    """:func:`completion_words` of the full parser (``fit`` once per method) and the registered methods'
    names: what the script is made of (imports the models, so torch)."""
    from ..models import list_methods
    from .main import build_parser

    methods = list_methods()
    fits = {m: _subparsers(build_parser(["fit", "--model", m]))["fit"] for m in methods}
    return completion_words(build_parser(), fits), methods


def live_script(shell: str) -> str:
    """The script for ``shell`` from the live parser and registry."""
    return render_script(shell, *live_table())
