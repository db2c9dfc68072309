"""Select units: a file-level filter, a unit-level filter, a multi-key sort with keep-fractions,
a per-file limit and a global limit. DuckDB runs it over the Parquet shards.

    df = list_units(cat, "power > -30 and clarity > 0.8",
                    sort="power:desc:0.75,clarity:desc",
                    limits=Limits(per_file=20, total=500),
                    where="audio.speech.percentage < 10")

- `where` (file level) is the collection's query language over the files' fields
  (catalog/query.py): only the units of matching files are considered.
- `query` (unit level) is the same language over the unit fields (UNIT_FIELDSET): power (dB),
  hz (Hz: `hz > 1kHz` works), note, octave, clarity, centroid / rolloff (Hz), flatness, zcr,
  dur / start (s: `dur < 300ms`), unit, path, file_id.
- `sort` "key[:asc|desc][:fraction],...": the keys apply in turn, each sorting the units still
  selected and keeping the first `fraction` of them (default 1); the order shown is the last
  key's, earlier keys only select. `power:desc:0.75,clarity:desc` = the loudest three quarters,
  the clearest first. Without sort: by path, then start. Missing values (hz of unpitched
  units) sort last either way.
- Limits: per_file keeps the first N units of each file in that order, total the first N overall.

The DataFrame has the columns path, file_id, then UNIT_COLUMNS (mfcc a list of 13 floats).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from ..catalog.db import Catalog
from ..catalog.fields import Field, FieldSet
from ..catalog.query import QueryError, parse, to_sql
from .extract import UNIT_COLUMNS
from .store import current_shards

UNIT_FIELDSET = FieldSet([
    Field("path", "text", None, "the file the unit comes from"),
    Field("file_id", "number", None, "the file's id in the catalog", integer=True),
    Field("unit", "number", "count", "index of the unit in its file", integer=True),
    Field("start", "number", "s", "start of the unit in its file"),
    Field("dur", "number", "s", "duration of the unit"),
    Field("power", "number", "dB", "level, dB RMS re full scale"),
    Field("hz", "number", "Hz", "fundamental frequency (null when unpitched)"),
    Field("note", "text", None, "nearest note name C..B (sharps)", discrete=True),
    Field("octave", "number", None, "octave, scientific (A4 = 440 Hz)", integer=True, discrete=True),
    Field("clarity", "number", None, "harmonicity of the pitch, 0-1"),
    Field("centroid", "number", "Hz", "spectral centroid"),
    Field("flatness", "number", None, "spectral flatness, 0-1 (1 = white noise)"),
    Field("rolloff", "number", "Hz", "frequency below which 85 % of the magnitude lies"),
    Field("zcr", "number", None, "zero-crossing rate, 0-1"),
    Field("mfcc", "list", None, "13 mean MFCCs"),
    # the unit map (`audiotrove map --units`, maps/store.py): null until one is made
    Field("map.x", "number", None, "x on the unit map (t-SNE / UMAP / PCA units)"),
    Field("map.y", "number", None, "y on the unit map"),
    Field("map.order", "number", "rank", "rank in the similarity order (0 first)", integer=True),
    Field("map.cluster", "number", None, "k-means cluster of the unit map", integer=True, discrete=True),
    Field("grid.col", "number", None, "column of the unit's grid cell", integer=True),
    Field("grid.row", "number", None, "row of the unit's grid cell", integer=True),
], aliases={"duration": "dur", "pitch": "hz", "level": "power", "loudness": "power"})

_COLUMN = {name: f'u."{name}"' for name in UNIT_COLUMNS}
_COLUMN.update({"path": "f.path", "file_id": "f.file_id"})
MAP_COLUMNS = ("map.x", "map.y", "map.order", "map.cluster", "grid.col", "grid.row")
_COLUMN.update({name: "CAST(NULL AS DOUBLE)" for name in MAP_COLUMNS})  # no unit map yet
_MAP_COLUMN = {name: f'm."{name}"' for name in MAP_COLUMNS}


@dataclass
class Limits:
    per_file: int | None = None
    total: int | None = None


@dataclass
class SortKey:
    field: str
    descending: bool = False
    keep: float = 1.0


_SORT_ITEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::(asc|desc))?(?::([0-9]*\.?[0-9]+%?))?$", re.I)


def parse_sort(text: str | None) -> list[SortKey]:
    """'power:desc:0.75,clarity:desc' -> [SortKey('power', True, 0.75), SortKey('clarity', True)].

    A fraction may also be written as a percentage (power:desc:75%). QueryError when malformed.
    """
    if text is None or not text.strip():
        return []
    keys = []
    for m in re.finditer(r"[^,\s]+", text):
        item = m.group(0)
        sm = _SORT_ITEM.match(item)
        if not sm:
            raise QueryError("a sort key is field[:asc|desc][:fraction], e.g. power:desc:0.75",
                             query=text, position=m.start(), length=len(item))
        name, direction, keep = sm.groups()
        try:
            field = UNIT_FIELDSET.resolve(name)
        except KeyError as exc:
            raise QueryError(str(exc), query=text, position=m.start(), length=len(name)) from None
        if field.kind == "list":
            raise QueryError(f"cannot sort by {field.name}: it is a list", query=text,
                             position=m.start(), length=len(name))
        fraction = 1.0
        if keep:
            fraction = float(keep[:-1]) / 100 if keep.endswith("%") else float(keep)
            if not 0 < fraction <= 1:
                raise QueryError("a keep-fraction is in (0, 1] (or a percentage up to 100%)",
                                 query=text, position=m.start() + len(item) - len(keep), length=len(keep))
        keys.append(SortKey(field.name, (direction or "asc").lower() == "desc", fraction))
    return keys


def unit_filter_sql(query: str | None, *, with_map: bool = False) -> tuple[str, list]:
    """The unit-level query as a DuckDB boolean expression over u (units) and f (files)
    (and m, the unit map, `with_map`)."""
    if query is None or not query.strip():
        return "TRUE", []
    columns = {**_COLUMN, **_MAP_COLUMN} if with_map else _COLUMN
    return to_sql(parse(query, UNIT_FIELDSET), lambda field: columns[field.name], dialect="duckdb")


def _order(key: SortKey, alias: str = "") -> str:
    col = f'{alias}"{key.field}"'
    return f"{col} {'DESC' if key.descending else 'ASC'} NULLS LAST"


def build_sql(shards: list[str], query: str | None, sort: list[SortKey], limits: Limits, *,
              unit_map: str | None = None) -> tuple[str, list]:
    """The DuckDB statement listing the units (files table `files(file_id, path, shard)`);
    `unit_map`: the Parquet table of the unit map, whose columns join the units'."""
    where, params = unit_filter_sql(query, with_map=unit_map is not None)
    cols = ", ".join(f'u."{c}"' for c in UNIT_COLUMNS)
    join = ""
    if unit_map is not None:
        cols += ", " + ", ".join(f'{_MAP_COLUMN[c]} AS "{c}"' for c in MAP_COLUMNS)
        join = " LEFT JOIN read_parquet(?) AS m ON m.file_id = f.file_id AND m.unit = u.unit"
    ctes = [
        "s0 AS (SELECT f.path AS path, f.file_id AS file_id, " + cols +
        " FROM read_parquet(?, filename = true) AS u JOIN files AS f ON u.filename = f.shard"
        f"{join} WHERE {where})"
    ]
    if unit_map is not None:
        params = [unit_map] + params
    params = [shards] + params
    prev = "s0"
    for i, key in enumerate(sort, start=1):
        if key.keep >= 1.0:
            continue
        ctes.append(
            f"s{i} AS (SELECT * FROM {prev} QUALIFY row_number() OVER (ORDER BY {_order(key)}, "
            f"path, start) <= ceil(? * count(*) OVER ()))")
        params.append(key.keep)
        prev = f"s{i}"
    final = _order(sort[-1]) + ", path, start" if sort else "path, start"
    body = f"SELECT * FROM {prev}"
    if limits.per_file:
        body += f" QUALIFY row_number() OVER (PARTITION BY file_id ORDER BY {final}) <= ?"
        params.append(int(limits.per_file))
    body += f" ORDER BY {final}"
    if limits.total:
        body += " LIMIT ?"
        params.append(int(limits.total))
    return "WITH " + ", ".join(ctes) + " " + body, params


