"""The model a ``.nerv`` header describes, built on the meta device and compared with the file's
tensors before anything is allocated: names, value counts and shapes (docs/bitstream.md)."""

from __future__ import annotations

import math

from ..errors import BitstreamError
from ..models import Representation, VideoGeometry
from ..models.base import MethodConfig
from ..models.memory import build_meta_model
from ..models.registry import MethodSpec
from ..resources import format_bytes
from .container import Section
from .header import label, shape_text
from .sections import SECTION_CODECS

#: submodules the header's model may register: a fixed allowance (encoders, which are not stored) plus
#: this many per stored tensor (a crafted "a million layers" config is refused while it is being built)
MODULES_BASE = 4096
MODULES_PER_TENSOR = 16
#: frames ``write_decoded`` decodes at once: their float32 output counts in the decoding memory check
DECODE_BATCH_FRAMES = 8


def meta_model(spec: MethodSpec, config: MethodConfig, geometry: VideoGeometry,
                tensors: int) -> Representation:
    """The header's model on the meta device, checked to render frames at least as large as the
    header's (decoded frames are crops of its output)."""
    model = build_meta_model(spec, config, geometry, error=BitstreamError,
                             max_modules=MODULES_BASE + MODULES_PER_TENSOR * tensors)
    try:
        out_h, out_w = (int(v) for v in model.output_size)
    except (TypeError, ValueError, RuntimeError):
        raise BitstreamError(f"the file's {spec.name} model has no valid output size") from None
    if out_h < geometry.height or out_w < geometry.width:
        raise BitstreamError(f"the file's {spec.name} model renders {out_h}x{out_w} frames, smaller than the "
                             f"{geometry.height}x{geometry.width} its header declares")
    return model


def stored_shapes(model: Representation) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor ``model`` stores (its ``stored_groups``), from a meta model."""
    try:
        return {name: tuple(t.shape) for group in model.stored_groups() for name, t in group.tensors.items()}
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        raise BitstreamError(f"the file's {model.method} model cannot list its tensors "
                             f"({type(exc).__name__})") from None


def check_tensor_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                        method: str) -> None:
    """BitstreamError (one line) unless ``found`` (a file's tensors) has exactly the names and shapes of
    ``expected`` (what the header's model stores): the first missing or extra tensor, else the totals
    ("describes a model of N parameters but its tensors hold M values"), else the first other shape."""
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    unfit = f"the file's tensors do not fit its {method} model"
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BitstreamError(f"{unfit}: it lacks tensor {label(missing[0])}{more}")
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise BitstreamError(f"{unfit}: it holds tensor {label(extra[0])}, which the model does not "
                             f"have{more}")
    model_values = sum(math.prod(s) for s in expected.values())
    file_values = sum(math.prod(s) for s in found.values())
    if model_values != file_values:
        raise BitstreamError(f"the file's header describes a {method} model of {model_values:,} "
                             f"parameters ({format_bytes(4 * model_values)}) but its tensors hold "
                             f"{file_values:,} values")
    for name, shape in expected.items():
        if tuple(found[name]) != tuple(shape):
            raise BitstreamError(f"{unfit}: tensor {label(name)} has shape {shape_text(found[name])} in "
                                 f"the file but {shape_text(shape)} in the model")


def peek_shape(section: Section, index: int) -> tuple[int, ...]:
    """The shape a tensor section declares, read from its payload header without decoding it
    (bounded: at most MAX_ELEMENTS values; :data:`~.sections.SECTION_CODECS`); BitstreamError when that
    header is malformed or the section's kind is unknown."""
    codec = SECTION_CODECS.get(section.kind)
    if codec is None:
        raise BitstreamError(f"section {index} has unknown kind {section.kind!r}")
    return codec.peek_shape(section.payload, f"section {index} ({label(section.name)})")
