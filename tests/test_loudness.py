"""Loudness (ITU-R BS.1770-4 / EBU R 128): audiotrove.dsp.loudness.

Synthetic cases are generated from the published definitions of EBU Tech 3341 (table 1,
minimum requirements) and EBU Tech 3342 (LRA): stereo (or 5.0) 1 kHz sines whose level is
the peak amplitude of each channel in dBFS. The real EBU/ITU vectors in shared/data are
used when present, with the expected values listed at the end of shared/data/SOURCES.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import sosfreqz

from audiotrove.dsp.loudness import (
    LoudnessMeter,
    channel_weights,
    integrated_loudness,
    k_weighting_sos,
    loudness_range,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def sine_segments(segments, *, sample_rate=48000, channels=2, freq_hz=1000.0):
    """Concatenated sine segments [(level dBFS peak, seconds), ...], float32 (n, ch).

    Each segment restarts at phase 0; whole periods are tiled (integer frequencies).
    """
    period = sample_rate // math.gcd(sample_rate, int(freq_hz))
    assert freq_hz == int(freq_hz)
    base = np.sin(2 * np.pi * freq_hz * np.arange(period) / sample_rate)
    parts = []
    for level_db, seconds in segments:
        n = round(seconds * sample_rate)
        parts.append((10 ** (level_db / 20) * np.resize(base, n)).astype(np.float32))
    x = np.concatenate(parts)
    return np.repeat(x[:, None], channels, axis=1)


def measure(audio, sample_rate, *, block=65536, **kw):
    meter = LoudnessMeter(sample_rate, audio.shape[1], **kw)
    for i in range(0, len(audio), block):
        meter.update(audio[i : i + block])
    return meter.result()["loudness"], meter


def speech_like(seconds=12.0, sample_rate=48000, seed=0):
    """Noise bursts (syllables) with a varying envelope and pauses, stereo, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    noise = rng.standard_normal((n, 2))
    # crude speech spectrum: low-passed noise
    from scipy.signal import butter, sosfilt

    noise = sosfilt(
        butter(4, [150, 4000], btype="band", fs=sample_rate, output="sos"), noise, axis=0
    )
    env = np.zeros(n)
    pos = 0
    while pos < n:
        dur = int(rng.uniform(0.08, 0.35) * sample_rate)
        gap = int(rng.uniform(0.02, 0.6) * sample_rate)
        level = 10 ** (rng.uniform(-30, 0) / 20)
        seg = min(dur, n - pos)
        env[pos : pos + seg] = level * np.hanning(dur)[:seg]
        pos += dur + gap
    return (0.3 * noise * env[:, None]).astype(np.float32)


# --- K-weighting ---------------------------------------------------------------------------


def test_k_weighting_reproduces_bs1770_table_at_48k():
    # ITU-R BS.1770-4, tables 1 and 2 (48 kHz)
    pre_b = [1.53512485958697, -2.69169618940638, 1.19839281085285]
    pre_a = [1.0, -1.69065929318241, 0.73248077421585]
    rlb_b = [1.0, -2.0, 1.0]
    rlb_a = [1.0, -1.99004745483398, 0.99007225036621]
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0, :3], pre_b, atol=1e-8)
    np.testing.assert_allclose(sos[0, 3:], pre_a, atol=1e-8)
    np.testing.assert_allclose(sos[1, :3], rlb_b, atol=1e-12)
    np.testing.assert_allclose(sos[1, 3:], rlb_a, atol=1e-8)


@pytest.mark.parametrize(
    "sample_rate, tolerance_db",
    [
        (8000, 0.015),
        (11025, 0.015),
        (16000, 0.015),
        (22050, 0.015),
        (32000, 0.015),
        (44100, 0.015),
        (96000, 0.015),
        (192000, 0.015),
    ],
)
def test_k_weighting_response_is_the_same_at_any_rate(sample_rate, tolerance_db):
    freqs = np.array(
        [10.0, 20.0, 38.0, 50.0, 100.0, 500.0, 1000.0, 1700.0, 2000.0, 4000.0, 6000.0, 10000.0]
    )
    freqs = freqs[freqs < 0.4 * sample_rate]
    _, ref = sosfreqz(k_weighting_sos(48000), worN=freqs, fs=48000)
    _, got = sosfreqz(k_weighting_sos(sample_rate), worN=freqs, fs=sample_rate)
    ref_db = 20 * np.log10(np.abs(ref))
    got_db = 20 * np.log10(np.abs(got))
    # the +4 dB shelf and the 38 Hz high-pass must be where they are at 48 kHz
    np.testing.assert_allclose(got_db, ref_db, atol=tolerance_db)


