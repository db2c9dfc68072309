"""The map in the browser: views.map_points (the data) and `map --html` (a self-contained page
with maps/static/mapview.js), the page driven in Debian's chromium through Playwright."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiotrove.cli import app
from audiotrove.errors import UsageError

SR = 16000


def invoke(root, *args, code=0):
    r = CliRunner().invoke(app, ["-C", str(root), *map(str, args)])
    assert r.exit_code == code, r.output
    return r


def tones(f_hz: float, amp: float = 0.3) -> np.ndarray:
    """Four 0.4 s notes of f_hz separated by silence (four units), each 1.5 dB softer than
    the one before (so every unit has its own power)."""
    t = np.arange(int(0.4 * SR)) / SR
    note = amp * np.sin(2 * np.pi * f_hz * t) * np.minimum(1, t * 100) * np.exp(-t * 3)
    gap = np.zeros(int(0.3 * SR))
    return np.concatenate([np.concatenate([note * 10 ** (-1.5 * i / 20), gap]) for i in range(4)]).astype(np.float32)


def noises(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    burst = [0.3 * rng.standard_normal(int(0.4 * SR)) for _ in range(4)]
    gap = np.zeros(int(0.3 * SR))
    return np.concatenate([np.concatenate([b, gap]) for b in burst]).astype(np.float32)


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("maphtml")
    folder = root / "audio"
    folder.mkdir()
    for k, f in enumerate((220.0, 330.0, 440.0)):
        sf.write(folder / f"tone{k}.wav", tones(f, amp=0.3 - 0.05 * k), SR)
    for k in range(3):
        sf.write(folder / f"noise{k}.wav", noises(k), SR)
    invoke(root, "init", root)
    invoke(root, "add", folder)
    invoke(root, "segment", "-j", "1")
    invoke(root, "embed", "--model", "descriptors", "--units", "-j", "1")
    invoke(root, "map", "--units", "all", "--model", "descriptors", "--method", "pca", "--clusters", "2")
    return root


def test_map_points_columns_match_the_stored_map(coll):
    import audiotrove
    from audiotrove.views import map_points

    with audiotrove.open(coll) as c:
        data = map_points(c, color="power")
        df, info = c.map(level="unit")
    json.dumps(data)  # JSON-ready
    n = len(df)
    assert n >= 20 and data["count"] == data["shown"] == n and data["level"] == "unit"
    cols = data["columns"]
    assert all(len(v) == n for v in cols.values() if v is not None)
    assert cols["x"] == pytest.approx(df["map.x"].tolist(), abs=1e-3)
    assert cols["cluster"] == df["map.cluster"].tolist()
    assert cols["col"] == df["grid.col"].tolist() and data["grid"] == info["grid"]
    # what a player needs: the file, where the unit starts and how long it lasts
    paths = dict(zip(data["files"]["file_id"], data["files"]["path"]))
    for i in range(n):
        assert paths[cols["file_id"][i]] == df["path"][i]
        assert cols["start"][i] == pytest.approx(df["start"][i], abs=1e-3)
        assert cols["dur"][i] == pytest.approx(df["dur"][i], abs=1e-3)
    # clusters: tones and noise apart, with a legend counting them
    kinds = {fid: ("tone" in p) for fid, p in paths.items()}
    by_cluster = {}
    for fid, k in zip(cols["file_id"], cols["cluster"]):
        by_cluster.setdefault(k, set()).add(kinds[fid])
    assert sorted(len(s) for s in by_cluster.values()) == [1, 1]
    legend = data["colors"]["cluster"]["legend"]
    assert [e["count"] for e in legend] == [int((df["map.cluster"] == e["value"]).sum()) for e in legend]
    # power: a unit field, a numeric range (the noise bursts louder than the decaying tones)
    power = data["colors"]["power"]
    assert power["kind"] == "range" and power["unit"] == "dB"
    assert power["low"] <= power["high"] and len(power["values"]) == n
    loud = np.mean([v for v, f in zip(power["values"], cols["file_id"]) if not kinds[f]])
    soft = np.mean([v for v, f in zip(power["values"], cols["file_id"]) if kinds[f]])
    assert loud > soft


def test_map_points_limit_and_errors(coll, tmp_path):
    import audiotrove
    from audiotrove.views import list_maps, map_points

    with audiotrove.open(coll) as c:
        full = map_points(c)
        part = map_points(c, limit=7, seed=3)
        assert part["shown"] == 7 and part["count"] == full["count"] and part["sampled"]
        items = part["columns"]["item"]
        assert items == sorted(items) and len(set(items)) == 7
        for k, i in enumerate(items):  # the subset keeps each point's values
            assert part["columns"]["x"][k] == full["columns"]["x"][i]
        assert part == map_points(c, limit=7, seed=3)
        assert [m["name"] for m in list_maps(c)] == ["map"]
        with pytest.raises(UsageError, match="adding --name other"):
            map_points(c, name="other")
        with pytest.raises(UsageError, match="audiotrove map --windows"):
            map_points(c, level="window")
        with pytest.raises(UsageError, match="color"):
            map_points(c, color="no.such.field")
    invoke(tmp_path, "init", tmp_path)
    with audiotrove.open(tmp_path) as c:
        with pytest.raises(UsageError, match="audiotrove map --units all"):
            map_points(c)


def test_colour_by_a_unit_label_before_its_step_says_which_command_gives_it(coll):
    """tag and class.label exist only once `tag` / `classify predict` has run: until then a clear
    UsageError (exit 2), not a KeyError; mfcc_k and the map's own columns colour as they are."""
    import audiotrove
    from audiotrove.views import list_units, map_points

    with audiotrove.open(coll) as c:
        for field, command in (("tag", "audiotrove tag"), ("tag_score", "audiotrove tag"),
                               ("class.label", "audiotrove classify predict")):
            with pytest.raises(UsageError, match=f"no unit has a {field} yet: run `{command}"):
                map_points(c, color=field)
        data = map_points(c, color="mfcc_2,map.x")
        units = list_units(c.catalog).frame
    r = invoke(coll, "map", "--units", "all", "--redraw", "--png", coll / "tag.png", "--color", "tag", code=2)
    assert "run `audiotrove tag` first" in r.output and "KeyError" not in r.output
    mfcc = {(f, u): m[1] for f, u, m in zip(units["file_id"], units["unit"], units["mfcc"])}
    cols = data["columns"]
    got = data["colors"]["mfcc_2"]["values"]
    assert data["colors"]["mfcc_2"]["kind"] == "range" and len(got) == data["shown"]
    assert got == pytest.approx([mfcc[(f, u)] for f, u in zip(cols["file_id"], cols["unit"])], abs=0.05)  # rounded for the page
    assert len(set(got)) > 10
    assert data["colors"]["map.x"]["values"] == pytest.approx(cols["x"], abs=1e-3)


