"""views.map_points at scale: what a map view other than the default one costs (the web
explorer's /map.bin and /map.json, `map --html`), and whether its bytes stay the same.

    python bench/bench_map_points.py build DIR [--files 100000] [--segmented 1000] [--units-per-file 1000] [--variety]
    python bench/bench_map_points.py hash DIR [--view NAME ...] > hashes.json   # sha256 of each view's bytes
    python bench/bench_map_points.py time DIR [--view NAME ...]  # seconds and peak memory per view

build: bench_web.build's collection (bench_query's files, `segmented` of them cut into units,
a stored unit map of every unit); --variety makes it a harder test of identity: unit fields with
missing values (hz, note, octave, clarity), 30 notes (more than the 20
colours a category gets: an "other"), a unit map with a grid (a few cells missing) and a few
points without x/y, a second unit map "plain" (bench_web's: no grid) and a file map.

hash: for each view (VIEWS), the sha256 of /map.json and /map.bin (the real app, in process,
through FastAPI's TestClient) and of the page `map --html` writes (the CLI, in process). Run it
with the tree before a change on PYTHONPATH and after, on the same collection: the lines must be
equal.

time: each view in a fresh process (so its peak memory is its own): map_points, then the
/map.bin bytes and the /map.json bytes from them, as the server makes them (web/mappage.py), and
the process's peak RSS (ru_maxrss) beside its RSS before the view. The same script measures a
tree from before this change (map_points gives lists there; binary and json.dumps encode them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# name -> (map name, level, color, limit); None: the default
VIEWS = {
    "default": (None, None, None, None),
    "sample": (None, None, None, 999_999),
    "sample 7000": (None, None, None, 7000),
    "note, sample 7000": (None, None, "note", 7000),
    "power": (None, None, "power", None),
    "note": (None, None, "note", None),
    "hz": (None, None, "hz", None),
    "octave": (None, None, "octave", None),
    "mfcc_2": (None, None, "mfcc_2", None),
    "map.x": (None, None, "map.x", None),
    "lufs": (None, None, "lufs", None),
    "path, file_id": (None, None, "path,file_id,unit", 15000),
    "codec": (None, None, "media_info.audio.codec", None),
    "several, sampled": (None, None, "power,note,lufs,media_info.has_video", 5000),
    "plain map": ("plain", "unit", "clarity", None),
    "file map": (None, "file", "path,lufs,media_info.audio.sample_rate,audio.noise.hum.frequency,"
                 "media_info.has_video,audio.noise.dc_offset", None),
}
TIMED = ("sample", "power", "note", "lufs")


def build(root: Path, args) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    import bench_web
    from audiotrove.catalog.db import Catalog
    from audiotrove.maps.store import load_table, save_table
    from audiotrove.units.schema import SCHEMA
    from audiotrove.units.store import units_dir

    t = time.perf_counter()
    built = bench_web.build(root, args.files, args.segmented, args.units_per_file)
    print(f"built {root}: {built['units']} units in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if not args.variety:
        return
    rng = np.random.default_rng(7)
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"] + [f"X{k}" for k in range(18)]
    with Catalog.open(root) as cat:
        for shard in sorted(units_dir(cat).glob("*.parquet")):
            table = pq.read_table(shard)
            n = table.num_rows
            unpitched = rng.random(n) < 0.3
            cols = {f.name: table[f.name] for f in SCHEMA}
            cols["hz"] = pa.array(np.where(unpitched, np.nan, cols["hz"].to_numpy()), pa.float32(), mask=unpitched)
            picks = rng.integers(0, 30, n)
            cols["note"] = pa.array([None if u else names[k] for u, k in zip(unpitched, picks)], pa.string())
            cols["octave"] = pa.array(rng.integers(1, 8, n), pa.int16(), mask=unpitched)
            cols["clarity"] = pa.array(cols["clarity"].to_numpy(), pa.float32(), mask=rng.random(n) < 0.05)
            pq.write_table(pa.table(cols, schema=SCHEMA), shard)
        files = cat.conn.execute("SELECT id, path FROM files ORDER BY id LIMIT 3000").fetchall()
    df, info = load_table(root, "map", "unit")
    save_table(root, "plain", "unit", df, {**info, "name": "plain", "seed": 0})
    n = len(df)
    side = int(np.ceil(np.sqrt(n)))
    cells = rng.permutation(side * side)[:n]
    col = pd.array(cells % side, "Int64")
    row = pd.array(cells // side, "Int64")
    holes = rng.random(n) < 0.01
    col[holes] = pd.NA
    row[holes] = pd.NA
    df["grid.col"], df["grid.row"] = col, row
    lost = rng.random(n) < 0.005
    df.loc[lost, ["map.x", "map.y"]] = np.nan
    save_table(root, "map", "unit", df, {**info, "grid": [side, side], "seed": 0})
    m = len(files)
    xy = rng.normal(0, 20, (m, 2))
    fdf = pd.DataFrame({"path": [p for _, p in files], "file_id": [i for i, _ in files], "unit": 0,
                        "start": 0.0, "dur": np.round(rng.uniform(10, 4000, m), 3), "map.x": xy[:, 0],
                        "map.y": xy[:, 1], "map.order": np.argsort(np.argsort(xy[:, 0])),
                        "grid.col": pd.array([pd.NA] * m, "Int64"), "grid.row": pd.array([pd.NA] * m, "Int64"),
                        "map.cluster": rng.integers(0, 8, m)})
    save_table(root, "map", "file", fdf, {"name": "map", "level": "file", "model": "yamnet", "method": "tsne",
                                          "dims": 2, "count": m, "grid": None, "clusters": [], "seed": 0})
    # the unit map newest again: the default level of "map"
    os.utime(root / ".audiotrove" / "maps" / "map-unit.json")


def query(view: tuple) -> str:
    import urllib.parse

    name, level, color, limit = view
    params = {k: v for k, v in (("name", name), ("level", level), ("color", color), ("limit", limit)) if v is not None}
    return urllib.parse.urlencode(params)


def hashes(root: Path, views) -> None:
    import tempfile

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from audiotrove.cli import app as cli
    from audiotrove.web.app import create_app

    client = TestClient(create_app(root), base_url="http://127.0.0.1:8000")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in views:
            view, row = VIEWS[label], {}
            for fmt in ("json", "bin"):
                r = client.get(f"/map.{fmt}?{query(view)}")
                assert r.status_code == 200, (label, r.text[:300])
                row[fmt] = hashlib.sha256(r.content).hexdigest()[:16]
                row[f"{fmt} bytes"] = len(r.content)
            name, level, color, limit = view
            html = Path(tmp) / f"{len(out)}.html"
            args = ["-C", str(root), "map", "--redraw", "--html", str(html), "--name", name or "map",
                    "--color", color or "cluster", "--html-points", str(limit or 200_000)]
            args += ["--units", "all"] if (level or "unit") == "unit" else ["--files"]
            res = CliRunner().invoke(cli, args)
            assert res.exit_code == 0, (label, res.output)
            row["html"] = hashlib.sha256(html.read_bytes()).hexdigest()[:16]
            out[label] = row
            print(f"{label}: {row}", file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def time_one(root: Path, label: str) -> None:
    """One view, in this process: prints one JSON line."""
    from audiotrove.catalog.db import Catalog
    from audiotrove.views import maps
    from audiotrove.web.app import _default
    from audiotrove.web.mappage import binary

    name, level, color, limit = VIEWS[label]
    new = hasattr(maps, "plain")  # this change's tree: arrays, then lists for the JSON only
    with Catalog.open(root) as cat:
        maps.list_maps(cat)
        before = rss_mb()
        t0 = time.perf_counter()
        kw = {"arrays": True} if new else {}
        points = maps.map_points(cat, name=name, level=level, color=color, limit=limit or 1_000_000, **kw)
        t1 = time.perf_counter()
        body = binary(points)
        t2 = time.perf_counter()
        peak_bin = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if new:  # as the server writes /map.json
            from audiotrove.io.jsonarrays import dumps

            text = dumps(points, default=_default).encode()
        else:
            text = json.dumps(points, default=_default).encode()
        t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"view": label, "points": points["shown"], "map_points_s": t1 - t0, "bin_s": t2 - t1,
                      "json_s": t3 - t2, "bin_mb": len(body) / 1e6, "json_mb": len(text) / 1e6,
                      "rss_before_mb": before, "peak_bin_mb": peak_bin, "peak_mb": peak}))


def timing(root: Path, views) -> None:
    print("| view | points | map_points s | + map.bin s | (map.json s) | RSS MB: before, peak to map.bin, "
          "peak to map.json |\n|---|---|---|---|---|---|")
    for label in views:
        r = subprocess.run([sys.executable, __file__, "one", str(root), label], capture_output=True, text=True,
                           env=os.environ)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"| {label} | {d['points']:,} | {d['map_points_s']:.2f} | {d['map_points_s'] + d['bin_s']:.2f} | "
              f"{d['json_s']:.2f} | {d['rss_before_mb']:.0f}, {d['peak_bin_mb']:.0f}, {d['peak_mb']:.0f} |", flush=True)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("build", "hash", "time", "one"))
    ap.add_argument("root", type=Path)
    ap.add_argument("label", nargs="?")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--segmented", type=int, default=1000)
    ap.add_argument("--units-per-file", type=int, default=1000)
    ap.add_argument("--variety", action="store_true")
    ap.add_argument("--view", action="append", choices=list(VIEWS))
    args = ap.parse_args()
    sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or str(HERE.parent / "src"))
    if args.what == "build":
        build(args.root, args)
    elif args.what == "hash":
        hashes(args.root, args.view or list(VIEWS))
    elif args.what == "time":
        timing(args.root, args.view or TIMED)
    else:
        time_one(args.root, args.label)


if __name__ == "__main__":
    main()
