"""Noise floor, SNR, DC offset and robustness of NoiseMeter (audiotrove.dsp.noise)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from audiotrove.dsp.noise import (
    NoiseMeter,
    dc_offset,
    measure_noise,
    noise_floor_dbfs,
    snr_db,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def db(x: float) -> float:
    return 10 * math.log10(x)


def white(sr: float, seconds: float, rms_dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(sr * seconds)) * 10 ** (rms_dbfs / 20)).astype(np.float32)


def synthetic_speech(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables (jittered glottal pulses through three formants) with pauses."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = np.cumsum(f0 / sr)
    pulses = np.zeros(n)
    idx = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    pulses[idx] = 1.0 + 0.1 * rng.standard_normal(len(idx))
    y = pulses
    for fc, bw in ((600, 80), (1400, 120), (2600, 200)):
        r = math.exp(-math.pi * bw / sr)
        y = signal.lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * fc / sr), r * r], y)
    # syllables of ~180 ms, 70 % of the time, smooth edges
    env = np.clip(np.sin(2 * np.pi * 2.5 * t) * 1.6 + 0.4 * np.sin(2 * np.pi * 0.37 * t), 0, 1)
    return (y * env).astype(np.float32)


def scaled(x: np.ndarray, active_rms_dbfs: float) -> np.ndarray:
    """Scale so that the RMS over the non-silent samples is `active_rms_dbfs`."""
    frame = 441
    m = len(x) // frame
    p = (x[: m * frame].astype(np.float64).reshape(m, frame) ** 2).mean(axis=1)
    active = p[p > p.max() * 1e-3].mean()
    return (x * math.sqrt(10 ** (active_rms_dbfs / 10) / active)).astype(np.float32)


def run(audio: np.ndarray, sr: int, block: int = 65536) -> dict:
    audio = audio if audio.ndim == 2 else audio[:, None]
    meter = NoiseMeter(sr, audio.shape[1])
    for i in range(0, len(audio), block):
        meter.update(audio[i : i + block])
    return meter.result()["noise"]


# --- noise floor and SNR ---------------------------------------------------------------

def test_floor_and_snr_of_speech_over_known_noise():
    sr = 16000
    speech = scaled(synthetic_speech(sr, 20.0), -20.0)
    noise = white(sr, 20.0, -60.0, seed=1)
    out = run(speech + noise, sr)
    assert out["level_average"] == pytest.approx(-60.0, abs=1.5)
    # active frames carry speech at about -20 dBFS: SNR about 40 dB
    assert 36.0 < out["snr_average"] < 44.0
    assert out["hum"]["frequency"] is None
    assert out["clicks_per_minute"] == 0.0
    assert "reason" not in out
    json.dumps(out)  # JSON-ready


def test_floor_tracks_noise_level_and_snr_falls_with_it():
    sr = 16000
    speech = scaled(synthetic_speech(sr, 12.0, seed=2), -20.0)
    previous = None
    for noise_db in (-70.0, -50.0, -35.0):
        out = run(speech + white(sr, 12.0, noise_db, seed=3), sr)
        assert out["level_average"] == pytest.approx(noise_db, abs=1.5)
        if previous is not None:
            assert out["snr_average"] < previous - 10
        previous = out["snr_average"]


def test_steady_noise_has_a_floor_but_no_snr():
    out = run(white(44100, 5.0, -40.0), 44100)
    assert out["level_average"] == pytest.approx(-40.0, abs=1.0)
    assert out["snr_average"] is None
    assert "SNR" in out["reason"]


def test_stereo_floor_averages_channel_powers():
    sr = 44100
    left, right = white(sr, 4.0, -50.0, seed=4), white(sr, 4.0, -50.0, seed=5)
    out = run(np.stack([left, right], axis=1), sr)
    # uncorrelated channels: the power average keeps -50 dBFS (an amplitude mix would read -53)
    assert out["level_average"] == pytest.approx(-50.0, abs=1.0)


def test_digital_zero_frames_are_excluded_and_reported():
    sr = 16000
    x = white(sr, 6.0, -55.0)
    x[: 3 * sr] = 0.0  # 3 s of exact digital silence: half the file
    out = run(x, sr)
    assert out["level_average"] == pytest.approx(-55.0, abs=1.0)
    assert out["digital_silence_duration"] == pytest.approx(3.0, abs=0.03)


def test_pure_digital_silence_gives_none_with_reason():
    out = run(np.zeros((48000, 2), np.float32), 48000)
    assert out["level_average"] is None and out["snr_average"] is None
    assert "digital silence" in out["reason"]
    assert out["dc_offset"] == 0.0
    assert out["clicks_per_minute"] == 0.0
    assert out["hum"]["frequency"] is None
    assert out["digital_silence_duration"] == pytest.approx(1.0, abs=0.02)


# --- DC offset --------------------------------------------------------------------------

def test_dc_offset_signed_largest_channel_and_floor_ignores_it():
    sr = 44100
    noise = white(sr, 3.0, -60.0)
    audio = np.stack([noise - 0.05, noise[::-1] + 0.1], axis=1).astype(np.float32)
    out = run(audio, sr)
    assert out["dc_offset"] == pytest.approx(0.1, abs=1e-4)
    assert out["level_average"] == pytest.approx(-60.0, abs=1.0)  # DC is not noise
    negative = run(np.stack([noise - 0.2, noise + 0.1], axis=1), sr)
    assert negative["dc_offset"] == pytest.approx(-0.2, abs=1e-4)
    assert dc_offset(audio) == pytest.approx(0.1, abs=1e-4)


def test_dc_only_signal():
    out = run(np.full(16000, 0.25, np.float32), 16000)
    assert out["dc_offset"] == pytest.approx(0.25, abs=1e-6)
    assert out["level_average"] is None and "reason" in out
    assert out["clicks_per_minute"] == 0.0


# --- robustness -------------------------------------------------------------------------

def test_non_finite_samples_are_counted_and_replaced():
    sr = 16000
    x = scaled(synthetic_speech(sr, 5.0), -20.0) + white(sr, 5.0, -60.0)
    clean = run(x.copy(), sr)
    bad = x.copy()
    bad[[100, 5000, 20000]] = np.nan
    bad[30000] = np.inf
    bad[40000] = -np.inf
    out = run(bad, sr)
    assert out["non_finite_samples"] == 5
    assert clean["non_finite_samples"] == 0
    assert out["level_average"] == pytest.approx(clean["level_average"], abs=0.2)
    assert math.isfinite(out["snr_average"]) and math.isfinite(out["dc_offset"])
    json.dumps(out)


def test_single_sample_and_tiny_inputs():
    one = run(np.array([[0.5]], np.float32), 44100)
    assert one["level_average"] is None  # one sample has no AC power
    assert one["clicks_per_minute"] is None and "reason" in one
    assert one["dc_offset"] == pytest.approx(0.5)
    assert one["hum"]["frequency"] is None and "reason" in one["hum"]
    short = run(white(44100, 0.01, -30.0), 44100)  # 10 ms: shorter than one frame
    assert short["level_average"] == pytest.approx(-30.0, abs=1.5)
    empty = NoiseMeter(44100, 2).result()["noise"]
    assert empty["level_average"] is None and empty["dc_offset"] is None and "reason" in empty


@pytest.mark.parametrize("sr", [8000, 192000])
def test_extreme_sample_rates(sr):
    x = scaled(synthetic_speech(sr, 4.0), -20.0) + white(sr, 4.0, -65.0, seed=7)
    out = run(x, sr)
    assert out["level_average"] == pytest.approx(-65.0, abs=2.0)
    assert out["snr_average"] > 35
    assert out["clicks_per_minute"] == 0.0
    assert out["hum"]["frequency"] is None


def test_eight_channels():
    sr = 48000
    base = scaled(synthetic_speech(sr, 3.0), -20.0)
    chans = [base * (0.5 + 0.1 * c) + white(sr, 3.0, -60.0, seed=c) for c in range(8)]
    out = run(np.stack(chans, axis=1), sr)
    assert out["level_average"] == pytest.approx(-60.0, abs=1.5)
    assert out["snr_average"] > 25


def test_block_size_independence():
    sr = 44100
    x = scaled(synthetic_speech(sr, 7.0), -20.0) + white(sr, 7.0, -55.0)
    t = np.arange(len(x)) / sr
    x = x + (10 ** (-50 / 20) * math.sqrt(2) * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    x[sr : sr + 5] += 0.3  # a click
    stereo = np.stack([x, 0.8 * x], axis=1)
    ref = run(stereo, sr, block=65536)
    assert ref["num_clicks"] == 1 and ref["hum"]["frequency"] == 50.0
    for block in (1000, 4097, 1 << 20):
        other = run(stereo, sr, block=block)
        assert other["dc_offset"] == pytest.approx(ref["dc_offset"], abs=1e-6)
        other["dc_offset"] = ref["dc_offset"]
        assert other == ref


def test_pure_functions_agree_with_the_meter():
    sr = 16000
    x = scaled(synthetic_speech(sr, 6.0), -20.0) + white(sr, 6.0, -58.0)
    out = measure_noise(x, sample_rate=sr)["noise"]
    assert noise_floor_dbfs(x, sample_rate=sr) == out["level_average"]
    assert snr_db(x, sample_rate=sr) == out["snr_average"]
    assert noise_floor_dbfs(np.zeros(1000), sample_rate=sr) is None


# --- real recordings --------------------------------------------------------------------

def _decode(path: Path) -> tuple[np.ndarray, int]:
    from audiotrove.io.decode import read_all

    return read_all(path)


def _require(*names: str) -> list[Path]:
    paths = [DATA / n for n in names]
    if not all(p.exists() for p in paths):
        pytest.skip("shared test data not available")
    return paths


def test_real_speech_is_clean_without_hum():
    paths = _require(
        "speech/2412-153948-0000.flac", "speech/LJ050-0131.wav",
        "speech/librispeech-1995-1837-0001.wav", "speech/cmu_arctic_us_aew_a0002.wav",
        "speech/aishell-BAC009S0724W0121.wav", "speech/xmas.wav",
    )
    for path in paths:
        out = run(*_decode(path))
        assert out["snr_average"] > 20, path.name
        assert out["hum"]["frequency"] is None, path.name
        assert out["level_average"] < -40, path.name


def test_real_noise_recordings_have_low_snr():
    paths = _require("noise/doing_the_dishes.wav", "noise/sms_ocean.wav", "noise/sms_rain.wav",
                     "pairs/noise_rec_two.wav")
    for path in paths:
        out = run(*_decode(path))
        assert out["snr_average"] is None or out["snr_average"] < 15, path.name
        assert out["level_average"] > -45, path.name


def test_real_1961_broadcast_has_60_hz_hum():
    (path,) = _require("archival/jfk.flac")
    out = run(*_decode(path))
    assert out["hum"]["frequency"] == 60.0
    assert out["hum"]["frequency_measured"] == pytest.approx(60.0, abs=0.3)
    assert {1, 2} <= set(out["hum"]["harmonics"])
    assert 15 < out["snr_average"] < 40


# --- the framing helper behind block-size independence -----------------------------------

@pytest.mark.parametrize("length, hop, pad", [(7, 3, 0), (8, 8, 0), (5, 11, 0), (40, 16, 9)])
def test_stream_framer_matches_whole_signal_framing(length, hop, pad):
    from audiotrove.dsp.spectrum import StreamFramer

    rng = np.random.default_rng(length * hop)
    x = rng.standard_normal(500).astype(np.float32)
    padded = np.concatenate([np.zeros(pad, np.float32), x])
    n = (len(padded) - length) // hop + 1
    expected = np.stack([padded[i * hop : i * hop + length] for i in range(n)])
    framer = StreamFramer(length, hop, pad_start=pad)
    got, i = [], 0
    while i < len(x):
        step = int(rng.integers(0, 23))
        got.append(framer.push(x[i : i + step]).copy())
        i += step
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert framer.frames_emitted == n


# --- issue 11: the SNR tracks the true SNR; the floor of pink noise is its level ----------

def pink(sr: int, seconds: float, rms_dbfs: float, seed: int = 0) -> np.ndarray:
    """Pink noise (-3 dB per octave) from 20 Hz to Nyquist, of the given RMS."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec = np.where(f >= 20.0, spec / np.sqrt(np.maximum(f, 20.0)), 0)
    y = np.fft.irfft(spec, n)
    return (y / y.std() * 10 ** (rms_dbfs / 20)).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_snr_tracks_the_true_snr_from_0_to_30_db(kind):
    sr = 16000
    speech = scaled(synthetic_speech(sr, 15.0, seed=7), -20.0)  # active speech at -20 dBFS
    for true_snr in (0.0, 5.0, 10.0, 20.0, 30.0):
        level = -20.0 - true_snr
        noise = white(sr, 15.0, level, seed=8) if kind == "white" else pink(sr, 15.0, level, seed=8)
        out = run(speech + noise, sr)
        assert out["snr_average"] == pytest.approx(true_snr, abs=2.0), (kind, true_snr, out)
        assert out["level_average"] == pytest.approx(level, abs=1.5), (kind, true_snr, out)


def test_floor_of_pink_noise_is_its_level():
    for sr, seed in ((16000, 1), (44100, 2)):
        out = run(pink(sr, 10.0, -40.0, seed=seed), sr)
        assert out["level_average"] == pytest.approx(-40.0, abs=1.0)
        assert out["snr_average"] is None
