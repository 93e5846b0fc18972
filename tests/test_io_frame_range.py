"""nervkit.io.FrameRange and parse_size: text parsing, slice semantics, errors."""

from __future__ import annotations

import pytest

from nervkit.errors import ConfigError
from nervkit.io import FrameRange, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:10", FrameRange(3, 10, 1)),
        ("3:", FrameRange(3, None, 1)),
        (":10", FrameRange(0, 10, 1)),
        (":", FrameRange(0, None, 1)),
        ("0:10:2", FrameRange(0, 10, 2)),
        ("::3", FrameRange(0, None, 3)),
        ("5", FrameRange(5, 6, 1)),
        (" 2 : 8 ", FrameRange(2, 8, 1)),
    ],
)
def test_parse(text, expected):
    assert FrameRange.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "a:b", "-1:5", "1:-5", "0:10:0", "0:10:-1", "1.5:3", "1:2:3:4", "5:5", "7:3", "x", "1e3"]
)
def test_parse_rejects_nonsense(text):
    with pytest.raises(ConfigError) as err:
        FrameRange.parse(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["3:10", "3:", "0:10:2", "4::3", "0:"])
def test_str_round_trips(text):
    assert str(FrameRange.parse(text)) == text
    assert FrameRange.parse(str(FrameRange.parse(text))) == FrameRange.parse(text)


def test_str_of_single_frame_and_default():
    assert str(FrameRange.parse("7")) == "7:8"
    assert str(FrameRange()) == "0:"


def test_resolve_is_python_slicing():
    frames = list(range(20))
    for fr, sl in [
        (FrameRange(3, 10), slice(3, 10)),
        (FrameRange(0, None, 3), slice(0, None, 3)),
        (FrameRange(5, 100, 4), slice(5, 100, 4)),
        (FrameRange(19), slice(19, None)),
    ]:
        assert list(fr.resolve(20)) == frames[sl]


def test_resolve_past_the_end_names_source():
    with pytest.raises(ConfigError, match=r"starts past the end of clip\.mp4: it has 10 frames"):
        FrameRange(10, 20).resolve(10, source="clip.mp4")
    with pytest.raises(ConfigError):
        FrameRange(12).resolve(10)


def test_constructor_validates():
    for bad in [
        dict(start=-1),
        dict(stop=-2),
        dict(step=0),
        dict(start=1.5),
        dict(start=True),
        dict(start=4, stop=4),
    ]:
        with pytest.raises(ConfigError):
            FrameRange(**bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("180x320", (180, 320)), ("180X320", (180, 320)), ("180,320", (180, 320)), (" 90 x 160 ", (90, 160))],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "180", "0x320", "180x0", "-180x320", "180x-320", "axb", "180x320x3", "1.5x2"]
)
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError, match="invalid frame size"):
        parse_size(text)
