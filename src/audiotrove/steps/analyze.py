"""The `analyze` step: media info and every acoustic measurement in one pass over the blocks.

The file is decoded once; each block goes to every meter (see audiotrove.dsp), so memory
stays bounded whatever the file's length.
"""
from __future__ import annotations

import numpy as np

from ..dsp.bandwidth import BandwidthMeter
from ..dsp.clipping import ClippingMeter
from ..dsp.content import ContentMeter
from ..dsp.loudness import LoudnessMeter
from ..dsp.noise import NoiseMeter
from ..io.decode import DecodeError, open_audio
from ..io.probe import probe
from ..models.dnsmos import load_dnsmos
from ..models.silero import load_silero
from .base import Item, Step

VERSION = "2"  # 2: noise level and SNR as in issue 11
DEFAULTS: dict = {
    "silence_threshold_dbfs": -60.0,  # absolute silence threshold
    "silence_min_s": 2.0,  # shortest stretch reported as silence
    "quality": False,  # DNSMOS speech quality on speech windows (opt-in: ~0.2 s CPU per window)
    "quality_max_windows": 3,  # at most this many 9 s windows per file (about 0.2 s CPU each)
}


# Companded 8-bit codecs: their loud samples sit on a coarse grid that looks like flat tops.
_COMPANDED_STEP = {"pcm_mulaw": 1 / 32, "pcm_alaw": 1 / 32}


def build_meters(sample_rate: int, channels: int, params: dict, codec: str | None = None) -> list:
    """The streaming meters whose results make up the "audio" object."""
    return [
        LoudnessMeter(sample_rate, channels),
        ClippingMeter(sample_rate, channels, quantization_step=_COMPANDED_STEP.get(codec or "")),
        NoiseMeter(sample_rate, channels),
        BandwidthMeter(sample_rate, channels),
        ContentMeter(
            sample_rate, channels,
            vad_model=load_silero(),
            quality_model=load_dnsmos() if params["quality"] else None,
            silence_threshold_dbfs=params["silence_threshold_dbfs"],
            silence_min_s=params["silence_min_s"],
            quality=params["quality"],
            quality_max_windows=params["quality_max_windows"],
        ),
    ]


def analyze_file(path: str, params: dict | None = None) -> dict:
    params = {**DEFAULTS, **(params or {})}
    media_info = probe(path)
    if not media_info["has_audio"]:
        raise DecodeError("no audio stream in this file")
    reader = open_audio(path)
    meters = build_meters(reader.sample_rate, reader.channels, params,
                          codec=(media_info.get("audio") or {}).get("codec"))
    non_finite = 0
    for block in reader.blocks():
        bad = ~np.isfinite(block)
        if bad.any():
            non_finite += int(bad.sum())
            block = np.where(bad, np.float32(0.0), block)
        for meter in meters:
            meter.update(block)
    # The exact duration is the decoded length, not the header's estimate.
    media_info["container"]["duration"] = round(reader.decoded_frames / reader.sample_rate, 6)
    audio: dict = {"non_finite_samples": non_finite}
    for meter in meters:
        audio.update(meter.result())
    # Non-finite samples were zeroed above, so the meters saw none: the count lives here.
    if isinstance(audio.get("noise"), dict):
        audio["noise"].pop("non_finite_samples", None)
    return {"media_info": media_info, "audio": audio}


def _run(item: Item) -> dict:
    return analyze_file(item.path, item.params)


STEP = Step(
    name="analyze",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    summary="media info, loudness, peaks, clipping, noise, bandwidth, hum, clicks, content",
)
