"""Bench for `map --html` (issue 13): file size and first draw of the interactive map in
Debian's chromium (headless, Playwright), at 100 000 points (and 1 000 000 with --million).

    python bench/bench_map_html.py [--million]

A unit map of N points is stored in a fresh collection (maps/store.save_table: 64 clusters of
2-D Gaussian blobs, as a t-SNE map looks; the layout itself is bench_map_scale.py's business),
then views.map_points + maps/html.write_html write the page, as `map --html` does. Measured:
the time to write it, its size, and in chromium: first draw (performance.now() when the first
frame is on the canvas: HTML parse, JSON.parse, colours, hover index and drawing, from the
navigation's start), a redraw (pan/zoom frame), 1 000 hover look-ups and a box selection of
about half the points. The load average of the (shared) machine is printed with them.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
CHROMIUM = "/usr/bin/chromium"


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def synthetic_map(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-60, 60, (64, 2))
    cluster = rng.integers(0, 64, n)
    xy = centres[cluster] + rng.normal(0, 4, (n, 2))
    files = 2000
    return pd.DataFrame({
        "path": [f"/archive/tapes/tape{k % files:05d}.flac" for k in range(n)],
        "file_id": np.arange(n) % files + 1, "unit": np.arange(n) // files,
        "start": np.round((np.arange(n) // files) * 0.5, 3), "dur": np.full(n, 0.45),
        "map.x": xy[:, 0], "map.y": xy[:, 1], "map.order": np.argsort(np.argsort(xy[:, 0])),
        "grid.col": pd.array([pd.NA] * n, "Int64"), "grid.row": pd.array([pd.NA] * n, "Int64"),
        "map.cluster": cluster})


def run(n: int, folder: Path, browser) -> None:
    from typer.testing import CliRunner

    from audiotrove.catalog.db import Catalog
    from audiotrove.cli import app
    from audiotrove.maps.html import write_html
    from audiotrove.maps.store import save_table
    from audiotrove.views import map_points

    root = folder / f"coll{n}"
    root.mkdir()
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    info = {"name": "map", "level": "unit", "model": "yamnet", "method": "tsne", "dims": 2, "count": n,
            "grid": None, "clusters": []}
    save_table(root, "map", "unit", synthetic_map(n), info)
    out = folder / f"map{n}.html"
    t = time.perf_counter()
    with Catalog.open(root) as cat:
        data = map_points(cat)
        t_points = time.perf_counter() - t
        write_html(data, out)
    t_write = time.perf_counter() - t
    size = out.stat().st_size
    print(f"{n} points: map_points {t_points:.1f} s, map_points + write_html {t_write:.1f} s, "
          f"{size / 1e6:.1f} MB ({size / n:.0f} bytes a point); {load()}", flush=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    t = time.perf_counter()
    page.goto(out.as_uri(), timeout=300_000)
    page.wait_for_function("window.audiotroveMapReadyMs !== undefined", timeout=300_000)
    wall = time.perf_counter() - t
    first = page.evaluate("window.audiotroveMapReadyMs")
    drawn = int(page.get_attribute("#map-canvas", "data-drawn"))
    timing = page.evaluate("""(() => { const m = window.audiotroveMap.map; const c = document.getElementById('map-canvas');
        let t = performance.now(); for (let k = 0; k < 5; k++) m.draw(); const draw = (performance.now() - t) / 5;
        t = performance.now(); let hits = 0;
        for (let k = 0; k < 1000; k++) if (m.nearest((k * 7919) % c.width, (k * 104729) % c.height) >= 0) hits++;
        const hover = (performance.now() - t) / 1000;
        t = performance.now(); const sel = m.inBox(0, 0, c.width / 2, c.height); const box = performance.now() - t;
        return {draw, hover, hits, box, selected: sel.length, w: c.width, h: c.height}; })()""")
    print(f"  chromium: first draw {first / 1000:.2f} s after navigation start (goto to drawn {wall:.2f} s wall), "
          f"{drawn} points drawn of {n}; redraw {timing['draw']:.0f} ms; hover look-up "
          f"{timing['hover'] * 1000:.0f} us ({timing['hits']} of 1000 near a point); box select of "
          f"{timing['selected']} points {timing['box']:.0f} ms; canvas {timing['w']}x{timing['h']}; "
          f"errors: {errors or 'none'}; {load()}", flush=True)
    page.close()
    assert drawn == n and not errors


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--million", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        for n in (100_000,) + ((1_000_000,) if args.million else ()):
            run(n, Path(tmp), browser)
        browser.close()


if __name__ == "__main__":
    main()