def list_units(catalog: Catalog, query: str | None = None, sort: str | list[SortKey] | None = None,
               limits: Limits | None = None, *, where: str | None = None,
               problems: list[str] | None = None) -> pd.DataFrame:
    """The selected units as a DataFrame (see the module docstring). Raises QueryError.

    `problems`, when given, receives one line per file whose shard could not be used.
    """
    import duckdb

    limits = limits or Limits()
    keys = parse_sort(sort) if isinstance(sort, str) or sort is None else list(sort)
    file_ids = None
    if where is not None and where.strip():
        from ..catalog.query import select_file_ids

        file_ids = select_file_ids(catalog, where)
    refs, issues = current_shards(catalog, file_ids)
    if problems is not None:
        problems.extend(issues)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ("path", "file_id", *UNIT_COLUMNS)})
    unit_filter_sql(query)  # parse errors surface even when nothing is segmented yet
    if not refs:
        return empty
    files = pd.DataFrame({"file_id": [r.file_id for r in refs], "path": [r.path for r in refs],
                          "shard": [str(r.shard) for r in refs]})
    shards = sorted(set(files["shard"]))
    from ..maps.store import table_path

    unit_map = table_path(catalog.root, "map", "unit")
    sql, params = build_sql(shards, query, keys, limits,
                            unit_map=str(unit_map) if unit_map.exists() else None)
    con = duckdb.connect()
    try:
        con.register("files", files)
        df = con.execute(sql, params).df()
    finally:
        con.close()
    df["mfcc"] = df["mfcc"].map(lambda v: None if v is None else [float(x) for x in v])
    return df.reset_index(drop=True)


def sort_rows(rows: list[dict], keys: list[SortKey]) -> list[dict]:
    """The same selection and order as list_units, in Python, for rows in memory (one file)."""
    current = sorted(rows, key=lambda r: (r.get("path") or "", r["start"]))
    for key in keys:
        present = [r for r in current if not _missing(r.get(key.field))]
        absent = [r for r in current if _missing(r.get(key.field))]
        present.sort(key=lambda r: r[key.field], reverse=key.descending)  # stable: ties keep order
        current = present + absent
        if key.keep < 1.0:
            current = current[:math.ceil(key.keep * len(current))]
    return current


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
