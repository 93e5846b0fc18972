"""nervkit — neural video representations (NeRV family): fit, compress, decode, evaluate.

See README.md for the quick start; the Python API mirrors the ``nervkit`` CLI.
"""

from .api import DataOptions, FittedRun, decode, evaluate, fit, info, inpaint, interpolate, load, sample_nerv, sample_video
from .compress.config import CompressConfig
from .compression import compress, decompress, inspect
from .errors import NervkitError
from .models import VideoGeometry, create_model, get_method, list_methods
from .train import TrainConfig

__all__ = [
    "CompressConfig",
    "DataOptions",
    "FittedRun",
    "NervkitError",
    "TrainConfig",
    "VideoGeometry",
    "compress",
    "create_model",
    "decode",
    "decompress",
    "evaluate",
    "fit",
    "get_method",
    "info",
    "inpaint",
    "inspect",
    "interpolate",
    "list_methods",
    "load",
    "sample_nerv",
    "sample_video",
]
