"""Fit settings from a file: ``nervkit fit -c FILE`` (JSON or TOML), the command line overriding it.

Two forms are read:

* **a run folder's ``run.json``**, as it is: the method, its *resolved* architecture (every width,
  stride and grid as the run used them), the training recipe and the data options (source video,
  frame range, size, task options). ``nervkit fit -c runs/x/run.json -o runs/y`` fits run x again;
* **a settings file** written by hand, with the keys of the command line (``-`` or ``_``), flat or in
  sections ``[data]``, ``[architecture]`` (the method's options) and ``[train]``::

      video = "clip.mp4"          # or [data] source = …
      model = "nerv"
      params = "1.5M"
      size = "180x320"
      [architecture]
      mlp-hidden = 512
      [train]
      epochs = 100
      lr = 5e-4

Every key is checked: an unknown one is a one-line :class:`~nervkit.errors.ConfigError` naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .models import get_method
from .tasks import TaskOptions
from .train import TrainConfig

#: data and size keys of a settings file (the command line's top-level fit options)
TOP_LEVEL = ("video", "model", "preset", "params", "size", "frames", "raw_size", "fps", "list_file", "tile",
             "segment_frames")


@dataclass
class FitSettings:
    """What a settings file asks for; ``None`` = not given (the command line or the defaults decide)."""

    #: one path, or a collection: paths or (path, name) pairs
    video: str | list[Any] | None = None
    list_file: str | None = None
    tile: str | list[int] | None = None
    segment_frames: int | None = None
    model: str | None = None
    preset: str | None = None
    params: str | None = None
    size: str | list[int] | None = None
    frames: str | None = None
    raw_size: str | list[int] | None = None
    fps: float | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Any] = field(default_factory=dict)
    #: the file is a run.json: its architecture is resolved (no budget or preset may be added to it)
    from_run: bool = False


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"-c {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"-c {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text.decode("utf-8"))
        else:
            data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"-c {path} is not valid {kind}: {' '.join(str(exc).split())[:160]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"-c {path}: expected an object of settings at the top level")
    return data


def _key(name: str) -> str:
    return name.replace("-", "_")


def _from_run_json(data: dict[str, Any], path: Path) -> FitSettings:
    for key, kind in (("method", str), ("config", dict), ("train", dict), ("data", dict)):
        if not isinstance(data.get(key), kind):
            raise ConfigError(f"-c {path}: a run.json needs {key!r} ({kind.__name__})")
    d = data["data"]
    task_names = {f.name for f in fields(TaskOptions)}
    videos = [(v["path"], v["name"]) for v in d.get("videos") or [] if isinstance(v, dict)]
    return FitSettings(
        video=videos or d.get("source"), tile=d.get("tile"), segment_frames=d.get("segment_frames"),
        model=data["method"], frames=d.get("frames"), size=d.get("size"),
        raw_size=d.get("raw_size"), fps=d.get("raw_fps"), model_options=dict(data["config"]),
        train={k: v for k, v in data["train"].items()},
        tasks={k: v for k, v in d.items() if k in task_names and v is not None}, from_run=True)


def load_fit_settings(path: str | os.PathLike[str]) -> FitSettings:
    """The settings in ``path`` (see the module docstring)."""
    p = Path(path)
    data = _read(p)
    if "method" in data and "config" in data:
        return _from_run_json(data, p)
    flat: dict[str, Any] = {}
    for section in ("data", "architecture", "train", "tasks"):
        value = data.get(section)
        if isinstance(value, dict):
            flat.update({(f"model_option:{_key(k)}" if section == "architecture" else _key(k)): v
                         for k, v in value.items()})
    flat.update({_key(k): v for k, v in data.items() if not isinstance(v, dict)})
    if "source" in flat:
        flat.setdefault("video", flat.pop("source"))
    if "method" in flat:
        flat.setdefault("model", flat.pop("method"))
    if "list" in flat:
        flat.setdefault("list_file", flat.pop("list"))
    if "videos" in flat:
        flat.setdefault("video", flat.pop("videos"))
    settings = FitSettings()
    train_names = {f.name for f in fields(TrainConfig)}
    task_names = {f.name for f in fields(TaskOptions)}
    method = flat.get("model", "nerv")
    try:
        arch_names = {f.name for f in fields(get_method(str(method)).config_cls)}
    except ConfigError as exc:
        raise ConfigError(f"-c {p}: {exc}") from None
    unknown = []
    for key, value in flat.items():
        if key.startswith("model_option:"):
            name = key.split(":", 1)[1]
            if name not in arch_names:
                unknown.append(name)
            settings.model_options[name] = value
        elif key in TOP_LEVEL:
            setattr(settings, key, value)
        elif key in train_names:
            settings.train[key] = value
        elif key in task_names:
            settings.tasks[key] = value
        elif key in arch_names:
            settings.model_options[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ConfigError(f"-c {p}: unknown setting(s) {', '.join(sorted(unknown)[:5])} for {method} (see nervkit "
                          f"fit --model {method} --help)")
    return settings


def method_of(path: str | os.PathLike[str]) -> str | None:
    """The method a settings file names (to build the method's CLI options), or None when unreadable."""
    try:
        data = json.loads(Path(path).read_bytes()) if Path(path).suffix.lower() != ".toml" else None
        if data is None:
            import tomllib

            data = tomllib.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    method = data.get("method") or data.get("model")
    return method if isinstance(method, str) else None
