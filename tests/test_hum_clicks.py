"""Mains hum (audiotrove.dsp.hum) and click detection (audiotrove.dsp.clicks)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from audiotrove.dsp.clicks import ClickDetector, detect_clicks
from audiotrove.dsp.hum import HumDetector, detect_hum

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def speech_like_noise(sr: int, seconds: float, active_rms_dbfs: float, seed: int = 0) -> np.ndarray:
    """Noise with a speech-like spectrum (100 Hz-4 kHz, falling above 500 Hz) and syllabic
    amplitude modulation (~4 Hz, with pauses down to -30 dB)."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    y = signal.sosfilt(signal.butter(2, [100, min(4000, 0.45 * sr)], btype="bandpass", fs=sr, output="sos"),
                       rng.standard_normal(n))
    y = 0.3 * y + signal.sosfilt(signal.butter(1, 500, fs=sr, output="sos"), y)
    t = np.arange(n) / sr
    env = np.clip(np.sin(2 * np.pi * 4 * t + 2 * np.sin(2 * np.pi * 0.7 * t)), 0, None) ** 0.5
    gate = np.clip((np.sin(2 * np.pi * 0.25 * t) + 0.6) * 3, 0, 1) ** 2
    y = y * (0.03 + env * gate)
    active = np.sqrt(np.mean(y[env * gate > 0.3] ** 2))
    return (y / active * 10 ** (active_rms_dbfs / 20)).astype(np.float32)


def voiced_speech(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Synthetic voiced speech: jittered glottal pulses (95-190 Hz) through three formants,
    syllables with pauses, peak about -10 dBFS, over a -70 dBFS noise floor."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.6 * t) + 8 * np.sin(2 * np.pi * 3.3 * t)
    phase = np.cumsum(f0 / sr)
    pulses = np.zeros(n)
    idx = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    pulses[idx] = 1.0 + 0.15 * rng.standard_normal(len(idx))
    y = pulses
    for fc, bw in ((700, 90), (1200, 110), (2500, 180)):
        r = math.exp(-math.pi * bw / sr)
        y = signal.lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * fc / sr), r * r], y)
    env = np.clip(np.sin(2 * np.pi * 2.3 * t) * 1.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t), 0, 1)
    y = y * env
    y = y / np.abs(y).max() * 10 ** (-10 / 20)
    return (y + rng.standard_normal(n) * 10 ** (-70 / 20)).astype(np.float32)


