"""Units end to end: extract (segment + describe), the Parquet store, selection, render, CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiotrove.dsp.pitch import note_to_hz
from audiotrove.units.extract import (
    ModeError,
    UnitExtractor,
    parse_mode,
    resolve_durations,
    summarize_units,
)

SR = 22050
NOTES = [("C", 4), ("E", 4), ("G", 4), ("A", 4), ("C", 5), ("A", 3)]
NOTE_TIMES = [0.25, 0.85, 1.45, 2.05, 2.65, 3.25]


def note_burst(hz, seconds=0.45, sr=SR, amp=0.4, decay_s=0.15):
    t = np.arange(int(seconds * sr)) / sr
    env = np.minimum(1.0, t / 0.004) * np.exp(-t / decay_s)
    env[-int(0.01 * sr):] *= np.linspace(1, 0, int(0.01 * sr))
    x = sum(np.sin(2 * np.pi * hz * k * t) / k ** 1.5 for k in range(1, 6))
    return (amp * env * x / np.abs(x).max()).astype(np.float32)


def notes_signal(sr=SR, channels=1, noise_db=-80.0):
    rng = np.random.default_rng(0)
    x = (10 ** (noise_db / 20) * rng.standard_normal(int(3.9 * sr))).astype(np.float32)
    for t, (name, octv) in zip(NOTE_TIMES, NOTES):
        b = note_burst(note_to_hz(name, octv), sr=sr)
        i = int(t * sr)
        x[i:i + len(b)] += b
    if channels == 2:
        return np.stack([x, 0.5 * x], axis=1)
    return x[:, None]


def run_extractor(audio, sr=SR, block=4096, **kw):
    ex = UnitExtractor(sample_rate_hz=sr, channels=audio.shape[1], **kw)
    rows = []
    for i in range(0, len(audio), block):
        rows += ex.update(audio[i:i + block])
    rows += ex.finish()
    return rows, ex


# --- extract ----------------------------------------------------------------------------------

def test_notes_are_cut_and_described():
    audio = notes_signal()
    rows, _ = run_extractor(audio)
    assert len(rows) == len(NOTES)
    for row, t, (name, octv) in zip(rows, NOTE_TIMES, NOTES):
        assert abs(row["start"] - t) < 0.03
        assert 0.08 <= row["dur"] <= 1.0
        assert (row["note"], row["octave"]) == (name, octv)
        assert row["hz"] == pytest.approx(note_to_hz(name, octv), rel=0.01)
        assert row["clarity"] > 0.9
        assert row["centroid"] > row["hz"] and row["rolloff"] > row["hz"]
        assert 0 <= row["flatness"] < 0.05
        assert len(row["mfcc"]) == 13
        # power: dB RMS of the unit's own samples
        s, e = int(round(row["start"] * SR)), int(round((row["start"] + row["dur"]) * SR))
        expected = 10 * np.log10(np.mean(audio[s:e, 0].astype(np.float64) ** 2))
        assert row["power"] == pytest.approx(expected, abs=0.01)
        zc = np.mean(np.signbit(audio[s + 1:e, 0]) != np.signbit(audio[s:e - 1, 0]))
        assert row["zcr"] == pytest.approx(zc, abs=1e-4)
    assert [r["unit"] for r in rows] == list(range(len(NOTES)))


def test_stereo_power_is_the_mean_over_channels_and_notes_hold():
    audio = notes_signal(sr=44100, channels=2)
    rows, _ = run_extractor(audio, sr=44100)
    assert [(r["note"], r["octave"]) for r in rows] == NOTES
    s, e = int(round(rows[0]["start"] * 44100)), int(round((rows[0]["start"] + rows[0]["dur"]) * 44100))
    ms = np.mean(audio[s:e].astype(np.float64) ** 2)
    assert rows[0]["power"] == pytest.approx(10 * np.log10(ms), abs=0.01)


def test_rows_do_not_depend_on_block_size():
    audio = notes_signal(noise_db=-50)
    ref, _ = run_extractor(audio, block=65536)
    assert len(ref) == len(NOTES) + 1 and ref[0]["hz"] is None  # the noise at the start is a unit too
    for block in (500, 3001):
        rows, _ = run_extractor(audio, block=block)
        assert len(rows) == len(ref)
        for a, b in zip(ref, rows):
            assert (a["start"], a["dur"], a["note"], a["octave"]) == (b["start"], b["dur"], b["note"], b["octave"])
            for k in ("power", "hz", "clarity", "centroid", "flatness", "rolloff", "zcr"):
                if a[k] is None:
                    assert b[k] is None, k
                else:
                    assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-4), k
            assert np.allclose(a["mfcc"], b["mfcc"], atol=1e-2)


def test_non_finite_samples_count_as_silence():
    audio = notes_signal()
    broken = audio.copy()
    broken[100:200] = np.nan
    broken[300] = np.inf
    rows, _ = run_extractor(broken)
    assert [(r["note"], r["octave"]) for r in rows] == NOTES
    assert all(math.isfinite(r["power"]) and all(map(math.isfinite, r["mfcc"])) for r in rows)


def test_memory_stays_bounded_on_a_long_stream():
    one = notes_signal()[:, 0]
    ex = UnitExtractor(sample_rate_hz=SR, channels=1, mode="onset")
    count = 0
    for _ in range(40):  # 156 s of audio, fed in blocks
        for i in range(0, len(one), 8192):
            count += len(ex.update(one[i:i + 8192, None]))
    count += len(ex.finish())
    assert count == 40 * len(NOTES)
    assert ex.max_buffered_samples < 2.5 * SR  # max_dur (1 s) + look-ahead + one block


def test_window_and_speech_modes():
    audio = notes_signal()
    rows, _ = run_extractor(audio, mode="window:0.5")
    assert [round(r["start"], 6) for r in rows] == [0.5 * i for i in range(len(rows))]
    assert all(r["dur"] == pytest.approx(0.5) for r in rows[:-1])
    assert len(rows) == 8  # 3.9 s: 7 full windows and a last one of 0.4 s (>= 0.25)
    rows, _ = run_extractor(audio, mode="speech")
    assert 1 <= len(rows) <= len(NOTES)


def test_modes_and_durations():
    assert parse_mode("onset") == ("onset", None)
    assert parse_mode("window:2.5") == ("window", 2.5)
    for bad in ("beat", "window:abc", "window:0"):
        with pytest.raises(ModeError):
            parse_mode(bad)
    assert resolve_durations("onset", None, None) == (0.08, 1.0)
    assert resolve_durations("speech", None, 5) == (0.2, 5.0)
    assert resolve_durations("window:2", None, None) == (1.0, 2.0)
    with pytest.raises(ModeError):
        resolve_durations("onset", 2.0, 1.0)
    with pytest.raises(ModeError):
        resolve_durations("window:2", None, 1.0)


def test_summary():
    rows = [{"power": -10.0, "hz": 100.0, "clarity": 0.9, "dur": 0.2},
            {"power": -20.0, "hz": None, "clarity": 0.1, "dur": 0.4},
            {"power": -30.0, "hz": 300.0, "clarity": 0.8, "dur": 0.3}]
    s = summarize_units(rows)
    assert s == {"count": 3, "median_power": -20.0, "median_hz": 200.0, "median_clarity": 0.8,
                 "median_dur": 0.3}
    assert summarize_units([])["count"] == 0


# --- the step and the store ------------------------------------------------------------------

@pytest.fixture()
def files(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "notes.wav", notes_signal(), SR, subtype="PCM_24")
    # the same notes an octave up, at 44.1 kHz stereo, and a file of noise bursts (unpitched)
    up = notes_signal(sr=44100, channels=2)
    t = np.arange(len(up)) / 44100
    sf.write(folder / "up.flac", np.stack([np.interp(t * 2, t, up[:, 0], right=0)] * 2, axis=1), 44100)
    rng = np.random.default_rng(3)
    x = np.zeros(int(3 * SR), np.float32)
    for t0 in (0.3, 1.1, 1.9):
        i = int(t0 * SR)
        x[i:i + int(0.3 * SR)] = 0.3 * rng.standard_normal(int(0.3 * SR)) * np.exp(-np.arange(int(0.3 * SR)) / (0.06 * SR))
    sf.write(folder / "noise.wav", x, SR)
    return folder


def test_segment_file_writes_a_shard(files, tmp_path):
    from audiotrove.steps.segment import segment_file
    from audiotrove.units.store import read_shard

    out = tmp_path / "units"
    data = segment_file(str(files / "notes.wav"), {"mode": "onset"}, units_dir=str(out))
    u = data["units"]
    assert u["count"] == len(NOTES)
    assert u["median_hz"] == pytest.approx(np.median([note_to_hz(n, o) for n, o in NOTES]), rel=0.01)
    table = read_shard(out / u["shard"])
    assert table.num_rows == len(NOTES)
    assert table.column("note").to_pylist() == [n for n, _ in NOTES]
    # same audio, same configuration: same shard name; another mode: another shard
    again = segment_file(str(files / "notes.wav"), {"mode": "onset"}, units_dir=str(out))
    assert again["units"]["shard"] == u["shard"]
    other = segment_file(str(files / "notes.wav"), {"mode": "window:1"}, units_dir=str(out))
    assert other["units"]["shard"] != u["shard"] and other["units"]["count"] == 4
    assert not list(out.glob(".tmp-*"))


def test_speech_mode_uses_analysis_sections(files, tmp_path):
    from audiotrove.steps.segment import segment_file

    out = str(tmp_path / "units")
    params = {"mode": "speech"}
    analysis = {"analyze": {"audio": {"speech": {"sections": [[0.8, 2.0]], "num_sections": 1}}}}
    data = segment_file(str(files / "notes.wav"), params, analysis, units_dir=out)
    assert data["units"]["speech_source"] == "analysis"
    from audiotrove.units.store import read_shard

    t = read_shard(Path(out) / data["units"]["shard"]).to_pandas()
    assert len(t) >= 1 and (t["start"] >= 0.75).all() and ((t["start"] + t["dur"]) <= 2.05).all()
    fallback = segment_file(str(files / "notes.wav"), params, {"analyze": {"audio": {}}}, units_dir=out)
    assert fallback["units"]["speech_source"] == "level"
    assert fallback["units"]["count"] >= 1


def _collection(tmp_path, files, mode="onset"):
    """A collection whose files are segmented (results recorded as the runner would)."""
    from audiotrove.catalog.db import Catalog
    from audiotrove.io.hashing import content_hash, params_hash
    from audiotrove.steps import get_step
    from audiotrove.steps.segment import segment_file
    from audiotrove.units.store import units_dir

    cat = Catalog.create(tmp_path / "coll")
    cat.add_files([(str(p), "file", str(files)) for p in sorted(files.iterdir())])
    step = get_step("segment")
    params = step.params({"mode": mode})
    for f in cat.files():
        st = Path(f.path).stat()
        data = segment_file(f.path, params, units_dir=str(units_dir(cat)))
        cat.record(f.id, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=content_hash(f.path),
                   step="segment", step_version=step.version, params_hash=params_hash(params), params=params,
                   status="ok", error=None, data=data, elapsed_s=0.1)
    return cat


from audiotrove.units.select import Limits  # noqa: E402


def _units(cat, query=None, sort=None, limits=None, *, where=None, problems=None):
    """views.list_units with the arguments of the units.select.list_units these tests were
    written for: the DataFrame, and the problems appended to `problems`."""
    from audiotrove.views import list_units

    limits = limits or Limits()
    found = list_units(cat, query, where=where, sort=sort, per_file=limits.per_file, limit=limits.total)
    if problems is not None:
        problems.extend(found.problems)
    return found.frame


def test_list_units_filters_sorts_and_limits(files, tmp_path):
    from audiotrove.catalog.query import QueryError
    from audiotrove.units.select import Limits, parse_sort, sort_rows

    cat = _collection(tmp_path, files)
    everything = _units(cat)
    assert list(everything.columns[:2]) == ["path", "file_id"]
    by_file = everything.groupby("path").size()
    assert by_file[str(files / "notes.wav")] == len(NOTES)
    assert by_file[str(files / "up.flac")] == len(NOTES)
    assert len(everything) == len(NOTES) * 2 + by_file[str(files / "noise.wav")]
    assert everything.equals(everything.sort_values(["path", "start"]).reset_index(drop=True))

    a = _units(cat, "note = A")
    assert set(a["octave"]) == {3, 4, 5} and (a["note"] == "A").all()
    high = _units(cat, "hz > 0.6kHz and clarity > 0.8", "hz:desc")
    assert len(high) == 4 and (high["hz"] > 600).all() and list(high["hz"]) == sorted(high["hz"], reverse=True)
    assert high["path"].str.endswith("up.flac").all()
    assert _units(cat, "dur < 10ms").empty
    unpitched = _units(cat, "not hz?")
    assert unpitched["path"].str.endswith("noise.wav").all() and len(unpitched) >= 2

    # keep-fractions: the loudest half, then ordered by pitch (unpitched last)
    sel = _units(cat, None, "power:desc:0.5,hz")
    n = len(everything)
    loud = everything.sort_values(["power", "path", "start"], ascending=[False, True, True]).head(math.ceil(n / 2))
    assert set(zip(sel["path"], sel["start"])) == set(zip(loud["path"], loud["start"]))
    pitched = sel["hz"].dropna()
    assert list(pitched) == sorted(pitched) and sel["hz"].isna().sum() == loud["hz"].isna().sum()
    assert sel["hz"].isna().values[len(pitched):].all()
    # the same selection in memory
    rows = sort_rows(everything.to_dict("records"), parse_sort("power:desc:0.5,hz"))
    assert [(r["path"], r["start"]) for r in rows] == list(zip(sel["path"], sel["start"]))

    top = _units(cat, None, "power:desc", Limits(per_file=2))
    assert top.groupby("path").size().max() == 2 and len(top) == 6
    assert len(_units(cat, None, "power:desc", Limits(per_file=2, total=3))) == 3

    with pytest.raises(QueryError):
        _units(cat, "loudnes > 3")
    with pytest.raises(QueryError):
        parse_sort("power:sideways")
    with pytest.raises(QueryError):
        parse_sort("power:desc:1.5")
    cat.close()


def test_file_level_where(files, tmp_path):

    cat = _collection(tmp_path, files)
    only = _units(cat, where='path ~ "*notes*"')
    assert set(only["path"]) == {str(files / "notes.wav")}
    counted = _units(cat, where="units.count > 5")
    assert set(counted["path"]) == {str(files / "notes.wav"), str(files / "up.flac")}
    cat.close()


def test_frame_records_is_plain_json():
    """The one row conversion of `units`, `similar` and the web's twins: NaN -> null, numpy
    scalars -> Python, lists and strings as they are."""
    from audiotrove.views.units import frame_records

    df = pd.DataFrame({"path": ["a.wav", "b.wav"], "unit": np.array([3, 4], np.int64),
                       "hz": [440.0, float("nan")], "mfcc": [[1.0, 2.0], None],
                       "power": np.array([-12.5, -30.25], np.float32)})
    rows = frame_records(df)
    assert json.loads(json.dumps(rows)) == rows
    assert rows == [{"path": "a.wav", "unit": 3, "hz": 440.0, "mfcc": [1.0, 2.0], "power": -12.5},
                    {"path": "b.wav", "unit": 4, "hz": None, "mfcc": None, "power": -30.25}]
    assert type(rows[0]["unit"]) is int and type(rows[1]["power"]) is float


def test_missing_shard_is_reported(files, tmp_path):
    from audiotrove.units.store import units_dir

    cat = _collection(tmp_path, files)
    victim = sorted(units_dir(cat).glob("*.parquet"))[0]
    victim.unlink()
    problems: list[str] = []
    df = _units(cat, problems=problems)
    assert len(problems) == 1 and "missing" in problems[0]
    assert len(df) > 0
    cat.close()


# --- render ------------------------------------------------------------------------------------

def test_render_gap_crossfade_and_no_clicks(tmp_path):
    from audiotrove.units.render import render_units

    sr = 32000
    t = np.arange(3 * sr) / sr
    src = (0.8 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "sine.wav"
    sf.write(path, src, sr, subtype="FLOAT")
    units = pd.DataFrame({"path": [str(path)] * 4, "start": [0.1003, 1.2, 0.5017, 2.0], "dur": [0.3, 0.25, 0.4, 0.2]})
    out = tmp_path / "gap.wav"
    s = render_units(units, out, gap_s=0.1)
    y, rate = sf.read(out, dtype="float32")
    assert rate == sr and s.units == 4 and s.channels == 1
    assert len(y) == int(round((0.3 + 0.25 + 0.4 + 0.2 + 3 * 0.1) * sr))
    smooth = 2 * np.pi * 440 / sr * 0.8
    assert np.abs(np.diff(y)).max() < 1.2 * smooth  # fades: no jump anywhere
    assert abs(y[0]) < 0.01 and abs(y[-1]) < 0.01
    # without fades the cuts are audible jumps (the check above can fail)
    render_units(units, tmp_path / "raw.wav", gap_s=0.1, fade_ms=0)
    raw, _ = sf.read(tmp_path / "raw.wav", dtype="float32")
    assert np.abs(np.diff(raw)).max() > 3 * smooth
    # crossfades shorten the output by one crossfade per junction
    s = render_units(units, tmp_path / "xf.flac", crossfade_ms=20)
    y, _ = sf.read(tmp_path / "xf.flac", dtype="float32")
    assert len(y) == int(round((0.3 + 0.25 + 0.4 + 0.2) * sr)) - 3 * int(round(0.02 * sr))
    assert np.abs(y).max() <= 1.0
    with pytest.raises(ValueError):
        render_units(units, tmp_path / "both.wav", gap_s=0.1, crossfade_ms=10)
    with pytest.raises(ValueError):
        render_units(units, tmp_path / "out.xyz")


def test_render_mixes_rates_and_channels(files, tmp_path):
    from audiotrove.units.render import render_units

    units = [{"path": str(files / "notes.wav"), "start": 0.25, "dur": 0.4},
             {"path": str(files / "up.flac"), "start": 0.25, "dur": 0.4},
             {"path": str(files / "missing.wav"), "start": 0.0, "dur": 0.4}]
    s = render_units(units, tmp_path / "mix.wav", sample_rate_hz=48000)
    y, rate = sf.read(tmp_path / "mix.wav")
    assert rate == 48000 and y.shape[1] == 2 and s.units == 2
    assert len(s.skipped) == 1 and "missing.wav" in s.skipped[0]
    assert len(y) == pytest.approx(0.8 * 48000, abs=4)


# --- the command line ------------------------------------------------------------------------

def test_cli_segment_units_render_sort_features(files, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from audiotrove.cli import app
    from audiotrove.dsp.pitch import pitch_track

    runner = CliRunner()
    coll = tmp_path / "c"
    assert runner.invoke(app, ["init", str(coll)]).exit_code == 0
    assert runner.invoke(app, ["-C", str(coll), "add", str(files)]).exit_code == 0
    r = runner.invoke(app, ["-C", str(coll), "segment", "-j", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["-C", str(coll), "units", "clarity > 0.9", "--sort", "hz", "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 * len(NOTES)
    assert [x["hz"] for x in rows] == sorted(x["hz"] for x in rows)
    assert len(rows[0]["mfcc"]) == 13
    r = runner.invoke(app, ["-C", str(coll), "ls", "--format", "jsonl"])
    counts = {json.loads(line)["path"]: json.loads(line).get("units", {}).get("count")
              for line in r.stdout.splitlines() if line.startswith("{")}
    assert counts[str(files / "notes.wav")] == len(NOTES)
    # a second segmentation, then the first again: listings follow the last choice
    assert runner.invoke(app, ["-C", str(coll), "segment", "--mode", "window:1", "-j", "1"]).exit_code == 0
    r = runner.invoke(app, ["-C", str(coll), "units", "--where", 'path ~ "*notes*"', "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 1 + 4
    assert "mfcc_13" in r.stdout.splitlines()[0]
    assert runner.invoke(app, ["-C", str(coll), "segment", "-j", "1"]).exit_code == 0
    r = runner.invoke(app, ["-C", str(coll), "units", "--where", 'path ~ "*notes*"', "--format", "csv"])
    assert len(r.stdout.strip().splitlines()) == 1 + len(NOTES)

    out = tmp_path / "render.wav"
    r = runner.invoke(app, ["-C", str(coll), "render", "--units", "note = C", "--sort", "hz:desc", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sf.info(out).duration > 0.5

    sorted_out = tmp_path / "sorted.wav"
    r = runner.invoke(app, ["sort", str(files / "notes.wav"), "--by", "hz", "-o", str(sorted_out), "--gap", "0.2"])
    assert r.exit_code == 0, r.output
    y, sr = sf.read(sorted_out, dtype="float32")
    times, hz, clarity = pitch_track(y, sample_rate_hz=sr)
    voiced = np.isfinite(hz) & (clarity > 0.9)
    sequence = [round(12 * math.log2(h / 440)) for h in hz[voiced]]
    runs = [k for i, k in enumerate(sequence) if i == 0 or k != sequence[i - 1]]
    assert runs == sorted(runs) and len(runs) == len(NOTES)  # low to high, each note once

    feats = tmp_path / "f.parquet"
    r = runner.invoke(app, ["features", str(files / "notes.wav"), "--hop", "0.5", "--set", "rms,mfcc,pitch,chroma",
                            "-o", str(feats)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(feats)
    assert len(df) == 8 and {"path", "time", "rms", "mfcc_13", "hz", "chroma_A"} <= set(df.columns)
    summ = tmp_path / "s.csv"
    r = runner.invoke(app, ["-C", str(coll), "features", "--summary", "--set", "rms,centroid", "-o", str(summ), "-j", "1"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(summ)
    assert len(s) == 3 and {"rms.mean", "rms.p90", "centroid.std"} <= set(s.columns)

    r = runner.invoke(app, ["-C", str(coll), "units", "loudnes > 3"])
    assert r.exit_code == 2 and "loudnes" in r.output
    r = runner.invoke(app, ["-C", str(coll), "segment", "--mode", "beats"])
    assert r.exit_code == 2
