"""Sample peak, true peak (audiotrove.dsp.peaks) and clipping (audiotrove.dsp.clipping)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.signal import firwin, upfirdn

from audiotrove.dsp.clipping import ClippingMeter
from audiotrove.dsp.peaks import (
    KAISER_BETA,
    TAPS_PER_PHASE,
    PeakMeter,
    oversampling_factor,
    sample_peak_dbfs,
    true_peak_dbtp,
)


def faded(x, fade=256):
    """Raised-cosine fade in/out, so that the stream edges add no ringing of their own."""
    w = np.ones(len(x))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    w[:fade] = ramp
    w[-fade:] = ramp[::-1]
    return x * (w if x.ndim == 1 else w[:, None])


def run_peaks(x, sample_rate, block=65536):
    x = x if x.ndim == 2 else x[:, None]
    meter = PeakMeter(sample_rate, x.shape[1])
    for i in range(0, len(x), block):
        meter.update(x[i : i + block])
    return meter


def music_like(seconds=6.0, sample_rate=44100, seed=0):
    """Harmonic tones and noise under a changing envelope, stereo float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = np.zeros((n, 2))
    for f in rng.uniform(80, 6000, 12):
        x += rng.uniform(0.02, 0.15) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))[:, None]
    x += 0.05 * rng.standard_normal((n, 2))
    env = np.repeat(10 ** (rng.uniform(-25, 0, n // 2205 + 1) / 20), 2205)[:n]
    return (x * env[:, None] * 0.5).astype(np.float32)


# --- peaks -------------------------------------------------------------------------------------


def test_oversampling_factor():
    assert [
        oversampling_factor(r) for r in (8000, 44100, 48000, 88200, 96000, 176400, 192000, 384000)
    ] == [
        4,
        4,
        4,
        4,
        2,
        2,
        1,
        1,
    ]


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_true_peak_fs4_sine_45_degrees(sample_rate):
    # fs/4 with 45 deg phase: samples at +-A/sqrt(2), crests exactly between samples
    amplitude = 0.5
    n = np.arange(sample_rate)
    x = faded(amplitude * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)
    tp = true_peak_dbtp(x, sample_rate=sample_rate)
    sp = sample_peak_dbfs(x)
    assert tp == pytest.approx(20 * math.log10(amplitude), abs=0.2)
    assert sp == pytest.approx(20 * math.log10(amplitude) - 3.01, abs=0.01)
    # phase 0 (EBU Tech 3341 case 15 shape): the crests are samples
    y = faded(amplitude * np.sin(np.pi / 2 * n)).astype(np.float32)
    assert true_peak_dbtp(y, sample_rate=sample_rate) == pytest.approx(-6.02, abs=0.05)


def test_inter_sample_over():
    # EBU case 19 shape: fs/4, 45 deg, 1.41 FFS: samples at 1.0, true peak +3 dBTP
    n = np.arange(48000)
    x = faded(1.41 * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)
    meter = run_peaks(x, 48000)
    res = meter.result()
    assert res["true_peak"] == pytest.approx(20 * math.log10(1.41), abs=0.2)  # +2.98
    assert res["sample_peak"] == pytest.approx(20 * math.log10(1.41 / math.sqrt(2)), abs=0.01)


def test_true_peak_matches_full_oversampling_and_any_block_size():
    x = music_like()
    # reference: the same interpolator, applied everywhere with scipy's polyphase upfirdn
    h = firwin(4 * TAPS_PER_PHASE + 1, 0.25, window=("kaiser", KAISER_BETA)) * 4
    ref = max(np.abs(upfirdn(h, x[:, c].astype(np.float64), up=4)).max() for c in range(2))
    values = [run_peaks(x, 44100, block).true_peak for block in (997, 4096, 65536, len(x))]
    for v in values:
        assert v == pytest.approx(ref, rel=1e-5)
        assert v == values[0]  # exactly the same whatever the block size
    assert values[0] >= np.abs(x).max()


@pytest.mark.parametrize("sample_rate, factor", [(96000, 2), (192000, 1)])
def test_high_rates(sample_rate, factor):
    assert oversampling_factor(sample_rate) == factor
    t = np.arange(sample_rate // 2) / sample_rate
    x = faded(0.8 * np.sin(2 * np.pi * 3001.0 * t + 0.3)).astype(np.float32)
    tp = true_peak_dbtp(x, sample_rate=sample_rate)
    assert 20 * math.log10(0.8) - 0.05 <= tp <= 20 * math.log10(0.8) + 0.05


def test_peaks_of_silence_and_nothing():
    meter = run_peaks(np.zeros((4800, 2), dtype=np.float32), 48000)
    res = meter.result()
    assert res["sample_peak"] is None and res["true_peak"] is None and "silence" in res["reason"]
    assert PeakMeter(48000, 1).result()["reason"] == "no audio samples"
    assert true_peak_dbtp(np.zeros(0), sample_rate=48000) is None
    assert sample_peak_dbfs(np.zeros(10)) is None
    json.dumps(res)


def test_stream_edges_count():
    # a stream that stops on a full-scale sample rings past it: the end flush sees that
    x = np.zeros(4800, dtype=np.float32)
    x[-1] = 1.0
    x[-2] = -1.0
    assert run_peaks(x, 48000).true_peak > 1.05


# --- clipping ----------------------------------------------------------------------------------


def run_clip(x, sample_rate=48000, block=65536, **kw):
    x = x if x.ndim == 2 else x[:, None]
    meter = ClippingMeter(sample_rate, x.shape[1], **kw)
    for i in range(0, len(x), block):
        meter.update(x[i : i + block])
    return meter.result()["clipping"]


def sine(freq_hz, seconds, sample_rate=48000, amplitude=1.0, phase=0.0):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t + phase)


def quantise(x, bits):
    scale = 2 ** (bits - 1)
    return (np.clip(np.round(x * scale), -scale, scale - 1) / scale).astype(np.float32)


@pytest.mark.parametrize("freq_hz", [997.0, 440.0, 50.0, 20.0])
def test_clean_sine_near_full_scale_has_no_sections(freq_hz):
    x = sine(freq_hz, 2.0, amplitude=0.9999).astype(np.float32)
    res = run_clip(x)
    assert res == {"num_sections": 0, "percentage": 0.0, "sections": []}
    # also quantised to 16 bits (low tones then have runs of equal samples at their crests)
    assert run_clip(quantise(sine(freq_hz, 2.0, amplitude=0.98), 16))["num_sections"] == 0


def test_clean_8bit_sine_has_no_sections():
    # 8-bit crests are flat over several samples; the 8-bit grid is recognised by itself
    for freq_hz in (60.0, 1000.0):
        x = quantise(sine(freq_hz, 2.0, amplitude=0.9), 8)
        assert run_clip(x)["num_sections"] == 0
    # clipped at 0.5 (a steep entry: more than 6 steps of 1/128 over two samples) is found
    y = quantise(np.clip(sine(1000.0, 2.0, amplitude=0.9), -0.5, 0.5), 8)
    assert run_clip(y)["num_sections"] == 1


def test_clipped_then_scaled_is_detected():
    # 3 s: clean, clipped at 0.5 from 1.0 s to 2.0 s, clean; then the whole file turned up
    fs = 48000
    x = sine(440.0, 3.0, amplitude=0.45)
    seg = slice(fs, 2 * fs)
    x[seg] = np.clip(sine(440.0, 1.0, amplitude=0.9, phase=2 * np.pi * 440.0), -0.5, 0.5)
    x = (x * 1.6).astype(np.float32)  # ceiling at 0.8, no sample at full scale
    assert np.abs(x).max() < 0.81
    res = run_clip(x)
    assert res["num_sections"] == 1
    start, end = res["sections"][0]
    assert start == pytest.approx(1.0, abs=0.01) and end == pytest.approx(2.0, abs=0.01)
    assert res["percentage"] == pytest.approx(100 / 3, abs=0.5)
    json.dumps(res)


def test_clipped_then_scaled_16bit():
    x = quantise(0.7 * np.clip(sine(220.0, 2.0, amplitude=1.0), -0.6, 0.6) / 0.6, 16)
    res = run_clip(x)
    assert res["num_sections"] == 1 and res["percentage"] > 95


def test_full_scale_clipping_and_min_run():
    x = np.clip(sine(1000.0, 1.0, amplitude=1.3), -1.0, 1.0).astype(np.float32)
    res = run_clip(x)
    assert res["num_sections"] == 1 and res["percentage"] > 99
    # two samples at full scale are not a run of three
    y = (0.5 * sine(100.0, 1.0)).astype(np.float32)
    y[24000:24002] = 1.0
    assert run_clip(y)["num_sections"] == 0
    y[24000:24003] = 1.0
    res = run_clip(y)
    assert res["num_sections"] == 1
    assert res["sections"][0] == [0.5, 0.5001]  # [24000, 24003) / 48000, rounded


def test_square_wave_is_reported_as_clipped():
    # documented behaviour: flat tops at the extreme, entered through a corner
    x = (0.5 * np.sign(sine(100.0, 1.0, phase=0.1))).astype(np.float32)
    res = run_clip(x)
    assert res["num_sections"] == 1 and res["percentage"] > 99


def test_single_flat_top_below_full_scale_needs_a_second_hit():
    fs = 48000
    x = sine(300.0, 2.0, amplitude=0.4)
    burst = slice(fs // 2, fs // 2 + 80)  # one clipped crest at 0.6 (the file's extreme)
    x[burst] = np.clip(sine(300.0, 80 / fs, amplitude=0.9, phase=2 * np.pi * 300 * 0.5), -0.6, 0.6)
    x = x.astype(np.float32)
    assert run_clip(x)["num_sections"] == 0
    assert run_clip(x, min_plateau_hits=1)["num_sections"] == 1
    # a second flat top at the same level, 1 s later: both are reported
    x[fs + fs // 2 : fs + fs // 2 + 80] = x[burst]
    res = run_clip(x)
    assert res["num_sections"] == 2
    assert res["sections"][0][0] == pytest.approx(0.5, abs=0.002)


@pytest.mark.parametrize("block", [1, 7, 1000, 4096, 65536])
def test_runs_across_block_boundaries(block):
    x = np.clip(sine(50.0, 1.0, amplitude=0.9), -0.5, 0.5)  # plateaus of ~300 samples
    # a full-scale run inside one: from there on the positive ceiling is 1.0, and the
    # positive plateaus at 0.5 are no longer at the channel's extreme (not reported)
    x[30000:30010] = 1.0
    stereo = np.stack([x, -x * 0.9], axis=1).astype(np.float32)
    n = 12000 if block == 1 else len(stereo)  # one sample per block is slow: shorter
    ref = run_clip(stereo[:n], block=65536, merge_gap_s=0.001)
    got = run_clip(stereo[:n], block=block, merge_gap_s=0.001)
    assert got == ref
    assert ref["num_sections"] == (25 if block == 1 else 82)


def test_section_merging_and_channels():
    fs = 48000
    base = (0.3 * sine(200.0, 4.0)).astype(np.float32)
    left, right = base.copy(), base.copy()
    left[fs : fs + 5] = 1.0  # 1.000 s
    right[fs + 1440 : fs + 1445] = -1.0  # 1.030 s, other channel, other polarity: merged
    left[2 * fs : 2 * fs + 5] = 1.0  # 2.000 s
    left[2 * fs + 3840 : 2 * fs + 3845] = 1.0  # 2.080 s: 80 ms later, separate
    res = run_clip(np.stack([left, right], axis=1))
    assert res["num_sections"] == 3
    assert res["sections"][0] == pytest.approx([1.0, 1.0301], abs=1e-4)


def test_section_list_is_capped_but_counts_are_exact():
    fs = 8000
    x = (0.2 * sine(100.0, 160.0, sample_rate=fs)).astype(np.float32)
    starts = np.arange(1500) * (fs // 10)  # a 4-sample clip every 100 ms
    for s in starts:
        x[s + 10 : s + 14] = 1.0
    res = run_clip(x, sample_rate=fs, max_sections=1000)
    assert res["num_sections"] == 1500
    assert len(res["sections"]) == 1000
    assert res["percentage"] == pytest.approx(100 * 1500 * 4 / len(x), abs=1e-4)


def test_empty_and_silent_and_idempotent():
    empty = ClippingMeter(48000, 2).result()["clipping"]
    assert empty["num_sections"] == 0 and empty["percentage"] is None and "reason" in empty
    assert run_clip(np.zeros((48000, 2), dtype=np.float32))["num_sections"] == 0
    meter = ClippingMeter(48000, 1)
    x = np.clip(sine(1000.0, 0.5, amplitude=1.2), -1, 1).astype(np.float32)
    meter.update(x[:, None])
    assert meter.result() == meter.result()  # result() does not consume the open runs
    meter.update(x[:, None])
    assert meter.result()["clipping"]["num_sections"] == 1


def test_float_overs_count_as_clipping():
    x = (1.5 * sine(1000.0, 0.5)).astype(np.float32)  # float file beyond full scale
    assert run_clip(x)["num_sections"] == 1


def test_a_clipped_stretch_with_runs_closer_than_50_ms_is_one_section():
    # issue 11, item 10: a 0.3 s stretch of a voice-like tone (130 Hz, 20 Hz swells)
    # pushed into the ceiling: its clipped crests come in bursts ~35 ms apart, and the
    # stretch is one section; a second stretch 200 ms later is a second one
    sr = 48000
    t = np.arange(int(1.2 * sr)) / sr
    voice = 0.4 * np.sin(2 * np.pi * 130 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 20 * t))
    gain = np.ones_like(t)
    gain[(t >= 0.2) & (t < 0.5)] = 3.0
    gain[(t >= 0.7) & (t < 0.9)] = 3.0
    x = np.clip(voice * gain, -1.0, 1.0).astype(np.float32)
    over = np.flatnonzero(np.abs(voice * gain) > 1.0) / sr
    for lo, hi in ((0.2, 0.5), (0.7, 0.9)):  # the truth: runs closer than 50 ms in a stretch
        assert np.diff(over[(over >= lo) & (over < hi)]).max() < 0.05
    out = run_clip(x[:, None], sr)
    assert out["num_sections"] == 2
    (a0, a1), (b0, b1) = out["sections"]
    # from the first clipped crest to the last one of each stretch (a swell ends each early)
    assert 0.2 <= a0 < 0.23 and 0.44 < a1 <= 0.5
    assert 0.7 <= b0 < 0.73 and 0.84 < b1 <= 0.9
