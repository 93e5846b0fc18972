"""Models: the representation contract, the registry and one file per method."""

from ..data.batches import FrameBatch, PixelBatch
from . import d_nerv, dnerv, enerv, hinerv, hnerv, nerv, nvp  # noqa: F401  (register the methods)
from .base import MethodConfig, ParameterCounts, Representation, StoredGroup
from .config import VideoGeometry
from .registry import (
    MethodSpec,
    count_parameters,
    create_model,
    get_method,
    list_methods,
    preset_config,
    rebuild_model,
    register_method,
)

__all__ = [
    "FrameBatch",
    "MethodConfig",
    "MethodSpec",
    "ParameterCounts",
    "PixelBatch",
    "Representation",
    "StoredGroup",
    "VideoGeometry",
    "count_parameters",
    "create_model",
    "get_method",
    "list_methods",
    "preset_config",
    "rebuild_model",
    "register_method",
]
