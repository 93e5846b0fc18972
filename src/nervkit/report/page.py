"""The report as one self-contained HTML page (every image a ``data:`` URI, inline CSS, no script, no
network), and as one PNG (``--png``: the same pictures stacked, for a slide or an issue).

Sections, in this order (each an element with a fixed id, so tests and links can find them):
``summary`` (facts and notes), ``frames`` (source | decoded | error map for the shown frames),
``per-frame`` (PSNR / MS-SSIM over time), ``rd`` (RD plots, BD-rates, the points), ``bytes`` (the
breakdown bar), ``training`` (loss, PSNR, learning rate per epoch). A section with nothing to show is left out.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from . import figures
from .content import ReportContent

#: frames narrower than this are shown enlarged (pixelated), so a 64-pixel-wide test clip is visible
MIN_SHOWN_WIDTH = 320

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1280px;
       color: #1d1d1f; padding: 0 16px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em;
       border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f5f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.frames td { border: none; padding: 2px 6px; text-align: center; }
.frames img { image-rendering: pixelated; display: block; }
.caption { color: #555; font-size: 0.85em; margin: 4px 0 10px; }
.note { background: #fff8e1; border-left: 3px solid #f0b400; padding: 4px 10px; margin: 4px 0; font-size: 0.9em; }
img.plot { max-width: 100%; }
.row { display: flex; gap: 12px; flex-wrap: wrap; } .row img.plot { max-width: 49%; }
footer { margin-top: 2em; color: #888; font-size: 0.8em; }
"""


@dataclass
class Picture:
    """One image of the report: its PNG bytes, alt text and the HTML display width (None = natural)."""

    name: str
    png: bytes
    alt: str
    width: int | None = None
    row: str | None = None  # pictures with the same row key sit side by side in the stacked PNG

    def tag(self, css_class: str = "plot") -> str:
        uri = "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")
        width = f' width="{self.width}"' if self.width else ""
        return (f'<img class="{css_class}" src="{uri}" alt="{html.escape(self.alt)}" '
                f'data-name="{html.escape(self.name)}"{width}>')


@dataclass
class Page:
    """The drawn report: HTML sections in order and every picture (for ``--png``)."""

    title: str
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (id, heading, inner HTML)
    pictures: list[Picture] = field(default_factory=list)

    def add(self, section_id: str, heading: str, body: str) -> None:
        self.sections.append((section_id, heading, body))

    def picture(self, picture: Picture, css_class: str = "plot") -> str:
        self.pictures.append(picture)
        return picture.tag(css_class)


