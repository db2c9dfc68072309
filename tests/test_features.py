"""Frame features and the streamed time series, on generated signals with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft

from audiotrove.dsp.features import (
    ALL_FEATURES,
    MFCC_MELS,
    FeatureSeries,
    FrameAnalyzer,
    Framer,
    analysis_frame,
    chroma_filterbank,
    contrast_bands,
    feature_columns,
    fft_frequencies,
    mel_filterbank,
    power_db,
    series_summary,
    spectral_contrast,
    spectral_flux,
    spectral_shape,
    spectral_shape_rows,
    tempo_bpm,
    zero_crossing_rate,
)

SR = 22050


def sine(hz, seconds=1.0, sr=SR, amp=0.5):
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def noise(seconds=1.0, sr=SR, amp=0.2, seed=0):
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def frames_of(x, sr=SR, pitch=False, contrast=False):
    n_fft, hop = analysis_frame(sr)
    framer = Framer(n_fft=n_fft, hop=hop)
    frames = np.concatenate([framer.push(x), framer.finish()])
    an = FrameAnalyzer(sample_rate_hz=sr, n_fft=n_fft, hop=hop, pitch=pitch, contrast=contrast)
    return an, an.analyze(frames)


# --- the grid ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sr,n_fft", [(8000, 512), (16000, 1024), (22050, 1024), (44100, 2048),
                                       (48000, 2048), (96000, 4096)])
def test_analysis_frame_is_about_40ms(sr, n_fft):
    n, hop = analysis_frame(sr)
    assert n == n_fft and hop == n // 4
    assert n / sr >= 0.04


def test_framer_centres_frames_and_streams_exactly():
    x = np.arange(1, 5001, dtype=np.float32)
    framer = Framer(n_fft=64, hop=16)
    whole = np.concatenate([framer.push(x), framer.finish()])
    assert len(whole) == math.ceil(5000 / 16)
    # frame k is centred on sample k*hop: its element n_fft//2 is x[k*hop]
    assert whole[0, 32] == x[0] and whole[10, 32] == x[160]
    assert (whole[0, :32] == 0).all()  # zero padding before the start
    pieces = Framer(n_fft=64, hop=16)
    parts = []
    for chunk in np.array_split(x, [1, 7, 100, 101, 2500, 4999]):
        parts.append(pieces.push(chunk))
    parts.append(pieces.finish())
    assert np.array_equal(np.concatenate(parts), whole)


def test_framer_short_signal():
    framer = Framer(n_fft=64, hop=16)
    frames = np.concatenate([framer.push(np.ones(5, np.float32)), framer.finish()])
    assert frames.shape == (1, 64)
    assert frames[0, 32:37].sum() == 5


# --- filterbanks ------------------------------------------------------------------------------

def test_mel_filterbank_shape_and_coverage():
    fb = mel_filterbank(sample_rate_hz=SR, n_fft=1024, n_mels=40, fmin_hz=0, fmax_hz=8000).toarray()
    assert fb.shape == (513, 40)
    assert (fb.max(axis=0) > 0.5).all()  # no empty band
    centres = fft_frequencies(sample_rate_hz=SR, n_fft=1024)[fb.argmax(axis=0)]
    assert (np.diff(centres) >= 0).all() and centres[-1] < 8000
    assert fb[fft_frequencies(sample_rate_hz=SR, n_fft=1024) > 8100].sum() == 0
    # tiny FFT at a low rate: every filter still gets a bin
    small = mel_filterbank(sample_rate_hz=8000, n_fft=256, n_mels=64).toarray()
    assert (small.sum(axis=0) > 0).all()


def test_chroma_filterbank_maps_a440_to_a():
    fb = chroma_filterbank(sample_rate_hz=SR, n_fft=8192)
    freqs = fft_frequencies(sample_rate_hz=SR, n_fft=8192)
    assert fb[np.argmin(np.abs(freqs - 440.0))].argmax() == 9  # A
    assert fb[np.argmin(np.abs(freqs - 261.63))].argmax() == 0  # C


# --- spectral features --------------------------------------------------------------------------

def test_sine_shape():
    an, batch = frames_of(sine(1000.0))
    mean_power = batch.power[5:-5].astype(np.float64).mean(axis=0)  # not the edge frames (a click)
    centroid, rolloff, flatness = spectral_shape(mean_power, an.freqs)
    assert centroid == pytest.approx(1000.0, rel=0.03)
    assert rolloff == pytest.approx(1000.0, abs=50)
    assert flatness < 0.01


def test_white_noise_shape():
    an, batch = frames_of(noise(2.0))
    mean_power = batch.power.astype(np.float64).mean(axis=0)
    centroid, rolloff, flatness = spectral_shape(mean_power, an.freqs)
    assert centroid == pytest.approx(SR / 4, rel=0.05)
    assert rolloff == pytest.approx(0.85 * SR / 2, rel=0.05)
    assert flatness > 0.8  # averaged over frames, the power spectrum is flat
    c, r, f = spectral_shape_rows(batch.power[5:8], an.freqs)
    assert np.allclose(c, centroid, rtol=0.1) and (f > 0.4).all()  # one frame: ~exp(-gamma)


def test_silence_shape_is_none():
    an, batch = frames_of(np.zeros(SR // 2, np.float32))
    assert spectral_shape(batch.power.mean(axis=0), an.freqs) == (None, None, None)
    c, r, f = spectral_shape_rows(batch.power, an.freqs)
    assert np.isnan(c).all()


def test_brighter_sound_has_higher_centroid():
    an, low = frames_of(sine(300.0) + sine(600.0))
    _, high = frames_of(sine(3000.0) + sine(6000.0))
    c_low = spectral_shape(low.power.mean(axis=0), an.freqs)[0]
    c_high = spectral_shape(high.power.mean(axis=0), an.freqs)[0]
    assert c_high > 5 * c_low


def test_zcr_and_power():
    assert zero_crossing_rate(sine(441.0, sr=44100)) == pytest.approx(2 * 441 / 44100, rel=0.01)
    assert zero_crossing_rate(np.ones(100)) == 0.0
    assert power_db(0.5) == pytest.approx(-3.0103, abs=1e-3)  # full-scale sine
    assert power_db(0.0) == -120.0
    assert power_db(float(np.mean(sine(100.0, amp=0.1) ** 2))) == pytest.approx(-23.01, abs=0.05)


def test_mfcc_is_the_dct_of_mel_levels():
    an, batch = frames_of(noise(0.5) + sine(440.0, 0.5))
    mel_power = np.asarray(an.mfcc_fb.T @ batch.power.T.astype(np.float64)).T
    mel_db = 10 * np.log10(np.maximum(mel_power, 1e-10))
    expected = scipy.fft.dct(mel_db, type=2, norm="ortho", axis=1)[:, :13]
    assert batch.mfcc.shape == (len(batch), 13)
    assert np.allclose(batch.mfcc, expected, atol=1e-2)
    assert MFCC_MELS == 128


def test_mfcc_tell_sounds_apart():
    _, a = frames_of(sine(200.0) + 0.5 * sine(400.0))
    _, b = frames_of(noise(1.0))
    _, a2 = frames_of(sine(200.0, amp=0.4) + 0.5 * sine(400.0, amp=0.4))
    ma, mb, ma2 = (x.mfcc[5:-5].mean(axis=0) for x in (a, b, a2))
    # apart from c0 (overall level) the same timbre at another level is close, noise is far
    assert np.linalg.norm(ma[1:] - ma2[1:]) < 0.2 * np.linalg.norm(ma[1:] - mb[1:])


def test_contrast_tone_above_noise():
    an, tone_b = frames_of(sine(1000.0) + sine(2000.0) + sine(4000.0), contrast=True)
    _, noise_b = frames_of(noise(1.0), contrast=True)
    assert tone_b.contrast.shape[1] == 7
    assert tone_b.contrast[5:-5].mean() > noise_b.contrast[5:-5].mean() + 10
    bands = contrast_bands(sample_rate_hz=SR, n_fft=1024)
    assert len(bands) == 7
    direct = spectral_contrast(tone_b.power[:3], bands)
    assert np.allclose(direct, tone_b.contrast[:3])


def test_spectral_flux_rises_at_onsets_only():
    x = np.concatenate([np.zeros(SR // 2, np.float32), noise(0.5), noise(0.5, seed=3)])
    _, batch = frames_of(x)
    flux = spectral_flux(batch.onset_db, None)
    onset_frame = int(round(0.5 * SR / 256))
    assert abs(int(np.argmax(flux)) - onset_frame) <= 3
    steady = flux[onset_frame + 10:-10]
    assert flux.max() > 10 * np.median(steady)


# --- tempo ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_tempo_of_a_click_train(bpm):
    frame_rate = SR / 256
    n = int(8 * frame_rate)
    novelty = np.zeros(n)
    beats = np.arange(0, 8, 60.0 / bpm)
    novelty[(beats * frame_rate).astype(int)] = 1.0
    novelty += 0.02 * np.random.default_rng(0).random(n)
    assert tempo_bpm(novelty, frame_rate_hz=frame_rate) == pytest.approx(bpm, rel=0.03)
    assert tempo_bpm(np.ones(50), frame_rate_hz=frame_rate) is None


def test_tempo_of_audio_clicks_through_the_series():
    beat = 60.0 / 100.0
    x = np.zeros(int(12 * SR), np.float32)
    click = noise(0.02, amp=0.8)
    for t in np.arange(0.1, 11.9, beat):
        i = int(t * SR)
        x[i:i + len(click)] += click
    s = FeatureSeries(sample_rate_hz=SR, hop_s=0.5, features=("tempo",))
    rows = [s.update(x[i:i + 30000]) for i in range(0, len(x), 30000)] + [s.finish()]
    tempo = np.concatenate([r["tempo"] for r in rows])
    assert np.nanmedian(tempo[4:-4]) == pytest.approx(100.0, rel=0.03)


# --- the time series ---------------------------------------------------------------------------

def run_series(x, sr=SR, block=4096, **kw):
    s = FeatureSeries(sample_rate_hz=sr, **kw)
    parts = [s.update(x[i:i + block]) for i in range(0, len(x), block)] + [s.finish()]
    return {c: np.concatenate([p[c] for p in parts]) for c in s.columns}


def test_series_rows_and_levels():
    x = np.concatenate([sine(440.0, 1.0, amp=1.0), sine(440.0, 1.0, amp=0.1), np.zeros(int(0.55 * SR), np.float32)])
    t = run_series(x, hop_s=0.25, features=ALL_FEATURES)
    n = math.ceil(len(x) / (0.25 * SR))
    assert len(t["time"]) == n
    assert np.allclose(t["time"], np.arange(n) * 0.25)
    # frames are centred and n_fft long (librosa's rms): the rows next to a change smear it
    assert np.allclose(t["rms"][1:3], -3.01, atol=0.01)
    assert np.allclose(t["rms"][5:7], -23.01, atol=0.01)
    assert -3.3 < t["rms"][0] < -3.01 and -3.3 < t["rms"][3] < -3.01
    assert (t["rms"][-2:] == -120.0).all()
    assert np.allclose(t["hz"][1:7], 440.0, rtol=0.003)
    assert np.isnan(t["hz"][-1])
    assert (t["chroma_A"][1:7] == 1.0).all()
    assert np.allclose(t["zcr"][1:3], 2 * 440 / SR, rtol=0.02)
    assert list(t) == ["time"] + feature_columns(ALL_FEATURES)


def test_series_does_not_depend_on_block_size():
    x = np.concatenate([noise(0.7), sine(330.0, 0.8) + noise(0.8, amp=0.01, seed=5), noise(0.6, seed=9)])
    a = run_series(x, block=65536, hop_s=0.1, features=ALL_FEATURES)
    for block in (1000, 4097):
        b = run_series(x, block=block, hop_s=0.1, features=ALL_FEATURES)
        for col in a:
            assert np.allclose(a[col], b[col], rtol=1e-5, atol=1e-4, equal_nan=True), col


def test_a_row_is_the_mean_of_its_frames():
    """Rows of 0.1 s against the frame-level series (one row per frame, hop_s = the frame hop):
    each row is the mean of the frames centred in its window (centroid over the frames that
    are not silent, rms as the mean of mean squares, pitch a median), the last window, shorter
    than a frame hop, takes the frame before it."""
    x = np.concatenate([sine(330.0, 0.6) + noise(0.6, amp=0.02), np.zeros(int(0.3 * SR), np.float32),
                        noise(0.45, seed=3)])
    x = x[:13 * 2205 + 1]  # the last window: one sample, no frame centred in it
    n_fft, hop = analysis_frame(SR)
    features = ("rms", "zcr", "centroid", "contrast", "chroma", "mfcc", "pitch")
    frames = run_series(x, hop_s=hop / SR, features=features)
    rows = run_series(x, hop_s=0.1, features=features)
    edges = [int(round(i * 0.1 * SR)) for i in range(len(rows["time"]) + 1)]
    edges[-1] = min(edges[-1], len(x))
    assert len(frames["time"]) == -(-len(x) // hop) and np.isnan(frames["centroid"]).sum() > 5
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        a, b = -(-lo // hop), -(-hi // hop)
        if b <= a:
            a, b = a - 1, a
        for col in rows:
            if col in ("time", "rms", "hz", "clarity"):
                continue
            want = np.nanmean(frames[col][a:b]) if np.isfinite(frames[col][a:b]).any() else np.nan
            assert rows[col][i] == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True), (col, i)
        ms = np.mean(10.0 ** (frames["rms"][a:b] / 10.0))
        assert rows["rms"][i] == pytest.approx(max(-120.0, 10 * np.log10(ms)), abs=1e-6)
    assert b - a == 1 and hi - lo < hop  # the last window was one of a single frame
    voiced = np.isfinite(rows["hz"])
    assert voiced[:5].all() and not voiced[7:9].any()
    assert np.allclose(rows["hz"][:5], 330.0, rtol=0.01)


def test_series_hop_shorter_than_a_frame_hop():
    t = run_series(sine(500.0, 0.5), hop_s=0.005, features=("rms", "centroid"))
    assert len(t["time"]) == 100
    assert np.nanmedian(t["centroid"]) == pytest.approx(500.0, rel=0.05)


def test_series_summary():
    table = {"time": np.arange(5.0), "rms": np.array([-10.0, -20.0, -30.0, -40.0, -50.0]),
             "hz": np.array([np.nan, np.nan, 100.0, 200.0, np.nan])}
    s = series_summary(table)
    assert s["rms.mean"] == -30.0 and s["rms.p50"] == -30.0
    assert s["rms.std"] == pytest.approx(np.std([-10, -20, -30, -40, -50]))
    assert s["hz.mean"] == 150.0
    assert "time.mean" not in s
    assert series_summary({"time": np.arange(2.0), "hz": np.array([np.nan, np.nan])})["hz.mean"] is None


def test_unknown_feature_is_refused():
    with pytest.raises(ValueError, match="unknown feature"):
        FeatureSeries(sample_rate_hz=SR, features=("rms", "loudness"))