CHROMIUM = "/usr/bin/chromium"


def _in_polygon(point, vertices):
    """Even-odd rule (a ray towards +x), as the page's lasso decides."""
    x, y = point
    inside = False
    for (ax, ay), (bx, by) in zip(vertices, vertices[-1:] + vertices[:-1]):
        if (ay > y) != (by > y) and x < bx + (y - by) * (ax - bx) / (ay - by):
            inside = not inside
    return inside


def _segment_distance(point, a, b):
    p, a, b = (np.asarray(v, float) for v in (point, a, b))
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0, 1)
    return float(np.linalg.norm(p - (a + t * (b - a))))


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def test_html_map_in_chromium(coll, tmp_path, browser):
    import csv
    import io
    import re
    from pathlib import Path

    import audiotrove
    from audiotrove.views import map_points

    out = tmp_path / "page" / "map.html"
    invoke(coll, "map", "--units", "all", "--redraw", "--html", out, "--color", "power")
    text = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing from the network
    with audiotrove.open(coll) as c:
        data = map_points(c, color="power")
    n = data["shown"]
    cols = data["columns"]
    paths = dict(zip(data["files"]["file_id"], data["files"]["path"]))

    page = browser.new_page(viewport={"width": 1100, "height": 700})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function("window.audiotroveMapReadyMs !== undefined", timeout=30000)
    # every point of the JSON is drawn, and the canvas shows them
    assert page.evaluate("JSON.parse(document.getElementById('map-data').textContent).columns.x.length") == n
    assert int(page.get_attribute("#map-canvas", "data-drawn")) == n
    coloured = page.evaluate("""(() => { const c = document.getElementById('map-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) k++;
        return k; })()""")
    assert coloured >= 10
    box = page.locator("#map-canvas").bounding_box()
    at = page.evaluate("(() => { const m = window.audiotroveMap.map; "
                       "return Array.from({length: m.n}, (_, i) => m.screenOf(i)); })()")

    # hover: a point that is the nearest to its own position shows its unit and plays it
    i = next(k for k in range(n) if page.evaluate(
        f"window.audiotroveMap.map.nearest({at[k]['sx']}, {at[k]['sy']})") == k)
    page.mouse.move(box["x"] + at[i]["cssX"], box["y"] + at[i]["cssY"])
    page.wait_for_function(f"document.getElementById('map-hovered').dataset.point === '{i}'", timeout=5000)
    shown = page.inner_text("#map-hovered")
    assert f"{Path(paths[cols['file_id'][i]]).name}:{cols['unit'][i]}" in shown
    src = page.evaluate("document.getElementById('map-audio').src")
    assert src.startswith(Path(paths[cols["file_id"][i]]).as_uri() + "#t=")
    assert float(src.split("#t=")[1].split(",")[0]) == pytest.approx(cols["start"][i], abs=1e-3)
    page.wait_for_function(f"(() => {{ const a = document.getElementById('map-audio'); "
                           f"return !a.error && a.currentTime > {cols['start'][i] + 0.02}; }})()", timeout=10000)

    # box selection (shift-drag): the left part of the points, split at a gap between them
    xs = sorted(p["cssX"] for p in at)
    lo, hi = len(xs) // 5, 4 * len(xs) // 5
    gap = max(range(lo, hi), key=lambda k: xs[k + 1] - xs[k])
    split = (xs[gap] + xs[gap + 1]) / 2
    assert xs[gap + 1] - xs[gap] > 2
    expected = {k for k, p in enumerate(at) if p["cssX"] < split}
    ys = [p["cssY"] for p in at]
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + xs[0] - 6, box["y"] + min(ys) - 6)
    page.mouse.down()
    page.mouse.move(box["x"] + split, box["y"] + max(ys) + 6, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function("document.getElementById('map-selection').dataset.count !== undefined", timeout=5000)
    listed = {int(v) for v in page.eval_on_selector_all("#map-selection tr.map-selrow", "rs => rs.map(r => r.dataset.point)")}
    assert listed == expected and 0 < len(expected) < n
    want = {(cols["file_id"][k], cols["unit"][k]) for k in expected}
    # copied as CSV
    page.click("#map-copy-csv")
    rows = list(csv.DictReader(io.StringIO(page.input_value("#map-copied"))))
    assert {(int(r["file_id"]), int(r["unit"])) for r in rows} == want
    assert all(r["path"] == paths[int(r["file_id"])] for r in rows)
    # copied as a units query, which selects exactly those units
    page.click("#map-copy-query")
    query = page.input_value("#map-copied")
    assert query.startswith("units '") and query.endswith("'")
    got = json.loads(invoke(coll, "units", query[len("units '"):-1], "--format", "json").stdout)
    assert {(u["file_id"], u["unit"]) for u in got} == want
    page.keyboard.press("Escape")  # clears the selection
    assert page.get_attribute("#map-selection", "data-count") == "0"

    # lasso (alt-drag): a triangle over the upper-left half of the points; then Ctrl + a box in
    # "box" mode adds the lower-right corner's points to it
    x0, x1, y0, y1 = min(xs) - 6, max(xs) + 6, min(ys) - 6, max(ys) + 6
    triangle = [(x0, y0), (x1, y0), (x0, y1)]
    inside, near = set(), set()
    for k, p in enumerate(at):
        d = min(_segment_distance((p["cssX"], p["cssY"]), triangle[j], triangle[j - 1]) for j in range(3))
        (near if d < 1.5 else inside if _in_polygon((p["cssX"], p["cssY"]), triangle) else set()).add(k)
    assert 0 < len(inside) < n - len(near)
    page.keyboard.down("Alt")
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + x1, box["y"] + y0, steps=6)
    page.mouse.move(box["x"] + x0, box["y"] + y1, steps=6)
    page.mouse.up()
    page.keyboard.up("Alt")
    lassoed = set(page.evaluate("Array.from(window.audiotroveMap.map.selected)"))
    assert inside <= lassoed <= inside | near
    assert page.evaluate("window.audiotroveMap.map.selectionShape") == "lasso"
    assert page.get_attribute("#map-selection", "data-count") == str(len(lassoed))
    corner = {k for k, p in enumerate(at) if p["cssX"] > split and p["cssY"] > (min(ys) + max(ys)) / 2}
    page.select_option("#map-mode", "select")
    page.keyboard.down("Control")
    page.mouse.move(box["x"] + split, box["y"] + (min(ys) + max(ys)) / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
    page.mouse.up()
    page.keyboard.up("Control")
    added = set(page.evaluate("Array.from(window.audiotroveMap.map.selected)"))
    boxed = {k for k, p in enumerate(at) if p["cssX"] >= split and p["cssY"] >= (min(ys) + max(ys)) / 2}
    assert lassoed | corner <= added <= lassoed | boxed and len(added) > len(lassoed)
    assert page.evaluate("window.audiotroveMap.map.selectionShape") == "union"
    page.select_option("#map-mode", "pan")
    page.keyboard.press("Escape")
    assert page.get_attribute("#map-selection", "data-count") == "0"

    # the grid view draws every point in its cell
    page.select_option("#map-view", "grid")
    page.wait_for_function("document.getElementById('map-canvas').dataset.view === 'grid'", timeout=5000)
    assert int(page.get_attribute("#map-canvas", "data-drawn")) == n
    page.close()
    assert errors == []


def test_html_map_at_100000_points(browser, tmp_path):
    """A stored map of 100 000 units (synthetic positions): every point drawn, hover and box
    (and lasso) selection answer from the bucket index as a full scan would."""
    import pandas as pd

    from audiotrove.catalog.db import Catalog
    from audiotrove.maps.html import write_html
    from audiotrove.maps.store import save_table
    from audiotrove.views import map_points

    n = 100_000
    rng = np.random.default_rng(0)
    centres = rng.uniform(-50, 50, (40, 2))
    cluster = rng.integers(0, 40, n)
    xy = centres[cluster] + rng.normal(0, 3, (n, 2))
    df = pd.DataFrame({"path": [f"/archive/t{k % 500}.flac" for k in range(n)], "file_id": np.arange(n) % 500 + 1,
                       "unit": np.arange(n) // 500, "start": (np.arange(n) // 500) * 0.5, "dur": np.full(n, 0.4),
                       "map.x": xy[:, 0], "map.y": xy[:, 1], "map.order": np.argsort(np.argsort(xy[:, 0])),
                       "grid.col": pd.array([pd.NA] * n, "Int64"), "grid.row": pd.array([pd.NA] * n, "Int64"),
                       "map.cluster": cluster})
    invoke(tmp_path, "init", tmp_path)
    save_table(tmp_path, "map", "unit", df, {"name": "map", "level": "unit", "dims": 2, "count": n, "grid": None})
    with Catalog.open(tmp_path) as cat:
        data = map_points(cat)
    out = write_html(data, tmp_path / "big.html")
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function("window.audiotroveMapReadyMs !== undefined", timeout=120_000)
    assert int(page.get_attribute("#map-canvas", "data-drawn")) == n
    checks = page.evaluate("""(() => { const m = window.audiotroveMap.map, c = document.getElementById('map-canvas');
        const out = {hover: [], box: 0};
        for (let k = 0; k < 50; k++) {   // the nearest point to a point's own position is at distance 0
          const i = (k * 7919) % m.n, p = m.screenOf(i), j = m.nearest(p.sx, p.sy), q = m.screenOf(j);
          out.hover.push(Math.hypot(p.sx - q.sx, p.sy - q.sy)); }
        const sel = m.inBox(0, 0, c.width / 2, c.height);
        out.box = sel.length;
        out.poly = m.inPolygon([[0, 0], [c.width / 2, 0], [c.width / 2, c.height], [0, c.height]]).length;
        out.inside = 0; out.edge = 0;   // a full scan: strictly left of the edge, and on it
        for (let i = 0; i < m.n; i++) { const d = m.screenOf(i).sx - c.width / 2; if (d < -1e-6) out.inside++; else if (d <= 1e-6) out.edge++; }
        return out; })()""")
    page.close()
    assert max(checks["hover"]) < 1e-6
    assert 0 < checks["inside"] <= checks["box"] <= checks["inside"] + checks["edge"] < n
    assert checks["inside"] <= checks["poly"] <= checks["inside"] + checks["edge"]  # the lasso's test, as a rectangle
    assert errors == []
