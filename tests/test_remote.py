"""Remote sources end to end: ids + templates, Internet Archive queries, metadata tables,
`audiotrove fetch` (including a SIGKILL in the middle of a large file and the resume),
and fetched files analyzed like local ones. The server is local (127.0.0.1), every wait bounded.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import AUDIOTROVE, catalog_db, cli_env, jsonl, sigint_as_from_a_terminal, tone, write_audio
from remote_server import RemoteServer

from audiotrove.catalog.db import Catalog
from audiotrove.errors import UsageError
from audiotrove.sources.ia import query_entries
from audiotrove.sources.metadata import apply_metadata
from audiotrove.sources.templates import expand_ids, parse_fields, read_ids


@pytest.fixture
def server():
    s = RemoteServer().start()
    yield s
    s.stop()


def wav_bytes(tmp_path: Path, *, freq_hz: float, seconds: float = 1.0) -> bytes:
    path = write_audio(tmp_path / f"gen-{freq_hz}.wav", tone(freq_hz=freq_hz, seconds=seconds), 16000)
    return Path(path).read_bytes()


def at(collection: Path, *args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    extra = {"NETRC": str(collection / "no-netrc"), **(env or {})}
    return subprocess.run([*AUDIOTROVE, "-C", str(collection), *map(str, args)], env=cli_env(extra),
                          capture_output=True, text=True, timeout=timeout, check=False)


def ls_json(collection: Path, *query: str, env=None) -> list[dict]:
    out = at(collection, "ls", *query, "--format", "jsonl", env=env)
    assert out.returncode == 0, out.stderr
    return jsonl(out.stdout)


# ------------------------------------------------------------------------------ templates

def test_ids_template_pattern_fields_and_checksums(tmp_path):
    ids = tmp_path / "batch.txt"
    ids.write_text("# archive batch\nafs04_12b\nafs04_13a\tsha256:" + "ab" * 32 + "\n\nloose\n"
                   "x_a/../b\n")
    entries, skipped = expand_ids(
        read_ids(ids), template="https://host.example/{group}/{dir}/{id}.wav",
        id_pattern=r"(?P<group>[^_]+)_(?P<item>.+)", fields=parse_fields(["dir={id|rstrip:ab}"]))
    urls = [e.url for e in entries]
    assert urls[:2] == ["https://host.example/afs04/afs04_12/afs04_12b.wav",
                        "https://host.example/afs04/afs04_13/afs04_13a.wav"]
    assert "/" not in urls[2].split("host.example/")[1].split("/", 2)[2].replace(".wav", "")  # encoded
    assert skipped == [("loose", "does not match --id-pattern '(?P<group>[^_]+)_(?P<item>.+)'")]
    assert entries[1].checksums == {"sha256": "ab" * 32}
    assert entries[0].source == {"origin": "template", "id": "afs04_12b", "group": "afs04", "item": "12b",
                                 "dir": "afs04_12"}
    more, _ = expand_ids([("Tape-7", {})], template="http://h/{n|lower|replace:-:_}/{id|zfill:8|raw}",
                         fields=parse_fields(["n={id|slice:0:4}"]))
    assert more[0].url == "http://h/tape/00Tape-7"
    for bad in (dict(template="http://h/{nope}.wav"), dict(template="http://h/{id|frob}.wav"),
                dict(template="ftp://h/{id}.wav"), dict(template="http://h/{id}", id_pattern="(")):
        with pytest.raises(UsageError):
            expand_ids([("a_b", {})], **bad)


# ------------------------------------------------------------------------------ Internet Archive

def make_archive(server: RemoteServer) -> None:
    for k in range(5):
        files = [(f"film{k}.mp4", "MPEG4", b"v" * (1000 + k)), (f"film{k}_512kb.mp4", "h.264", b"s" * 300),
                 (f"film{k}.ogv", "Ogg Video", b"o" * 5000)]
        if k == 3:
            files = [(f"film{k}.ogv", "Ogg Video", b"o" * 10)]
        server.add_item(f"fedflix-{k}", metadata={"title": f"Film {k}", "date": f"19{50 + k}",
                                                  "creator": ["Agency A", "Agency B"],
                                                  "collection": ["FedFlix", "stock_footage"],
                                                  "licenseurl": "http://creativecommons.org/publicdomain/mark/1.0/"},
                        files=files)


def test_ia_query_pages_picks_largest_or_all(server):
    make_archive(server)
    entries, skipped = query_entries("collection:(FedFlix)", fmt="mp4", base=server.url, page_rows=2)
    assert [e.source["identifier"] for e in entries] == ["fedflix-0", "fedflix-1", "fedflix-2", "fedflix-4"]
    assert skipped == [("fedflix-3", "no file of format mp4 in the item")]
    assert entries[0].url == server.url + "/download/fedflix-0/film0.mp4"  # the largest mp4
    src = entries[0].source
    assert src["title"] == "Film 0" and src["date"] == "1950" and src["creator"] == "Agency A; Agency B"
    assert src["collection"] == "FedFlix; stock_footage" and src["license_url"].startswith("http://creativecommons")
    assert set(entries[0].checksums) == {"md5", "sha1"} and src["size"] == 1000
    searches = [p for p, _ in server.requests if p == "/services/search/v1/scrape"]
    assert len(searches) == 3  # 5 items, 2 a page, cursor after cursor
    multi, _ = query_entries("x", fmt="mp4", multi=True, limit=2, base=server.url, page_rows=2)
    assert [e.source["file"] for e in multi] == ["film0.mp4", "film0_512kb.mp4", "film1.mp4", "film1_512kb.mp4"]
    by_format, _ = query_entries("x", fmt="Ogg Video", limit=1, base=server.url)
    assert by_format[0].source["file"] == "film0.ogv"


# ------------------------------------------------------------------------------ metadata

def test_metadata_table_becomes_meta_fields(tmp_path, collection):
    (tmp_path / "a").mkdir()
    for name in ("tape1.wav", "tape2.wav"):
        write_audio(tmp_path / "a" / name, tone(seconds=0.2), 16000)
    table = tmp_path / "items.csv"
    table.write_text("filename,Year,Interviewer Name,place\ntape1.wav,1937,Ann Lee,Ohio\n"
                     "tape2.wav,1941,,Iowa\nmissing.wav,1950,X,Y\n", encoding="utf-8")
    with Catalog.open(collection) as cat:
        from audiotrove.catalog.sources import expand_sources
        cat.add_files(expand_sources([str(tmp_path / "a")]).entries)
        counts = apply_metadata(cat, table, match_column="filename")
        assert counts == {"rows": 3, "matched_rows": 2, "files": 2, "unmatched": ["missing.wav"]}
        with pytest.raises(UsageError):
            apply_metadata(cat, table, match_column="nope")
    rows = ls_json(collection, "meta.Year > 1940")
    assert [os.path.basename(r["path"]) for r in rows] == ["tape2.wav"]
    assert rows[0]["meta"] == {"Year": 1941, "filename": "tape2.wav", "place": "Iowa"}
    rows = ls_json(collection, 'meta.Interviewer_Name = "Ann Lee"')
    assert [os.path.basename(r["path"]) for r in rows] == ["tape1.wav"]


# ------------------------------------------------------------------------------ the CLI

def test_add_ia_fetch_analyze_query(server, tmp_path, collection):
    for k in range(3):
        server.add_item(f"oral-{k}", metadata={"title": f"Interview {k}", "collection": "VoicesRemembering",
                                               "date": f"193{k}", "creator": "WPA"},
                        files=[(f"interview {k}.wav", "WAVE", wav_bytes(tmp_path, freq_hz=300 + 100 * k)),
                               (f"interview{k}.mp3", "VBR MP3", b"m" * 100)])
    env = {"AUDIOTROVE_IA_URL": server.url}
    out = at(collection, "add", "--ia-query", "collection:(VoicesRemembering)", "--ia-format", "wav", env=env)
    assert out.returncode == 0, out.stderr
    assert "internet archive: added 3, already present 0, skipped 0" in out.stdout
    out = at(collection, "analyze", env=env)
    assert out.returncode == 0 and "3 URLs not fetched yet" in out.stderr  # analyze says how many wait
    rows = ls_json(collection, 'source.title = "Interview 1"')
    assert len(rows) == 1 and rows[0]["status"] == "pending" and rows[0]["source"]["creator"] == "WPA"
    out = at(collection, "fetch", "--connections", "3", "--per-host", "2", env=env)
    assert out.returncode == 0, out.stderr
    assert "fetch: 3 ok, 0 failed, 0 already fetched" in out.stderr
    out = at(collection, "analyze", "-j", "2", env=env)
    assert out.returncode == 0, out.stderr
    assert "analyze: 3 ok" in out.stderr and "not fetched" not in out.stderr
    rows = ls_json(collection, "source.date >= 1931 and duration > 0.9s")
    assert [r["source"]["identifier"] for r in rows] == ["oral-1", "oral-2"]
    for r in rows:
        assert r["path"].startswith(server.url + "/download/")
        assert r["status"] == "ok" and r["media_info"]["audio"]["sample_rate"] == 16000
        data = Path(r["fetch"]["local_path"]).read_bytes()
        assert r["fetch"]["sha256"] == hashlib.sha256(data).hexdigest() and r["fetch"]["bytes"] == len(data)
        assert r["fetch"]["http_status"] == 200 and r["fetch"]["etag"] and r["fetch"]["fetched_at"] > 0
        assert Path(r["fetch"]["local_path"]).is_relative_to(collection / ".audiotrove" / "cache")
    # the other readers of audio use the local copy too
    out = at(collection, "features", "--where", 'source.identifier = "oral-1"', "-o", tmp_path / "f.parquet")
    assert out.returncode == 0, out.stderr
    import pandas as pd
    table = pd.read_parquet(tmp_path / "f.parquet")
    assert len(table) > 5 and table["path"].nunique() == 1
    # again: nothing to fetch, nothing to analyze
    out = at(collection, "fetch", env=env)
    assert out.returncode == 0 and "0 ok, 0 failed, 3 already fetched" in out.stderr
    out = at(collection, "analyze", env=env)
    assert "3 already up to date" in out.stderr
    # metadata joined on the identifier; queryable with the rest
    table = tmp_path / "m.csv"
    table.write_text("identifier,box\noral-0,12\noral-2,14\n")
    out = at(collection, "add", "--metadata", table, "--match-column", "identifier")
    assert out.returncode == 0 and "2 of 2 rows matched, 2 files updated" in out.stdout
    rows = ls_json(collection, "meta.box > 12 and status = ok")
    assert [r["source"]["identifier"] for r in rows] == ["oral-2"]


def test_refresh_keeps_current_copies_and_downloads_changed_ones(server, tmp_path, collection):
    u1 = server.add("/a.wav", wav_bytes(tmp_path, freq_hz=300, seconds=1.0))
    u2 = server.add("/b.wav", wav_bytes(tmp_path, freq_hz=400, seconds=1.0))
    lst = tmp_path / "urls.txt"
    lst.write_text(f"{u1}\n{u2}\n")
    assert at(collection, "add", lst).returncode == 0
    out = at(collection, "fetch")
    assert "fetch: 2 ok, 0 failed, 0 already fetched" in out.stderr
    assert "analyze: 2 ok" in at(collection, "analyze", "-j", "1").stderr
    first = {r["path"]: r for r in ls_json(collection)}
    # nothing changed: each copy is confirmed with its ETag (304), nothing downloaded again
    n_requests = len(server.requests)
    out = at(collection, "fetch", "--refresh")
    assert out.returncode == 0 and "2 ok, 0 failed, 0 already fetched, 2 unchanged, 0 updated" in out.stderr
    sent = {p: h.get("If-None-Match") for p, h in server.requests[n_requests:]}
    assert sent == {"/a.wav": first[u1]["fetch"]["etag"], "/b.wav": first[u2]["fetch"]["etag"]}
    assert server.served["/a.wav"] == server.served["/b.wav"] == len(server.files["/a.wav"])  # once
    second = {r["path"]: r for r in ls_json(collection)}
    for u in (u1, u2):
        assert second[u]["fetch"]["local_path"] == first[u]["fetch"]["local_path"]
        assert second[u]["fetch"]["checked_at"] >= first[u]["fetch"]["fetched_at"]
    # b.wav changed on the server (now 2 s): downloaded again, its copy replaced, analyzed again
    server.files["/b.wav"] = wav_bytes(tmp_path, freq_hz=500, seconds=2.0)
    out = at(collection, "fetch", "--refresh")
    assert "2 ok, 0 failed, 0 already fetched, 1 unchanged, 1 updated" in out.stderr
    out = at(collection, "analyze", "-j", "1")
    assert "1 ok" in out.stderr and "1 already up to date" in out.stderr
    third = {r["path"]: r for r in ls_json(collection)}
    assert third[u2]["fetch"]["local_path"] == first[u2]["fetch"]["local_path"]
    assert Path(third[u2]["fetch"]["local_path"]).read_bytes() == server.files["/b.wav"]
    duration = {u: r["media_info"]["container"]["duration"] for u, r in third.items()}
    before = {u: r["media_info"]["container"]["duration"] for u, r in first.items()}
    assert duration[u2] == pytest.approx(2 * before[u2]) and duration[u1] == before[u1]
    # a server that gives no validators sends the file again: the same bytes count as unchanged
    server.faults["/a.wav"] = ["noetag"]
    server.faults["/b.wav"] = ["noetag"]
    with Catalog.open(collection) as cat:  # a copy fetched from such a server has no ETag
        fid = cat.file_ids([u1])[u1]
        cat.set_attrs([(fid, "fetch", {**third[u1]["fetch"], "etag": None, "last_modified": None})])
    out = at(collection, "fetch", "--refresh")
    assert "2 ok, 0 failed, 0 already fetched, 2 unchanged, 0 updated" in out.stderr
    # the server loses a.wav: the check fails, the copy and its record stay usable
    del server.files["/a.wav"]
    out = at(collection, "fetch", "--refresh", "--retries", "0")
    assert out.returncode == 1 and "HTTP 404" in out.stderr and "1 unchanged" in out.stderr
    rec = {r["path"]: r for r in ls_json(collection)}[u1]
    assert rec["fetch"]["status"] == "ok" and "HTTP 404" in rec["fetch"]["check_error"]
    assert Path(rec["fetch"]["local_path"]).is_file() and rec["status"] == "ok"


def test_list_checksums_credentials_and_fetch_errors(server, tmp_path, collection):
    good = wav_bytes(tmp_path, freq_hz=500)
    u1 = server.add("/ok.wav", good)
    u2 = server.add("/bad.wav", good)
    u3 = server.add("/gone.wav", good)
    server.faults["/gone.wav"] = ["404"] * 5
    u4 = server.url.replace("http://", "http://ann:Sup3rSecret@") + "/priv.wav"
    server.add("/priv.wav", good)
    lst = tmp_path / "urls.txt"
    lst.write_text(f"{u1}\tsha256:{hashlib.sha256(good).hexdigest()}\n{u2}\tsha256:{'0' * 64}\n{u3}\n{u4}\n")
    out = at(collection, "add", lst)
    assert out.returncode == 0 and "added 4" in out.stdout and "removed from 1 URL" in out.stderr
    out = at(collection, "fetch", "--retries", "1", "--backoff", "0")
    assert out.returncode == 1
    assert "fetch: 2 ok, 2 failed" in out.stderr
    assert "sha256 mismatch" in out.stderr and "HTTP 404" in out.stderr and "/gone.wav" in out.stderr
    failed = ls_json(collection, "fetch.status = error")
    assert sorted(r["path"] for r in failed) == sorted([u2, u3])
    assert {r["path"]: r["fetch"]["http_status"] for r in failed}[u3] == 404
    shown = json.loads(at(collection, "status", "--format", "json").stdout)["failures"]
    assert sorted((f["step"], f["path"]) for f in shown) == sorted([("fetch", u2), ("fetch", u3)])
    assert any("HTTP 404" in f["error"] for f in shown) and any("sha256" in f["error"] for f in shown)
    rejected = [r["fetch"]["rejected_path"] for r in failed if r["path"] == u2][0]
    assert Path(rejected).read_bytes() == good
    out = at(collection, "analyze", "-j", "1")
    assert "2 ok" in out.stderr and "2 URLs not fetched yet" in out.stderr  # the bad copy is not analyzed
    # credentials: never in the catalog, never printed
    everything = out.stdout + out.stderr + at(collection, "ls", "--format", "jsonl").stdout
    db = b"".join(p.read_bytes() for p in catalog_db(collection).parent.glob("catalog.db*"))
    assert b"Sup3rSecret" not in db and "Sup3rSecret" not in everything
    # --max-size and a fixed checksum list: the next run fetches again
    server.files["/bad.wav"] = good
    with Catalog.open(collection) as cat:
        fid = cat.file_ids([u2])[u2]
        cat.set_attrs([(fid, "source", {"sha256": hashlib.sha256(good).hexdigest()})], merge=True)
    out = at(collection, "fetch", "--retries", "0", "--max-size", "10")
    assert "0 ok, 2 failed" in out.stderr and "--max-size" in out.stderr
    out = at(collection, "fetch", "--retries", "0", "--to", tmp_path / "dl")
    assert "1 ok, 1 failed, 2 already fetched" in out.stderr
    rec = {r["path"]: r for r in ls_json(collection)}[u2]["fetch"]
    assert Path(rec["local_path"]).parent.parent == tmp_path / "dl" and rec["status"] == "ok"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_fetch_killed_mid_file_resumes_from_the_bytes_on_disk(server, tmp_path, collection, sig):
    big = random.Random(7).randbytes(6_000_000)
    url = server.add("/reel/big.flac", big)
    small = server.add("/reel/small.wav", wav_bytes(tmp_path, freq_hz=700))
    split = 2_500_000 + 12_345  # not a multiple of any chunk size
    server.faults["/reel/big.flac"] = [f"block:{split}"]
    lst = tmp_path / "urls.txt"
    lst.write_text(f"{url}\tsha256:{hashlib.sha256(big).hexdigest()}\n{small}\n")
    assert at(collection, "add", lst).returncode == 0
    log = open(tmp_path / "fetch.log", "w")
    proc = subprocess.Popen([*AUDIOTROVE, "-C", str(collection), "fetch", "--connections", "2"],
                            env=cli_env({"NETRC": "/nonexistent"}), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=sigint_as_from_a_terminal)
    try:
        assert server.blocked.wait(60), "the server never reached the blocking point"
        cache = collection / ".audiotrove" / "cache"
        deadline = time.monotonic() + 60
        parts: list[Path] = []
        while time.monotonic() < deadline:  # wait for the condition, not for a guessed time
            parts = list(cache.rglob("*.part"))
            if parts and parts[0].stat().st_size == split:
                break
            time.sleep(0.02)
        assert parts and parts[0].stat().st_size == split
        proc.send_signal(sig)
        code = proc.wait(60)
        log.close()
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), (tmp_path / "fetch.log").read_text()
        if sig == signal.SIGINT:
            assert "interrupted" in (tmp_path / "fetch.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    server.release.set()
    assert server.served["/reel/big.flac"] == split
    rows = {r["path"]: r for r in ls_json(collection)}
    assert "fetch" not in rows[url]  # the partial never looks complete
    assert not (cache / f"127.0.0.1_{server.httpd.server_address[1]}" / "reel" / "big.flac").exists()
    out = at(collection, "fetch")
    assert out.returncode == 0, out.stderr
    rec = {r["path"]: r for r in ls_json(collection)}[url]["fetch"]
    assert rec["status"] == "ok" and rec["resumed_from"] == split and rec["bytes"] == len(big)
    assert rec["sha256"] == hashlib.sha256(big).hexdigest()
    assert Path(rec["local_path"]).read_bytes() == big
    assert server.served["/reel/big.flac"] == len(big)  # every byte served exactly once
    ranges = [h.get("Range") for p, h in server.requests if p == "/reel/big.flac"]
    assert ranges == [None, f"bytes={split}-"]
    assert not list(cache.rglob("*.part"))
