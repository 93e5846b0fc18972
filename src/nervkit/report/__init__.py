"""``nervkit report``: one self-contained HTML page a person can look at, for a run folder, a ``.nerv``
file or a ``bench rd`` folder.

- :mod:`.content` gathers what the input holds (frames, per-frame quality, byte breakdown, training
  history, RD curves and BD-rates);
- :mod:`.figures` draws it (PNG bytes);
- :mod:`.page` lays it out as HTML (images embedded as ``data:`` URIs: the file can be mailed or
  attached to an issue and opened offline) or stacks the pictures into one PNG.

Both files are written atomically after everything is drawn: a failure leaves no partial report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .content import DEFAULT_SHOWN, ReportContent, gather

__all__ = ["DEFAULT_SHOWN", "ReportContent", "gather", "write_report"]


def write_report(source: str | os.PathLike[str], out: str | os.PathLike[str], *, png: str | os.PathLike[str] | None = None,
                 shown: int = DEFAULT_SHOWN, device: str = "cpu", reference: str | None = None,
                 reference_frames: str | None = None) -> dict[str, Any]:
    """Write the HTML report on ``source`` (run folder, ``.nerv`` file or ``bench rd`` folder) to ``out``
    and, with ``png``, its pictures stacked in one PNG. ``shown``: frames shown side by side;
    ``reference``: the source video of a ``.nerv`` file (``reference_frames`` A:B: the fitted range of
    it), for error maps and per-frame quality. Returns the report's numbers (:meth:`ReportContent.summary`)
    with the paths written."""
    from .. import arguments
    from ..errors import ConfigError
    from ..io.atomic import write_bytes_atomic
    from ..io.outputs import check_file_target, check_output
    from ..train import resolve_device
    from ..version import version
    from .page import draw, to_html, to_png

    outputs = [Path(out)] + ([Path(png)] if png is not None else [])
    if png is not None and os.path.abspath(png) == os.path.abspath(out):
        raise ConfigError(f"--png and -o name the same file ({out}): give the PNG its own name")
    folders = [source] if Path(source).is_dir() else []  # nothing is written inside a run or RD folder
    for path in outputs:
        check_file_target(path)
        check_output(path, inputs=[source, reference], read_folders=folders)
    frame_range = arguments.frame_range("--reference-frames", reference_frames)
    content = gather(source, shown=int(shown), device=str(resolve_device(device)), reference=reference,
                     reference_frames=frame_range)
    page = draw(content)
    html_text = to_html(page, version())
    png_bytes = to_png(page) if png is not None else None
    write_bytes_atomic(out, html_text.encode("utf-8"))
    if png is not None and png_bytes is not None:
        write_bytes_atomic(png, png_bytes)
    return {**content.summary(), "html": str(out), "png": None if png is None else str(png),
            "html_bytes": len(html_text.encode("utf-8"))}
