"""catalog/db.py and catalog/records.py: the SQLite catalog and the per-file JSON record."""
from __future__ import annotations

import sqlite3
import time

import pytest

from audiotrove.catalog.db import SCHEMA_VERSION, Catalog, CatalogError, find_root
from audiotrove.catalog.records import file_record, flatten

MEDIA_INFO = {"container": {"kind": "wav", "duration": 2.5, "bitrate": 705600, "size": 220544},
              "audio": {"codec": "pcm_s16le", "channels": 1, "sample_rate": 44100, "bit_depth": 16},
              "has_audio": True, "has_video": False}


def _record(cat, file_id, digest, *, step="analyze", version="1", phash="p0", status="ok",
            data=None, error=None, params=None):
    cat.record(file_id, size_bytes=100, mtime_ns=1, content_hash=digest, step=step,
               step_version=version, params_hash=phash, params=params or {}, status=status,
               error=error, data=data, elapsed_s=0.01)


def test_create_open_and_find_root(tmp_path):
    root = tmp_path / "coll"
    with Catalog.create(root) as cat:
        assert cat.root == root.resolve()
        assert cat.db_path == root / ".audiotrove" / "catalog.db"
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cat.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        cat.add_files([("/x/a.wav", "file", "/x")])
    nested = root / "deep" / "er"
    nested.mkdir(parents=True)
    assert find_root(nested) == root.resolve()
    with Catalog.open(nested) as cat:
        assert cat.file_count() == 1
    with Catalog.create(root) as cat:  # create on an existing collection keeps its content
        assert cat.file_count() == 1
    with pytest.raises(CatalogError, match="audiotrove init"):
        Catalog.open(tmp_path / "elsewhere")


def test_add_files_counts_and_is_idempotent(collection):
    with Catalog.open(collection) as cat:
        entries = [("/m/b.wav", "file", "/m"), ("/m/a.flac", "file", "/m"),
                   ("https://example.org/c.mp3", "url", "https://example.org/c.mp3")]
        assert cat.add_files(entries) == (3, 0)
        assert cat.add_files(entries + [("/m/d.ogg", "file", "list.txt")]) == (1, 3)
        rows = cat.files()
        assert [r.path for r in rows] == sorted(p for p, _, _ in entries + [("/m/d.ogg", 0, 0)])
        assert {r.path: r.kind for r in rows}["https://example.org/c.mp3"] == "url"
        assert all(r.content_hash is None for r in rows)
        some = {rows[0].id, rows[2].id}
        assert {r.id for r in cat.files(some)} == some
        assert cat.file_count() == 4


def test_results_keyed_by_content_step_version_params(collection):
    with Catalog.open(collection) as cat:
        cat.add_files([("/m/a.wav", "file", "/m"), ("/m/copy_of_a.wav", "file", "/m"),
                       ("/m/b.wav", "file", "/m"), ("/m/new.wav", "file", "/m")])
        a, copy, b, new = sorted(cat.files(), key=lambda r: ["/m/a.wav", "/m/copy_of_a.wav",
                                                             "/m/b.wav", "/m/new.wav"].index(r.path))
        _record(cat, a.id, "h:a", data={"media_info": MEDIA_INFO})
        _record(cat, copy.id, "h:a", data={"media_info": MEDIA_INFO})  # same content, same key
        _record(cat, b.id, "h:b", status="error", error="truncated: decoded 1.00 s of 9.00 s")
        n = cat.conn.execute("SELECT count(*) FROM results").fetchone()[0]
        assert n == 2  # identical content shares one result row
        assert cat.has_result("h:a", "analyze", "1", "p0", ok_only=True)
        assert cat.has_result("h:b", "analyze", "1", "p0")
        assert not cat.has_result("h:b", "analyze", "1", "p0", ok_only=True)
        assert not cat.has_result("h:a", "analyze", "2", "p0")
        assert not cat.has_result("h:a", "analyze", "1", "p1")
        assert cat.result_status("analyze", "1", "p0") == {"h:a": "ok", "h:b": "error"}

        by_path = {f.path: res for f, res in cat.iter_current()}
        assert set(by_path) == {"/m/a.wav", "/m/copy_of_a.wav", "/m/b.wav", "/m/new.wav"}
        assert by_path["/m/copy_of_a.wav"]["analyze"].data == {"media_info": MEDIA_INFO}
        assert by_path["/m/new.wav"] == {}
        assert cat.step_counts() == [("analyze", "error", 1), ("analyze", "ok", 2)]
        assert cat.failures() == [("/m/b.wav", "analyze", "truncated: decoded 1.00 s of 9.00 s")]
        assert new.content_hash is None


