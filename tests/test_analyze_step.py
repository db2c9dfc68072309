"""The analyze step end to end on awkward inputs: every file gives sane numbers or null with a reason."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from conftest import noise, speech_like, tone

from audiotrove.steps.analyze import analyze_file


def _walk_numbers(obj, path=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk_numbers(value, f"{path}.{key}" if path else key)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _walk_numbers(value, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _analyze(tmp_path, name, audio, sample_rate, subtype="PCM_16"):
    path = tmp_path / name
    sf.write(path, audio, sample_rate, subtype=subtype)
    result = analyze_file(str(path))
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN or inf anywhere
    for where, value in _walk_numbers(result):
        assert math.isfinite(value), where
    return result["audio"], result["media_info"]


def test_digital_silence_gives_nulls_with_reasons(tmp_path):
    audio, info = _analyze(tmp_path, "silence.wav", np.zeros((48000 * 5, 2), np.float32), 48000)
    assert info["container"]["duration"] == pytest.approx(5.0)
    assert audio["loudness"]["measured"] is None and audio["loudness"]["reason"]
    assert audio["noise"]["level_average"] is None and audio["noise"]["reason"]
    assert audio["bandwidth"]["frequency"] is None and audio["bandwidth"]["reason"]
    assert audio["silence"]["percentage"] == pytest.approx(100.0)
    assert audio["clipping"]["num_sections"] == 0


def test_dc_only_file(tmp_path):
    audio, _ = _analyze(tmp_path, "dc.wav", np.full((16000 * 3, 1), 0.25, np.float32), 16000)
    assert audio["noise"]["dc_offset"] == pytest.approx(0.25, abs=1e-3)
    assert audio["clipping"]["num_sections"] == 0  # a constant is not a clipped waveform
    assert audio["speech"]["percentage"] == 0


def test_single_sample_file(tmp_path):
    audio, info = _analyze(tmp_path, "one.wav", np.array([[0.5]], np.float32), 44100)
    assert info["container"]["duration"] == pytest.approx(1 / 44100, abs=1e-6)
    assert audio["loudness"]["measured"] is None and "400 ms" in audio["loudness"]["reason"]
    assert audio["loudness"]["sample_peak"] == pytest.approx(20 * math.log10(0.5), abs=0.01)


def test_nan_and_inf_in_a_float_wav_are_counted_and_ignored(tmp_path):
    x = tone(freq_hz=1000, seconds=4.0, sample_rate=48000, amplitude=0.1).repeat(2, axis=1)
    x[1000:1010, 0] = np.nan
    x[5000, 1] = np.inf
    audio, _ = _analyze(tmp_path, "nan.wav", x.astype(np.float32), 48000, subtype="FLOAT")
    assert audio["non_finite_samples"] == 11
    # a 1 kHz stereo sine at -20 dBFS reads -20 + 3.01 - 3.01 (two channels, sine rms) = about -20 LUFS
    assert audio["loudness"]["measured"] == pytest.approx(-20.0, abs=0.3)


def test_telephone_speech_at_8khz(tmp_path):
    x = speech_like(seconds=6.0, sample_rate=8000) + noise(seconds=6.0, sample_rate=8000, rms_dbfs=-60)
    audio, info = _analyze(tmp_path, "phone.wav", x.astype(np.float32), 8000)
    assert info["audio"]["sample_rate"] == 8000
    assert audio["bandwidth"]["frequency"] <= 4000
    assert audio["noise"]["snr_average"] > 20
    assert audio["loudness"]["measured"] is not None


def test_192khz_and_8_channels(tmp_path):
    x = tone(freq_hz=440, seconds=2.0, sample_rate=192000, amplitude=0.3)[:, 0]
    audio, _ = _analyze(tmp_path, "hi.flac", np.stack([x, x], axis=1).astype(np.float32), 192000,
                        subtype="PCM_24")
    assert audio["loudness"]["true_peak"] == pytest.approx(20 * math.log10(0.3), abs=0.2)
    eight = noise(seconds=3.0, sample_rate=48000, channels=8, rms_dbfs=-30)
    audio8, info8 = _analyze(tmp_path, "eight.wav", eight.astype(np.float32), 48000)
    assert info8["audio"]["channels"] == 8
    assert audio8["loudness"]["measured"] is not None
    assert audio8["noise"]["level_average"] == pytest.approx(-30, abs=3)


def test_hum_and_clipping_are_found_in_one_pass(tmp_path):
    sr = 16000
    t = np.arange(sr * 15) / sr
    hum = 0.01 * np.sin(2 * np.pi * 60 * t) + 0.005 * np.sin(2 * np.pi * 180 * t)
    speech = speech_like(seconds=15.0, sample_rate=sr)[:, 0]
    x = np.clip(4 * speech + hum, -1, 1).astype(np.float32)
    audio, _ = _analyze(tmp_path, "hum_clip.wav", x, sr)
    assert audio["noise"]["hum"]["frequency"] == 60
    assert audio["clipping"]["num_sections"] > 0
    assert 0 < audio["clipping"]["percentage"] < 100
    shares = sum(audio[k]["percentage"] for k in ("speech", "music", "silence", "other"))
    assert shares == pytest.approx(100.0, abs=0.05)
