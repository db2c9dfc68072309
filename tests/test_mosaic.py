"""`audiotrove mosaic` on generated signals: tones of known pitch and level in the corpus, melodies
of those pitches as targets. The pure parts (dsp/mosaic.py) first, then end to end."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiotrove.cli import app
from audiotrove.dsp import mosaic as dm
from audiotrove.dsp.pitch import pitch_track

SR = 16000
PITCHES = [220.0, 247.0, 277.0, 294.0, 330.0, 370.0, 415.0, 440.0]
NOTE_S, GAP_S = 0.4, 0.25


def note(freq, amp, *, weights=None, seconds=NOTE_S):
    n = int(seconds * SR)
    t = np.arange(n) / SR
    weights = weights if weights is not None else [1 / h for h in range(1, 7)]
    x = sum(w * np.sin(2 * np.pi * freq * h * t) for h, w in enumerate(weights, start=1))
    env = np.minimum(1.0, np.arange(n) / (0.01 * SR)) * np.exp(-t / 0.6)
    x = x * env
    return amp * x / np.max(np.abs(x))


def sequence(freqs, amps, *, seed=None):
    rng = np.random.default_rng(seed) if seed is not None else None
    parts = [np.zeros(int(0.2 * SR))]
    for f, a in zip(freqs, amps):
        w = None if rng is None else list(rng.uniform(0.1, 1.0, 6))
        parts += [note(f, a, weights=w), np.zeros(int(GAP_S * SR))]
    return np.concatenate(parts).astype(np.float32)


def level_db(x):
    return 10 * math.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-30)


# --- dsp ------------------------------------------------------------------------------------

def test_pitch_shift_semitones_folds_and_skips_unpitched():
    assert dm.pitch_shift_semitones(source_hz=220.0, target_hz=440.0) == pytest.approx(12.0)
    assert dm.pitch_shift_semitones(source_hz=220.0, target_hz=330.0) == pytest.approx(7.02, abs=0.01)
    # 19 semitones up folds an octave down: the note is right, the shift within +-12
    assert dm.pitch_shift_semitones(source_hz=220.0, target_hz=660.0) == pytest.approx(7.02, abs=0.01)
    assert dm.pitch_shift_semitones(source_hz=880.0, target_hz=100.0) >= -12
    assert dm.pitch_shift_semitones(source_hz=None, target_hz=440.0) == 0.0
    assert dm.pitch_shift_semitones(source_hz=220.0, target_hz=float("nan")) == 0.0


def test_resample_shift_moves_the_pitch_and_the_length():
    x = note(220.0, 0.5, seconds=1.0)[:, None].astype(np.float32)
    y = dm.resample_shift(x, semitones=3.0, sample_rate_hz=SR, out_rate_hz=SR)
    assert len(y) == pytest.approx(len(x) / 2 ** (3 / 12), abs=2)
    _, hz, clarity = pitch_track(y[:, 0], sample_rate_hz=SR)
    assert np.nanmedian(hz[clarity > 0.8]) == pytest.approx(220.0 * 2 ** 0.25, rel=0.01)
    with pytest.raises(ValueError):
        dm.resample_shift(x, semitones=13.0, sample_rate_hz=SR, out_rate_hz=SR)
    # another output rate: same pitch, resampled
    z = dm.resample_shift(x, semitones=0.0, sample_rate_hz=SR, out_rate_hz=22050)
    assert len(z) == pytest.approx(len(x) * 22050 / SR, abs=2)


def test_gain_and_fit_to_length():
    assert dm.match_gain_db(source_db=-30.0, target_db=-18.0) == pytest.approx(12.0)
    assert dm.match_gain_db(source_db=-120.0, target_db=-10.0) == dm.MAX_BOOST_DB
    # a spiky source is not raised into clipping: its peak stops at -0.1 dBFS
    assert dm.match_gain_db(source_db=-40.0, target_db=-10.0, source_peak=0.1) == pytest.approx(19.9)
    assert dm.match_gain_db(source_db=-30.0, target_db=-18.0, source_peak=0.1) == pytest.approx(12.0)
    x = np.ones((100, 1), np.float32)
    y = dm.fit_to_length(x, n_samples=150, fade_in=10, fade_out=10)
    assert y.shape == (150, 1) and np.all(y[100:] == 0)
    assert y[0, 0] < 0.05 and y[99, 0] < 0.05 and y[50, 0] == 1.0  # faded at both ends of the material
    z = dm.fit_to_length(x, n_samples=40, fade_in=5, fade_out=5)
    assert z.shape == (40, 1) and z[-1, 0] < 0.05 and z[20, 0] == 1.0
    assert dm.level_db(np.full(1000, 0.1)) == pytest.approx(-20.0, abs=0.01)


def test_best_path_is_viterbi():
    cost = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert list(dm.best_path(cost)) == [0, 1, 0]
    stay = np.array([[[0.0, 5.0], [5.0, 0.0]]] * 2)  # switching costs 5: staying wins
    assert list(dm.best_path(cost, stay)) == [0, 0, 0]
    cost[1, 1] = -20.0  # unless a candidate is much better
    assert list(dm.best_path(cost, stay)) == [1, 1, 1]
    assert list(dm.best_path(cost, lambda t: stay[t])) == [1, 1, 1]  # transitions given step by step
    cost = np.array([[np.inf, 1.0], [0.0, 2.0]])
    assert list(dm.best_path(cost, np.zeros((1, 2, 2)))) == [1, 0]


def test_greedy_layers_finds_the_parts_of_a_mix():
    rng = np.random.default_rng(0)
    parts = rng.uniform(0, 1, (6, 32)) ** 4
    parts /= parts.sum(axis=1, keepdims=True)
    target = 0.6 * parts[1] + 0.4 * parts[4]
    picked = dict(dm.greedy_layers(target, parts, max_layers=3))
    assert set(picked) == {1, 4}
    assert picked[1] == pytest.approx(0.6, abs=0.02) and picked[4] == pytest.approx(0.4, abs=0.02)
    one = dm.greedy_layers(target, parts, max_layers=1, first=4)
    assert [i for i, _ in one] == [4]


# --- end to end ------------------------------------------------------------------------------

def invoke(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mosaic")
    audio = tmp / "audio"
    audio.mkdir()
    amps = [0.4, 0.1, 0.25, 0.05, 0.3, 0.15, 0.2, 0.35]
    sf.write(audio / "organ_a.wav", sequence(PITCHES, amps, seed=1), SR)
    sf.write(audio / "organ_b.wav", sequence(PITCHES, amps[::-1], seed=2), SR)
    sf.write(audio / "organ_c.wav", sequence(PITCHES[::-1], amps, seed=3), SR)
    sf.write(audio / "off.wav", sequence([200.0, 200.0], [0.3, 0.3]), SR)
    rng = np.random.default_rng(5)
    bursts = np.zeros(int(2.5 * SR), np.float32)
    for t0 in (0.2, 0.9, 1.6):
        i, n = int(t0 * SR), int(0.35 * SR)
        bursts[i:i + n] = 0.2 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.08 * SR))
    sf.write(audio / "noise.wav", bursts, SR)
    root = tmp / "coll"
    invoke("init", root)
    invoke("-C", root, "add", audio)
    invoke("-C", root, "segment", "-j", "1")
    invoke("-C", root, "embed", "--units", "--model", "descriptors", "-j", "1")
    melody = [330.0, 220.0, 440.0, 277.0, 370.0, 247.0, 415.0, 294.0]
    target_amps = [0.3, 0.08, 0.2, 0.4, 0.12, 0.25, 0.05, 0.3]
    target = tmp / "melody.wav"
    sf.write(target, sequence(melody, target_amps, seed=9), SR)
    return root, audio, target, tmp


def mosaic(root, target, out, *args):
    score = out.with_suffix(".csv")
    r = invoke("-C", root, "mosaic", target, "-o", out, "--score", score, "--match", "descriptors", *args)
    audio, rate = sf.read(out, dtype="float32", always_2d=True)
    return audio, rate, pd.read_csv(score), r.output


def test_descriptors_match_the_pitch_and_the_level(coll, tmp_path):
    root, _, target, _ = coll
    x, _ = sf.read(target, dtype="float32")
    audio, rate, score, output = mosaic(root, target, tmp_path / "m.wav")
    assert rate == SR and len(audio) == len(x)  # the target's length, rate, channels
    assert f"{len(score)} target units" in output
    assert list(score.columns[:5]) == ["target_unit", "target_start", "target_dur", "target_power", "target_hz"]
    assert {"path", "unit", "start", "dur", "distance", "gain_db", "shift_semitones", "layer"} <= set(score.columns)
    assert (score["layer"] == 0).all() and score["path"].notna().all()
    score = score[score["target_dur"] > 0.3]  # the notes (the rest: their tails and the pauses)
    assert len(score) == 8
    assert (score["target_hz"] > 0).all() and (score["hz"] > 0).all()
    # the right note every time
    ratio = score["hz"] / score["target_hz"]
    assert np.all(np.abs(12 * np.log2(ratio)) < 0.5), score[["target_hz", "hz", "path"]]
    assert not score["path"].str.contains("noise").any()
    assert (score["shift_semitones"] == 0).all()  # --pitch free
    # each unit at its target's level (within 1 dB), measured on the output
    for r in score.itertuples():
        s, e = round(r.target_start * SR), round((r.target_start + r.target_dur) * SR)
        assert level_db(audio[s:e]) == pytest.approx(r.target_power, abs=1.0)
    assert score["gain_db"].abs().max() > 3  # the corpus levels differ from the target's: gains did work


def test_the_summary_says_1_file_and_2_files(coll, tmp_path):
    from audiotrove.report.format import counted

    assert [counted(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert counted(1, "match", "matches") == "1 match" and counted(3, "match", "matches") == "3 matches"
    root, _, target, _ = coll
    for where, files in (("path ~ organ_a", "1 file"), ("path ~ organ", "3 files")):
        *_, score, output = mosaic(root, target, tmp_path / "m.wav", "--corpus-where", where)
        line = " ".join(output.split())
        assert score["path"].nunique() == int(files[0])
        assert f" from {files}, " in line and "(s)" not in line, line
        jumps = int(line.split(f"from {files}, ")[1].split()[0])
        assert f"{counted(jumps, 'jump')} between sources" in line


def test_units_start_at_the_target_sample(coll, tmp_path):
    """A target that is a corpus file at another level: each chosen unit is the same note, placed
    sample-exactly (the cross-correlation of output and source peaks at lag 0)."""
    root, audio_dir, _, tmp = coll
    x, _ = sf.read(audio_dir / "organ_a.wav", dtype="float32")
    target = tmp_path / "organ_a_quiet.wav"
    sf.write(target, 0.5 * x, SR)
    audio, _, score, _ = mosaic(root, target, tmp_path / "m.wav", "--corpus-where", 'path ~ "*organ_a*"',
                                "--fade", "0")
    assert (score["path"].str.endswith("organ_a.wav")).all()
    score = score[score["target_power"] > -60]  # (a pause takes any silent unit)
    assert np.allclose(score["start"], score["target_start"], atol=1e-9)  # the very same units
    y = audio[:, 0]
    for r in score.itertuples():
        s, e = round(r.target_start * SR), round((r.target_start + r.target_dur) * SR)
        src = x[s:e]
        lags = range(-40, 41)
        corr = [float(np.dot(y[s + lag:e + lag], src)) for lag in lags]
        assert lags[int(np.argmax(corr))] == 0
        assert np.allclose(y[s:e], src * 10 ** (r.gain_db / 20), atol=1e-4)  # -6 dB, sample for sample


def test_no_clicks_at_joins(coll, tmp_path):
    root, _, target, _ = coll
    for extra in ([], ["--crossfade", "20"]):
        audio, _, score, _ = mosaic(root, target, tmp_path / "m.wav", "--segment", "window:0.13", *extra)
        y = audio[:, 0]
        d = np.abs(np.diff(y))
        joins = [round(t * SR) for t in score["target_start"]][1:]
        at_joins = max(d[j - 3:j + 3].max() for j in joins)
        # the steepest a note gets (top harmonic, full level), vs the jumps at the joins
        inside = np.percentile(d, 99.9)
        assert at_joins <= inside, (at_joins, inside)
        assert len(score) > 20


def test_pitch_match_shifts_an_off_pitch_unit(coll, tmp_path):
    root, _, target, _ = coll
    audio, _, score, _ = mosaic(root, target, tmp_path / "m.wav", "--corpus-where", 'path ~ "*off*"',
                                "--corpus-units", "dur > 0.3", "--pitch", "match")
    assert (score["path"].str.endswith("off.wav")).all() and (score["dur"] > 0.3).all()
    assert (score["shift_semitones"] == 0).sum() == score["target_hz"].isna().sum()  # unpitched: no shift
    score = score[score["target_dur"] > 0.3].reset_index(drop=True)
    assert len(score) == 8
    for r in score.itertuples():
        assert abs(r.shift_semitones) <= 12
        interval = 12 * math.log2(r.target_hz / r.hz) - r.shift_semitones  # whole octaves left
        assert abs(interval - 12 * round(interval / 12)) < 0.05
        s, e = round(r.target_start * SR), round((r.target_start + r.target_dur) * SR)
        _, hz, clarity = pitch_track(audio[s:e, 0], sample_rate_hz=SR)
        heard = float(np.nanmedian(hz[clarity > 0.8]))
        # the target's note (440 Hz from 200 Hz would be +13.7 semitones: it is played an octave down)
        assert abs(12 * math.log2(heard / r.target_hz)) < 0.3 or abs(12 * math.log2(heard / r.target_hz) + 12) < 0.3
    free, _, _, _ = mosaic(root, target, tmp_path / "f.wav", "--corpus-where", 'path ~ "*off*"',
                           "--corpus-units", "dur > 0.3")
    s, e = round(score["target_start"][2] * SR), round((score["target_start"][2] + score["target_dur"][2]) * SR)
    _, hz, clarity = pitch_track(free[s:e, 0], sample_rate_hz=SR)
    assert float(np.nanmedian(hz[clarity > 0.8])) == pytest.approx(200.0, rel=0.02)  # not shifted


def test_max_reuse_and_smooth(coll, tmp_path):
    root, _, target, _ = coll
    _, _, score, _ = mosaic(root, target, tmp_path / "a.wav", "--corpus-where", 'path ~ "*off*"',
                            "--corpus-units", "dur > 0.3", "--max-reuse", "1")
    used = score.dropna(subset=["path"])
    assert used.groupby(["path", "unit"]).size().max() == 1
    assert len(used) == 2 and score["path"].isna().sum() == len(score) - 2  # two units, once each: the rest silent
    _, _, score, _ = mosaic(root, target, tmp_path / "b.wav", "--max-reuse", "1", "--k", "30")
    assert score.groupby(["path", "unit"]).size().max() == 1 and score["path"].notna().all()

    def jumps(df):
        same = (df["path"].shift() == df["path"]) & (df["unit"].shift() + 1 == df["unit"])
        return int((~same).sum() - 1)

    _, _, free, out0 = mosaic(root, target, tmp_path / "s0.wav", "--smooth", "0")
    _, _, smooth, out1 = mosaic(root, target, tmp_path / "s1.wav", "--smooth", "2")
    assert jumps(smooth) < jumps(free)
    assert smooth["cost"].sum() >= free["cost"].sum()  # continuity is bought with match cost


def test_deterministic_for_a_seed_and_mix(coll, tmp_path):
    root, _, target, _ = coll
    a, _, sa, _ = mosaic(root, target, tmp_path / "a.wav", "--seed", "3", "--match", "random")
    b, _, sb, _ = mosaic(root, target, tmp_path / "b.wav", "--seed", "3", "--match", "random")
    c, _, sc, _ = mosaic(root, target, tmp_path / "c.wav", "--seed", "4", "--match", "random")
    assert np.array_equal(a, b) and sa.equals(sb)
    assert not sa["path"].equals(sc["path"]) or not sa["unit"].equals(sc["unit"])
    x, _ = sf.read(target, dtype="float32", always_2d=True)
    m, _, _, _ = mosaic(root, target, tmp_path / "m.wav", "--mix", "1")
    assert np.allclose(m, x, atol=1e-4)  # all target, nothing of the corpus


def test_layers_and_api(coll, tmp_path):
    import audiotrove

    root, _, target, _ = coll
    with audiotrove.open(root) as c:
        audio, score = c.mosaic(str(target), match="descriptors", layers=3, k=10)
        audio1, score1 = c.mosaic(f"{target}@0.2-1.5", match="descriptors")
    x, _ = sf.read(target, dtype="float32", always_2d=True)
    assert audio.shape == x.shape
    assert score["layer"].max() >= 1  # some target units took more than one corpus unit
    assert score.groupby("target_unit")["layer"].max().max() <= 2
    assert len(audio1) == round(1.3 * SR) and (score1["target_start"] < 1.3).all()
    assert score1["target_dur"].max() > 0.3 and score1["target_start"].iloc[0] < 0.02  # the first note


def test_a_collection_file_as_target_leaves_itself_out(coll, tmp_path):
    root, audio_dir, _, _ = coll
    target = audio_dir / "organ_b.wav"
    audio, _, score, _ = mosaic(root, target, tmp_path / "m.wav")
    assert len(audio) == sf.info(target).frames
    assert not score["path"].str.endswith("organ_b.wav").any()  # not its own units
    notes = score[score["target_dur"] > 0.3]
    assert len(notes) == 8 and np.all(np.abs(12 * np.log2(notes["hz"] / notes["target_hz"])) < 0.5)


def test_bad_options(coll, tmp_path):
    root, _, target, _ = coll
    for args in (["--match", "hz"], ["--match", "bogus=1"], ["--pitch", "up"], ["--mix", "2"],
                 ["--corpus-where", 'path ~ "*nothing*"']):
        r = CliRunner().invoke(app, ["-C", str(root), "mosaic", str(target), "-o", str(tmp_path / "x.wav"),
                                     "--match", "descriptors", *args] if args[0] != "--match" else
                               ["-C", str(root), "mosaic", str(target), "-o", str(tmp_path / "x.wav"), *args])
        assert r.exit_code == 2, (args, r.output)
    assert not (tmp_path / "x.wav").exists()
    before = target.read_bytes()  # the output is never written over the target
    r = CliRunner().invoke(app, ["-C", str(root), "mosaic", str(target), "-o", str(target), "--match", "descriptors"])
    assert r.exit_code == 2 and "is the target" in r.output and target.read_bytes() == before


# --- long targets: the target and the output streamed ------------------------------------------

def test_rolling_output_is_the_whole_sum():
    """Pieces added at increasing starts come out in blocks that are, bit for bit, the sum of
    the pieces in one array, whatever the block size; memory holds a block and the longest piece."""
    rng = np.random.default_rng(4)
    frames = 5000
    starts = np.sort(rng.integers(0, frames, 60))
    pieces = [rng.standard_normal((int(rng.integers(0, 300)), 2)).astype(np.float32) for _ in starts]
    whole = np.zeros((frames, 2), np.float32)
    for s, p in zip(starts, pieces):
        whole[s:s + len(p)] += p[:frames - s]
    for block in (1, 7, 256, 1000, frames, 3 * frames):
        out = dm.RollingOutput(frames=frames, channels=2, block_frames=block)
        blocks = []
        for s, p in zip(starts, pieces):
            blocks += out.add(int(s), p)
        blocks += out.close()
        assert all(len(b) == block for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block
        assert np.array_equal(np.concatenate(blocks), whole)
        assert out.max_buffered_frames <= 2 * (block + max(len(p) for p in pieces))
    with pytest.raises(ValueError):
        out = dm.RollingOutput(frames=100, channels=1, block_frames=10)
        out.add(50, np.ones((5, 1), np.float32))
        out.add(40, np.ones((5, 1), np.float32))


def test_pieces_of_a_file_only_pyav_reads_are_held_a_window_at_a_time(tmp_path):
    """Corpus units of an AAC file (decoded in one pass per plan, their pieces held until read)
    come out the same when planned 3 at a time, and no more than 3 are ever held."""
    from conftest import write_pyav

    from audiotrove.mosaic.synth import PieceReader

    rng = np.random.default_rng(1)
    path = write_pyav(tmp_path / "corpus.m4a", (0.3 * rng.standard_normal((5 * SR, 1))).astype(np.float32),
                      SR, codec="aac")
    reqs = [{"path": str(path), "start": float(s), "dur": 0.3, "shift": 0.0} for s in rng.uniform(0, 4.5, 12)]
    whole = PieceReader(reqs, sample_rate=SR, channels=1)
    windowed = PieceReader(reqs, sample_rate=SR, channels=1, window_pieces=3)
    for i in range(len(reqs)):
        a, b = whole.read(i), windowed.read(i)
        assert len(a) == round(0.3 * SR) and np.array_equal(a, b)
        assert len(windowed._reader._cache) <= 3  # the pieces decoded and not yet read (private: the bound itself)


@pytest.fixture(scope="module")
def long_target(coll):
    """3 minutes of organ_a's notes at changing levels (so each unit has a twin in the corpus)."""
    root, audio_dir, _, tmp = coll
    x, _ = sf.read(audio_dir / "organ_a.wav", dtype="float32")
    reps = int(np.ceil(180 * SR / len(x)))
    y = np.concatenate([x * (0.3 + 0.2 * (i % 4)) for i in range(reps)])
    path = tmp / "long.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    return path, y


