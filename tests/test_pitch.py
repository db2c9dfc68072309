"""Pitch: the YIN-style estimator on generated tones and on labelled instrument notes."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from audiotrove.dsp.pitch import (
    frame_pitch,
    hz_to_note,
    lag_range,
    note_to_hz,
    pitch_track,
    summarize_pitch,
)

SR = 44100
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tone(hz, seconds=0.5, sr=SR, amps=(1.0,), level=0.5, phase=0.3):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(a * np.sin(2 * np.pi * hz * (k + 1) * t + phase * k) for k, a in enumerate(amps))
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def track_pitch(x, sr=SR):
    _, hz, clarity = pitch_track(x, sample_rate_hz=sr)
    return summarize_pitch(hz, clarity)


@pytest.mark.parametrize("hz", [55.0, 82.41, 110.0, 196.0, 261.63, 440.0, 659.26, 1046.5, 1760.0])
def test_pure_tones_are_measured_to_a_few_cents(hz):
    f0, clarity = track_pitch(tone(hz))
    assert f0 is not None
    cents = 1200 * math.log2(f0 / hz)
    assert abs(cents) < 3, (hz, f0)
    assert clarity > 0.99
    note, octave = hz_to_note(f0)
    assert note_to_hz(note, octave) == pytest.approx(hz, rel=0.01)


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 48000, 96000])
def test_other_sample_rates(sr):
    f0, _ = track_pitch(tone(233.08, sr=sr), sr=sr)
    assert hz_to_note(f0) == ("A#", 3)
    assert f0 == pytest.approx(233.08, rel=0.003)


def test_missing_fundamental_gives_the_fundamental():
    # harmonics 2..8 of 220 Hz, no energy at 220 Hz itself: the period is still 1/220 s
    x = tone(220.0, amps=(0.0, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2))
    f0, clarity = track_pitch(x)
    assert f0 == pytest.approx(220.0, rel=0.005)
    assert clarity > 0.95


def test_strong_second_harmonic_is_not_an_octave_error():
    x = tone(146.83, amps=(0.25, 1.0, 0.6, 0.3, 0.2))  # D3 with a dominant octave partial
    f0, _ = track_pitch(x)
    assert hz_to_note(f0) == ("D", 3)


def test_vibrato_tone_median_is_the_centre():
    t = np.arange(SR) / SR
    f = 392.0 * 2 ** (0.4 / 12 * np.sin(2 * np.pi * 5.5 * t))  # +-40 cents at 5.5 Hz
    x = (0.4 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32)
    f0, clarity = track_pitch(x)
    assert hz_to_note(f0) == ("G", 4)
    assert clarity > 0.9


def test_noise_is_unpitched_and_silence_gives_nothing():
    rng = np.random.default_rng(1)
    noise = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    f0, clarity = track_pitch(noise)
    assert f0 is None
    assert clarity < 0.5
    frames = np.zeros((4, 2048), np.float32)
    hz, cl = frame_pitch(frames, sample_rate_hz=SR)
    assert np.isnan(hz).all() and (cl == 0).all()


def test_clarity_falls_as_noise_is_added():
    rng = np.random.default_rng(2)
    clean = tone(330.0, seconds=0.5)
    clarities = []
    for snr_db in (40, 10, 0):
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
        clarities.append(track_pitch(clean + noise)[1])
    assert clarities[0] > clarities[1] > clarities[2]
    assert clarities[0] > 0.98 and clarities[2] < 0.8


def test_frame_pitch_is_row_independent():
    x = tone(300.0, seconds=0.2)
    frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::512]
    hz_all, cl_all = frame_pitch(frames, sample_rate_hz=SR)
    hz_one, cl_one = frame_pitch(frames[2:3], sample_rate_hz=SR)
    assert hz_all[2] == pytest.approx(hz_one[0], rel=1e-6)
    assert cl_all[2] == pytest.approx(cl_one[0], rel=1e-6)


def test_lag_range_and_errors():
    lo, hi = lag_range(sample_rate_hz=SR, frame_length=2048, fmin_hz=50, fmax_hz=2000)
    assert lo == 22 and hi == 882
    # the longest period is capped at half the frame; a frame too short for any lag is refused
    assert lag_range(sample_rate_hz=SR, frame_length=256, fmin_hz=50, fmax_hz=2000) == (22, 128)
    with pytest.raises(ValueError):
        lag_range(sample_rate_hz=SR, frame_length=40, fmin_hz=50, fmax_hz=2000)
    with pytest.raises(ValueError):
        lag_range(sample_rate_hz=SR, frame_length=2048, fmin_hz=500, fmax_hz=400)
    with pytest.raises(ValueError):
        frame_pitch(np.zeros(100, np.float32), sample_rate_hz=SR)


def test_note_names():
    assert hz_to_note(440.0) == ("A", 4)
    assert hz_to_note(261.63) == ("C", 4)
    assert hz_to_note(27.5) == ("A", 0)
    assert hz_to_note(4186.0) == ("C", 8)
    assert hz_to_note(466.16) == ("A#", 4)
    assert hz_to_note(123.47) == ("B", 2)
    assert hz_to_note(None) == (None, None)
    assert hz_to_note(float("nan")) == (None, None)
    assert note_to_hz("A", 4) == pytest.approx(440.0)
    assert note_to_hz("C", 4) == pytest.approx(261.6256, rel=1e-5)


def test_summarize_ignores_quiet_frames_and_needs_enough_voiced():
    hz = np.array([440.0, 441.0, 439.0, 100.0, np.nan])
    clarity = np.array([0.99, 0.98, 0.99, 0.95, 0.0])
    level = np.array([-10.0, -10.0, -11.0, -70.0, -80.0])
    f0, cl = summarize_pitch(hz, clarity, level)
    assert f0 == pytest.approx(440.0, rel=0.003)
    assert cl > 0.95
    f0, _ = summarize_pitch(np.array([440.0, np.nan, np.nan, np.nan, np.nan]),
                            np.array([0.9, 0.1, 0.1, 0.1, 0.1]))
    assert f0 is None


# --- labelled instrument notes (MTG sms-tools sounds) -------------------------------------

# (file, note, octave) as labelled in the file name
LABELLED = [
    ("sms_flute-A4.wav", "A", 4),
    ("sms_oboe-A4.wav", "A", 4),
    ("sms_violin-B3.wav", "B", 3),
    ("sms_trumpet-A4.wav", "A", 4),
    ("sms_soprano-E4.wav", "E", 4),
    ("sms_vibraphone-C6.wav", "C", 6),
]


def _instrument(name):
    path = DATA / "instruments" / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    from audiotrove.io.decode import read_all

    audio, sr = read_all(path)
    return audio.mean(axis=1), sr, path


@pytest.mark.parametrize("name,note,octave", LABELLED)
def test_labelled_instrument_notes(name, note, octave):
    x, sr, _ = _instrument(name)
    times, hz, clarity = pitch_track(x, sample_rate_hz=sr)
    level = 10 * np.log10(np.convolve(x ** 2, np.ones(1024) / 1024, "same")[(times * sr).astype(int).clip(0, len(x) - 1)] + 1e-12)
    f0, cl = summarize_pitch(hz, clarity, level)
    assert hz_to_note(f0) == (note, octave), (name, f0)
    assert cl > 0.9


@pytest.mark.parametrize("name,note,octave", LABELLED)
def test_labelled_notes_through_the_unit_pipeline(name, note, octave):
    """What `segment` stores: the first unit of each note has the labelled note and octave."""
    from audiotrove.io.decode import open_audio
    from audiotrove.units.extract import extract_units

    _, _, path = _instrument(name)
    reader = open_audio(path)
    rows = list(extract_units(reader.blocks(), sample_rate_hz=reader.sample_rate,
                              channels=reader.channels, mode="onset"))
    assert rows, name
    loudest = max(rows, key=lambda r: r["power"])
    assert (loudest["note"], loudest["octave"]) == (note, octave), (name, loudest["hz"])


def test_organ_note_is_c_with_its_sounding_octave():
    """sms_organ-C3.wav sounds at 261.6 Hz (C4 in scientific pitch, where A4 = 440 Hz).

    Its spectrum has partials at 261, 523 and 785 Hz and nothing at 130.8 Hz (74 dB below the
    fundamental), so no estimator can honestly report 130.8 Hz: the file name follows the
    convention where middle C is called C3. The note name must match; the octave is the
    sounding one (C4), i.e. the label's octave + 1 under that convention.
    """
    x, sr, _ = _instrument("sms_organ-C3.wav")
    _, hz, clarity = pitch_track(x, sample_rate_hz=sr)
    f0, cl = summarize_pitch(hz, clarity)
    assert hz_to_note(f0) == ("C", 4)
    assert f0 == pytest.approx(261.63, rel=0.01)
    spectrum = np.abs(np.fft.rfft(x[:sr * 2] * np.hanning(sr * 2)))
    freqs = np.fft.rfftfreq(sr * 2, 1 / sr)
    at = lambda f: spectrum[np.abs(freqs - f) < 3].max()
    assert 20 * np.log10(at(261.6) / at(130.8)) > 40  # no sub-octave fundamental in the file
