"""Effective bandwidth (audiotrove.dsp.bandwidth)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from scipy import signal

from audiotrove.dsp.bandwidth import (
    BandwidthMeter,
    bandwidth_from_spectrum,
    effective_bandwidth_hz,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def noise(sr: int, seconds: float, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(sr * seconds)) * rms).astype(np.float32)


def quantise16(x: np.ndarray) -> np.ndarray:
    return (np.round(x * 32767) / 32767).astype(np.float32)


def lowpass(x: np.ndarray, sr: int, cutoff: float, taps: int = 1001) -> np.ndarray:
    return signal.fftconvolve(x, signal.firwin(taps, cutoff, fs=sr), mode="same").astype(np.float32)


def speechlike(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Broadband (to Nyquist) noise with a falling speech-like tilt and syllabic gaps."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    y = signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))  # -6 dB/oct above ~1.5 kHz
    t = np.arange(n) / sr
    env = np.clip(np.sin(2 * np.pi * 3 * t) * 1.5, 0.02, 1)
    return (0.05 * y * env).astype(np.float32)


def test_white_noise_reaches_nyquist():
    assert effective_bandwidth_hz(noise(44100, 5), sample_rate=44100) >= 0.97 * 22050
    assert effective_bandwidth_hz(noise(8000, 5), sample_rate=8000) >= 0.97 * 4000
    assert effective_bandwidth_hz(noise(192000, 3), sample_rate=192000) >= 0.97 * 96000


@pytest.mark.parametrize("quantise", [False, True])
def test_16k_lowpassed_noise_at_44k(quantise):
    x = lowpass(noise(44100, 8), 44100, 16000)
    x = quantise16(x) if quantise else x
    assert effective_bandwidth_hz(x, sample_rate=44100) == pytest.approx(16000, rel=0.05)


@pytest.mark.parametrize("cutoff", [5000, 11000, 19000])
def test_cutoffs_of_lossy_encoders_and_resamplers(cutoff):
    sr = 44100
    x = quantise16(lowpass(speechlike(sr, 8), sr, cutoff))
    assert effective_bandwidth_hz(x, sample_rate=sr) == pytest.approx(cutoff, rel=0.05)


def test_elliptic_lowpass_in_stereo_and_multichannel():
    sr = 48000
    sos = signal.ellip(12, 0.1, 100, 12000, fs=sr, output="sos")
    mono = signal.sosfilt(sos, noise(sr, 5, seed=1)).astype(np.float32)
    stereo = np.stack([mono, np.roll(mono, 100)], axis=1)
    assert effective_bandwidth_hz(stereo, sample_rate=sr) == pytest.approx(12000, rel=0.05)
    eight = np.stack([np.roll(mono, 37 * c) for c in range(8)], axis=1)
    assert effective_bandwidth_hz(eight, sample_rate=sr) == pytest.approx(12000, rel=0.05)


def test_telephone_speech_upsampled_to_44k():
    sr = 44100
    wide = speechlike(16000, 8, seed=2)
    telephone = soxr.resample(soxr.resample(wide, 16000, 8000), 8000, sr)
    bw = effective_bandwidth_hz(quantise16(telephone), sample_rate=sr)
    assert bw == pytest.approx(4000, rel=0.08)


def test_upsampled_cd_audio_at_192k():
    sr = 192000
    x = soxr.resample(noise(44100, 3, seed=3), 44100, sr)
    assert effective_bandwidth_hz(x, sample_rate=sr) == pytest.approx(22050, rel=0.05)


def test_pure_tone_is_narrow():
    sr = 44100
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(sr * 2) / sr)).astype(np.float32)
    assert 1000 <= effective_bandwidth_hz(tone, sample_rate=sr) < 1300


def test_only_loud_frames_count():
    # 2 s of broadband noise, then 20 s of quiet band-limited hum: the loud part decides
    sr = 44100
    loud = noise(sr, 2, rms=0.2)
    quiet = lowpass(noise(sr, 20, rms=0.0005, seed=4), sr, 2000)
    assert effective_bandwidth_hz(np.concatenate([loud, quiet]), sample_rate=sr) > 21000


def test_silence_dc_and_tiny_inputs():
    meter = BandwidthMeter(44100, 2)
    meter.update(np.zeros((44100, 2), np.float32))
    out = meter.result()
    assert out["bandwidth"] == {"frequency": None, "reason": "digital silence"}
    assert effective_bandwidth_hz(np.full(44100, 0.3, np.float32), sample_rate=44100) is None
    one = BandwidthMeter(44100, 1)
    one.update(np.ones((1, 1), np.float32))
    assert one.result()["bandwidth"]["frequency"] is None and "too short" in one.result()["bandwidth"]["reason"]
    assert effective_bandwidth_hz(noise(44100, 0.005), sample_rate=44100) > 20000  # zero-padded
    assert bandwidth_from_spectrum(np.zeros(1025), sample_rate=44100) is None


def test_non_finite_samples_are_ignored():
    x = lowpass(noise(44100, 4), 44100, 10000)
    x[[10, 5000, 90000]] = [np.nan, np.inf, -np.inf]
    assert effective_bandwidth_hz(x, sample_rate=44100) == pytest.approx(10000, rel=0.05)


def test_block_size_independence():
    sr = 44100
    x = quantise16(lowpass(speechlike(sr, 6), sr, 15000))
    stereo = np.stack([x, x[::-1]], axis=1)
    results = []
    for block in (512, 4097, 65536):
        meter = BandwidthMeter(sr, 2)
        for i in range(0, len(stereo), block):
            meter.update(stereo[i : i + block])
        results.append(meter.result())
    assert results[0] == results[1] == results[2]
    assert results[0]["bandwidth"]["frequency"] == pytest.approx(15000, rel=0.05)


# --- real recordings --------------------------------------------------------------------

def _bandwidth(name: str) -> float | None:
    from audiotrove.io.decode import read_all

    audio, sr = read_all(DATA / name)
    return effective_bandwidth_hz(audio, sample_rate=sr)


def test_real_files():
    names = {
        # Vorbis at 22.05 kHz: the encoder's lowpass sits at ~10.6 kHz, just below Nyquist
        "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg": (10000, 11025),
        "music/Kevin_MacLeod_-_Vibe_Ace.ogg": (10000, 11025),
        # an MP3 cut at 16 kHz
        "formats/pydub_party.mp3": (15200, 16800),
        # 8 kHz mu-law telephone recording
        "formats/M1F1-mulawC-AFsp.afc": (3000, 4000),
        # 16 kHz read speech: content close to Nyquist
        "speech/librispeech-1995-1837-0001.wav": (7000, 8000),
        # digital silence
        "formats/mp3_audio.wav": None,
    }
    if not all((DATA / n).exists() for n in names):
        pytest.skip("shared test data not available")
    for name, expected in names.items():
        bw = _bandwidth(name)
        if expected is None:
            assert bw is None, name
        else:
            assert expected[0] <= bw <= expected[1], (name, bw)
