"""Maps: the points of a stored map, ready for a browser (`map --html`, the web explorer).

    data = map_points(catalog, name="map", color="power", limit=200_000)
    json.dumps(data)                     # plain lists, numbers, None for missing values
    data = map_points(catalog, ..., arrays=True)   # the same, its long columns numpy arrays

`data` (columnar: one list per column, all of the same length, one entry per point):
    name, level (unit | file | window), count (items in the map), shown (points given),
    sampled (True when `limit` kept a random subset), method, model, dims, grid ([cols, rows]
    or None), clusters (size and medoid per cluster, as `map` printed them),
    columns: item (the item's row in the stored map table), file_id, unit (unit or window
        index; 0 for files), x, y (the 2-D map; for a 1-D map x is map.order and y 0), order,
        cluster, col, row (grid cell; the whole column None without a grid), start, dur (seconds: what a
        player plays: the file's audio from start for dur),
    files: {file_id: [...], path: [...]} (each file once),
    colors: {FIELD: {kind: "category", values: [code per point, -1 = none], legend: [{value,
             label, count}]}: up to 20 categories (the most frequent; the rest one "other"), every
             cluster (colours repeat after 20); or {kind: "range", values: [number or None], low, high (2nd and 98th
             percentiles: the colour scale), min, max, unit}}; always "cluster", plus `color`,
    color: the field to colour by first.

With arrays=True the long columns (columns.*, colors.*.values) are numpy arrays instead of lists:
numbers float64 with NaN where a value is missing, integers int64 (a numpy masked array where
some are missing); `plain(data)` turns them into the lists above (io/jsonarrays.py dumps(data)
writes that JSON).
Everything is computed on whole columns (the map's Parquet table read with each path once, the
colour field read alone), so a 1 000 000-point map costs no Python object per point until lists
are asked for.

Errors are UsageError: no such map (it says which command makes one), an unknown colour field,
a unit label no unit has yet (`tag` before `audiotrove tag`: it says which command gives it).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..catalog.db import Catalog
from ..errors import UsageError

LEVELS = ("unit", "file", "window")
MAX_CATEGORIES = 20  # more distinct values of a numeric field: a colour range
MAKE = {"unit": "audiotrove map --units all", "file": "audiotrove map",
        "window": "audiotrove map --windows SECONDS"}
# unit fields only a later step gives (units/labels.py): the command that gives them
LABEL_MAKERS = {"tag": "audiotrove tag", "tag_score": "audiotrove tag",
                "class.label": "audiotrove classify predict --model MODEL",
                "class.confidence": "audiotrove classify predict --model MODEL"}


def _catalog(coll) -> Catalog:
    return getattr(coll, "catalog", coll)  # a Collection (api.py) or a Catalog


def list_maps(coll) -> list[dict]:
    """The stored maps: name, level, count, method, model, dims, grid (newest first)."""
    import json

    from ..maps.store import maps_dir

    out = []
    folder = maps_dir(_catalog(coll).root)
    for path in folder.glob("*.json") if folder.exists() else []:
        name, _, level = path.stem.rpartition("-")
        if level not in LEVELS or not path.with_suffix(".parquet").exists():
            continue
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out.append({"name": name, "level": level, "count": info.get("count"), "method": info.get("method"),
                    "model": info.get("model"), "dims": info.get("dims"), "grid": info.get("grid"),
                    "mtime": path.stat().st_mtime})
    out.sort(key=lambda m: -m["mtime"])
    for m in out:
        del m["mtime"]
    return out


def load_map(coll, *, name: str | None = None, level: str | None = None,
             compact_paths: bool = False) -> tuple[pd.DataFrame, dict]:
    """(rows, info) of the stored map NAME (default "map") at `level` (default: the level of
    the newest map of that name). UsageError when there is none. compact_paths: the path column
    as a Categorical (maps/store.py load_table)."""
    from ..maps.store import DEFAULT_NAME, load_table

    name = name or DEFAULT_NAME
    if level is not None and level not in LEVELS:
        raise UsageError(f"a map's level is one of {', '.join(LEVELS)}, not {level!r}")
    if level is None:
        levels = [m["level"] for m in list_maps(coll) if m["name"] == name]
        if not levels:
            raise UsageError(f"no map named {name!r} yet: make one with `{MAKE['unit']}` (units), "
                             f"`{MAKE['file']}` (files) or `{MAKE['window']}` (windows)"
                             + ("" if name == DEFAULT_NAME else f", adding --name {name}"))
        level = levels[0]
    try:
        return load_table(_catalog(coll).root, name, level, compact_paths=compact_paths)
    except FileNotFoundError:
        raise UsageError(f"no {level} map named {name!r} yet: make one with `{MAKE[level]}`"
                         + ("" if name == DEFAULT_NAME else f" --name {name}")) from None


def colour_values(coll, df: pd.DataFrame, level: str, color: str) -> pd.Series | None:
    """The field `color` per row of the map `df` (None for the clusters): a unit field for a
    unit map (power, note...), else a file field. UsageError for an unknown field, and for a
    unit label (tag, class.label...) that no unit has yet (it says which command gives it)."""
    if color in ("cluster", "map.cluster"):
        return None
    catalog = _catalog(coll)
    if level == "unit":
        from ..units.select import UNIT_FIELDSET, unit_field_values

        if color in UNIT_FIELDSET:
            field = UNIT_FIELDSET.resolve(color).name
            if field in df.columns:  # the map's own columns (map.*, grid.*, path...)
                values = df[field].reset_index(drop=True)
                if isinstance(values.dtype, pd.CategoricalDtype):  # path, read compact: as text again
                    values = values.astype(values.cat.categories.dtype)
                return values
            if field == "mfcc":
                raise UsageError("--color mfcc: a list; colour by one of its elements, mfcc_1 .. mfcc_13")
            file_ids = set(pd.unique(df["file_id"]).tolist())
            rows = unit_field_values(catalog, field, file_ids)  # only that column, only the map's files
            if rows is None:  # a label no step has given any unit yet
                raise UsageError(f"--color {color}: no unit has a {field} yet: run "
                                 f"`{LABEL_MAKERS.get(field, 'audiotrove segment')}` first")
            rows = rows.astype({"file_id": "int64", "unit": "int64"})
            keyed = df[["file_id", "unit"]].astype("int64").merge(rows, on=["file_id", "unit"], how="left")
            return keyed[field].reset_index(drop=True)
    from ..catalog.fields import UnknownFieldError
    from .files import file_frame, open_index

    index = open_index(catalog)
    try:
        field = index.fields.resolve(color)
    except UnknownFieldError as exc:
        raise UsageError(f"--color: {exc}") from None
    frame = file_frame(index, fields=[field.name])
    by_path = dict(zip(frame["path"], frame[field.name]))
    # each path once: the values of the map's files (and a None where a path has no file), typed
    # by pandas as the list of every point's value would be, then spread to the points
    codes, paths = pd.factorize(df["path"])
    distinct = [by_path.get(p) for p in paths]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(distinct), codes)
        distinct.append(None)
    return pd.Series(distinct).take(codes).reset_index(drop=True)


def _field_unit(color: str, level: str) -> str | None:
    try:
        if level == "unit":
            from ..units.select import UNIT_FIELDSET

            if color in UNIT_FIELDSET:
                return UNIT_FIELDSET.resolve(color).unit
        from ..catalog.fields import registry

        return registry().resolve(color).unit
    except Exception:  # a discovered field: no unit known
        return None


def _decimals(values: np.ndarray, digits: int = 5) -> int:
    """Decimals that keep `digits` significant digits of the values' span."""
    finite = values[np.isfinite(values)]
    span = float(np.ptp(finite)) if len(finite) else 0.0
    return max(0, digits - math.ceil(math.log10(span))) if span > 0 else 3


