"""`audiotrove serve` (web/): every JSON twin equals the CLI's `--format json`, the security rules
(read-only, local host only, files by id, no traversal, size limits, CSP), HTTP Range, unit cuts.

The collection: four generated files (tone, speech-like bursts, a clipped tone, noise), analyzed,
segmented and embedded (descriptors, file level); one transcript stored through the catalog API
(the transcription model is not needed to test the page that shows it).
"""
from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from audiotrove.cli import app as cli_app  # noqa: E402
from conftest import noise, speech_like, tone, tree_state  # noqa: E402

SR = 16000
WORDS = [[0.2, 0.5, "Radio", 0.9], [0.5, 0.9, "stations", 0.9], [0.9, 1.3, "played", 0.9],
         [1.3, 1.8, "music", 0.9], [1.9, 2.3, "until", 0.9], [2.3, 2.9, "midnight.", 0.9]]


def invoke(root, *args) -> str:
    r = CliRunner().invoke(cli_app, ["-C", str(root), *map(str, args)])
    assert r.exit_code in (0, 1), r.output
    return r.stdout


def build_collection(root: Path, *, embed: bool = True) -> Path:
    """The test collection (see the module docstring); returns its folder."""
    from audiotrove.catalog.db import Catalog
    from conftest import run_step_quiet

    audio = root / "audio"
    audio.mkdir(parents=True)
    sf.write(audio / "tone.wav", tone(freq_hz=440, seconds=3.0, sample_rate=SR, amplitude=0.3), SR)
    sf.write(audio / "speech.wav", speech_like(seconds=4.0, sample_rate=SR, seed=1), SR)
    clipped = np.clip(tone(freq_hz=220, seconds=2.0, sample_rate=SR, amplitude=1.5), -1, 1)
    sf.write(audio / "clipped.flac", clipped, SR)
    sf.write(audio / "noise.ogg", noise(seconds=2.0, sample_rate=SR, rms_dbfs=-30, seed=3), SR)
    coll = root / "coll"
    with Catalog.create(coll) as cat:
        cat.add_files([(str(p), "file", "") for p in sorted(audio.iterdir())])
        run_step_quiet(cat, "analyze", workers=1)
        run_step_quiet(cat, "segment", workers=1)
        fid, content = cat.conn.execute("SELECT id, content_hash FROM files WHERE path LIKE '%speech.wav'").fetchone()
        transcript = {"text": " ".join(w[2] for w in WORDS), "language": "en", "words": WORDS,
                      "segments": [[0.2, 2.9, " ".join(w[2] for w in WORDS)]], "word_count": len(WORDS)}
        cat.record(fid, size_bytes=(audio / "speech.wav").stat().st_size, mtime_ns=None, content_hash=content,
                   step="transcribe", step_version="test", params_hash="test", params={}, status="ok",
                   error=None, data={"transcript": transcript}, elapsed_s=0.1)
        # an enhanced version of tone.wav, as `enhance` records it (the output beside the original)
        out = root / "enhanced" / "tone.enhanced.wav"
        out.parent.mkdir()
        sf.write(out, 0.5 * tone(freq_hz=440, seconds=3.0, sample_rate=SR, amplitude=0.3), SR)
        fid, content = cat.conn.execute("SELECT id, content_hash FROM files WHERE path LIKE '%tone.wav'").fetchone()
        cat.record(fid, size_bytes=(audio / "tone.wav").stat().st_size, mtime_ns=None, content_hash=content,
                   step="enhance", step_version="test", params_hash="test", params={}, status="ok", error=None,
                   data={"enhance": {"output": str(out), "preset": "archival"}}, elapsed_s=0.1)
    if embed:
        invoke(coll, "embed", "--model", "descriptors", "--files", "-j", "1")
    invoke(coll, "ls", "--limit", "1")  # the index brought up to date, as `serve` does first
    return coll


_SHARED: dict[str, Path] = {}


def shared_collection(tmp_path_factory) -> Path:
    """The test collection with a stored map of its files, built once per test session (the
    browser tests use it too)."""
    if "coll" not in _SHARED:
        coll = build_collection(tmp_path_factory.mktemp("web"))
        invoke(coll, "map", "--model", "descriptors")
        _SHARED["coll"] = coll
    return _SHARED["coll"]


@pytest.fixture(scope="module")
def coll(tmp_path_factory) -> Path:
    return shared_collection(tmp_path_factory)


@pytest.fixture(scope="module")
def client(coll):
    from audiotrove.web.app import create_app

    return TestClient(create_app(coll), base_url="http://127.0.0.1:8000")