def test_latest_result_per_step_wins(collection):
    with Catalog.open(collection) as cat:
        cat.add_files([("/m/a.wav", "file", "/m")])
        (a,) = cat.files()
        _record(cat, a.id, "h:a", version="1", data={"audio": {"peak": 1}})
        time.sleep(0.002)
        _record(cat, a.id, "h:a", version="2", data={"audio": {"peak": 2}})
        time.sleep(0.002)
        _record(cat, a.id, "h:a", step="toy", data={"toy": {"x": 1}})
        ((f, results),) = list(cat.iter_current())
        assert results["analyze"].step_version == "2" and results["analyze"].data == {"audio": {"peak": 2}}
        assert set(results) == {"analyze", "toy"}
        ((_, only),) = list(cat.iter_current("toy"))
        assert set(only) == {"toy"}
        # recording the same key again replaces the row: never a duplicate
        _record(cat, a.id, "h:a", version="2", data={"audio": {"peak": 3}})
        rows = cat.conn.execute("SELECT count(*) FROM results WHERE step='analyze'").fetchone()[0]
        assert rows == 2
        assert cat.current_results(a.id)["analyze"].data == {"audio": {"peak": 3}}


def test_transaction_rolls_back_on_error_and_readers_see_committed_state(collection):
    with Catalog.open(collection) as cat:
        with pytest.raises(RuntimeError):
            with cat.transaction() as conn:
                conn.execute("INSERT INTO files(path, kind, added_at) VALUES ('/x.wav', 'file', 0)")
                raise RuntimeError("boom")
        assert cat.file_count() == 0
        reader = sqlite3.connect(cat.db_path)
        try:
            with cat.transaction() as conn:
                conn.execute("INSERT INTO files(path, kind, added_at) VALUES ('/y.wav', 'file', 0)")
                # WAL: another connection reads the last committed state meanwhile, unblocked
                assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 0
            assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 1
        finally:
            reader.close()


def test_file_record_and_flatten(collection):
    with Catalog.open(collection) as cat:
        cat.add_files([("/m/ok.wav", "file", "/m"), ("/m/bad.wav", "file", "/m"),
                       ("/m/todo.wav", "file", "/m")])
        rows = {f.path: f for f in cat.files()}
        _record(cat, rows["/m/ok.wav"].id, "h:ok",
                data={"media_info": MEDIA_INFO, "audio": {"non_finite_samples": 0}})
        _record(cat, rows["/m/ok.wav"].id, "h:ok", step="toy",
                data={"audio": {"toy_level": -3.0}, "toy": {"sections": [[0.0, 1.5]]}})
        _record(cat, rows["/m/bad.wav"].id, "h:bad", status="error", error="empty file (0 bytes)")
        _record(cat, rows["/m/bad.wav"].id, "h:bad", step="toy", status="error", error="nope")
        records = {f.path: file_record(f, res) for f, res in cat.iter_current()}
    ok = records["/m/ok.wav"]
    assert ok["status"] == "ok" and ok["error"] is None
    assert ok["audio"] == {"non_finite_samples": 0, "toy_level": -3.0}  # steps' objects merge
    assert records["/m/bad.wav"] == {"path": "/m/bad.wav", "status": "error",
                                     "error": "empty file (0 bytes)"}
    assert records["/m/todo.wav"] == {"path": "/m/todo.wav", "status": "pending", "error": None}
    flat = flatten(ok)
    assert flat["media_info.audio.sample_rate"] == 44100
    assert flat["media_info.container.duration"] == 2.5
    assert flat["audio.toy_level"] == -3.0
    assert flat["toy.sections"] == [[0.0, 1.5]]  # lists stay values
    assert list(flat)[:3] == ["path", "status", "error"]
