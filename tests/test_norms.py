"""Anomalies only against a clear norm, bitrates in bands, DC offset and low bitrate as problems
(issue 10, item 7). Catalogs of analyze-shaped results (no audio needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import FieldIndex
from audiotrove.report.problems import find_problems
from audiotrove.report.summary import NO_NORM, bitrate_band, summarize


def _data(*, sample_rate=16000, codec="pcm_s16le", bitrate=256000, dc=0.0, video=False) -> dict:
    return {"media_info": {"container": {"kind": "wav", "duration": 10.0, "bitrate": bitrate, "size": 1000},
                           "audio": {"codec": codec, "channels": 1, "sample_rate": sample_rate},
                           "has_audio": True, "has_video": video},
            "audio": {"noise": {"level_average": -70.0, "snr_average": 40.0, "dc_offset": dc}}}


def catalog(root: Path, rows: list[dict]) -> FieldIndex:
    cat = Catalog.create(root)
    cat.add_files([(f"/c/f{k:03d}.wav", "file", "/c") for k in range(len(rows))])
    ids = [r[0] for r in cat.conn.execute("SELECT id FROM files ORDER BY id")]
    for k, (fid, data) in enumerate(zip(ids, rows)):
        cat.record(fid, size_bytes=1000, mtime_ns=k, content_hash=f"h{k}", step="analyze", step_version="1",
                   params_hash="p", params={}, status="ok", error=None, data=data, elapsed_s=0.01)
    return FieldIndex.open(cat)


def test_a_slim_majority_is_no_norm(tmp_path):
    # 52 % at 16 kHz is a mixed collection: nothing is flagged, the table says why
    idx = catalog(tmp_path, [_data(sample_rate=16000)] * 13 + [_data(sample_rate=44100)] * 12)
    s = summarize(idx, fields=["sample_rate"])["fields"]["media_info.audio.sample_rate"]
    assert s["norm"] is None and s["anomalies"] == 0 and s["note"] == NO_NORM
    stats = summarize(idx)
    problems, groups = find_problems(idx, stats=stats)
    assert groups["off-spec"]["count"] == 0 and not problems


def test_a_clear_norm_flags_the_rest(tmp_path):
    idx = catalog(tmp_path, [_data(sample_rate=16000)] * 17 + [_data(sample_rate=44100)] * 3)
    s = summarize(idx, fields=["sample_rate"])["fields"]["media_info.audio.sample_rate"]
    assert s["norm"] == 16000 and s["note"] is None
    assert [v["value"] for v in s["values"] if v["anomaly"]] == [44100]
    problems, groups = find_problems(idx, stats=summarize(idx))
    assert groups["off-spec"]["count"] == 3
    assert all("sample_rate 44100 Hz (the norm is 16000 Hz, 85% of files)" in " ".join(p.reasons)
               for p in problems)


def test_bitrate_bands():
    assert bitrate_band("pcm_s16le", 768000) == bitrate_band("pcm_s16le", 769000) == "lossless"
    assert bitrate_band("flac", 612345) == "lossless"
    assert bitrate_band("mp3", 128000) == bitrate_band("mp3", 128400) == bitrate_band("mp3", 131000) == "mp3 ~128k"
    assert bitrate_band("mp3", 160000) == "mp3 ~160k"
    assert bitrate_band("opus", 12000) == "opus ~12k (low)"
    assert bitrate_band("opus", 24000) == "opus ~24k"
    assert bitrate_band("mp3", 32000) == "mp3 ~32k (low)"
    assert bitrate_band(None, 96000) == "~96k"


def test_bitrates_compared_in_bands_and_low_bitrate_is_a_problem(tmp_path):
    rows = ([_data(bitrate=768000)] * 8 + [_data(bitrate=769000)] * 2 + [_data(codec="flac", bitrate=400000)] * 8
            + [_data(codec="mp3", bitrate=128000)] + [_data(codec="mp3", bitrate=128400)]
            + [_data(codec="opus", bitrate=12000)]
            + [_data(codec="aac", bitrate=12000, video=True)])  # a video: the picture's bitrate too
    idx = catalog(tmp_path, rows)
    s = summarize(idx, fields=["bitrate"])["fields"]["media_info.container.bitrate"]
    values = {v["value"]: v["count"] for v in s["values"]}
    assert values == {"lossless": 18, "mp3 ~128k": 2, "opus ~12k (low)": 1, "aac ~12k (low)": 1}
    assert s["norm"] == "lossless"  # 18 of 22 = 82 %
    flagged = {v["value"] for v in s["values"] if v["anomaly"]}
    assert flagged == {"mp3 ~128k", "opus ~12k (low)", "aac ~12k (low)"}
    # each band's query lists exactly its files
    for v in s["values"]:
        assert idx.count(v["query"]) == v["count"], v
    stats = summarize(idx)
    problems, groups = find_problems(idx, stats=stats)
    assert groups["low-bitrate"]["count"] == 1
    low = [p for p in problems if "low-bitrate" in p.categories]
    assert [p.path for p in low] == ["/c/f020.wav"]
    assert "opus at 12 kb/s, under the 16 kb/s opus needs" in " ".join(low[0].reasons)
    off = {p.path for p in problems if "off-spec" in p.categories}
    assert off == {"/c/f018.wav", "/c/f019.wav", "/c/f020.wav", "/c/f021.wav"}
    reason = next(p for p in problems if p.path == "/c/f018.wav").reasons
    assert any("mp3 ~128k (the norm is lossless, 82% of files)" in r for r in reason), reason


def test_dc_offset_is_a_problem_of_its_own(tmp_path):
    idx = catalog(tmp_path, [_data()] * 5 + [_data(dc=-0.168), _data(dc=0.009)])
    problems, groups = find_problems(idx, stats=summarize(idx))
    assert groups["dc-offset"]["count"] == 1 and groups["dc-offset"]["title"] == "DC offset"
    assert [p.path for p in problems] == ["/c/f005.wav"]
    assert problems[0].categories == ["dc-offset"]
    assert "DC offset -0.168 of full scale (16.8%, over 1%)" in problems[0].reasons[0]


def test_readme_documents_minority_and_spec_with_examples():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    examples = [line for line in readme.splitlines() if line.startswith("audiotrove ")]
    assert any("--minority" in line for line in examples)
    assert any("--spec" in line for line in examples)


def test_stats_table_and_report_say_mixed_collection(tmp_path):
    from typer.testing import CliRunner

    from audiotrove.cli import app
    from audiotrove.report.html import write_report

    idx = catalog(tmp_path / "c", [_data(sample_rate=16000)] * 13 + [_data(sample_rate=44100)] * 12)
    r = CliRunner().invoke(app, ["-C", str(tmp_path / "c"), "stats", "sample_rate"])
    assert r.exit_code == 0 and "(mixed collection, no norm)" in r.stdout, r.stdout
    write_report(idx, tmp_path / "r.html", workers=1)
    assert "mixed collection, no norm" in (tmp_path / "r.html").read_text()