def file_id(coll: Path, name: str) -> int:
    conn = sqlite3.connect(coll / ".audiotrove" / "catalog.db")
    try:
        return conn.execute("SELECT id FROM files WHERE path LIKE ?", (f"%/{name}",)).fetchone()[0]
    finally:
        conn.close()


def get_json(client, address: str):
    r = client.get(address)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


# --------------------------------------------------------------------------------- JSON twins

@pytest.mark.parametrize("params, args", [
    ({}, ["--limit", "100"]),
    ({"q": "duration > 2.5", "sort": "lufs:desc"}, ["duration > 2.5", "--sort", "lufs:desc", "--limit", "100"]),
    ({"q": "status = ok", "fields": "path,snr,lufs,clipped", "sort": "snr", "limit": 3},
     ["status = ok", "--fields", "path,snr,lufs,clipped", "--sort", "snr", "--limit", "3"]),
])
def test_files_twin_equals_ls(client, coll, params, args):
    twin = get_json(client, "/files.json?" + "&".join(f"{k}={quote(str(v))}" for k, v in params.items()))
    cli = json.loads(invoke(coll, "ls", *args, "--format", "json"))
    assert twin == cli
    assert len(twin) >= 1


def test_keyset_pages_cover_the_listing_once_in_order(client, coll):
    whole = [r["path"] for r in get_json(client, "/files.json?sort=snr:desc&fields=path,snr")]
    assert len(whole) == 4
    seen, address = [], "/files.json?sort=snr:desc&fields=path,snr&limit=1"
    while address:
        r = client.get(address)
        assert r.status_code == 200
        seen += [row["path"] for row in r.json()]
        link = r.headers.get("link")
        address = link[1:link.index(">")] if link else None
    assert seen == whole  # snr is missing for some files: they come last, once
    html = client.get("/files?sort=snr:desc&limit=2").text
    assert 'rel=next' in html and "after=" in html


def test_overview_stats_units_search_status_fields_twins(client, coll):
    assert get_json(client, "/overview.json") == json.loads(invoke(coll, "report", "--format", "json"))
    assert get_json(client, "/status.json") == json.loads(invoke(coll, "status", "--format", "json"))
    assert get_json(client, "/fields.json") == json.loads(invoke(coll, "fields", "--format", "json"))
    twin = get_json(client, "/units.json?q=power+%3E+-40&sort=power:desc&limit=7")
    assert twin == json.loads(invoke(coll, "units", "power > -40", "--sort", "power:desc", "--limit", "7",
                                     "--format", "json"))
    assert len(twin) == 7
    hits = get_json(client, "/search.json?phrase=played+music")
    cli = [json.loads(line) for line in invoke(coll, "search", "played music", "--format", "jsonl").splitlines()]
    assert hits == cli and hits[0]["start"] == pytest.approx(0.9) and "[played music]" in hits[0]["context"]


def test_file_and_similar_twins(client, coll):
    fid = file_id(coll, "speech.wav")
    record = get_json(client, f"/file/{fid}.json")
    listed = json.loads(invoke(coll, "ls", "--format", "json"))
    assert record == next(r for r in listed if r["path"] == record["path"])
    twin = get_json(client, f"/similar.json?target={fid}&level=file&model=descriptors&k=3")
    assert twin == json.loads(invoke(coll, "similar", str(fid), "--level", "file", "--model", "descriptors",
                                     "-k", "3", "--format", "json"))
    assert len(twin) == 3 and all(r["path"] != record["path"] for r in twin)


def test_pages_show_the_data(client, coll):
    fid = file_id(coll, "speech.wav")
    page = client.get(f"/file/{fid}").text
    assert 'id=player' in page and f'src="/file/{fid}/audio"' in page
    assert page.count('class=w data-seek=') == len(WORDS) and 'data-seek="0.900"' in page
    assert 'class="sec other" data-start="0.000" data-end="4.000" data-total="4.000" data-seek="0.000"' in page
    assert "Most similar files" in page and page.count('<button class=play data-src="/file/') >= 3
    clipped = client.get(f"/file/{file_id(coll, 'clipped.flac')}").text
    assert 'class="sec clipping"' in clipped
    assert client.get("/units?limit=5").text.count("button class=play data-src=\"/unit/") == 5
    overview = client.get("/overview").text
    assert "4</b> files" in overview and "Uniformity" in overview
    picture = client.get(f"/file/{fid}/picture.webp")
    assert picture.status_code == 200 and picture.content[:4] == b"RIFF" and picture.content[8:12] == b"WEBP"


