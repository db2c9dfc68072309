"""Bench for `audiotrove serve` (issue 19) on a generated catalog of 100 000 files and
1 000 000 units: server time of the files page (< 200 ms), of a unit's audio (< 50 ms), the map's
first draw of 1 000 000 points in chromium (< 3 s), and the server's memory.

    python bench/bench_web.py [--files 100000] [--units-per-file 1000] [--segmented 1000] [--no-browser]
    python bench/bench_web.py --collection /tmp/bench-web-XXXX/coll   # measure again, without building

The catalog: bench_query.make_catalog's 100 000 files with synthetic analyze results (bulk
inserts, no audio decoded); the first 1 000 of them are made real (a link to one 100-s WAV of
noise) and segmented: one unit shard of 1 000 units each (units/store's schema), written with
pyarrow; a stored unit map of their 1 000 000 units (maps/store.save_table, 64 Gaussian blobs).
The server is the real one (`audiotrove serve --port 0`, a separate process); times are its own
(the Server-Timing header every answer carries: from the request to the response's start),
medians of several requests, with the client's wall time beside.

Baselines measured in the same run: a deep page by SQL OFFSET (what keyset paging avoids), and
a unit's stretch found through `list_units` (DuckDB over the shards, what `units` does) instead
of the one-shard lookup.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
CHROMIUM = "/usr/bin/chromium"


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def build(root: Path, n_files: int, segmented: int, per_file: int) -> dict:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    from audiotrove.catalog.index import FieldIndex
    from audiotrove.maps.store import save_table
    from audiotrove.units.schema import N_MFCC, SCHEMA
    from audiotrove.units.store import SEGMENT_STEP, units_dir
    from bench_query import make_catalog

    t = time.perf_counter()
    cat = make_catalog(root, n_files)
    t_files = time.perf_counter() - t
    audio = root / "audio"
    audio.mkdir()
    rng = np.random.default_rng(1)
    sr, seconds = 16000, per_file * 0.1
    sf.write(audio / "noise.wav", (0.1 * rng.standard_normal(int(sr * seconds))).astype(np.float32), sr)
    ids = [r[0] for r in cat.conn.execute(
        "SELECT f.id FROM files f JOIN current_results c ON c.file_id = f.id JOIN results r ON r.id = c.result_id "
        "WHERE r.status = 'ok' ORDER BY f.id LIMIT ?", (segmented,))]
    t = time.perf_counter()
    shards = units_dir(cat)
    shards.mkdir(parents=True, exist_ok=True)
    now = time.time()
    unit = np.arange(per_file, dtype=np.int32)
    map_rows = []
    with cat.transaction() as conn:
        for k, fid in enumerate(ids):
            link = audio / f"tape{fid:06d}.wav"
            os.symlink(audio / "noise.wav", link)
            conn.execute("UPDATE files SET path = ? WHERE id = ?", (str(link), fid))
            content = conn.execute("SELECT content_hash FROM files WHERE id = ?", (fid,)).fetchone()[0]
            name = f"{hashlib.sha1(str(fid).encode()).hexdigest()[:32]}-bench.parquet"
            cols = {"unit": unit, "start": np.round(unit * 0.1, 3), "dur": np.full(per_file, 0.09),
                    "power": rng.normal(-30, 6, per_file).astype(np.float32),
                    "hz": rng.uniform(80, 1000, per_file).astype(np.float32),
                    "note": ["A"] * per_file, "octave": np.full(per_file, 4, np.int32),
                    "clarity": rng.uniform(0, 1, per_file).astype(np.float32),
                    "centroid": rng.uniform(200, 4000, per_file).astype(np.float32),
                    "flatness": rng.uniform(0, 1, per_file).astype(np.float32),
                    "rolloff": rng.uniform(500, 8000, per_file).astype(np.float32),
                    "zcr": rng.uniform(0, 0.5, per_file).astype(np.float32),
                    "mfcc": list(rng.normal(0, 10, (per_file, N_MFCC)).astype(np.float32))}
            table = pa.table({f.name: cols[f.name] for f in SCHEMA}, schema=SCHEMA)
            pq.write_table(table, shards / name)
            data = {"units": {"shard": name, "count": per_file}}
            rid = conn.execute(
                "INSERT INTO results(content_hash, step, step_version, params_hash, params, status, error, data, "
                "elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (content, SEGMENT_STEP, "bench", "p", "{}", "ok", None, json.dumps(data), 0.1, now + k * 1e-6)).lastrowid
            conn.execute("INSERT INTO current_results(file_id, step, result_id) VALUES (?,?,?)", (fid, SEGMENT_STEP, rid))
            map_rows.append((fid, str(link)))
    t_units = time.perf_counter() - t
    n = len(ids) * per_file
    centres = rng.uniform(-60, 60, (64, 2))
    cluster = rng.integers(0, 64, n)
    xy = centres[cluster] + rng.normal(0, 4, (n, 2))
    file_ids = np.repeat([f for f, _ in map_rows], per_file)
    df = pd.DataFrame({
        "path": np.repeat([p for _, p in map_rows], per_file), "file_id": file_ids,
        "unit": np.tile(unit, len(ids)), "start": np.tile(np.round(unit * 0.1, 3), len(ids)),
        "dur": np.full(n, 0.09), "map.x": xy[:, 0], "map.y": xy[:, 1],
        "map.order": np.argsort(np.argsort(xy[:, 0])),
        "grid.col": pd.array([pd.NA] * n, "Int64"), "grid.row": pd.array([pd.NA] * n, "Int64"),
        "map.cluster": cluster})
    save_table(root, "map", "unit", df, {"name": "map", "level": "unit", "model": "yamnet", "method": "tsne",
                                         "dims": 2, "count": n, "grid": None, "clusters": [], "seed": 0})
    t = time.perf_counter()
    FieldIndex.open(cat)
    t_index = time.perf_counter() - t
    cat.close()
    return {"files_s": t_files, "units_s": t_units, "index_s": t_index, "units": n, "segmented": ids}


class Server:
    def __init__(self, root: Path):
        exe = Path(sys.executable).with_name("audiotrove")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "audiotrove.cli"]
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        self.proc = subprocess.Popen([*cmd, "-C", str(root), "serve", "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
        if not m:
            raise SystemExit("the server did not start: " + line + self.proc.stdout.read())
        self.base = m.group(1)

    def get(self, address: str) -> tuple[float, float, bytes, dict]:
        """(server ms, client ms, body, headers)."""
        t = time.perf_counter()
        with urllib.request.urlopen(self.base + address, timeout=600) as r:
            body = r.read()
            headers = dict(r.headers)
        wall = 1000 * (time.perf_counter() - t)
        server = float(re.search(r"dur=([0-9.]+)", headers["server-timing"]).group(1))
        return server, wall, body, headers

    def memory(self) -> dict:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(re.search(rf"{k}:\s+(\d+) kB", status).group(1)) / 1024 for k in ("VmRSS", "VmHWM")}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def timed(server: Server, address: str, repeat: int = 5) -> tuple[float, float, bytes, dict]:
    runs = [server.get(address) for _ in range(repeat)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][2], runs[-1][3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--segmented", type=int, default=1000)
    ap.add_argument("--units-per-file", type=int, default=1000)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--collection", type=Path, help="measure this collection, made by an earlier run (its "
                    "folder is printed), instead of building one")
    args = ap.parse_args()
    if args.collection:
        import sqlite3

        root = args.collection
        conn = sqlite3.connect(root / ".audiotrove" / "catalog.db")
        ids = [r[0] for r in conn.execute("SELECT file_id FROM current_results WHERE step = 'segment' ORDER BY file_id")]
        conn.close()
        built = {"units": len(ids) * args.units_per_file, "segmented": ids}
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-web-")) / "coll"
        built = build(root, args.files, args.segmented, args.units_per_file)
        print(f"catalog {root}: {args.files} files in {built['files_s']:.1f} s, {built['units']} units "
              f"({args.segmented} shards) in {built['units_s']:.1f} s, index {built['index_s']:.1f} s; {load()}", flush=True)
    server = Server(root)
    print(f"server {server.base}; memory after start {server.memory()['VmRSS']:.0f} MB; {load()}", flush=True)
    rows = []

    def row(what, ms, wall, note=""):
        rows.append((what, ms, wall, note))
        print(f"  {what}: server {ms:.1f} ms (client {wall:.1f} ms) {note}", flush=True)

    q = urllib.parse.quote
    # the server reads the default map once at start, in the background (it holds the GIL for
    # seconds at 1 000 000 points): wait for it, so that it does not slow what follows
    t = time.perf_counter()
    server.get("/map.bin")
    row("map.bin at start (waiting for the start-up read of the map)", 1000 * (time.perf_counter() - t),
        1000 * (time.perf_counter() - t))
    query = "lufs < -20 and snr > 15"
    server.get("/files")  # first request: imports, thread-local connection
    for label, address in [
        ("files page, no query", "/files"),
        (f"files page, '{query}' sorted lufs:desc", f"/files?q={q(query)}&sort=lufs:desc"),
        ("files page, path ~ afs04 (substring)", f"/files?q={q('path ~ afs04')}"),
        (f"files.json (ls --format json), '{query}'", f"/files.json?q={q(query)}&sort=lufs:desc"),
    ]:
        ms, wall, body, _ = timed(server, address)
        row(label, ms, wall, f"{len(body) / 1e3:.0f} kB")
    # a deep page: follow the keyset cursor 20 pages in, then time that page
    address = f"/files.json?q={q(query)}&sort=lufs:desc&limit=100"
    for _ in range(20):
        _, _, _, headers = server.get(address)
        link = headers.get("link") or headers.get("Link")
        address = link[1:link.index(">")]
    ms, wall, _, _ = timed(server, address)
    row("files.json page 21 (keyset)", ms, wall)
    ms, wall, _, _ = timed(server, address.replace("/files.json?", "/files?"))  # the HTML page at the same cursor
    row("files page 21 (keyset, HTML)", ms, wall)

    from audiotrove.catalog.db import Catalog
    from audiotrove.catalog.index import FieldIndex

    with Catalog.open(root) as cat:  # baseline: the same page by OFFSET
        idx = FieldIndex.open(cat)
        from audiotrove.catalog.query import parse_sort

        keys = parse_sort("lufs:desc", idx.fields)
        offsets = []
        for _ in range(5):
            t = time.perf_counter()
            sql, params = idx.where(query)
            list(cat.conn.execute(f"SELECT * FROM file_fields WHERE {sql} ORDER BY {idx.order_by(keys)} "
                                  "LIMIT 100 OFFSET 50000", params))
            offsets.append(1000 * (time.perf_counter() - t))
        row("baseline: page at offset 50 000 (SQL OFFSET, in process)", statistics.median(offsets), statistics.median(offsets))

    # units: uncached cuts of random units, then cached
    rng = np.random.default_rng(5)
    picks = [(int(rng.choice(built["segmented"])), int(rng.integers(0, args.units_per_file))) for _ in range(60)]
    cold = [server.get(f"/unit/{f}/{u}.wav") for f, u in picks]
    row("unit audio, not cached (median of 60)", statistics.median(r[0] for r in cold),
        statistics.median(r[1] for r in cold), f"p95 {np.percentile([r[0] for r in cold], 95):.1f} ms")
    warm = [server.get(f"/unit/{f}/{u}.wav") for f, u in picks[:20]]
    row("unit audio, cached", statistics.median(r[0] for r in warm), statistics.median(r[1] for r in warm))
    with Catalog.open(root) as cat:
        from audiotrove.views import list_units

        f, u = picks[0]
        t = time.perf_counter()
        list_units(cat, f"file_id = {f} and unit = {u}")
        base = 1000 * (time.perf_counter() - t)
        row("baseline: the unit found with list_units (DuckDB over every shard, in process)", base, base)
    ms, wall, body, _ = timed(server, "/units?limit=200&sort=power:desc", repeat=2)
    row(f"units page, 200 loudest of {built['units']:,}", ms, wall)
    ms, wall, body, _ = timed(server, "/map.bin", repeat=2)
    row(f"map.bin (what the page reads), {built['units']:,} points, kept", ms, wall, f"{len(body) / 1e6:.1f} MB")
    ms, wall, body, _ = timed(server, "/map.bin?limit=999999", repeat=1)
    row("map.bin, 999 999 points (not kept: read and encoded)", ms, wall, f"{len(body) / 1e6:.1f} MB")
    for color in ("power", "lufs"):  # another colour field: a unit field (the shards), a file field
        ms, wall, body, _ = timed(server, f"/map.bin?color={color}", repeat=1)
        row(f"map.bin, color={color} (not kept: read and encoded)", ms, wall, f"{len(body) / 1e6:.1f} MB")
    ms, wall, body, _ = timed(server, "/map.json", repeat=1)
    row(f"map.json (the JSON twin), {built['units']:,} points, read and encoded", ms, wall, f"{len(body) / 1e6:.1f} MB")
    first_draw = None
    if not args.no_browser and os.path.exists(CHROMIUM):
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.base + "/map", timeout=600_000)
            page.wait_for_function("() => window.audiotroveMapDrawnMs !== undefined", timeout=600_000)
            first_draw = page.evaluate("window.audiotroveMapDrawnMs")
            drawn = page.evaluate("window.audiotroveMap.map.drawn")
            browser.close()
        row("map page: first draw of the points in chromium (from navigation)", first_draw, first_draw,
            f"{drawn} points drawn; errors {errors or 'none'}")
    mem = server.memory()
    print(f"server memory: {mem['VmRSS']:.0f} MB now, {mem['VmHWM']:.0f} MB peak; {load()}")
    server.stop()
    print("\n| what | server ms | client ms | note |\n|---|---|---|---|")
    for what, ms, wall, note in rows:
        print(f"| {what} | {ms:.1f} | {wall:.1f} | {note} |")
    print(f"| server memory (RSS now / peak) | {mem['VmRSS']:.0f} MB / {mem['VmHWM']:.0f} MB | | |")


if __name__ == "__main__":
    main()
