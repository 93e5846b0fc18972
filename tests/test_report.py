"""``nervkit report``: a self-contained HTML page on a run folder, a .nerv file or a bench rd folder.

Checked by its structure (sections, embedded PNGs of the right sizes, the numbers equal to the run's and
the file's, nothing fetched from outside) and, where Debian's Chromium is installed (``make test``
installs it when it can), in that real headless browser: every image decodes, the frames are shown
enlarged, every section has a height, and a screenshot of the page is not blank.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_ok, one_line_error, run_cli
from PIL import Image

from nervkit.io import read_video
from nervkit.report.page import MIN_SHOWN_WIDTH

SAMPLE_FRAMES = "0:6"
SIZE = (36, 64)


class _Images(HTMLParser):
    """The report's <img> tags, <section> ids and every attribute value that names a URL."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, dict[str, str]] = {}
        self.sections: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "img":
            self.images[values["data-name"]] = values
        if tag == "section":
            self.sections.append(values["id"])
        self.urls += [v for k, v in values.items() if k in ("src", "href") and not v.startswith(("data:", "#"))]


def parse(page: Path) -> _Images:
    parser = _Images()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def png_of(img: dict[str, str]) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix):]))).convert("RGB"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    cli_ok("fit", "--sample", "--frames", SAMPLE_FRAMES, "--size", "36x64", "--model", "nerv", "--mlp-hidden", 16,
           "--grid-channels", 8, "--lower-width", 8, "--epochs", 4, "--eval-every", 2, "--no-video", "--quiet",
           "-o", out)
    return out


@pytest.fixture(scope="module")
def nerv_file(run_dir) -> Path:
    out = run_dir.parent / "clip.nerv"
    cli_ok("compress", run_dir, "-o", out, "--quiet")
    return out


@pytest.fixture(scope="module")
def rd_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-rd") / "rd"
    cli_ok("bench", "rd", "--sample", "--size", "36x64", "--frames", SAMPLE_FRAMES, "--methods", "nerv,x264",
           "--params", "0.01M,0.02M", "--epochs", 3, "--prune", 0, "--qat-epochs", 0, "--vmaf", "false", "--quiet",
           "-o", out)
    return out


def _sample_frames() -> np.ndarray:
    import nervkit

    video = read_video(nervkit.sample_video(), frames=_range(SAMPLE_FRAMES), size=SIZE)
    return video.frames.permute(0, 2, 3, 1).numpy()


def _range(text: str):
    from nervkit.io.frame_range import FrameRange

    return FrameRange.parse(text)


def test_run_report_shows_frames_quality_values_and_training(run_dir, tmp_path):
    page, picture = tmp_path / "run.html", tmp_path / "run.png"
    summary = json.loads(cli_ok("report", run_dir, "-o", page, "--png", picture, "--show", 3, "--json"))
    parsed = parse(page)
    assert parsed.sections == ["summary", "frames", "per-frame", "bytes", "training"]
    assert parsed.urls == [] and not parsed.tags & {"script", "link", "iframe"}  # self-contained, offline
    assert summary["frames_shown"] == [0, 2, 5]  # evenly spaced, first and last
    source = _sample_frames()
    for index in summary["frames_shown"]:
        shown = {kind: png_of(parsed.images[f"frame-{index}-{kind}"]) for kind in ("source", "decoded", "error")}
        assert all(image.shape == (*SIZE, 3) for image in shown.values())
        assert int(parsed.images[f"frame-{index}-source"]["width"]) == MIN_SHOWN_WIDTH  # a 64-pixel clip, enlarged
        np.testing.assert_array_equal(shown["source"], source[index])  # the run's own source frame
        assert np.abs(shown["decoded"].astype(int) - source[index]).mean() > 1  # a 4-epoch model is not exact
        assert shown["error"].std() > 5  # the error map shows where it is wrong
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary["per_frame"]["psnr"]["mean"] == pytest.approx(metrics["psnr"])
    assert summary["per_frame"]["psnr"]["frames"] == 6 and summary["epochs"] == 4
    assert summary["breakdown"]["unit"] == "values"
    import nervkit

    assert sum(summary["breakdown"]["parts"].values()) == nervkit.load(run_dir).model.parameter_counts().total
    for name in ("per-frame", "bytes", "training", "error-scale"):
        assert png_of(parsed.images[name]).std() > 10  # a drawn plot, not a blank image
    stacked = np.asarray(Image.open(picture).convert("RGB"))
    assert stacked.shape[1] >= 3 * MIN_SHOWN_WIDTH and stacked.shape[0] > 3 * SIZE[0] * 5
    assert (stacked < 250).any(axis=2).mean() > 0.2  # the frames and plots, not a white page


def test_file_report_with_reference_matches_the_compress_report(nerv_file, tmp_path):
    import nervkit

    page = tmp_path / "file.html"
    compressed = json.loads(cli_ok("inspect", nerv_file, "--json"))
    summary = json.loads(cli_ok("report", nerv_file, "-o", page, "--reference", nervkit.sample_video(),
                                "--reference-frames", SAMPLE_FRAMES, "--json"))
    parsed = parse(page)
    assert parsed.sections == ["summary", "frames", "per-frame", "bytes"]
    assert summary["breakdown"]["unit"] == "bytes"
    assert sum(summary["breakdown"]["parts"].values()) == compressed["bytes"]  # every byte of the file, once
    decoded = tmp_path / "decoded/"
    cli_ok("decompress", nerv_file, "-o", decoded, "--device", "cpu")
    first = np.asarray(Image.open(sorted(decoded.glob("*.png"))[0]).convert("RGB"))
    np.testing.assert_array_equal(png_of(parsed.images["frame-0-decoded"]), first)  # the file's own frames
    # per-frame PSNR of the decoded file against the source: the same frames the fit was measured on
    assert summary["per_frame"]["psnr"]["frames"] == 6
    assert "quality" in summary["facts"] and "reference" in summary["facts"]


def test_file_report_without_reference_shows_decoded_frames_only(nerv_file, tmp_path):
    page = tmp_path / "file.html"
    summary = json.loads(cli_ok("report", nerv_file, "-o", page, "--json"))
    parsed = parse(page)
    assert parsed.sections == ["summary", "frames", "bytes"]
    assert not any(name.endswith(("-source", "-error")) for name in parsed.images)
    assert any("--reference" in note for note in summary["notes"])


def test_rd_report_has_both_plots_and_the_bd_table(rd_dir, tmp_path):
    page = tmp_path / "rd.html"
    summary = json.loads(cli_ok("report", rd_dir, "-o", page, "--json"))
    parsed = parse(page)
    assert parsed.sections == ["summary", "rd", "bytes"]
    assert {"rd-psnr", "rd-ms-ssim"} <= set(parsed.images)
    assert summary["rd_series"] == ["nerv", "x264"] and summary["bd_anchor"] == "x264"
    text = page.read_text()
    assert "BD against x264" in text and text.count("<tr>") >= 2 + 7  # BD rows and one row per RD point


@pytest.mark.parametrize("case", ["missing", "empty-folder", "reference-for-run", "out-is-folder", "short-reference",
                                  "long-reference", "no-frames-shown", "png-is-the-page", "inside-the-run"])
def test_bad_input_is_one_line_and_writes_nothing(case, run_dir, nerv_file, tmp_path):
    import nervkit

    out = tmp_path / "r.html"
    args = {
        "missing": [tmp_path / "nothing-here", "-o", out],
        "empty-folder": [tmp_path, "-o", out],
        "reference-for-run": [run_dir, "-o", out, "--reference", nervkit.sample_video()],
        "out-is-folder": [run_dir, "-o", tmp_path],
        "short-reference": [nerv_file, "-o", out, "--reference", nervkit.sample_video(), "--reference-frames", "0:3"],
        "long-reference": [nerv_file, "-o", out, "--reference", nervkit.sample_video(), "--reference-frames", "0:9"],
        "no-frames-shown": [run_dir, "-o", out, "--show", 0],
        "png-is-the-page": [run_dir, "-o", out, "--png", out],
        "inside-the-run": [run_dir, "-o", run_dir / "r.html"],
    }[case]
    one_line_error(run_cli("report", *args))
    assert not out.exists() and not list(tmp_path.glob("*.html")) and not list(run_dir.glob("*.html"))


# ---- in a real browser -----------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: what Chromium needs here: no sandbox as root, no GPU, no network traffic of its own
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
#: appended to a copy of the page: what the browser made of it, written into the DOM once it has loaded
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({name: i.dataset.name, ok: i.complete && i.naturalWidth > 0,
    natural: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const sections = [...document.querySelectorAll("section")].map(s => ({id: s.id,
    height: s.getBoundingClientRect().height}));
  const pre = document.createElement("pre"); pre.id = "probe";
  pre.textContent = JSON.stringify({images, sections}); document.body.appendChild(pre);
});
</script></body>"""


def _chromium(*args: str, profile: Path) -> str:
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it where apt "
                                             "can); the report's structure is tested above")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    page = tmp_path / "run.html"
    cli_ok("report", run_dir, "-o", page, "--show", 2)
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.read_text().replace("</body>", PROBE))
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probe_page.as_uri(), profile=tmp_path / "p1")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    assert [s["id"] for s in probe["sections"]] == ["summary", "frames", "per-frame", "bytes", "training"]
    assert all(s["height"] > 50 for s in probe["sections"]), probe["sections"]
    assert probe["images"] and all(i["ok"] for i in probe["images"]), probe["images"]
    frames = [i for i in probe["images"] if i["name"].startswith("frame-")]
    assert len(frames) == 2 * 3 and all(i["natural"] == SIZE[1] and i["shown"] == MIN_SHOWN_WIDTH for i in frames)
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1300,2400", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "p2")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1300)
    assert (pixels < 250).any(axis=2).mean() > 0.15  # text, frames and plots: not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000  # real pictures, not flat boxes


def test_collection_frames_are_labelled_with_their_video_and_a_moved_source_is_a_note(tmp_path):
    from helpers import gradient_clip

    from nervkit.io import write_video

    first = write_video(gradient_clip(4, 36, 64), tmp_path / "first.mkv", fps=25, lossless=True)
    second = write_video(gradient_clip(4, 36, 64)[::-1], tmp_path / "second.mkv", fps=25, lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", first, second, "--model", "nerv", "--mlp-hidden", 16, "--grid-channels", 8, "--lower-width", 8,
           "--epochs", 2, "--no-video", "--quiet", "-o", run)
    summary = json.loads(cli_ok("report", run, "-o", tmp_path / "c.html", "--show", 3, "--json"))
    assert summary["facts"]["videos"] == "2: first, second" and summary["per_frame"]["psnr"]["frames"] == 8
    text = (tmp_path / "c.html").read_text()
    assert "first, frame 0" in text and "second, frame 3" in text  # frames 0 and 7 of the collection
    second.unlink()  # the source moved away: the decoded frames are still shown, and the report says why
    summary = json.loads(cli_ok("report", run, "-o", tmp_path / "d.html", "--json"))
    assert any("source frames not shown" in note for note in summary["notes"])
    assert not any(name.endswith("-source") for name in parse(tmp_path / "d.html").images)
