"""The installed nervkit's version, read from the package metadata (no torch: ``nervkit --version`` and
the CLI catalog's freshness check use it)."""

from __future__ import annotations


def version() -> str:
    """The version of the installed ``nervkit`` distribution; ``0+unknown`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("nervkit")
    except PackageNotFoundError:  # pragma: no cover - not installed
        return "0+unknown"