def test_a_long_target_streams_and_stays_sample_aligned(coll, long_target, tmp_path):
    """A 3-minute target written in 4 096-frame blocks gives the very samples of one block as
    long as the target (rendering it whole), and every unit sits at its target unit's sample."""
    import audiotrove

    root, audio_dir, _, _ = coll
    path, y = long_target
    src, _ = sf.read(audio_dir / "organ_a.wav", dtype="float32")
    opts = dict(match="descriptors", corpus_where='path ~ "*organ_a*"', fade_ms=0.0)
    with audiotrove.open(root) as c:
        audio, score = c.mosaic(str(path), output=tmp_path / "small.wav", block_frames=4096, **opts)
        whole, score_whole = c.mosaic(str(path), block_frames=len(y) + 1, **opts)
    assert audio is None  # written to the file, not held
    streamed, rate = sf.read(tmp_path / "small.wav", dtype="float32", always_2d=True)
    assert rate == SR and len(streamed) == len(y) == len(whole)  # the target's length
    assert score.equals(score_whole)
    ref = tmp_path / "whole.wav"
    sf.write(ref, whole, SR, subtype="PCM_24")
    assert np.array_equal(streamed, sf.read(ref, dtype="float32", always_2d=True)[0])
    placed = score[score["path"].notna() & (score["target_power"] > -60)]
    assert len(placed) > 200 and placed["target_start"].max() > 170
    for r in placed.itertuples():  # the corpus unit, from its first sample at the target unit's
        s, e = round(r.target_start * SR), round((r.target_start + r.target_dur) * SR)
        c0 = round(r.start * SR)
        m = min(e - s, round(r.dur * SR))
        assert np.allclose(streamed[s:s + m, 0], src[c0:c0 + m] * 10 ** (r.gain_db / 20), atol=1e-4), r


def test_memory_does_not_follow_the_target(coll, tmp_path):
    """Neither the target nor the output is held whole: the peak of the Python allocations (numpy
    arrays included) of a mosaic of 160 s is within a quarter of the extra samples of a mosaic of
    40 s (holding the target and the output would add twice them). Mixed, cross-faded, layered."""
    import tracemalloc

    import audiotrove

    root, audio_dir, _, tmp = coll
    x, _ = sf.read(audio_dir / "organ_b.wav", dtype="float32")
    peaks = []
    for seconds in (40, 160):
        y = np.resize(x, seconds * SR)
        path = tmp_path / f"t{seconds}.wav"
        sf.write(path, y, SR, subtype="FLOAT")
        with audiotrove.open(root) as c:
            tracemalloc.start()
            try:
                c.mosaic(str(path), output=tmp_path / "m.wav", match="random", segment="window:6", mix=0.3,
                         crossfade_ms=20, layers=2, block_frames=4096)
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert sf.info(tmp_path / "m.wav").frames == len(y)
    extra_samples_bytes = (160 - 40) * SR * 4
    assert peaks[1] - peaks[0] < extra_samples_bytes / 4, (peaks, extra_samples_bytes)
