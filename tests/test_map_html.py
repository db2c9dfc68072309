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


def tones(f_hz: float) -> np.ndarray:
    """Four 0.4 s notes of f_hz separated by silence (four units)."""
    t = np.arange(int(0.4 * SR)) / SR
    note = 0.3 * np.sin(2 * np.pi * f_hz * t) * np.minimum(1, t * 100) * np.exp(-t * 3)
    gap = np.zeros(int(0.3 * SR))
    return np.concatenate([np.concatenate([note, gap]) for _ in range(4)]).astype(np.float32)


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
        sf.write(folder / f"tone{k}.wav", tones(f), SR)
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
    assert all(len(v) == n for v in cols.values())
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