def music_with_percussion(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Equal-tempered notes with harmonics (bass G1 = 49.0 Hz and B1 = 61.7 Hz among them)
    and drum hits every 250 ms: kick (pitch-swept sine, 2 ms attack), snare (noise, 1 ms
    attack) and closed hi-hat (high-passed noise, 30 ms decay)."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    out = np.zeros(n)
    semitones = [-34, -31, -29, -24, -22, -19, -17, -12, 0, 3, 7, 12]  # re A4 = 440 Hz
    note = int(0.5 * sr)
    for i, start in enumerate(range(0, n, note)):
        f = 440 * 2 ** (semitones[i % len(semitones)] / 12)
        bass = 440 * 2 ** ((-38 if i % 2 else -35) / 12)  # G1 49.0 Hz / B1 61.7 Hz
        seg = t[start : start + note] - t[start]
        # 10 ms attack, 20 ms release: no waveform step at the note boundaries
        env = np.exp(-seg * 3) * np.minimum(seg / 0.01, 1) * np.clip((seg[-1] - seg) / 0.02, 0, 1)
        tone = sum(np.sin(2 * np.pi * k * f * seg) / k for k in range(1, 7))
        tone += 0.8 * sum(np.sin(2 * np.pi * k * bass * seg) / k for k in range(1, 5))
        out[start : start + note] += 0.1 * env * tone
    hat_sos = signal.butter(4, 7000, btype="highpass", fs=sr, output="sos")
    beat = int(0.25 * sr)
    for j, start in enumerate(range(0, n - sr // 2, beat)):
        seg = np.arange(sr // 2) / sr
        kind = j % 4
        if kind == 0:  # kick
            hit = np.sin(2 * np.pi * (50 * seg + 60 * (1 - np.exp(-seg * 30)) / 30)) * np.exp(-seg * 12)
            hit *= 0.5 * np.sin(0.5 * np.pi * np.minimum(seg / 0.002, 1)) ** 2  # 2 ms attack
        elif kind == 2:  # snare
            hit = rng.standard_normal(len(seg)) * np.exp(-seg * 25) * np.minimum(seg / 0.001, 1) * 0.25
        else:  # hi-hat
            hit = signal.sosfilt(hat_sos, rng.standard_normal(len(seg))) * np.exp(-seg / 0.03) * 0.2
        out[start : start + len(seg)] += hit
    return (out / np.abs(out).max() * 0.7).astype(np.float32)


def sine(sr: int, seconds: float, freq: float, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def mains_hum(sr: int, seconds: float, f0: float, rms_dbfs: float = -50.0, harmonics=(1, 2, 3, 4, 5)):
    t = np.arange(int(sr * seconds)) / sr
    a = math.sqrt(2) * 10 ** (rms_dbfs / 20)
    return sum(a * np.sin(2 * np.pi * k * f0 * t + 0.7 * k) for k in harmonics).astype(np.float32)


def add_clicks(x: np.ndarray, sr: int, per_minute: float = 30, peak_dbfs: float = -20.0, seed: int = 1):
    """Insert clicks of 0.2-1 ms: alternately a fast-rise exponentially decaying impulse and
    a short Hann-tapered noise burst (crackle), with peak `peak_dbfs`."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = round(per_minute * n / sr / 60)
    slots = np.linspace(0, n, k + 1)[:-1]
    positions = (slots + rng.uniform(0.1, 0.9, k) * (n / k)).astype(int)
    amplitude = 10 ** (peak_dbfs / 20)
    y = x.copy()
    for i, p in enumerate(positions):
        w = max(2, round(rng.uniform(0.2e-3, 1e-3) * sr))
        if i % 2 == 0:
            shape = np.exp(-np.arange(w) / (w / 4)) * rng.choice([-1.0, 1.0])
        else:
            shape = rng.standard_normal(w) * np.hanning(w + 2)[1:-1]
            shape /= np.abs(shape).max()
        y[p : p + w] += (amplitude * shape).astype(np.float32)
    return y, positions


# --- hum --------------------------------------------------------------------------------

@pytest.mark.parametrize("f0", [50.0, 60.0, 49.8, 60.2])
def test_hum_with_harmonics_under_speech_like_noise(f0):
    sr = 44100
    x = speech_like_noise(sr, 20.0, -26.0, seed=5) + mains_hum(sr, 20.0, f0, -50.0)
    hum = detect_hum(x, sample_rate=sr)
    assert hum["frequency"] == (50.0 if f0 < 55 else 60.0)
    assert hum["frequency_measured"] == pytest.approx(f0, abs=0.05)
    assert {1, 2, 3} <= set(hum["harmonics"])
    assert hum["level"] > 10
    # five lines at -50 dBFS each: -43 dBFS together
    assert hum["level_dbfs"] == pytest.approx(-50 + 10 * math.log10(5), abs=1.5)


@pytest.mark.parametrize("f0", [50.0, 60.0])
def test_hum_fundamental_alone_is_found(f0):
    sr = 16000
    x = speech_like_noise(sr, 20.0, -30.0, seed=6) + mains_hum(sr, 20.0, f0, -50.0, harmonics=(1,))
    hum = detect_hum(x, sample_rate=sr)
    assert hum["frequency"] == f0 and hum["harmonics"] == [1]


def test_weak_hum_below_the_noise_is_not_reported():
    sr = 16000
    x = speech_like_noise(sr, 20.0, -20.0, seed=7) + mains_hum(sr, 20.0, 50.0, -85.0)
    assert detect_hum(x, sample_rate=sr)["frequency"] is None


@pytest.mark.parametrize(
    "name, make",
    [
        ("440 Hz tone", lambda sr: sine(sr, 10, 440.0)),
        ("1 kHz tone", lambda sr: sine(sr, 10, 1000.0)),
        ("1 kHz tone + 100 Hz tone", lambda sr: sine(sr, 10, 1000.0) + sine(sr, 10, 97.0, 0.1)),
        ("speech-like noise", lambda sr: speech_like_noise(sr, 20, -20.0)),
        ("voiced speech", lambda sr: voiced_speech(sr, 20)),
        ("music", lambda sr: music_with_percussion(sr, 20)),
        ("white noise", lambda sr: np.random.default_rng(3).standard_normal(sr * 10).astype(np.float32) * 0.1),
    ],
)
def test_hum_does_not_fire_on(name, make):
    sr = 44100
    hum = detect_hum(make(sr), sample_rate=sr)
    assert hum["frequency"] is None, (name, hum)
    assert hum["harmonics"] == []


def test_hum_too_short_has_reason_and_streaming_is_block_independent():
    short = detect_hum(sine(16000, 1.0, 50.0, 0.01), sample_rate=16000)
    assert short["frequency"] is None and "too short" in short["reason"]
    sr = 22050
    x = speech_like_noise(sr, 12.0, -30.0) + mains_hum(sr, 12.0, 60.0, -55.0)
    ref = detect_hum(x, sample_rate=sr)
    det = HumDetector(sr)
    for i in range(0, len(x), 999):
        det.update(x[i : i + 999])
    assert det.result() == ref and ref["frequency"] == 60.0


def test_hum_on_multichannel_at_8k_and_192k():
    for sr in (8000, 192000):
        mono = speech_like_noise(sr, 12.0, -30.0) + mains_hum(sr, 12.0, 50.0, -50.0, (1, 2, 3))
        hum = detect_hum(np.stack([mono, mono * 0.5], axis=1), sample_rate=sr)
        assert hum["frequency"] == 50.0, sr


# --- clicks -----------------------------------------------------------------------------

@pytest.mark.parametrize("sr, noise_dbfs", [(44100, -30.0), (48000, -30.0), (16000, -40.0)])
def test_counts_synthetic_clicks_within_20_percent(sr, noise_dbfs):
    x = speech_like_noise(sr, 60.0, noise_dbfs, seed=3)
    y, positions = add_clicks(x, sr, per_minute=30)
    events = detect_clicks(y, sample_rate=sr)
    assert 24 <= len(events) <= 36
    # each event sits on an inserted click and is narrower than 2 ms
    nearest = np.abs(events.positions[:, None] - positions[None, :]).min(axis=1)
    assert np.all(nearest <= 0.0015 * sr)
    assert np.all(events.widths <= 0.002 * sr + 2)
    assert np.all(events.peaks > 0)
    assert len(detect_clicks(x, sample_rate=sr)) == 0


def test_dense_crackle_is_counted():
    sr = 44100
    x = speech_like_noise(sr, 20.0, -40.0, seed=8)
    y, positions = add_clicks(x, sr, per_minute=600, peak_dbfs=-26.0, seed=9)  # 10 per second
    n = len(detect_clicks(y, sample_rate=sr))
    assert 0.8 * len(positions) <= n <= 1.2 * len(positions)


@pytest.mark.parametrize(
    "name, make",
    [
        ("sine 440 Hz", lambda sr: sine(sr, 10, 440.0, 0.9)),
        ("sine 5 kHz", lambda sr: sine(sr, 10, 5000.0, 0.9)),
        ("voiced speech", lambda sr: voiced_speech(sr, 20)),
        ("music with percussion", lambda sr: music_with_percussion(sr, 20)),
        ("speech-like noise", lambda sr: speech_like_noise(sr, 20, -20.0)),
    ],
)
def test_no_clicks_on(name, make):
    for sr in (16000, 44100):
        assert len(detect_clicks(make(sr), sample_rate=sr)) == 0, (name, sr)


def test_click_detector_streaming_is_block_independent():
    sr = 44100
    y, _ = add_clicks(speech_like_noise(sr, 15.0, -35.0, seed=4), sr, per_minute=60, seed=5)
    ref = detect_clicks(y, sample_rate=sr)
    assert len(ref) >= 12
    for block in (1, 777, 65536):
        det = ClickDetector(sr)
        head = 30000 if block == 1 else 0  # one-sample blocks are slow: only for the start
        parts = [det.process(y[i : i + 1]) for i in range(head)]
        step = len(y) if block == 1 else block
        parts += [det.process(y[i : i + step]) for i in range(head, len(y), step)]
        parts.append(det.flush())
        pos = np.concatenate([p.positions for p in parts])
        wid = np.concatenate([p.widths for p in parts])
        np.testing.assert_array_equal(pos, ref.positions)
        np.testing.assert_array_equal(wid, ref.widths)


def test_clicks_at_high_sample_rate_map_to_input_positions():
    sr = 192000
    x = speech_like_noise(sr, 10.0, -40.0, seed=2)
    y, positions = add_clicks(x, sr, per_minute=60, seed=3)
    events = detect_clicks(y, sample_rate=sr)
    assert abs(len(events) - len(positions)) <= 2
    nearest = np.abs(events.positions[:, None] - positions[None, :]).min(axis=1)
    assert np.all(nearest <= 0.0015 * sr)


def test_clicks_near_stream_edges_and_tiny_inputs():
    sr = 16000
    # a tone that starts and stops abruptly at full level: no click at either end
    x = np.cos(2 * np.pi * 440 * np.arange(sr) / sr).astype(np.float32) * 0.5
    assert len(detect_clicks(x, sample_rate=sr)) == 0
    x[sr // 2] += 0.3
    events = detect_clicks(x, sample_rate=sr)
    assert len(events) == 1
    assert sr // 2 - 1 <= events.positions[0] <= sr // 2  # the stencil spreads one sample
    assert events.positions[0] + events.widths[0] - 1 >= sr // 2
    assert len(detect_clicks(np.zeros(2, np.float32), sample_rate=sr)) == 0
    assert len(detect_clicks(np.array([1.0], np.float32), sample_rate=sr)) == 0


# --- real recordings --------------------------------------------------------------------

def _decode(path: Path):
    from audiotrove.io.decode import read_all

    return read_all(path)


def test_real_music_and_speech_have_almost_no_clicks():
    music = ["music/Kevin_MacLeod_-_Vibe_Ace.ogg", "music/sms_orchestra.wav",
             "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
             "instruments/sms_mridangam.wav", "instruments/sms_bendir.wav", "music/sms_carnatic.wav"]
    speech = ["speech/2412-153948-0000.flac", "speech/LJ050-0131.wav", "speech/xmas.wav",
              "speech/librispeech-1995-1837-0001.wav", "speech/aishell-BAC009S0724W0121.wav",
              "speech/sms_speech-female.wav", "speech/cmu_arctic_us_aew_a0002.wav"]
    if not all((DATA / p).exists() for p in music + speech):
        pytest.skip("shared test data not available")
    for group, limit in ((music, 3.0), (speech, 5.0)):
        clicks, seconds = 0, 0.0
        for name in group:
            audio, sr = _decode(DATA / name)
            clicks += len(detect_clicks(audio, sample_rate=sr))
            seconds += len(audio) / sr
        assert clicks / seconds * 60 < limit, group


def test_real_music_has_no_hum():
    names = ["music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg", "music/Kevin_MacLeod_-_Vibe_Ace.ogg",
             "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
             "music/sms_cello-phrase.wav", "music/sms_orchestra.wav"]
    if not all((DATA / p).exists() for p in names):
        pytest.skip("shared test data not available")
    for name in names:
        audio, sr = _decode(DATA / name)
        assert detect_hum(audio, sample_rate=sr)["frequency"] is None, name