def test_k_weighting_shape():
    freqs = np.array([20.0, 1000.0, 4000.0, 10000.0])
    _, h = sosfreqz(k_weighting_sos(48000), worN=freqs, fs=48000)
    db = 20 * np.log10(np.abs(h))
    assert db[0] < -10.0  # RLB high-pass
    assert abs(db[1]) < 1.0  # about +0.7 dB at 1 kHz
    assert 3.0 < db[2] < 4.5 and 3.5 < db[3] < 4.5  # the +4 dB shelf


# --- EBU Tech 3341 --------------------------------------------------------------------------

TECH3341 = {
    # case: (segments, expected integrated LUFS)
    1: ([(-23.0, 20.0)], -23.0),
    2: ([(-33.0, 20.0)], -33.0),
    3: ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    4: ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    5: ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}


@pytest.mark.parametrize("case", sorted(TECH3341))
def test_tech3341_integrated(case):
    segments, expected = TECH3341[case]
    audio = sine_segments(segments)
    if case in (1, 2):  # M, S, I = level, through the whole meter
        res, _ = measure(audio, 48000)
        assert res["measured"] == pytest.approx(expected, abs=0.1)
        assert res["momentary_max"] == pytest.approx(expected, abs=0.1)
        assert res["short_term_max"] == pytest.approx(expected, abs=0.1)
        assert res["gating_mode"] == "ebu_r128"
        assert "reason" not in res
    else:
        assert integrated_loudness(audio, sample_rate=48000) == pytest.approx(expected, abs=0.1)


def test_tech3341_case6_five_channels():
    # Case 6: 5.0 (L R C Ls Rs), 1 kHz, 20 s: L, R -28.0 dBFS; C -24.0 dBFS; Ls, Rs -30.0 dBFS
    # -> I = -23.0 LUFS (Ls, Rs weighted 1.41).
    levels = [-28.0, -28.0, -24.0, -30.0, -30.0]
    audio = np.concatenate([sine_segments([(lv, 20.0)], channels=1) for lv in levels], axis=1)
    measured = integrated_loudness(audio, sample_rate=48000)
    assert measured == pytest.approx(-23.0, abs=0.1)
    # Without the surround weights it would read -23.4: the weights matter.
    plain = integrated_loudness(audio, sample_rate=48000, weights=[1.0] * 5)
    assert plain == pytest.approx(measured - 0.37, abs=0.02)


def test_tech3341_case9_short_term_bursts():
    # Case 9: 5 x (1.34 s at -20 dBFS + 1.66 s at -30 dBFS): S = -23.0 constant after 3 s.
    audio = sine_segments([(-20.0, 1.34), (-30.0, 1.66)] * 5)
    res, meter = measure(audio, 48000)
    assert res["short_term_max"] == pytest.approx(-23.0, abs=0.1)
    s = meter.short_term_lufs()
    assert np.all(np.abs(s - (-23.0)) < 0.1)
    # the momentary max follows the -20 dBFS bursts
    assert res["momentary_max"] == pytest.approx(-20.0, abs=0.1)


def test_tech3341_case12_momentary_bursts():
    # Case 12: 25 x (0.18 s at -20 dBFS + 0.22 s at -30 dBFS): M = -23.0 constant after 1 s.
    audio = sine_segments([(-20.0, 0.18), (-30.0, 0.22)] * 25)
    res, meter = measure(audio, 48000)
    assert res["momentary_max"] == pytest.approx(-23.0, abs=0.1)
    m = meter.momentary_lufs()
    assert np.all(np.abs(m[10:] - (-23.0)) < 0.1)  # value 10 covers 1.0-1.4 s


