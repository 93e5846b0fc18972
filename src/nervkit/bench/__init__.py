"""Rate–distortion benchmarking: classical codecs through ffmpeg, quality, BD-rate, RD files and plots.

* :mod:`nervkit.io.ffmpeg` (re-exported here): the imageio-ffmpeg binary, its encoders/filters, running it;
* :mod:`.codecs`: :class:`CodecSpec` entries (x264, x265, av1, vvc) and :func:`encode_decode`;
* :mod:`.quality`: PSNR/SSIM/MS-SSIM (nervkit.metrics) and VMAF (libvmaf) of decoded frames;
* :mod:`.bdrate`: Bjøntegaard delta rate / quality (PCHIP or cubic polynomial);
* :mod:`.results`: the RD results JSON schema, writer and reader, :func:`codec_rd_curve`;
* :mod:`.plot`: :func:`plot_rd` (PSNR and MS-SSIM vs bpp, PNG), :func:`plot_overlay` (``bench plot``: RD files
  and shipped paper curves, ``reference/*.json``), :func:`series_style` (one colour per method).
"""

from __future__ import annotations

from nervkit.bench.bdrate import BDRateWarning, bd_psnr, bd_quality, bd_rate
from nervkit.bench.codecs import CODECS, CodecResult, CodecSpec, available_codecs, codec_spec, encode_decode
from nervkit.bench.plot import plot_rd
from nervkit.bench.quality import QualityPoint, measure_quality, vmaf_score
from nervkit.bench.results import RDResults, codec_rd_curve, read_results, write_results
from nervkit.io.ffmpeg import describe_ffmpeg, encoders, ffmpeg_exe, filters, run_ffmpeg

__all__ = [
    "CODECS",
    "BDRateWarning",
    "CodecResult",
    "CodecSpec",
    "QualityPoint",
    "RDResults",
    "available_codecs",
    "bd_psnr",
    "bd_quality",
    "bd_rate",
    "codec_rd_curve",
    "codec_spec",
    "describe_ffmpeg",
    "encode_decode",
    "encoders",
    "ffmpeg_exe",
    "filters",
    "measure_quality",
    "plot_rd",
    "read_results",
    "run_ffmpeg",
    "vmaf_score",
    "write_results",
]
