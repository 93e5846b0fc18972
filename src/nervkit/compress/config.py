"""How a fitted run becomes a ``.nerv`` file: one option dataclass, the single home of every compression
default (its field help is ``nervkit compress --help``; ``nervkit bench rd`` reuses its fields).

The Python API builds it from keywords (``nervkit.compress(run, out, bits=6)``), the CLI from text
(``config_from_dict``); :meth:`CompressConfig.validate` refuses what is out of range, or of the wrong
type (``bits=8.5`` and ``bits="8"`` are refused, never truncated or parsed), with a one-line
:class:`~nervkit.errors.ConfigError` naming the CLI option. A method's own recipe
(``register_method(compress_defaults=…)``, e.g. HiNeRV's ``prune_score="layer"``, ``quantizer="symmetric"``,
``qat_noise=0.9``) fills in, in ``nervkit.compress``, the settings given neither as keywords nor as a config
object.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from ..errors import ConfigError
from ..models.config import option, validate_choices
from .learned_quant import RateOptions, rate_option
from .quantize import MAX_BITS, MIN_BITS, QUANTIZERS

#: how latent grids (NVP) are stored: ``codec`` = JPEG images / HEVC videos through ffmpeg, ``weights`` =
#: like weights (``bits`` + entropy coding)
LATENT_CODECS = ("codec", "weights")
#: the most fine-tuning epochs ``compress`` accepts
MAX_EPOCHS = 100_000
#: how pruning ranks the weights (:mod:`.prune`): ``magnitude`` = |w| (NeRV), ``layer`` = |w| / sqrt(the
#: tensor's non-zero count) (HiNeRV)
PRUNE_SCORES = ("magnitude", "layer")


@dataclass(frozen=True)
class CompressConfig:
    """The settings of one compression: pruning, fine-tuning, quantization, latent-grid coding, and
    where the work runs."""

    bits: int = option(8, "bits per weight")
    embed_bits: int = option(6, "bits per per-frame embedding value")
    prune: float = option(0.0, "fraction of weights REMOVED by global magnitude pruning, e.g. 0.2")
    prune_score: str = option("magnitude", "how pruning ranks the weights: magnitude = |w| (NeRV), layer = |w| / "
                                           "sqrt(non-zero weights of its tensor), which prunes large layers more "
                                           "(HiNeRV)", choices=PRUNE_SCORES)
    finetune_epochs: int = option(0, "epochs of fine-tuning after pruning (masks fixed)")
    qat_epochs: int = option(0, "epochs of quantization-aware fine-tuning (straight-through)")
    qat_noise: float = option(1.0, "quantization-aware fine-tuning: fraction of the weights replaced by their "
                                   "quantized value on each forward, the rest kept in float (Quant-Noise; "
                                   "HiNeRV 0.9); in (0, 1], 1 = all quantized")
    quantizer: str = option("minmax", "how weights are quantized: minmax = a min/max range per tensor or per "
                                      "output channel, chosen at equal rate (HNeRV); symmetric = scale 2·max|w| / "
                                      "(2^bits − 1) per output channel, zero kept exact (HiNeRV)",
                            choices=QUANTIZERS)
    rd_lambda: float = option(0.0, "rate-distortion fine-tuning: λ of loss = distortion + λ · bits per pixel, with "
                                   "learned quantization steps and the file's entropy models (needs --rd-epochs; "
                                   "default for a run fitted with --rate-lambda: its own λ)")
    rd_epochs: int = option(0, "epochs of rate-distortion fine-tuning (learned steps, entropy models in the file)")
    target_bpp: float = rate_option("target_bpp", help="rate-distortion fine-tuning: adapt λ until the file is about "
                                                       "this many bits per pixel (needs --rd-epochs)")
    rounding: str = rate_option("rounding")
    ste_fraction: float = rate_option("ste_fraction")
    step_axes: str = rate_option("step_axes")
    entropy_model: str = rate_option("entropy_model")
    context: bool = rate_option("context")
    learn_steps: bool = rate_option("learn_steps")
    latent_codec: str = option("codec", "latent grids (NVP): codec = 8-bit JPEG images / HEVC videos through "
                                        "ffmpeg, weights = --bits + entropy coding", choices=LATENT_CODECS)
    jpeg_quality: int = option(2, "JPEG quality of latent images, ffmpeg -q:v 2 (best) .. 31")
    hevc_crf: int = option(21, "x265 CRF of latent videos, 0..51")
    hevc_fps: int = option(25, "frame rate x265's rate control assumes for latent videos")
    evaluate: bool = option(True, "decode the written file and measure its quality (CLI: --no-eval)", cli=False)
    device: str = option("auto", "where fine-tuning and the quality check run: auto (CUDA when present), cpu, "
                                 "cuda", cli=False)

    def __post_init__(self) -> None:
        # NumPy scalars become Python numbers (they go into JSON); other types are left for validate()
        for name in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        for name in ("prune", "qat_noise", "rd_lambda", "target_bpp", "ste_fraction"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))

    def validate(self) -> None:
        """ConfigError (one line, naming the CLI option) for any value out of range or of the wrong type."""
        for name, (low, high) in _INTEGERS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{_flag(name)} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"{_flag(name)} must be in {low}..{high}, got {value}")
        if not isinstance(self.prune, float) or not math.isfinite(self.prune):
            raise ConfigError(f"--prune must be a finite number, got {self.prune!r}")
        if not 0.0 <= self.prune < 1.0:
            raise ConfigError(f"--prune is the fraction of weights removed and must be in [0, 1), "
                              f"got {self.prune}")
        if (not isinstance(self.qat_noise, float) or not math.isfinite(self.qat_noise)
                or not 0.0 < self.qat_noise <= 1.0):
            raise ConfigError(f"--qat-noise is the fraction of weights quantized on each forward and must be in "
                              f"(0, 1], got {self.qat_noise!r}")
        validate_choices(self)  # --latent-codec, --prune-score, --quantizer
        if not isinstance(self.evaluate, bool):
            raise ConfigError(f"evaluate must be True or False, got {self.evaluate!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"--device must be a string, got {self.device!r}")
        self.rate_options().validate(lambda_flag="--rd-lambda")
        if (self.rd_lambda or self.target_bpp) and not self.rd_epochs:
            flag = "--rd-lambda" if self.rd_lambda else "--target-bpp"
            raise ConfigError(f"{flag} fine-tunes the model for rate: give --rd-epochs too")
        if self.rd_epochs and self.qat_epochs:
            raise ConfigError("--qat-epochs trains for the fixed --bits quantizer, --rd-epochs for learned ones: "
                              "give one of them")
        if self.finetune_epochs and not self.prune:
            raise ConfigError("--finetune-epochs fine-tunes after pruning: give --prune too "
                              "(or use --qat-epochs)")

    @property
    def trains(self) -> bool:
        """Whether the compression trains the model (fine-tuning after pruning, QAT, or rate training)."""
        return bool((self.prune and self.finetune_epochs) or self.qat_epochs or self.rd_epochs)

    def rate_options(self) -> RateOptions:
        """The rate-distortion fine-tuning these settings ask for (from the start of the fine-tune)."""
        return RateOptions.of(self, rate_lambda=self.rd_lambda, rate_start=0.0)

    def latent_settings(self) -> dict[str, Any]:
        """How latent grids are coded, as the file's header and the compress report record it."""
        return {"codec": self.latent_codec, "jpeg_quality": self.jpeg_quality, "hevc_crf": self.hevc_crf,
                "hevc_fps": self.hevc_fps}