# --- EBU Tech 3342 (loudness range) -----------------------------------------------------------

TECH3342 = {
    1: ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    2: ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    3: ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    4: ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
}


@pytest.mark.parametrize("case", sorted(TECH3342))
def test_tech3342_loudness_range(case):
    segments, expected = TECH3342[case]
    audio = sine_segments(segments)
    lra = loudness_range(audio, sample_rate=48000)
    assert lra == pytest.approx(expected, abs=1.0)
    if case == 1:  # the meter's "range" field is the same number
        res, _ = measure(audio, 48000)
        assert res["range"] == pytest.approx(lra, abs=1e-3)


# --- streaming, rates, weights -----------------------------------------------------------------


def test_block_size_independence():
    audio = speech_like()
    ref, _ = measure(audio, 48000, block=65536)
    for block in (1000, 4800, 100_003):
        got, _ = measure(audio, 48000, block=block)
        assert got.keys() == ref.keys()
        for key in (
            "measured",
            "range",
            "momentary_max",
            "short_term_max",
            "sample_peak",
            "true_peak",
        ):
            assert got[key] == pytest.approx(ref[key], abs=2e-3), (block, key)
    assert ref["measured"] is not None and ref["range"] > 3.0
    # tiny odd blocks on a shorter stretch (> 3 s, so that every field is there)
    short = audio[: int(3.3 * 48000)]
    a, _ = measure(short, 48000, block=7)
    b, _ = measure(short, 48000, block=65536)
    for key in ("measured", "range", "momentary_max", "short_term_max", "true_peak"):
        assert a[key] == pytest.approx(b[key], abs=2e-3), key


def test_same_loudness_at_any_rate():
    for freq_hz in (100.0, 1000.0, 3000.0, 5000.0):
        results = {}
        for fs in (44100, 48000, 96000, 32000, 22050, 16000):
            if freq_hz > 0.3 * fs:
                continue
            audio = sine_segments([(-18.0, 5.0)], sample_rate=fs, freq_hz=freq_hz)
            results[fs] = integrated_loudness(audio, sample_rate=fs)
        for fs, value in results.items():
            assert value == pytest.approx(results[48000], abs=0.01), (freq_hz, fs)
        if freq_hz == 1000.0:
            at_1k = results[48000]
    # 5 kHz sits on the +4 dB shelf: about 3.3 LU louder than the same level at 1 kHz
    assert 3.0 < results[48000] - at_1k < 3.8


def test_rate_not_multiple_of_ten():
    # 11025 Hz: 100 ms is 1102.5 samples; sub-blocks alternate 1102/1103 samples
    audio = sine_segments([(-20.0, 6.0)], sample_rate=11025)
    assert integrated_loudness(audio, sample_rate=11025) == pytest.approx(-20.0, abs=0.05)


def test_mono_and_stereo():
    mono = sine_segments([(-20.0, 5.0)], channels=1)
    stereo = sine_segments([(-20.0, 5.0)], channels=2)
    lm = integrated_loudness(mono[:, 0], sample_rate=48000)  # 1-D input accepted
    ls = integrated_loudness(stereo, sample_rate=48000)
    assert ls - lm == pytest.approx(10 * math.log10(2), abs=0.01)


def test_channel_weights_and_lfe():
    assert list(channel_weights(2)) == [1.0, 1.0]
    assert list(channel_weights(5)) == [1.0, 1.0, 1.0, 1.41, 1.41]
    assert list(channel_weights(6)) == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]
    assert list(channel_weights(8)) == [1.0] * 8
    tone = sine_segments([(-20.0, 3.0)], channels=1)[:, 0]
    six = np.zeros((tone.size, 6), dtype=np.float32)
    six[:, 3] = tone  # LFE only: excluded from loudness
    res, _ = measure(six, 48000)
    assert res["measured"] is None and "below" in res["reason"]
    assert res["sample_peak"] == pytest.approx(-20.0, abs=0.01)  # peaks still see it
    six[:, 3] = 0
    six[:, 4] = tone  # Ls: +1.5 dB over the same signal in L
    with_ls = integrated_loudness(six, sample_rate=48000)
    six[:, 4] = 0
    six[:, 0] = tone
    with_l = integrated_loudness(six, sample_rate=48000)
    assert with_ls - with_l == pytest.approx(10 * math.log10(1.41), abs=0.01)