def _numbers(values, decimals: int | None = None) -> np.ndarray:
    """Numbers -> float64, rounded, NaN where a value is missing (or not finite)."""
    a = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
    if decimals is not None:
        a = np.round(a, decimals)
    return np.where(np.isfinite(a), a, np.nan)


def _integers(values) -> np.ndarray:
    """Integers -> int64 (truncated), a masked array where some are missing."""
    s = pd.Series(values)
    missing = s.isna().to_numpy()
    if missing.any():
        return np.ma.MaskedArray(s.fillna(0).to_numpy().astype(np.int64), mask=missing)
    return s.astype("int64").to_numpy()


def plain(data: dict) -> dict:
    """map_points(..., arrays=True)'s data with lists for its arrays: map_points(...)'s data."""
    from ..io.jsonarrays import as_lists

    return as_lists(data)


# pandas.api.types.infer_dtype kinds that hold no true/false value
_NO_BOOLS = {"string", "floating", "integer", "mixed-integer-float", "decimal", "complex", "bytes", "empty"}


def _has_bools(present: pd.Series) -> bool:
    """Whether any of the (non-missing) values is a true/false."""
    dtype = present.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return len(present) > 0
    if dtype != object:
        return False
    if pd.api.types.infer_dtype(present, skipna=True) in _NO_BOOLS:
        return False
    return bool(present.map(lambda v: isinstance(v, (bool, np.bool_))).any())


def _all_numbers(present: pd.Series) -> bool:
    """Whether every (non-missing) value reads as a number."""
    if pd.api.types.is_numeric_dtype(present.dtype) or pd.api.types.is_bool_dtype(present.dtype):
        return True
    try:
        present = pd.Series(pd.unique(present))  # each value once (text fields: few values)
    except TypeError:  # unhashable values (lists): as they are
        pass
    return bool(pd.to_numeric(present, errors="coerce").notna().all())


