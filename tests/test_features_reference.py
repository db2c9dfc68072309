"""Issue 11: features that a researcher can trust, on numpy signals with known answers.

Gain invariance (flatness, contrast), chroma on single notes C1..C7, tempo continuity, and
agreement with librosa's definitions where librosa is installed (skipped otherwise).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from audiotrove.dsp.features import ALL_FEATURES, FeatureSeries, analysis_frame

SR = 22050
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def series(x, *, sr=SR, hop_s=0.1, features=ALL_FEATURES, block=8192):
    s = FeatureSeries(sample_rate_hz=sr, hop_s=hop_s, features=features)
    parts = [s.update(x[i:i + block]) for i in range(0, len(x), block)] + [s.finish()]
    return {c: np.concatenate([p[c] for p in parts]) for c in s.columns}


def harmonic_note(midi, seconds=0.6, sr=SR, amp=0.5, n_harmonics=12, seed=0):
    """A steady note: harmonics k = 1..n of 1/k amplitude (below Nyquist), random phases."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = np.zeros_like(t)
    for k in range(1, n_harmonics + 1):
        if k * f0 < 0.45 * sr:
            x += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


# --- 1. flatness and contrast do not depend on the playback level ---------------------------

def test_flatness_and_contrast_are_invariant_to_gain():
    rng = np.random.default_rng(1)
    note = harmonic_note(45, seconds=2.0, amp=0.9)  # A2, a cello-like register
    x = note + (1e-5 * rng.standard_normal(len(note))).astype(np.float32)  # -100 dB of hiss
    cols = ["flatness"] + [f"contrast_{i}" for i in range(1, 8)]
    ref = series(x, features=("flatness", "contrast"))
    for gain_db in (-40.0, 40.0):
        t = series(x * np.float32(10 ** (gain_db / 20)), features=("flatness", "contrast"))
        for col in cols:
            a, b = ref[col][2:-2], t[col][2:-2]
            assert np.allclose(b, a, rtol=0.01, atol=1e-12), (gain_db, col, a[:3], b[:3])


# --- 2. chroma names the pitch class of single notes, bass included -----------------------

def test_chroma_top_bin_is_the_pitch_class_from_c1_to_c7():
    # C1..B1 need the chroma's longer frames (ChromaFrames): at 46 ms, 3 of the 12 were right
    for sr in (22050, 44100):
        right = {}
        for midi in range(24, 97):  # C1 .. C7
            t = series(harmonic_note(midi, sr=sr, seed=midi), sr=sr, features=("chroma",), hop_s=0.2)
            chroma = np.array([t[f"chroma_{n}"][1] for n in NOTE_NAMES])
            right[midi] = int(np.argmax(chroma) == midi % 12)
        assert sum(right.values()) / len(right) >= 0.95, f"{sr} Hz: {sum(right.values())} of {len(right)}"
        bass = sum(right[m] for m in range(24, 36))
        assert bass >= 11, f"{sr} Hz: C1..B1 {bass} of 12"


# --- 4. the local tempo keeps its octave on steady music and follows a real change ----------

def drum_loop(bpm_parts, sr=SR, seed=3):
    """Kick on beats 1 and 3, snare on 2 and 4, hi-hats on eighths of random loudness,
    for each (bpm, seconds) in turn."""
    rng = np.random.default_rng(seed)
    n_total = int(sum(s for _, s in bpm_parts) * sr)
    x = np.zeros(n_total + sr, np.float32)
    tk = np.arange(int(0.15 * sr)) / sr
    kick = (np.sin(2 * np.pi * 60 * tk) * np.exp(-tk * 25)).astype(np.float32)
    snare = (rng.standard_normal(int(0.12 * sr)) * np.exp(-np.arange(int(0.12 * sr)) / sr * 30)).astype(np.float32)
    hat = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / sr * 150)).astype(np.float32)
    hat = np.diff(hat, prepend=0).astype(np.float32)  # brighter
    t0 = 0.0
    for bpm, seconds in bpm_parts:
        beat = 60.0 / bpm
        n_beats = int(seconds / beat)
        for b in range(n_beats):
            pos = int((t0 + b * beat) * sr)
            hit = 0.6 * kick if b % 2 == 0 else 0.4 * snare
            x[pos:pos + len(hit)] += hit
            for half in (0, 1):
                p = int((t0 + (b + half / 2) * beat) * sr)
                x[p:p + len(hat)] += rng.uniform(0.05, 0.35) * hat
        t0 += n_beats * beat
    return x[:n_total]


def test_tempo_curve_is_steady_on_steady_music():
    # at 150 BPM the autocorrelation of this loop has its beat and its 2:3 alias about as
    # strong: a tracker without continuity hops between 150 and 100 BPM (spread 25 %)
    t = series(drum_loop([(150.0, 60.0)], seed=1), features=("tempo",), hop_s=0.5)
    curve = t["tempo"][8:-8]  # windows with a full 8 s of context
    assert np.isfinite(curve).all()
    med = np.median(curve)
    spread = np.percentile(curve, 90) - np.percentile(curve, 10)
    assert spread <= 0.05 * med, (med, spread)
    assert any(med == pytest.approx(150.0 * r, rel=0.03) for r in (0.5, 2 / 3, 1.0, 2.0)), med