def test_normalisation_with_the_pure_helper():
    audio = speech_like(seconds=8.0, seed=3)
    before = integrated_loudness(audio, sample_rate=48000)
    gain = 10 ** ((-16.0 - before) / 20)
    after = integrated_loudness(audio * gain, sample_rate=48000)
    assert after == pytest.approx(-16.0, abs=0.01)


# --- what cannot be measured ------------------------------------------------------------------


def test_shorter_than_one_gating_block():
    audio = sine_segments([(-20.0, 0.3)])
    res, _ = measure(audio, 48000)
    assert res["measured"] is None and res["range"] is None and res["momentary_max"] is None
    assert res["short_term_max"] is None
    assert "400 ms" in res["reason"]
    assert res["sample_peak"] == pytest.approx(-20.0, abs=0.01)  # peaks are still there
    assert res["true_peak"] is not None
    assert integrated_loudness(audio, sample_rate=48000) is None
    json.dumps(res)


def test_shorter_than_short_term_window():
    res, _ = measure(sine_segments([(-20.0, 2.0)]), 48000)
    assert res["measured"] == pytest.approx(-20.0 + 10 * math.log10(2) - 3.01, abs=0.1)
    assert res["short_term_max"] is None and res["range"] is None
    assert "3 s" in res["reason"]


def test_digital_silence():
    res, _ = measure(np.zeros((48000 * 4, 2), dtype=np.float32), 48000)
    assert res["measured"] is None and res["momentary_max"] is None
    assert res["short_term_max"] is None and res["range"] is None
    assert res["sample_peak"] is None and res["true_peak"] is None
    assert "silence" in res["reason"]
    json.dumps(res)  # no -inf in the output


def test_below_absolute_gate():
    res, _ = measure(sine_segments([(-80.0, 4.0)]), 48000)
    assert res["measured"] is None and "-70 LUFS" in res["reason"]
    assert res["momentary_max"] == pytest.approx(-80.0, abs=0.1)  # a real value, just quiet


def test_no_samples_and_bad_shapes():
    meter = LoudnessMeter(48000, 2)
    meter.update(np.zeros((0, 2), dtype=np.float32))
    res = meter.result()["loudness"]
    assert res["measured"] is None and res["sample_peak"] is None
    assert res["reason"] == "no audio samples"
    with pytest.raises(ValueError):
        meter.update(np.zeros((10, 3), dtype=np.float32))


# --- real test vectors ------------------------------------------------------------------------


def _vector(rel):
    path = DATA / "loudness" / rel
    if not path.exists():
        pytest.skip(f"{path} not available")
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return audio, sr


def test_ebu_vector_case1():
    audio, sr = _vector("ebu/seq-3341-1-16bit.wav")
    res, _ = measure(audio, sr)
    for key in ("measured", "momentary_max", "short_term_max"):
        assert res[key] == pytest.approx(-23.0, abs=0.1)


def test_ebu_vector_case13_momentary_max():
    audio, sr = _vector("ebu/seq-3341-13-1-24bit.wav")
    res, _ = measure(audio, sr)
    assert res["momentary_max"] == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ebu/seq-3341-15-24bit.wav.wav", -6.0),
        ("ebu/seq-3341-19-24bit.wav.wav", 3.0),
        ("ebu/seq-3341-20-24bit.wav.wav", 0.0),
    ],
)
def test_ebu_vector_true_peak(name, expected):
    audio, sr = _vector(name)
    res, _ = measure(audio, sr, block=4096)
    assert expected - 0.4 <= res["true_peak"] <= expected + 0.2


@pytest.mark.parametrize(
    "name, expected",
    [("itu/1770-2_Comp_RelGateTest.wav", -10.0), ("itu/1770-2_Comp_AbsGateTest.wav", -69.5)],
)
def test_itu_gating_vectors(name, expected):
    audio, sr = _vector(name)
    assert integrated_loudness(audio, sample_rate=sr) == pytest.approx(expected, abs=0.1)