def _colour(values: pd.Series, *, field: str, unit: str | None, numeric_ok: bool = True) -> dict:
    """One colour field: categories (with a legend) or a numeric range."""
    values = pd.Series(values).reset_index(drop=True)
    missing = values.isna().to_numpy()
    present = values[~missing]
    numeric = numeric_ok and len(present) > 0 and _all_numbers(present) and not _has_bools(present)
    if numeric and present.nunique() > MAX_CATEGORIES:
        a = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        finite = a[np.isfinite(a)]
        low, high = (np.percentile(finite, [2, 98]) if len(finite) else (0.0, 0.0))
        dec = _decimals(finite, 4)
        return {"kind": "range", "values": _numbers(a, dec), "low": round(float(low), dec),
                "high": round(float(high), dec), "min": round(float(finite.min()), dec) if len(finite) else None,
                "max": round(float(finite.max()), dec) if len(finite) else None, "unit": unit}
    counts = present.value_counts()
    cats = sorted(counts.index.tolist(), key=lambda v: (str(type(v)), v))
    if len(cats) > MAX_CATEGORIES and field != "cluster":  # the most frequent keep a colour, the rest "other"
        keep = set(counts.index[:MAX_CATEGORIES - 1].tolist())
        cats = [c for c in cats if c in keep]
    code = {c: k for k, c in enumerate(cats)}
    other = len(cats) if len(counts) > len(cats) else None
    # values.map(code), without its pointwise pass over text values: where each value is in the keys
    where = pd.Index(list(code), tupleize_cols=False).get_indexer(values.array) if code else np.full(len(values), -1)
    found = np.asarray(list(code.values()), dtype=np.int64)[where] if code else where
    codes = np.where(missing, -1, np.where(where >= 0, found, -1 if other is None else other)).astype(np.int64)
    legend = [{"value": _plain(c), "label": f"cluster {c}" if field == "cluster" else str(c),
               "count": int(counts[c])} for c in cats]
    if other is not None:
        legend.append({"value": None, "label": "other", "count": int(len(present) - sum(int(counts[c]) for c in cats))})
    return {"kind": "category", "values": codes, "legend": legend, "unit": unit}


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def map_points(coll, *, name: str | None = None, level: str | None = None,
               color: str | list[str] | None = None, limit: int | None = None, seed: int = 0,
               arrays: bool = False) -> dict:
    """The points of the stored map NAME (see the module docstring for the shape).

    color: a field or a list of fields (or "a,b") to colour by, besides the clusters.
    limit: at most this many points (a random subset, fixed by `seed`, in the table's order).
    arrays: the long columns as numpy arrays (see the module docstring), not lists."""
    df, info = load_map(coll, name=name, level=level, compact_paths=True)
    level = info.get("level", level)
    count = len(df)
    rows = np.arange(count)
    if limit is not None and limit < 0:
        raise UsageError("limit must be 0 or more")
    if limit is not None and limit < count:
        rows = np.sort(np.random.default_rng(seed).choice(count, size=int(limit), replace=False))
        df = df.iloc[rows].reset_index(drop=True)
    fields = color.split(",") if isinstance(color, str) else list(color or [])
    fields = [f.strip() for f in fields if f.strip() and f.strip() not in ("cluster", "map.cluster")]
    colors = {"cluster": _colour(df["map.cluster"], field="cluster", unit=None, numeric_ok=False)}
    for f in fields:
        values = colour_values(coll, df, level, f)
        colors[f] = _colour(values, field=f, unit=_field_unit(f, level))
    if info.get("dims") == 2 and df["map.x"].notna().any():
        x, y = df["map.x"].to_numpy(np.float64), df["map.y"].to_numpy(np.float64)
    else:  # a 1-D map: the order on a line
        x, y = df["map.order"].to_numpy(np.float64), np.zeros(len(df))
    dec = max(_decimals(x), _decimals(y))
    has_grid = bool(info.get("grid")) and "grid.col" in df and df["grid.col"].notna().any()
    files = df.drop_duplicates("file_id")[["file_id", "path"]]
    columns = {
        "item": rows.astype(np.int64),
        "file_id": df["file_id"].astype("int64").to_numpy(),
        "unit": df["unit"].astype("int64").to_numpy(),
        "x": _numbers(x, dec), "y": _numbers(y, dec),
        "order": _integers(df["map.order"]),
        "cluster": _integers(df["map.cluster"]),
        "col": _integers(df["grid.col"]) if has_grid else None,
        "row": _integers(df["grid.row"]) if has_grid else None,
        "start": _numbers(df["start"], 3), "dur": _numbers(df["dur"], 3),
    }
    data = {"name": info.get("name", name), "level": level, "count": count, "shown": len(df),
            "sampled": len(df) < count, "method": info.get("method"), "model": info.get("model"),
            "dims": info.get("dims"), "grid": info.get("grid") if has_grid else None,
            "clusters": info.get("clusters", []), "columns": columns,
            "files": {"file_id": files["file_id"].astype("int64").tolist(), "path": files["path"].tolist()},
            "colors": colors, "color": fields[0] if fields else "cluster"}
    return data if arrays else plain(data)


__all__ = ["list_maps", "load_map", "colour_values", "map_points", "plain"]
