"""views.map_points against a straightforward reference: a view other than the default one
(other colour fields, a random sample) gives exactly the points and values a per-point Python
computation of the documented rules gives, missing values and categories included; the arrays
form is the same data (and the same /map.bin bytes).

The collection is generated (no audio decoded): files with analyze results, unit shards in
units/store's schema, a unit map with a grid (some cells missing, some points without x/y) and a
file map, so that every kind of value occurs: ranges with nulls, text categories beyond the 20
colours ("other"), integer categories with nulls, file fields spread to units, true/false.
"""
from __future__ import annotations

import hashlib
import json
import math
import time

import numpy as np
import pandas as pd
import pytest

SEGMENT_FILES = 4
UNITS = 90  # per segmented file
FILES = 30
NOTES = [f"n{k:02d}" for k in range(25)]


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from audiotrove.catalog.db import Catalog
    from audiotrove.catalog.index import FieldIndex
    from audiotrove.maps.store import save_table
    from audiotrove.units.schema import N_MFCC, SCHEMA
    from audiotrove.units.store import SEGMENT_STEP, units_dir

    root = tmp_path_factory.mktemp("mappoints")
    rng = np.random.default_rng(3)
    cat = Catalog.create(root)
    now = time.time()
    truth = {"units": {}, "files": {}}
    with cat.transaction() as conn:
        for i in range(FILES):
            path, h = f"/archive/tape{i:03d}.wav", hashlib.sha1(str(i).encode()).hexdigest()
            fid = conn.execute("INSERT INTO files(path, kind, source, size_bytes, mtime_ns, content_hash, added_at) "
                               "VALUES (?,?,?,?,?,?,?)", (path, "file", "/archive", 1000, 0, h, now)).lastrowid
            if i % 7 == 6:  # never analyzed: its file fields are missing
                truth["files"][fid] = {"path": path}
                continue
            lufs = float(np.round(rng.uniform(-40, -10), 2))
            codec = ["pcm_s16le", "mp3", "flac"][i % 3]
            video = bool(i % 5 == 0)
            data = {"media_info": {"container": {"kind": "wav", "duration": 60.0},
                                   "audio": {"codec": codec, "channels": 1, "sample_rate": 44100},
                                   "has_audio": True, "has_video": video},
                    "audio": {"loudness": {"measured": lufs}}}
            truth["files"][fid] = {"path": path, "lufs": lufs, "media_info.audio.codec": codec,
                                   "media_info.has_video": video}
            rid = conn.execute("INSERT INTO results(content_hash, step, step_version, params_hash, params, status, "
                               "error, data, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                               (h, "analyze", "1", "p", "{}", "ok", None, json.dumps(data), 0.1, now + i)).lastrowid
            conn.execute("INSERT INTO current_results(file_id, step, result_id) VALUES (?,?,?)", (fid, "analyze", rid))
        shards = units_dir(cat)
        shards.mkdir(parents=True)
        fids = sorted(truth["files"])[:SEGMENT_FILES]
        # note k is given to k + 1 units (no ties among the most frequent), the rest unpitched
        notes = [n for k, n in enumerate(NOTES) for _ in range(k + 1)]
        notes += [None] * (SEGMENT_FILES * UNITS - len(notes))
        notes = [notes[k] for k in rng.permutation(len(notes))]
        for j, fid in enumerate(fids):
            h = hashlib.sha1(str(fid - 1).encode()).hexdigest()
            unit = np.arange(UNITS)
            note = notes[j * UNITS:(j + 1) * UNITS]
            pitched = np.array([n is not None for n in note])
            cols = {"unit": unit, "start": np.round(unit * 0.25, 3), "dur": np.full(UNITS, 0.2),
                    "power": rng.normal(-30, 6, UNITS), "hz": np.where(pitched, rng.uniform(80, 900, UNITS), np.nan),
                    "note": note, "octave": np.where(pitched, rng.integers(2, 7, UNITS), 0),
                    "clarity": rng.uniform(0, 1, UNITS), "centroid": rng.uniform(200, 4000, UNITS),
                    "flatness": rng.uniform(0, 1, UNITS), "rolloff": rng.uniform(500, 8000, UNITS),
                    "zcr": rng.uniform(0, 0.5, UNITS), "mfcc": list(rng.normal(0, 10, (UNITS, N_MFCC)))}
            arrays = {f.name: pa.array(cols[f.name], f.type, mask=~pitched if f.name in ("hz", "octave") else None)
                      for f in SCHEMA}
            table = pa.table(arrays, schema=SCHEMA)
            name = f"{h[:32]}-test.parquet"
            pq.write_table(table, shards / name)
            for row in table.to_pylist():
                truth["units"][(fid, row["unit"])] = {**row, "mfcc_2": row["mfcc"][1]}
            rid = conn.execute("INSERT INTO results(content_hash, step, step_version, params_hash, params, status, "
                               "error, data, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                               (h, SEGMENT_STEP, "test", "p", "{}", "ok", None,
                                json.dumps({"units": {"shard": name, "count": UNITS}}), 0.1, now + 100 + j)).lastrowid
            conn.execute("INSERT INTO current_results(file_id, step, result_id) VALUES (?,?,?)",
                         (fid, SEGMENT_STEP, rid))
    FieldIndex.open(cat)
    cat.close()
    # the unit map: every unit, and one that no shard has (its unit fields are missing)
    keys = sorted(truth["units"]) + [(fids[0], UNITS + 5)]
    n = len(keys)
    xy = rng.normal(0, 30, (n, 2))
    xy[rng.random(n) < 0.03] = np.nan
    cells = rng.permutation(20 * 20)[:n]
    holes = rng.random(n) < 0.05
    df = pd.DataFrame({
        "path": [truth["files"][f]["path"] for f, _ in keys], "file_id": [f for f, _ in keys],
        "unit": [u for _, u in keys], "start": [u * 0.25 for _, u in keys], "dur": 0.2,
        "map.x": xy[:, 0], "map.y": xy[:, 1], "map.order": np.argsort(np.argsort(np.nan_to_num(xy[:, 0]))),
        "grid.col": pd.array(np.where(holes, 0, cells % 20), "Int64"),
        "grid.row": pd.array(np.where(holes, 0, cells // 20), "Int64"), "map.cluster": rng.integers(0, 5, n)})
    df.loc[holes, ["grid.col", "grid.row"]] = pd.NA
    save_table(root, "map", "unit", df, {"name": "map", "level": "unit", "model": "test", "method": "pca", "dims": 2,
                                         "count": n, "grid": [20, 20], "clusters": [], "seed": 0})
    m = len(truth["files"])
    fxy = rng.normal(0, 5, (m, 2))
    files = pd.DataFrame({
        "path": [truth["files"][f]["path"] for f in sorted(truth["files"])], "file_id": sorted(truth["files"]),
        "unit": 0, "start": 0.0, "dur": 60.0, "map.x": fxy[:, 0], "map.y": fxy[:, 1],
        "map.order": np.argsort(np.argsort(fxy[:, 0])), "grid.col": pd.array([pd.NA] * m, "Int64"),
        "grid.row": pd.array([pd.NA] * m, "Int64"), "map.cluster": np.arange(m) % 3})
    save_table(root, "map", "file", files, {"name": "map", "level": "file", "model": "test", "method": "pca",
                                            "dims": 2, "count": m, "grid": None, "clusters": [], "seed": 0})
    return root, truth


# ------------------------------------------------------------------------------------------
# the reference: the documented rules, one point at a time


def _decimals(values, digits=5):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    span = max(finite) - min(finite) if finite else 0.0
    return max(0, digits - math.ceil(math.log10(span))) if span > 0 else 3


def _round(v, decimals):
    return None if v is None or not math.isfinite(v) else float(np.round(v, decimals))


def _missing(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def reference_colour(values, *, field, unit):
    present = [v for v in values if not _missing(v)]
    numeric = len(present) > 0 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numeric and len(set(present)) > 20:
        floats = [None if _missing(v) else float(v) for v in values]
        dec = _decimals(floats, 4)
        finite = [v for v in floats if v is not None]
        low, high = np.percentile(finite, [2, 98])
        return {"kind": "range", "values": [_round(v, dec) for v in floats], "low": round(float(low), dec),
                "high": round(float(high), dec), "min": round(min(finite), dec), "max": round(max(finite), dec),
                "unit": unit}
    counts = {}
    for v in present:
        counts[v] = counts.get(v, 0) + 1
    cats = sorted(counts)
    if len(cats) > 20 and field != "cluster":  # the 19 most frequent keep a colour (no ties here)
        cats = sorted(sorted(counts, key=lambda c: -counts[c])[:19])
    other = len(cats) if len(counts) > len(cats) else None
    code = {c: k for k, c in enumerate(cats)}
    legend = [{"value": c, "label": f"cluster {c}" if field == "cluster" else str(c), "count": counts[c]}
              for c in cats]
    if other is not None:
        legend.append({"value": None, "label": "other", "count": len(present) - sum(counts[c] for c in cats)})
    return {"kind": "category", "values": [-1 if _missing(v) else code.get(v, other) for v in values],
            "legend": legend, "unit": unit}


def reference_points(root, truth, *, level, fields, units, limit=None, seed=0):
    df = pd.read_parquet(root / ".audiotrove" / "maps" / f"map-{level}.parquet")
    rows = list(range(len(df)))
    if limit is not None and limit < len(df):
        rows = sorted(np.random.default_rng(seed).choice(len(df), size=limit, replace=False).tolist())
    points = [{k: (None if pd.isna(v) else v) for k, v in df.iloc[r].items()} for r in rows]
    xs, ys = [p["map.x"] for p in points], [p["map.y"] for p in points]
    dec = max(_decimals(xs), _decimals(ys))

    def value(p, field):
        if field in p:
            return p[field]
        if level == "unit" and field in ("power", "hz", "note", "octave", "mfcc_2"):
            return truth["units"].get((p["file_id"], p["unit"]), {}).get(field)
        return truth["files"][p["file_id"]].get(field)

    def ints(name):
        return [None if p[name] is None else int(p[name]) for p in points]

    colors = {"cluster": reference_colour(ints("map.cluster"), field="cluster", unit=None)}
    for f, u in zip(fields, units):
        colors[f] = reference_colour([value(p, f) for p in points], field=f, unit=u)
    seen = {}
    for p in points:
        seen.setdefault(int(p["file_id"]), p["path"])
    grid = level == "unit"
    return {"columns": {"item": rows, "file_id": [int(p["file_id"]) for p in points],
                        "unit": [int(p["unit"]) for p in points],
                        "x": [_round(v, dec) for v in xs], "y": [_round(v, dec) for v in ys],
                        "order": ints("map.order"), "cluster": ints("map.cluster"),
                        "col": ints("grid.col") if grid else None, "row": ints("grid.row") if grid else None,
                        "start": [_round(p["start"], 3) for p in points], "dur": [_round(p["dur"], 3) for p in points]},
            "files": {"file_id": list(seen), "path": list(seen.values())}, "colors": colors,
            "shown": len(points), "count": len(df), "sampled": len(points) < len(df)}


def _same(got, want, where=""):
    """Exact equality, floats by value (and None where None), with a readable failure."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) >= set(want), (where, sorted(got), sorted(want))
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (where, len(got), len(want))
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not (g == w and type(g) is type(w))]
        assert not bad, (where, [(i, got[i], want[i]) for i in bad[:5]])
    else:
        assert got == want and type(got) is type(want), (where, got, want)


# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, 150])
def test_a_unit_map_coloured_by_other_fields_is_the_reference(coll, limit):
    from audiotrove.catalog.db import Catalog
    from audiotrove.views.maps import map_points

    root, truth = coll
    fields = ["power", "hz", "note", "octave", "mfcc_2", "lufs", "media_info.audio.codec", "media_info.has_video"]
    units = ["dB", "Hz", None, None, None, "LUFS", None, None]  # a file field's unit too
    with Catalog.open(root) as cat:
        got = map_points(cat, level="unit", color=",".join(fields), limit=limit, seed=5)
    want = reference_points(root, truth, level="unit", fields=fields, units=units, limit=limit, seed=5)
    _same(got, want)
    assert got["level"] == "unit" and got["grid"] == [20, 20] and got["color"] == "power"
    c = got["colors"]
    # what the collection was made to hold: nulls, an "other" beyond 20 notes, a point no shard has
    assert c["power"]["kind"] == "range" and c["hz"]["kind"] == "range" and None in c["hz"]["values"]
    assert c["note"]["kind"] == "category" and c["note"]["legend"][-1]["label"] == "other"
    assert len(c["note"]["legend"]) == 20 and -1 in c["note"]["values"]
    assert c["octave"]["kind"] == "category" and -1 in c["octave"]["values"]
    assert c["media_info.has_video"]["kind"] == "category"
    assert None in got["columns"]["x"] and None in got["columns"]["col"]
    if limit is None:
        assert got["columns"]["unit"][-1] == UNITS + 5 and c["power"]["values"][-1] is None


def test_a_file_map_is_the_reference(coll):
    from audiotrove.catalog.db import Catalog
    from audiotrove.views.maps import map_points

    root, truth = coll
    fields = ["lufs", "media_info.audio.codec", "media_info.has_video"]
    with Catalog.open(root) as cat:
        got = map_points(cat, level="file", color=fields)
    want = reference_points(root, truth, level="file", fields=fields, units=["LUFS", None, None])
    _same(got, want)
    assert got["colors"]["lufs"]["kind"] == "range" and None in got["colors"]["lufs"]["values"]  # never analyzed
    assert -1 in got["colors"]["media_info.audio.codec"]["values"]


def test_the_arrays_form_is_the_same_data_and_the_same_binary(coll):
    from audiotrove.catalog.db import Catalog
    from audiotrove.views.maps import map_points, plain
    from audiotrove.web.mappage import binary

    root, _ = coll
    with Catalog.open(root) as cat:
        for kw in ({"level": "unit"}, {"level": "unit", "color": "hz,note,octave,lufs", "limit": 150},
                   {"level": "file", "color": "lufs"}):
            lists = map_points(cat, **kw)
            arrays = map_points(cat, arrays=True, **kw)
            assert isinstance(arrays["columns"]["x"], np.ndarray)
            assert plain(arrays) == lists
            assert json.dumps(plain(arrays)) == json.dumps(lists)
            assert binary(arrays) == binary(lists)


def test_json_of_arrays_writes_missing_values_as_null():
    """io/jsonarrays.py: NaN and masked values become null, the rest the numbers they are."""
    from audiotrove.io.jsonarrays import dumps

    data = {"x": np.array([0.5, np.nan, -2.0]), "c": np.ma.MaskedArray([1, 2, 3], mask=[False, True, False]),
            "n": np.arange(3, dtype=np.uint8), "w": [1, None, "x"]}
    assert json.loads(dumps(data)) == {"x": [0.5, None, -2.0], "c": [1, None, 3], "n": [0, 1, 2],
                                       "w": [1, None, "x"]}
    assert dumps(data, separators=(",", ":")).startswith('{"x":[0.5,null,-2.0],"c":[1,null,3]')
