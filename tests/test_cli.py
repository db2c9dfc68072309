"""The command line, run as a user would (a subprocess): init, add, analyze, status, ls,
one-off analyze, and the exit status (0 all ok, 1 some items failed, 2 usage or setup error)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import jsonl, run_cli, tone, write_audio


def _contract_ok(record: dict) -> None:
    """The JSON contract of one analysed file (units: s, bit/s, bytes, Hz)."""
    assert set(record) >= {"path", "status", "error", "media_info", "audio"}
    mi = record["media_info"]
    assert set(mi) == {"container", "audio", "has_audio", "has_video"}
    assert set(mi["container"]) == {"kind", "duration", "bitrate", "size"}
    assert set(mi["audio"]) == {"codec", "channels", "sample_rate", "bit_depth"}
    assert record["status"] == "ok" and record["error"] is None
    assert mi["container"]["duration"] > 0 and mi["container"]["size"] == Path(record["path"]).stat().st_size
    assert isinstance(mi["audio"]["sample_rate"], int) and mi["has_audio"] is True


@pytest.fixture
def library(tmp_path, media) -> Path:
    """A folder of copies of the generated media, nested, plus a list file beside it."""
    lib = tmp_path / "library"
    (lib / "a" / "b").mkdir(parents=True)
    for i, name in enumerate(("tone.wav", "stereo24.flac", "speech.ogg", "stereo.m4a")):
        shutil.copy(media[name], lib / ("a/b" if i % 2 else "a") / name)
    (lib / "a" / "notes.txt").write_text("not media")
    return lib


def test_collection_workflow(tmp_path, library, media):
    coll = tmp_path / "coll"
    r = run_cli("init", coll)
    assert r.returncode == 0 and "collection ready" in r.stderr
    assert (coll / ".audiotrove" / "catalog.db").is_file()

    song = shutil.copy(media["tone.mp3"], coll / "song.mp3")
    extra = tmp_path / "extra"
    write_audio(extra / "x.flac", tone(seconds=0.3, sample_rate=8000), 8000)
    write_audio(extra / "y.wav", tone(seconds=0.3, sample_rate=8000, freq_hz=300), 8000)
    (coll / "batch.txt").write_text(f"# two more\n\n../extra/x.flac\n{extra / 'y.wav'}\n"
                                    "https://example.org/archive/reel-07.mp3\n")
    r = run_cli("add", library, "batch.txt", "song.mp3", cwd=coll)  # cwd: the collection
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "added 8, already present 0, skipped 1"  # notes.txt, with why
    assert "notes.txt: not an audio or video file name (extension .txt)" in r.stderr
    r = run_cli("-C", coll, "add", library, f"@{coll / 'batch.txt'}", "nope.wav", cwd=tmp_path)
    assert r.stdout.strip() == "added 0, already present 7, skipped 2"
    assert "nope.wav: not found" in r.stderr

    r = run_cli("-C", coll, "analyze", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "analyze: 7 ok, 0 failed, 0 already up to date, 1 URLs not fetched yet" in r.stderr

    r = run_cli("-C", coll, "status")
    assert r.returncode == 0
    assert f"collection {coll.resolve()}: 8 files" in r.stdout
    assert "analyze    ok     7" in r.stdout and "failures" not in r.stdout

    records = jsonl(run_cli("-C", coll, "ls", "--format", "jsonl").stdout)
    by_path = {rec["path"]: rec for rec in records}
    assert len(records) == 8
    assert by_path["https://example.org/archive/reel-07.mp3"]["status"] == "pending"
    for rec in records:
        if not rec["path"].startswith("https://"):
            _contract_ok(rec)
    assert by_path[str(Path(song).resolve())]["media_info"]["audio"]["codec"] == "mp3"
    assert by_path[str(library / "a" / "b" / "stereo24.flac")]["media_info"]["audio"]["bit_depth"] == 24

    as_json = json.loads(run_cli("-C", coll, "ls", "--format", "json").stdout)
    assert as_json == records
    table = run_cli("-C", coll, "ls").stdout  # a human table: its layout is not a contract
    assert all(rec["path"] in table for rec in records)

    r = run_cli("-C", coll, "analyze")
    assert r.returncode == 0 and "analyze: 0 ok, 0 failed, 7 already up to date" in r.stderr


def test_exit_status_for_failures_and_usage_errors(tmp_path, media):
    coll = tmp_path / "coll"
    run_cli("init", coll)
    shutil.copy(media["tone.wav"], tmp_path / "good.wav")
    (tmp_path / "bad.wav").write_text("definitely not audio")
    run_cli("-C", coll, "add", tmp_path / "good.wav", tmp_path / "bad.wav")

    r = run_cli("-C", coll, "analyze")
    assert r.returncode == 1
    assert "analyze: 1 ok, 1 failed" in r.stderr and "1 item(s) failed" in r.stderr
    r = run_cli("-C", coll, "status")
    assert r.returncode == 1
    assert f"{tmp_path / 'bad.wav'} [analyze]: not a readable audio/video file" in r.stdout

    usage_errors = [
        ("-C", tmp_path / "no_collection_here", "analyze"),
        ("-C", tmp_path / "no_collection_here", "add", tmp_path / "good.wav"),
        ("-C", coll, "analyze", "--workers", "0"),
        ("-C", coll, "ls", "--format", "xml"),
        ("-C", coll, "no-such-command"),
        ("-C", coll, "analyze", "--no-such-option"),
    ]
    for args in usage_errors:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    r = run_cli("-C", tmp_path / "no_collection_here", "status")
    assert "no collection" in r.stderr and "audiotrove init" in r.stderr


def test_one_off_analyze_prints_one_json_object_per_file(tmp_path, media):
    for name in ("tone.wav", "tone.mp3", "clip.mp4"):
        shutil.copy(media[name], tmp_path / name)
    r = run_cli("analyze", "tone.wav", "tone.mp3", "clip.mp4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    records = jsonl(r.stdout)
    assert [rec["path"] for rec in records] == [str(tmp_path / n) for n in
                                                ("tone.wav", "tone.mp3", "clip.mp4")]
    for rec in records:
        _contract_ok(rec)
    assert records[2]["media_info"]["has_video"] is True
    assert records[2]["media_info"]["container"]["kind"] == "mp4"
    assert not (tmp_path / ".audiotrove").exists()  # one-off mode leaves no collection behind

    (tmp_path / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 64)
    r = run_cli("analyze", "tone.wav", "broken.mp3", "missing.flac", cwd=tmp_path)
    assert r.returncode == 1
    records = {Path(rec["path"]).name: rec for rec in jsonl(r.stdout)}
    assert set(records) == {"tone.wav", "broken.mp3", "missing.flac"}
    assert records["tone.wav"]["status"] == "ok"
    assert records["broken.mp3"]["status"] == "error" and records["broken.mp3"]["error"]
    assert records["missing.flac"] == {"path": str(tmp_path / "missing.flac"), "status": "error",
                                       "error": "not found"}
    assert "2 of 3 file(s) failed" in r.stderr