def _table(header: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if i in numeric
                                     else f"<td>{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(value: object, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def draw(content: ReportContent) -> Page:
    """Draw every picture of ``content`` and lay the sections out."""
    page = Page(content.title)
    summary = _table(["", ""], [[k, v] for k, v in content.facts])
    summary += "".join(f'<div class="note">{html.escape(n)}</div>' for n in content.notes)
    page.add("summary", "Summary", summary)
    if content.frames:
        page.add("frames", "Frames", _frames_html(page, content))
    shown = [row.index for row in content.frames]
    if content.per_frame:
        body = page.picture(Picture("per-frame", figures.per_frame_png(content.per_frame, shown, content.videos),
                                    "per-frame quality"))
        page.add("per-frame", "Quality per frame", body + f'<p class="caption">{html.escape(content.per_frame_caption)}</p>')
    if content.rd_curves:
        page.add("rd", "Rate–distortion", _rd_html(page, content))
    if content.breakdown is not None:
        body = page.picture(Picture("bytes", figures.breakdown_png(content.breakdown), "byte breakdown"))
        rows = [[name, f"{amount:,}", f"{100 * amount / max(1, sum(content.breakdown.parts.values())):.1f} %"]
                for name, amount in content.breakdown.parts.items()]
        body += _table(["part", content.breakdown.unit, "share"], rows, {1, 2})
        heading = "Bytes" if content.breakdown.unit == "bytes" else "Stored values"
        page.add("bytes", heading, body + f'<p class="caption">{html.escape(content.breakdown.caption)}</p>')
    if content.epochs:
        body = page.picture(Picture("training", figures.training_png(content.epochs, content.evals),
                                    "training curves"))
        page.add("training", "Training", body + f'<p class="caption">{len(content.epochs)} epochs, '
                 f"{len(content.evals)} evaluations (history.json)</p>")
    return page


def _frames_html(page: Page, content: ReportContent) -> str:
    errors = {row.index: figures.frame_error(row) for row in content.frames if row.source is not None}
    scale = figures.error_scale(list(errors.values()))
    has_source = bool(errors)
    columns = ["frame", "source", "decoded", "error"] if has_source else ["frame", "decoded"]
    rows = []
    for row in content.frames:
        shown = max(row.decoded.shape[1], MIN_SHOWN_WIDTH)
        label = (f"{row.index}" + ("" if row.video is None else f"<br>{html.escape(row.video)}")
                 + ("" if row.psnr is None else f"<br>{row.psnr:.2f} dB"))
        cells = [label]
        images = ([("source", row.source)] if row.source is not None else []) + [("decoded", row.decoded)]
        if row.source is not None:
            images.append(("error", figures.error_map(errors[row.index], scale)))
        for kind, image in images:
            cells.append(page.picture(Picture(f"frame-{row.index}-{kind}", figures.image_png(image),
                                              f"frame {row.index} {kind}", shown, row=f"frame-{row.index}"),
                                      "frame"))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = f'<table class="frames"><tr>{head}</tr>{"".join(rows)}</table>'
    if has_source:
        body += page.picture(Picture("error-scale", figures.colorbar_png(scale), "error scale"))
        body += (f'<p class="caption">Error maps: black = no error, white = {scale:.1f} levels or more '
                 "(the 99.5th percentile of the shown frames); PSNR of each shown frame under its index.</p>")
    return body


def _rd_html(page: Page, content: ReportContent) -> str:
    labels = {"psnr": "PSNR", "ms-ssim": "MS-SSIM"}
    body = '<div class="row">' + "".join(
        page.picture(Picture(f"rd-{metric}", figures.rd_png(curves, metric), f"RD curves, {metric}"))
        for metric, curves in content.rd_curves.items()) + "</div>"
    if content.bd_table:
        body += (f"<h3>BD against {html.escape(str(content.bd_anchor))}</h3><p class=\"caption\">Negative BD-rate: "
                 "fewer bits than the anchor for the same quality.</p>")
        body += _table(["series", f"BD-rate {labels['psnr']} (%)", f"BD-rate {labels['ms-ssim']} (%)",
                        "BD-PSNR (dB)", "note"],
                       [[r["series"], _num(r["bd_rate_psnr"], "+.1f"), _num(r["bd_rate_ms_ssim"], "+.1f"),
                         _num(r["bd_psnr"], "+.2f"), r["note"]] for r in content.bd_table], {1, 2, 3})
    if content.rd_table:
        body += "<h3>Points</h3>" + _table(
            ["series", "bpp", "PSNR (dB)", "MS-SSIM", "VMAF"],
            [[r["series"], _num(r["bpp"], ".4f"), _num(r["psnr"], ".2f"), _num(r["ms_ssim"], ".4f"),
              _num(r["vmaf"], ".2f")] for r in content.rd_table], {1, 2, 3, 4})
    return body


def to_html(page: Page, version: str) -> str:
    nav = " · ".join(f'<a href="#{sid}">{html.escape(heading)}</a>' for sid, heading, _ in page.sections)
    sections = "\n".join(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>\n{body}\n</section>'
                         for sid, heading, body in page.sections)
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="generator" content="nervkit {html.escape(version)}">\n'
            f"<title>{html.escape(page.title)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(page.title)}</h1>\n<nav>{nav}</nav>\n{sections}\n"
            f"<footer>nervkit {html.escape(version)} report, {stamp}</footer>\n</body></html>\n")


def to_png(page: Page) -> bytes:
    """Every picture of ``page`` stacked top to bottom under the title (the frames three to a row:
    source, decoded, error), on white."""
    from PIL import Image, ImageDraw

    rows: list[list[Image.Image]] = []
    previous: str | None = None
    for picture in page.pictures:
        image = Image.open(io.BytesIO(picture.png)).convert("RGB")
        if picture.width and picture.width > image.width:
            image = image.resize((picture.width, round(image.height * picture.width / image.width)),
                                 Image.Resampling.NEAREST)
        if picture.row is not None and picture.row == previous:
            rows[-1].append(image)
        else:
            rows.append([image])
        previous = picture.row
    gap, title_height = 8, 40
    width = max([sum(i.width for i in row) + gap * (len(row) - 1) for row in rows] + [400]) + 2 * gap
    height = title_height + sum(max(i.height for i in row) + gap for row in rows) + gap
    canvas = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(canvas).text((gap, 10), page.title, fill="black", font_size=20)
    y = title_height
    for row in rows:
        x = gap
        for image in row:
            canvas.paste(image, (x, y))
            x += image.width + gap
        y += max(i.height for i in row) + gap
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
