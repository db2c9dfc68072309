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


# --- a unit's pitch when the sound before it lingers (issue 11 item 6) ----------------------

def harmonic(hz, seconds, amps, decay_s=None, sr=SR, start_s=0.0, inharmonicity=0.0):
    """Partials k*hz*sqrt(1 + B k^2) with the given amplitudes, starting at start_s (silent
    before), optionally decaying exponentially from there."""
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for k, a in enumerate(amps, start=1):
        x += a * np.sin(2 * np.pi * k * hz * math.sqrt(1 + inharmonicity * k * k) * t + 0.7 * k)
    env = (t >= start_s).astype(float)
    if decay_s is not None:
        env *= np.exp(-np.maximum(t - start_s, 0.0) / decay_s)
    return x * env


def unit_and_before(x, onset_s, end_s, sr=SR):
    """Frames of the unit [onset_s, end_s) and of the frames ending before onset_s, as the
    unit extractor hands them to unit_pitch (the FrameAnalyzer of `segment`)."""
    from audiotrove.dsp.features import FrameAnalyzer, Framer, analysis_frame
    from audiotrove.units.extract import BEFORE_FRAMES

    n_fft, hop = analysis_frame(sr)
    framer = Framer(n_fft=n_fft, hop=hop)
    analyzer = FrameAnalyzer(sample_rate_hz=sr, n_fft=n_fft, hop=hop)
    fb = analyzer.analyze(np.concatenate([framer.push(x.astype(np.float32)), framer.finish()]))
    start, end = int(onset_s * sr), int(end_s * sr)
    unit = fb.slice(-(-start // hop), -(-end // hop))
    last_before = (start - n_fft // 2) // hop
    before = fb.slice(last_before - BEFORE_FRAMES + 1, last_before + 1)
    return unit, before, analyzer


def pitch_of_unit(x, onset_s, end_s, sr=SR):
    """(frames-only summary, unit_pitch) of the unit [onset_s, end_s): hz values."""
    from audiotrove.dsp.pitch import unit_pitch

    unit, before, an = unit_and_before(x, onset_s, end_s, sr)
    plain, _ = summarize_pitch(unit.hz, unit.clarity, unit.level_db)
    aware, _ = unit_pitch(unit.hz, unit.clarity, unit.level_db, power=unit.power,
                          before_power=before.power, window=an.window, sample_rate_hz=sr,
                          fmin_hz=an.fmin_hz, fmax_hz=an.fmax_hz)
    return plain, aware


def test_new_note_over_a_ringing_lower_string_is_the_new_note():
    # the nylon guitar case: G3 still ringing (-5 dB) when C#5, whose 2nd partial is its
    # loudest, is plucked. The mixture repeats every 3 periods of C#5 (~F#3, close to G3's
    # period): the frames read that, the unit must be C#5.
    g3, cs5 = note_to_hz("G", 3), note_to_hz("C#", 5)
    old = harmonic(g3, 0.9, (1.0, 0.45, 0.1, 0.12, 0.07), decay_s=2.0)
    new = harmonic(cs5, 0.9, (0.35, 1.0, 0.07, 0.1), decay_s=0.6, start_s=0.4, inharmonicity=1e-4)
    x = 0.1 * old + 0.1 * new
    plain, aware = pitch_of_unit(x, 0.4, 0.75)
    assert hz_to_note(plain) != ("C#", 5)  # the error class: the mixture's period
    assert hz_to_note(aware) == ("C#", 5), aware
    assert aware == pytest.approx(cs5, rel=0.01)


def test_new_note_an_octave_above_the_ringing_one_is_not_read_as_the_old():
    # the mixture of D#3 and D#4 is exactly periodic at D#3's period
    low, high = note_to_hz("D#", 3), note_to_hz("D#", 4)
    old = harmonic(low, 0.9, (1.0, 0.6, 0.4, 0.2), decay_s=1.5)
    new = harmonic(high, 0.9, (1.0, 0.5, 0.3), decay_s=0.8, start_s=0.4)
    x = 0.1 * old + 0.12 * new
    plain, aware = pitch_of_unit(x, 0.4, 0.8)
    assert hz_to_note(plain) == ("D#", 3)  # the error class
    assert hz_to_note(aware) == ("D#", 4), aware


def test_cross_fade_a_fourth_up_is_the_new_note_not_the_common_subharmonic():
    # a bowed/sung legato: D4 fades out over 0.3 s while G4 fades in; the mixture's period
    # is their common subharmonic G2 (98 Hz, 3 periods of D4 = 4 of G4), or D4 while it dominates
    d4, g4 = note_to_hz("D", 4), note_to_hz("G", 4)
    t = np.arange(int(1.0 * SR)) / SR
    fade_out = np.clip((0.7 - t) / 0.3, 0, 1)
    fade_in = np.clip((t - 0.4) / 0.3, 0, 1)
    amps = (1.0, 0.7, 0.5, 0.3, 0.2)
    x = 0.1 * (fade_out * harmonic(d4, 1.0, amps) + fade_in * harmonic(g4, 1.0, amps))
    plain, aware = pitch_of_unit(x, 0.4, 0.75)
    assert hz_to_note(plain) != ("G", 4)  # the error class: the old note or G2
    assert hz_to_note(aware) == ("G", 4), aware


@pytest.mark.parametrize("note,octave", [("E", 2), ("A", 3), ("C#", 5), ("G", 6)])
def test_plucked_note_after_silence_or_on_a_steady_tone_keeps_the_frames_pitch(note, octave):
    f0 = note_to_hz(note, octave)
    # a plucked, slightly inharmonic, decaying note with a weak fundamental: nothing before
    x = 0.2 * harmonic(f0, 1.0, (0.3, 1.0, 0.6, 0.4, 0.2), decay_s=0.4, start_s=0.3,
                       inharmonicity=2e-4)
    plain, aware = pitch_of_unit(x, 0.3, 0.8)
    assert hz_to_note(plain) == (note, octave)
    assert aware == plain
    # a unit cut in the middle of a steady tone: it adds nothing, the frames' reading stays
    steady = 0.2 * harmonic(f0, 1.2, (0.3, 1.0, 0.6, 0.4, 0.2))
    plain, aware = pitch_of_unit(steady, 0.5, 0.9)
    assert hz_to_note(aware) == (note, octave)
    assert aware == plain


def test_added_sound_pitch_of_a_louder_repeat_and_of_nothing_new():
    from audiotrove.dsp.pitch import added_sound_pitch

    a3 = note_to_hz("A", 3)
    x = harmonic(a3, 1.0, (1.0, 0.5, 0.3))
    x = x * np.where(np.arange(len(x)) < int(0.5 * SR), 0.05, 0.2)  # the same note, 12 dB louder
    unit, before, an = unit_and_before(x, 0.5, 0.8)
    hz, fraction, clarity = added_sound_pitch(unit.power, before.power, window=an.window,
                                              sample_rate_hz=SR)
    assert hz == pytest.approx(a3, rel=0.01)
    assert fraction == pytest.approx(1 - 1 / 16, abs=0.02)  # 16x the power before
    assert clarity > 0.95
    # nothing added: no pitch, fraction 0
    hz, fraction, clarity = added_sound_pitch(before.power, before.power * 2, window=an.window,
                                              sample_rate_hz=SR)
    assert hz is None and fraction == 0.0 and clarity == 0.0
    with pytest.raises(ValueError):
        added_sound_pitch(unit.power[:, :10], before.power, window=an.window, sample_rate_hz=SR)