#: integer fields and their allowed range
_INTEGERS: dict[str, tuple[int, int]] = {
    "bits": (MIN_BITS, MAX_BITS),
    "embed_bits": (MIN_BITS, MAX_BITS),
    "finetune_epochs": (0, MAX_EPOCHS),
    "qat_epochs": (0, MAX_EPOCHS),
    "rd_epochs": (0, MAX_EPOCHS),
    "jpeg_quality": (2, 31),
    "hevc_crf": (0, 51),
    "hevc_fps": (1, 240),
}
_FIELDS = {f.name: f for f in fields(CompressConfig)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def compress_option(name: str, default: Any = MISSING, help: str | None = None) -> Any:
    """A field of another option dataclass (``RDConfig``) that means what :class:`CompressConfig`'s
    ``name`` means: its default and help text unless given here."""
    f = _FIELDS[name]
    return option(f.default if default is MISSING else default, f.metadata["help"] if help is None else help,
                  choices=f.metadata["choices"], cli=f.metadata["cli"])


def compress_config(config: CompressConfig | None = None, **settings: Any) -> CompressConfig:
    """``config`` (default: ``CompressConfig()``) with keyword ``settings`` replacing its fields, validated:
    the settings of ``nervkit.compress(run, out, config, **settings)`` and ``encode_model``."""
    if config is not None and not isinstance(config, CompressConfig):
        raise ConfigError(f"config must be a CompressConfig, got {config!r}")
    unknown = sorted(set(settings) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown compression setting(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    config = replace(config or CompressConfig(), **settings)
    config.validate()
    return config