def test_query_errors_show_the_caret_and_suggestions(client):
    r = client.get("/files?q=snrr+%3C+20")
    assert "<pre class=caret>snrr &lt; 20\n^^^^</pre>" in r.text
    assert "audio.noise.snr_average" in r.text and "did you mean" in r.text
    r = client.get("/files.json?q=snrr+%3C+20")
    assert r.status_code == 400 and r.json()["position"] == 0 and r.json()["suggestions"]
    r = client.get("/files.json?q=duration+%3E")
    assert r.status_code == 400 and "error" in r.json()


def test_export_of_the_current_query(client, coll, tmp_path):
    r = client.get("/export.csv?q=duration+%3E+2.5&fields=path,duration")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0] == "path,media_info.container.duration" and len(lines) == 3
    r = client.get("/export.parquet?q=status+%3D+ok")
    import pandas as pd

    df = pd.read_parquet(io.BytesIO(r.content))
    assert len(df) == 4 and "audio.loudness.measured" in df.columns
    r = client.get("/export.json?fields=path,snr")
    assert [row["path"] for row in r.json()] == [row["path"] for row in get_json(client, "/files.json")]
    assert client.get("/export.exe").status_code == 404


# ------------------------------------------------------------------------------------- audio

def test_range_requests_serve_the_original_bytes(client, coll):
    fid = file_id(coll, "tone.wav")
    original = Path(json.loads(client.get(f"/file/{fid}.json").text)["path"]).read_bytes()
    r = client.get(f"/file/{fid}/audio", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == original[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(original)}"
    r = client.get(f"/file/{fid}/audio")
    assert r.status_code == 200 and r.content == original and r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == "audio/wav"
    assert client.get(f"/file/{fid}/audio", headers={"Range": f"bytes={len(original) + 10}-"}).status_code == 416


def test_a_unit_is_a_short_wav_of_its_stretch(client, coll):
    units = get_json(client, "/units.json?where=path+~+speech.wav&limit=3")
    u = units[1]
    r = client.get(f"/unit/{u['file_id']}/{u['unit']}.wav")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    cut, rate = sf.read(io.BytesIO(r.content), always_2d=True)
    assert rate == SR and len(cut) == round(u["dur"] * SR)
    source, _ = sf.read(u["path"], always_2d=True)
    first = round(u["start"] * SR)
    mid = slice(len(cut) // 4, 3 * len(cut) // 4)  # away from the 5 ms fades
    assert np.allclose(cut[mid], source[first:first + len(cut)][mid], atol=1e-4)
    again = client.get(f"/unit/{u['file_id']}/{u['unit']}.wav")
    assert again.content == r.content  # the cache gives the same bytes
    assert client.get(f"/unit/{u['file_id']}/99999.wav").status_code == 404
    render = client.get("/units/render.wav?where=path+~+speech.wav&limit=3")
    whole, _ = sf.read(io.BytesIO(render.content))
    assert render.status_code == 200 and len(whole) >= sum(round(x["dur"] * SR) for x in units)


def test_the_enhanced_version_plays_beside_the_original(client, coll):
    fid = file_id(coll, "tone.wav")
    page = client.get(f"/file/{fid}").text
    assert f'id=enhanced controls preload=none src="/file/{fid}/enhanced"' in page and "id=player" in page
    output = Path(client.get(f"/file/{fid}.json").json()["enhance"]["output"])
    r = client.get(f"/file/{fid}/enhanced", headers={"Range": "bytes=44-143"})
    assert r.status_code == 206 and r.content == output.read_bytes()[44:144]
    other = file_id(coll, "noise.ogg")
    assert "id=enhanced" not in client.get(f"/file/{other}").text
    assert client.get(f"/file/{other}/enhanced").status_code == 404


# ---------------------------------------------------------------------------------- security

def test_only_get_and_head(client):
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = client.request(method, "/files")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.head("/files").status_code == 200


def test_a_foreign_host_header_is_refused(client, coll):
    for host in ("evil.example", "attacker.test:8000", "192.168.1.10", "127.0.0.1.evil.example"):
        r = client.get("/files.json", headers={"host": host})
        assert r.status_code == 421, host
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
        assert client.get("/files.json", headers={"host": host}).status_code == 200, host
    from audiotrove.web.app import create_app

    anywhere = TestClient(create_app(coll, any_host=True), base_url="http://example.org")
    assert anywhere.get("/files.json").status_code == 200


def test_files_by_id_only_traversal_is_impossible(client, coll):
    secret = coll / "secret.txt"
    secret.write_text("not to be served")
    for address in ("/file/..%2F..%2Fsecret.txt", "/file/%2e%2e%2fsecret.txt/audio", "/file/1%2F..%2F2/audio",
                    "/static/..%2F..%2Fsecret.txt", "/static/%2e%2e/%2e%2e/web/app.py", "/file/-1/audio",
                    "/file/99999/audio", "/unit/1/..%2F1.wav", "/file/1/../../secret.txt",
                    "/static/../../../../etc/passwd", "/export.csv/../../secret.txt"):
        r = client.get(address)
        assert r.status_code in (404, 422, 400), address
        assert b"not to be served" not in r.content and b"root:" not in r.content, address


def test_oversized_queries_are_refused_clearly(client):
    r = client.get("/files.json?q=" + quote("duration > 1 and " * 400 + "duration > 1"))
    assert r.status_code == 413 and "too long" in r.json()["error"]
    r = client.get("/files.json?q=" + "x" * 20000)
    assert r.status_code == 414 and "too long" in r.json()["error"]
    many = " or ".join("lufs>1" for _ in range(300))
    r = client.get("/files.json?q=" + quote(many))
    assert r.status_code == 400 and "conditions" in r.json()["error"]


def test_every_answer_has_the_self_only_csp(client):
    for address in ("/overview", "/files", "/files.json", "/static/app.js", "/nothing-here"):
        csp = client.get(address).headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    page = client.get("/files").text
    assert "<script>" not in page and " style=" not in page and "http://" not in page.replace(
        'href="http', "")  # no inline script or style, nothing from elsewhere


def test_requests_change_nothing(client, coll):
    def state():
        return {k: v for k, v in tree_state(coll.parent).items() if not k.endswith(("-shm", "-wal"))}

    before = state()
    fid = file_id(coll, "speech.wav")
    for address in ("/overview", "/files?q=snr+%3C+30", "/files.json", f"/file/{fid}", f"/file/{fid}/picture.webp",
                    "/units", "/units/render.wav?limit=2", "/search?phrase=music", "/export.parquet",
                    f"/similar?target={fid}&level=file&model=descriptors", f"/file/{fid}/cut.wav?start=0.5&dur=1"):
        assert client.get(address).status_code == 200, address
    assert state() == before


def test_serve_binds_the_loopback_by_default():
    from audiotrove.commands.serve import serve_cmd
    import inspect

    assert inspect.signature(serve_cmd).parameters["host"].default.default == "127.0.0.1"


def test_the_map_twin_and_its_binary_form(client, coll):
    from audiotrove.catalog.db import Catalog
    from audiotrove.views.maps import map_points

    twin = get_json(client, "/map.json")
    with Catalog.open(coll) as cat:
        assert twin == json.loads(json.dumps(map_points(cat, limit=1_000_000)))
    assert twin["shown"] == 4 and twin["level"] == "file"
    raw = client.get("/map.bin").content  # what the page reads: the same points as typed arrays
    size = int.from_bytes(raw[:4], "little")
    head = json.loads(raw[4:4 + size])
    base = 4 + size
    assert base % 4 == 0
    for b in head["binary"]:
        dtype = "<i4" if b["type"] == "int32" else "<f4"
        values = np.frombuffer(raw, dtype, b["length"], base + b["offset"])
        group, name = b["name"].split(".", 1)
        expected = twin["columns"][name] if group == "columns" else twin["colors"][name]["values"]
        expected = np.array([np.nan if v is None else v for v in expected], dtype=float)
        assert np.allclose(values, expected, rtol=1e-6, atol=1e-4, equal_nan=True), b["name"]
    assert {b["name"] for b in head["binary"]} >= {"columns.x", "columns.y", "columns.file_id", "colors.cluster"}
    assert head["files"] == twin["files"] and head["count"] == twin["count"]


def test_the_binary_map_of_a_map_without_a_grid():
    """col and row are None as a whole without a grid: they stay None in the header (the
    /map.bin of such a map was an error 500)."""
    from audiotrove.web.mappage import binary

    points = {"count": 2, "grid": None, "colors": {},
              "columns": {"x": [0.5, 1.0], "y": [1.0, None], "order": [1, 0], "col": None, "row": None}}
    raw = binary(points)
    size = int.from_bytes(raw[:4], "little")
    head = json.loads(raw[4:4 + size])
    assert head["columns"] == {"col": None, "row": None} and head["grid"] is None
    assert [b["name"] for b in head["binary"]] == ["columns.x", "columns.y", "columns.order"]
    y = head["binary"][1]
    assert np.isnan(np.frombuffer(raw, "<f4", y["length"], 4 + size + y["offset"])[1])
