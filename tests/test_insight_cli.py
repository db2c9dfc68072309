"""`ls`, `stats`, `export`, `fields` and the pandas API over catalogs with known analysis results."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import audiotrove
from audiotrove.catalog.db import Catalog
from audiotrove.catalog.records import file_record, flatten
from audiotrove.cli import app

from insight_synth import build_collection, fill

runner = CliRunner()


def cli(root: Path, *args: str, code: int = 0):
    result = runner.invoke(app, ["-C", str(root), *args])
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


@pytest.fixture(scope="module")
def coll(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    cat = Catalog.create(root)
    fill(cat, 150)
    cat.close()
    return root


@pytest.fixture(scope="module")
def flats(coll) -> dict[str, dict]:
    with Catalog.open(coll) as cat:
        return {f.path: flatten(file_record(f, res)) for f, res in cat.iter_current()}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    return build_collection(tmp_path_factory.mktemp("real"))


# ------------------------------------------------------------------------------------- ls


def test_ls_query_fields_sort_limit_csv(coll, flats):
    out = cli(coll, "ls", "codec = flac and loudness?", "--fields", "loudness,sr,bit_depth",
              "--sort", "loudness:desc", "--limit", "5", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["path", "audio.loudness.measured", "media_info.audio.sample_rate",
                             "media_info.audio.bit_depth"]
    expected = sorted((f for f in flats.values() if f.get("media_info.audio.codec") == "flac"
                       and f.get("audio.loudness.measured") is not None),
                      key=lambda f: (-f["audio.loudness.measured"], f["path"]))[:5]
    assert [r["path"] for r in rows] == [f["path"] for f in expected]
    assert [float(r["audio.loudness.measured"]) for r in rows] == [f["audio.loudness.measured"] for f in expected]


def test_ls_jsonl_is_the_records(coll):
    with Catalog.open(coll) as cat:
        expected = [file_record(f, res) for f, res in cat.iter_current()]
    out = cli(coll, "ls", "--format", "jsonl").stdout
    assert [json.loads(line) for line in out.splitlines()] == expected
    out = cli(coll, "ls", "status = error", "-f", "json").stdout
    data = json.loads(out)
    assert data and all(r["status"] == "error" and r["error"] == "decode failed" for r in data)
    assert json.loads(cli(coll, "ls", "path ~ nothing-matches", "-f", "json").stdout) == []


def test_ls_flat_json_with_fields(coll, flats):
    out = cli(coll, "ls", "has_video", "--fields", "has_video,duration,audio.clipping.sections",
              "-f", "jsonl").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["media_info.has_video"] is True for r in rows)
    for r in rows:
        f = flats[r["path"]]
        assert r["media_info.container.duration"] == f["media_info.container.duration"]
        assert r["audio.clipping.sections"] == f.get("audio.clipping.sections")


def test_ls_table(coll, flats):
    out = cli(coll, "ls", "path ~ afs04 and status = ok", "--sort", "duration:desc").stdout
    lines = out.splitlines()
    header = lines[0].split()
    assert header[0] == "status" and header[-1] == "path" and "duration" in header
    matching = [f for f in flats.values() if "afs04" in f["path"] and f["status"] == "ok"]
    assert len(lines) == 1 + len(matching)
    longest = max(matching, key=lambda f: f["media_info.container.duration"])
    assert lines[1].endswith(longest["path"])
    # errors show their message next to the path
    out = cli(coll, "ls", "status = error").stdout
    assert "(decode failed)" in out.splitlines()[1]


def test_ls_errors_exit_2_with_position(coll):
    res = cli(coll, "ls", "loudnes < -30", code=2)
    assert "unknown field 'loudnes'" in res.stderr and "audio.loudness.measured" in res.stderr
    assert "^^^^^^^" in res.stderr
    res = cli(coll, "ls", "--sort", "nope", code=2)
    assert "unknown field 'nope'" in res.stderr
    res = cli(coll, "ls", "-f", "xml", code=2)
    assert "unknown format" in res.stderr


def test_query_words_are_joined(coll):
    a = cli(coll, "ls", "codec", "=", "mp3", "-f", "csv", "--fields", "codec").stdout
    b = cli(coll, "ls", "codec = mp3", "-f", "csv", "--fields", "codec").stdout
    assert a == b and a.count("\n") > 2


# ------------------------------------------------------------------------------------- stats


def test_stats_json_numbers(coll, flats):
    out = cli(coll, "stats", "--format", "json", "--price-per-minute", "0.01", "--workers", "4").stdout
    s = json.loads(out)
    t = s["totals"]
    recs = list(flats.values())
    assert t["files"] == len(recs) == 150
    assert t["ok"] == sum(r["status"] == "ok" for r in recs)
    assert t["failed"] == sum(r["status"] == "error" for r in recs)
    assert t["pending"] == sum(r["status"] == "pending" for r in recs)
    durations = np.array([r["media_info.container.duration"] for r in recs
                          if r.get("media_info.container.duration") is not None])
    assert t["audio_s"] == pytest.approx(durations.sum())
    est = s["estimate"]
    assert est["cost"] == pytest.approx(durations.sum() / 60 * 0.01)
    assert est["workers"] == 4 and est["processing_s"] == pytest.approx(
        durations.sum() / est["throughput_x_realtime"] / 4)
    loud = s["fields"]["audio.loudness.measured"]
    v = np.array([r["audio.loudness.measured"] for r in recs if r.get("audio.loudness.measured") is not None])
    assert loud["count"] == v.size and loud["missing"] == 150 - v.size
    assert loud["mean"] == pytest.approx(v.mean()) and loud["std"] == pytest.approx(v.std(ddof=1))
    assert [loud["min"], loud["q25"], loud["median"], loud["q75"], loud["max"]] == pytest.approx(
        [v.min(), *np.percentile(v, [25, 50, 75]), v.max()])
    assert sum(loud["histogram"]["counts"]) == v.size
    codec = s["fields"]["media_info.audio.codec"]
    assert {x["value"]: x["count"] for x in codec["values"]} == {
        c: sum(r.get("media_info.audio.codec") == c for r in recs) for c in ("pcm_s16le", "flac", "mp3", "vorbis")}
    assert codec["anomalies"] == 0  # four codecs in equal shares: no norm, no anomaly


def test_stats_bins_edges_and_where(coll, flats):
    out = cli(coll, "stats", "loudness", "--where", "codec = mp3", "--bins", "-40,-30,-20,-10",
              "-f", "json").stdout
    s = json.loads(out)
    assert list(s["fields"]) == ["audio.loudness.measured"]
    v = np.array([r["audio.loudness.measured"] for r in flats.values()
                  if r.get("media_info.audio.codec") == "mp3" and r.get("audio.loudness.measured") is not None])
    h = s["fields"]["audio.loudness.measured"]["histogram"]
    assert h["edges"] == [-40, -30, -20, -10]
    assert h["counts"] == list(np.histogram(v, [-40, -30, -20, -10])[0])
    assert h["below"] == (v < -40).sum() and h["above"] == (v > -10).sum()
    assert s["totals"]["files"] == sum(r.get("media_info.audio.codec") == "mp3" for r in flats.values())
    # units in edges; a count of bins
    s = json.loads(cli(coll, "stats", "duration", "--bins", "1m,5m,15m", "-f", "json").stdout)
    assert s["fields"]["media_info.container.duration"]["histogram"]["edges"] == [60, 300, 900]
    s = json.loads(cli(coll, "stats", "duration", "--bins", "7", "-f", "json").stdout)
    assert len(s["fields"]["media_info.container.duration"]["histogram"]["counts"]) == 7
    res = cli(coll, "stats", "duration", "--bins", "1m,lots", code=2)
    assert "--bins" in res.stderr


def test_stats_flags_minority_values(real):
    out = cli(real["root"], "stats", "sample_rate", "channels", "-f", "json").stdout
    s = json.loads(out)
    sr = s["fields"]["media_info.audio.sample_rate"]
    assert sr["norm"] == 16000
    assert {v["value"] for v in sr["values"] if v["anomaly"]} == {44100, 22050}
    assert sr["missing"] == 1  # the broken file
    table = cli(real["root"], "stats", "sample_rate").stdout
    assert "!  44100" in table and "2 anomalous value(s)" in table
    # a looser threshold: nothing is a minority below 5 %
    s = json.loads(cli(real["root"], "stats", "sample_rate", "--minority", "0.05", "-f", "json").stdout)
    assert s["fields"]["media_info.audio.sample_rate"]["anomalies"] == 0


def test_stats_table_lists_defaults(real):
    out = cli(real["root"], "stats").stdout
    assert "12 files" in out and "11 ok, 1 failed" in out
    assert "uniformity" in out and "distributions" in out
    assert "audio.loudness.measured" in out and "LUFS" in out


# ------------------------------------------------------------------------------------- export + API


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_export_round_trip(coll, flats, tmp_path, suffix):
    out = tmp_path / f"sel{suffix}"
    res = cli(coll, "export", str(out), "--where", "sample_rate >= 44.1k")
    n = sum((r.get("media_info.audio.sample_rate") or 0) >= 44100 for r in flats.values())
    assert f"exported {n} file(s)" in res.stdout
    if suffix == ".csv":
        df = pd.read_csv(out)
    elif suffix == ".parquet":
        df = pd.read_parquet(out)
    elif suffix == ".json":
        df = pd.DataFrame(json.loads(out.read_text()))
    else:
        df = pd.DataFrame([json.loads(x) for x in out.read_text().splitlines()])
    assert len(df) == n
    assert list(df.columns[:3]) == ["path", "status", "error"]
    assert "audio.noise.hum.frequency" in df.columns and "media_info.audio.codec" in df.columns
    for _, row in df.iterrows():
        f = flats[row["path"]]
        assert row["media_info.audio.sample_rate"] == f["media_info.audio.sample_rate"]
        assert row["media_info.container.duration"] == pytest.approx(f["media_info.container.duration"])
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_export_unknown_suffix(coll, tmp_path):
    res = cli(coll, "export", str(tmp_path / "x.xlsx"), code=2)
    assert "cannot tell the format" in res.stderr


def test_python_api_frame(coll, flats, tmp_path):
    c = audiotrove.open(coll)
    try:
        df = c.frame(where="codec = flac")
        assert len(df) == sum(f.get("media_info.audio.codec") == "flac" for f in flats.values())
        assert str(df["media_info.audio.sample_rate"].dtype) == "Int64"
        assert str(df["media_info.has_video"].dtype) == "boolean"
        assert df["media_info.container.duration"].dtype == np.float64
        lists = df["audio.clipping.sections"].dropna()
        assert all(isinstance(x, list) for x in lists)
        cli(coll, "export", str(tmp_path / "all.parquet"), "--where", "codec = flac")
        pq = pd.read_parquet(tmp_path / "all.parquet")
        assert list(pq.columns) == list(df.columns)
        pd.testing.assert_series_equal(pq["audio.loudness.measured"], df["audio.loudness.measured"],
                                       check_dtype=False)
        small = c.frame(fields="duration,loudness", sort="duration:desc", limit=3)
        assert list(small.columns) == ["path", "media_info.container.duration", "audio.loudness.measured"]
        assert small["media_info.container.duration"].is_monotonic_decreasing
        assert c.count("status = pending") == sum(f["status"] == "pending" for f in flats.values())
        assert c.stats(["codec"])["fields"]["media_info.audio.codec"]["count"] > 0
        assert len(c.records(limit=2)) == 2
        assert "media_info.audio.codec" in [f.name for f in c.fields()]
    finally:
        c.close()


def test_fields_command(coll, tmp_path, monkeypatch):
    out = cli(coll, "fields").stdout
    assert "media_info.audio.sample_rate" in out and "sample_rate, sr" in out
    items = json.loads(cli(coll, "fields", "-f", "json").stdout)
    by_name = {i["name"]: i for i in items}
    assert by_name["audio.loudness.measured"]["unit"] == "LUFS"
    assert "duration" in by_name["media_info.container.duration"]["aliases"]
    # outside any collection: the registry alone
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["fields"])
    assert res.exit_code == 0 and "audio.noise.snr_average" in res.stdout


def test_console_script_end_to_end(real):
    exe = shutil.which("audiotrove", path=os.path.dirname(sys.executable)) or shutil.which("audiotrove")
    if exe is None:
        pytest.skip("the audiotrove console script is not installed")
    res = subprocess.run([exe, "-C", str(real["root"]), "ls", "audio.clipping.num_sections > 0 or snr < 10",
                          "--fields", "snr", "-f", "csv"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    names = sorted(Path(r["path"]).name for r in csv.DictReader(io.StringIO(res.stdout)))
    assert names == ["clipped.wav", "noisy.wav", "silent.wav"]


def test_ls_units_delegates_to_the_units_listing(real):
    pytest.importorskip("audiotrove.units.select")
    res = cli(real["root"], "ls", "--units", "power > -30", "-f", "jsonl")
    assert res.stdout.strip() == ""  # nothing segmented yet
    res = cli(real["root"], "ls", "--units", "pwr > -30", code=2)
    assert "unknown field 'pwr'" in res.stderr
    cli(real["root"], "ls", "--units", "--fields", "x", code=2)
