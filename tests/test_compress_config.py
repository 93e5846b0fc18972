"""CompressConfig: the one home of the compression settings — one-line ConfigErrors naming the CLI
option, and its defaults are the CLI's, bench rd's and the encoder's (written once)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import nervkit
from nervkit.bench.rd import RDConfig, variants
from nervkit.cli.main import build_parser
from nervkit.compress.config import CompressConfig, compress_config
from nervkit.compress.model_codec import encode_model
from nervkit.errors import ConfigError
from nervkit.models import VideoGeometry, create_model
from nervkit.models.config import config_from_dict


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"bits": 0}, "--bits must be in 1..16, got 0"),
        ({"bits": 17}, "--bits must be in 1..16, got 17"),
        ({"bits": 8.5}, "--bits must be an integer, got 8.5"),
        ({"bits": "8"}, "--bits must be an integer, got '8'"),
        ({"bits": True}, "--bits must be an integer, got True"),
        ({"embed_bits": 0}, "--embed-bits must be in 1..16"),
        ({"prune": 1.0}, "--prune"),
        ({"prune": -0.1}, "--prune"),
        ({"prune": "0.2"}, "--prune must be a finite number"),
        ({"prune": float("nan")}, "--prune must be a finite number"),
        ({"finetune_epochs": -1}, "--finetune-epochs must be in 0..100000"),
        ({"finetune_epochs": 2}, "--finetune-epochs fine-tunes after pruning"),
        ({"qat_epochs": 1.5}, "--qat-epochs must be an integer"),
        ({"latent_codec": "png"}, "--latent-codec must be one of codec, weights"),
        ({"jpeg_quality": 1}, "--jpeg-quality must be in 2..31, got 1"),
        ({"hevc_crf": 52}, "--hevc-crf must be in 0..51, got 52"),
        ({"hevc_fps": 0}, "--hevc-fps must be in 1..240, got 0"),
        ({"evaluate": "yes"}, "evaluate must be True or False"),
        ({"device": 3}, "--device must be a string"),
    ],
)
def test_validate_gives_one_line_errors_naming_the_option(settings, words):
    with pytest.raises(ConfigError) as info:
        CompressConfig(**settings).validate()
    message = str(info.value)
    assert words in message and "\n" not in message


def test_defaults_validate_and_numpy_numbers_become_python_numbers():
    CompressConfig().validate()
    config = compress_config(bits=np.int64(6), prune=np.float32(0.25), finetune_epochs=np.int32(1))
    assert (config.bits, config.finetune_epochs) == (6, 1) and type(config.bits) is int
    assert type(config.prune) is float and config.trains


def test_compress_config_replaces_fields_and_refuses_unknown_ones():
    base = CompressConfig(bits=6)
    assert compress_config(base, embed_bits=4) == CompressConfig(bits=6, embed_bits=4)
    with pytest.raises(ConfigError, match="unknown compression setting.*colour"):
        compress_config(base, colour=1)
    with pytest.raises(ConfigError, match="CompressConfig"):
        compress_config({"bits": 8})


def test_cli_text_goes_through_the_same_checks():
    assert config_from_dict(CompressConfig, {"bits": "6", "prune": "0.5"}) == CompressConfig(bits=6, prune=0.5)
    with pytest.raises(ConfigError, match="--bits"):
        config_from_dict(CompressConfig, {"bits": "8.5"})


def test_the_cli_defaults_are_compress_configs():
    """``nervkit compress --help`` shows CompressConfig's defaults, and no option left out means the
    API's default."""
    parser = build_parser(["compress"])
    args = parser.parse_args(["compress", "run", "-o", "x.nerv"])
    sub = next(a for a in parser._actions if a.dest == "command").choices["compress"]
    shown = {a.dest: a.help for a in sub._actions}
    for f in dataclasses.fields(CompressConfig):
        if not f.metadata["cli"]:
            continue
        assert f.name in args.compress_fields and getattr(args, f.name) is None  # the config's default applies
        default = f.default
        assert shown[f.name].endswith(f"[default: {default}]"), (f.name, shown[f.name])
    assert config_from_dict(CompressConfig, {}) == CompressConfig()
    assert args.device == CompressConfig().device  # the hand-written --device says the same


def test_bench_rd_reuses_the_compression_fields():
    rd, compress = RDConfig(), CompressConfig()
    assert (rd.bits, rd.embed_bits) == (compress.bits, compress.embed_bits)
    rd_fields = {f.name: f for f in dataclasses.fields(RDConfig)}
    compress_fields = {f.name: f for f in dataclasses.fields(CompressConfig)}
    for name in ("bits", "embed_bits"):  # same default, same help text
        assert rd_fields[name].metadata["help"] == compress_fields[name].metadata["help"]
        assert rd_fields[name].default == compress_fields[name].default
    plain = variants(RDConfig(prune=0.0, qat_epochs=0))[0].compression
    assert plain == CompressConfig(evaluate=False)  # a plain variant is compress's defaults, not evaluated
    with pytest.raises(ConfigError, match="--bits must be in 1..16"):
        RDConfig(bits=0).validate()


def test_encoder_defaults_are_compress_configs():
    model = create_model("nerv", VideoGeometry(2, 36, 64), params=20_000)
    assert encode_model(model) == encode_model(model, CompressConfig())
    assert encode_model(model, bits=6) == encode_model(model, CompressConfig(bits=6))


def test_api_keywords_and_a_config_object_are_the_same(tmp_path):
    # the API checks before any work: nothing is loaded for a bad setting
    with pytest.raises(ConfigError, match="--bits"):
        nervkit.compress(tmp_path / "no-run", tmp_path / "x.nerv", CompressConfig(bits=99))
    with pytest.raises(ConfigError, match="no setting|unknown compression setting"):
        nervkit.compress(tmp_path / "no-run", tmp_path / "x.nerv", colour=2)
    assert not (tmp_path / "x.nerv").exists()