def test_tempo_curve_follows_a_real_tempo_change():
    t = series(drum_loop([(90.0, 40.0), (128.0, 40.0)]), features=("tempo",), hop_s=0.5)
    time, curve = t["time"], t["tempo"]
    before = np.median(curve[(time > 10) & (time < 30)])
    after = np.median(curve[(time > 60) & (time < 75)])
    ratio = after / before
    assert ratio == pytest.approx(128.0 / 90.0, rel=0.04), (before, after)


# --- 5. the level columns say what 0 dB is ------------------------------------------------

def test_rms_of_a_full_scale_sine_and_the_readme_says_so():
    x = np.sin(2 * np.pi * 441.0 * np.arange(SR) / SR).astype(np.float32)
    t = series(x, features=("rms",))
    assert np.allclose(t["rms"][1:-1], -3.01, atol=0.01)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Feature definitions"):]
    assert "full-scale sine reads -3.01" in section


# --- 3. the definitions are librosa's (where librosa is installed) -------------------------

HAVE_LIBROSA = importlib.util.find_spec("librosa") is not None


def music_like(seconds=6.0, sr=SR, seed=7):
    """Chords of harmonic notes, drum hits and a little noise: every feature moves."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * sr), np.float32)
    step = int(0.5 * sr)
    for i, pos in enumerate(range(0, len(x) - step, step)):
        for midi in rng.choice(np.arange(36, 84), size=3, replace=False):
            note = harmonic_note(int(midi), seconds=0.5, amp=0.2, seed=i * 7 + int(midi))
            env = np.minimum(1.0, np.arange(len(note)) / (0.02 * sr)) * np.exp(-np.arange(len(note)) / sr * 2)
            x[pos:pos + len(note)] += note * env.astype(np.float32)
        hit = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / sr * 80)
        x[pos:pos + len(hit)] += (0.3 * hit).astype(np.float32)
    x += (0.003 * rng.standard_normal(len(x))).astype(np.float32)
    return x


@pytest.mark.skipif(not HAVE_LIBROSA, reason="librosa not installed (pip install librosa)")
@pytest.mark.parametrize("sr", [22050, 44100])
def test_frame_features_match_librosa(sr):
    import librosa

    y = music_like(sr=sr)
    n_fft, hop = analysis_frame(sr)
    t = series(y, sr=sr, hop_s=hop / sr, features=("rms", "zcr", "centroid", "rolloff", "flatness",
                                                  "contrast", "chroma", "mfcc"))
    kw = dict(n_fft=n_fft, hop_length=hop)
    ref = {
        "rms": 20 * np.log10(np.maximum(librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0], 1e-6)),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0],
        "centroid": librosa.feature.spectral_centroid(y=y, sr=sr, **kw)[0],
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, **kw)[0],
        "flatness": librosa.feature.spectral_flatness(y=y, **kw)[0],
    }
    for i, row in enumerate(librosa.feature.spectral_contrast(y=y, sr=sr, **kw)):
        ref[f"contrast_{i + 1}"] = row
    # chroma on frames twice as long (ChromaFrames), centred on the same hops
    for name, row in zip(NOTE_NAMES, librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0, n_fft=2 * n_fft,
                                                                   hop_length=hop)):
        ref[f"chroma_{name}"] = row
    mel = librosa.feature.melspectrogram(y=y, sr=sr, **kw)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13)
    for i, row in enumerate(mfcc):
        ref[f"mfcc_{i + 1}"] = row
    assert len(t["time"]) == mel.shape[1]
    for col, want in ref.items():
        got = t[col]
        assert np.corrcoef(got, want)[0, 1] >= 0.999, col
        # and the values themselves (zcr exactly; the rest to float32 rounding)
        scale = max(np.std(want), 1e-9)
        assert np.median(np.abs(got - want)) <= 0.01 * scale, col
    # librosa's default MFCC clip the whole signal 80 dB below its top (top_db=80); where no
    # band falls that low the numbers are the same
    dflt = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, **kw)
    for i in range(13):
        assert np.corrcoef(t[f"mfcc_{i + 1}"], dflt[i])[0, 1] >= 0.99, i


@pytest.mark.skipif(not HAVE_LIBROSA, reason="librosa not installed (pip install librosa)")
def test_chroma_matches_librosa_default_tuning_on_tuned_notes():
    import librosa

    y = np.concatenate([harmonic_note(m, seconds=0.5, seed=m) for m in (40, 47, 55, 62, 69, 76)])
    n_fft, hop = analysis_frame(SR)
    t = series(y, hop_s=hop / SR, features=("chroma",))
    ref = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=2 * n_fft, hop_length=hop)  # tuning estimated
    got = np.array([t[f"chroma_{n}"] for n in NOTE_NAMES])
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] >= 0.99


# --- 3. librosa's default MFCC (top_db=80) as a named option -------------------------------

def fading_notes(sr=SR):
    """Notes then a fade into near silence: the bands of the quiet end fall more than 80 dB
    below the file's top, where librosa's default clip and our unclipped MFCC part."""
    x = np.concatenate([harmonic_note(m, seconds=0.4, sr=sr, seed=m) for m in (45, 52, 57, 64)])
    fade = np.exp(-np.arange(int(1.5 * sr)) / sr * 12).astype(np.float32)
    tail = harmonic_note(57, seconds=1.5, sr=sr, seed=1) * fade
    rng = np.random.default_rng(2)
    return np.concatenate([x, tail, (1e-7 * rng.standard_normal(int(0.3 * sr))).astype(np.float32)])


def test_mfcc_floor_is_a_floor_under_the_mel_levels():
    from audiotrove.dsp.features import mfcc_top_level_db

    y = fading_notes()
    n_fft, hop = analysis_frame(SR)
    top = mfcc_top_level_db([y[i:i + 5000] for i in range(0, len(y), 5000)], sample_rate_hz=SR)
    assert np.isfinite(top)
    free = series(y, hop_s=hop / SR, features=("mfcc",))
    s = FeatureSeries(sample_rate_hz=SR, hop_s=hop / SR, features=("mfcc",), mfcc_floor_db=top - 80)
    parts = [s.update(y), s.finish()]
    clipped = {c: np.concatenate([p[c] for p in parts]) for c in s.columns}
    # the floor only lifts band levels: mfcc_1 (their scaled sum) never drops, and lifts most
    # in the quiet end
    assert (clipped["mfcc_1"] >= free["mfcc_1"] - 1e-3).all()
    assert clipped["mfcc_1"][-5] - free["mfcc_1"][-5] > clipped["mfcc_1"][10] - free["mfcc_1"][10] + 50
    # a floor above everything makes every frame the same flat spectrum
    s = FeatureSeries(sample_rate_hz=SR, hop_s=hop / SR, features=("mfcc",), mfcc_floor_db=top + 10)
    parts = [s.update(y), s.finish()]
    flat = {c: np.concatenate([p[c] for p in parts]) for c in s.columns}
    assert np.ptp(flat["mfcc_1"]) < 1e-3 and np.abs(flat["mfcc_2"]).max() < 1e-3


@pytest.mark.skipif(not HAVE_LIBROSA, reason="librosa not installed (pip install librosa)")
@pytest.mark.parametrize("sr", [22050, 44100])
def test_mfcc_top_db_option_is_librosas_default_mfcc(tmp_path, sr):
    import librosa
    import soundfile as sf

    from audiotrove.units.series import file_series

    y = fading_notes(sr=sr)
    path = tmp_path / "fade.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    n_fft, hop = analysis_frame(sr)
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=n_fft, hop_length=hop)  # top_db=80
    got, _ = file_series(str(path), features=["mfcc"], hop_s=hop / sr, mfcc_top_db=80.0)
    free, _ = file_series(str(path), features=["mfcc"], hop_s=hop / sr)
    assert len(got["time"]) == ref.shape[1]
    for i in range(13):
        want = ref[i]
        scale = max(np.std(want), 1e-9)
        assert np.corrcoef(got[f"mfcc_{i + 1}"], want)[0, 1] >= 0.999, i
        assert np.median(np.abs(got[f"mfcc_{i + 1}"] - want)) <= 0.01 * scale, i
    # without the option the quiet end differs (the file is built so that it does)
    assert np.abs(free["mfcc_1"] - ref[0]).max() > 50


def test_cli_features_mfcc_top_db(tmp_path):
    import pandas as pd
    import soundfile as sf
    from typer.testing import CliRunner

    from audiotrove.cli import app
    from audiotrove.units.series import file_series

    y = fading_notes()
    path = tmp_path / "fade.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    runner = CliRunner()
    out = {}
    for label, extra in (("clip", ["--mfcc-top-db", "80"]), ("free", [])):
        csv = tmp_path / f"{label}.csv"
        r = runner.invoke(app, ["features", str(path), "--set", "mfcc", "--hop", "0.1", "-o", str(csv), "-j", "1", *extra])
        assert r.exit_code == 0, r.output
        out[label] = pd.read_csv(csv)
    want, _ = file_series(str(path), features=["mfcc"], hop_s=0.1, mfcc_top_db=80.0)
    assert np.allclose(out["clip"]["mfcc_1"], want["mfcc_1"], atol=1e-3)
    # the quiet end: the clip lifts the floor of every band there
    assert out["clip"]["mfcc_1"].iloc[-2] > out["free"]["mfcc_1"].iloc[-2] + 50
