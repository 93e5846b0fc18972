"""The ``nervkit`` command line: fit, decode, interpolate, inpaint, eval, info, models, compress, bench.

Every user error prints one line ``nervkit: error: …`` and exits with status 2; an interrupted fit
says how to resume (exit 130); an unexpected failure prints one line too (set NERVKIT_DEBUG=1 for
the traceback).

``nervkit``, ``--help``, ``--version``, ``models`` and ``completion bash|zsh`` are answered by :mod:`.fast`
from the shipped CLI catalog (:mod:`.catalog`) without importing torch, when the catalog is valid; every
other command line builds the full parser (:func:`build_parser`), whose builders import what they need.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ..errors import NervkitError, user_error_from
from ..version import version
from . import fast
from .parser import top_level_parser


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full ``nervkit`` parser; ``argv`` decides which method's architecture options ``fit`` lists."""
    from . import builders  # the subcommands' options come from the config classes and models: torch

    parser, sub = top_level_parser(version())
    builders.add_fit(sub, argv)
    for add in builders.BUILDERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("NERVKIT_DEBUG"))
    try:
        answered = fast.answer(args_list)  # --help, --version, models, completion: from the catalog
        if answered is not None:
            return answered
        from ..fitting import invoked_as

        args = build_parser(args_list).parse_args(args_list)
        with invoked_as(["nervkit", *args_list]):  # recorded in run.json's provenance
            return int(args.handler(args) or 0)
    except NervkitError as exc:
        if debug:
            traceback.print_exc()
        print(f"nervkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nervkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
        if debug:
            traceback.print_exc()
        user_error = user_error_from(exc)  # disk full, read-only, permissions, out of memory
        if user_error is not None:
            print(f"nervkit: error: {user_error}", file=sys.stderr)
            return user_error.exit_code
        message = " ".join(str(exc).split())[:300]
        print(f"nervkit: internal error: {type(exc).__name__}: {message} (set NERVKIT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
