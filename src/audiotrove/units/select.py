"""Select units: a file-level filter, a unit-level filter, a multi-key sort with keep-fractions,
a per-file limit and a global limit. DuckDB runs it over the Parquet shards.

    refs, problems = current_shards(catalog, file_ids)      # units/store.py
    df = select_units(refs, "power > -30 and clarity > 0.8",
                      sort="power:desc:0.75,clarity:desc", limits=Limits(per_file=20, total=500))

(views.list_units does both, with a file-level `where` query choosing the files.)

- `query` (unit level) is the collection's query language (catalog/query.py) over the unit
  fields (units/schema.py UNIT_FIELDSET): power (dB), hz (Hz: `hz > 1kHz` works), note, octave,
  clarity, centroid / rolloff (Hz), flatness, zcr, dur / start (s: `dur < 300ms`), mfcc_1 ..
  mfcc_13, unit, path, file_id; map.* / grid.* (a unit map), tag, tag_score (`tag` on a
  segmented file) and class.label, class.confidence (a unit-level `classify predict`), joined
  from their tables (units/labels.py) and null where there are none.
- `sort` "key[:asc|desc][:fraction],...": the keys apply in turn, each sorting the units still
  selected and keeping the first `fraction` of them (default 1); the order shown is the last
  key's, earlier keys only select. `power:desc:0.75,clarity:desc` = the loudest three quarters,
  the clearest first. Without sort: by path, then start. Missing values (hz of unpitched
  units) sort last either way.
- Limits: per_file keeps the first N units of each file in that order, total the first N overall.

The DataFrame has the columns path, file_id, then UNIT_COLUMNS (mfcc a list of 13 floats).
A sort key must be the last one or carry a fraction: a middle key without one would change
nothing, and says so (QueryError).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..catalog.query import QueryError, parse, to_sql
from .schema import N_MFCC, UNIT_COLUMNS, UNIT_FIELDSET
from .store import ShardRef

_COLUMN = {name: f'u."{name}"' for name in UNIT_COLUMNS}
_COLUMN.update({"path": "f.path", "file_id": "f.file_id"})
_COLUMN.update({f"mfcc_{k}": f'u."mfcc"[{k}]' for k in range(1, N_MFCC + 1)})
MAP_COLUMNS = ("map.x", "map.y", "map.order", "map.cluster", "grid.col", "grid.row")
_COLUMN.update({name: "CAST(NULL AS DOUBLE)" for name in MAP_COLUMNS})  # no unit map yet
_MAP_COLUMN = {name: f'm."{name}"' for name in MAP_COLUMNS}
# labels other steps give units (units/labels.py): null until a table is joined
_COLUMN.update({"tag": "CAST(NULL AS VARCHAR)", "tag_score": "CAST(NULL AS DOUBLE)",
                "class.label": "CAST(NULL AS VARCHAR)", "class.confidence": "CAST(NULL AS DOUBLE)"})


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
    for key, m in zip(keys[:-1], list(re.finditer(r"[^,\s]+", text))[:-1]):
        if key.keep >= 1.0:
            raise QueryError(f"the sort key {m.group(0)!r} is followed by another key but keeps every unit, "
                             "so it would change nothing: give it a fraction (power:desc:0.75) or make "
                             "it the last key", query=text, position=m.start(), length=len(m.group(0)))
    return keys


def _label_columns(kinds) -> dict[str, str]:
    from .labels import LABELS

    return {field: f'l_{kind}."{col}"' for kind in kinds for field, col in LABELS[kind][1].items()}


def unit_filter_sql(query: str | None, *, with_map: bool = False, labels=()) -> tuple[str, list]:
    """The unit-level query as a DuckDB boolean expression over u (units) and f (files)
    (and m, the unit map, `with_map`; l_tag / l_class, the `labels` tables joined)."""
    if query is None or not query.strip():
        return "TRUE", []
    columns = {**_COLUMN, **_MAP_COLUMN} if with_map else dict(_COLUMN)
    columns.update(_label_columns(labels))
    return to_sql(parse(query, UNIT_FIELDSET), lambda field: columns[field.name], dialect="duckdb")


def _order(key: SortKey) -> str:
    name, _, k = key.field.partition("_") if key.field.startswith("mfcc_") else (key.field, "", "")
    col = f'"{name}"' + (f"[{k}]" if k else "")
    return f"{col} {'DESC' if key.descending else 'ASC'} NULLS LAST"


def build_sql(shards: list[str], query: str | None, sort: list[SortKey], limits: Limits, *,
              unit_map: str | None = None, labels: dict[str, list[str]] | None = None) -> tuple[str, list]:
    """The DuckDB statement listing the units (files table `files(file_id, path, shard,
    shard_name, <kind>_table)`); `unit_map`: the Parquet table of the unit map, whose columns
    join the units'; `labels`: {kind: the per-file label tables} (units/labels.py)."""
    labels = labels or {}
    where, params = unit_filter_sql(query, with_map=unit_map is not None, labels=list(labels))
    cols = ", ".join(f'u."{c}"' for c in UNIT_COLUMNS)
    join = ""
    if unit_map is not None:
        cols += ", " + ", ".join(f'{_MAP_COLUMN[c]} AS "{c}"' for c in MAP_COLUMNS)
        join = " LEFT JOIN read_parquet(?) AS m ON m.file_id = f.file_id AND m.unit = u.unit"
    label_params = []
    from .labels import LABELS

    for kind, (_, fields) in LABELS.items():  # a sort by a label no table gives: nulls
        if kind not in labels and any(k.field in fields for k in sort):
            cols += ", " + ", ".join(f'{_COLUMN[name]} AS "{name}"' for name in fields)
    for kind, tables in labels.items():
        cols += ", " + ", ".join(f'{expr} AS "{name}"' for name, expr in _label_columns([kind]).items())
        join += (f" LEFT JOIN read_parquet(?, filename = true) AS l_{kind} ON l_{kind}.filename = f.{kind}_table"
                 f" AND l_{kind}.unit = u.unit AND l_{kind}.units = f.shard_name")
        label_params.append(tables)
    ctes = [
        "s0 AS (SELECT f.path AS path, f.file_id AS file_id, " + cols +
        " FROM read_parquet(?, filename = true) AS u JOIN files AS f ON u.filename = f.shard"
        f"{join} WHERE {where})"
    ]
    params = label_params + params
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


def select_units(refs: list[ShardRef], query: str | None = None,
                 sort: str | list[SortKey] | None = None, limits: Limits | None = None, *,
                 unit_map: str | None = None, labels: dict[str, dict[int, str]] | None = None) -> pd.DataFrame:
    """The selected units of these shards as a DataFrame (see the module docstring); `unit_map`:
    the unit map's Parquet table, joined when given; `labels`: {kind: {file_id: table}} of
    units/labels.py, joined as the tag / class fields. Raises QueryError (also when nothing is
    segmented yet, so a typo is never silent)."""
    limits = limits or Limits()
    keys = parse_sort(sort) if isinstance(sort, str) or sort is None else list(sort)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ("path", "file_id", *UNIT_COLUMNS)})
    unit_filter_sql(query)
    if not refs:
        return empty
    files = _shard_files(refs)
    files.insert(1, "path", [r.path for r in refs])
    joined: dict[str, list[str]] = {}
    for kind, tables in (labels or {}).items():
        files[f"{kind}_table"] = [tables.get(r.file_id) for r in refs]
        if files[f"{kind}_table"].notna().any():
            joined[kind] = sorted(set(files[f"{kind}_table"].dropna()))
    shards = sorted(set(files["shard"]))
    sql, params = build_sql(shards, query, keys, limits, unit_map=unit_map, labels=joined)
    df = _query(sql, params, files)
    df["mfcc"] = df["mfcc"].map(lambda v: None if v is None else [float(x) for x in v])
    return df.reset_index(drop=True)


def _shard_files(refs) -> pd.DataFrame:
    """The `files` table a units query joins on: file_id, shard path and shard name per file."""
    return pd.DataFrame({"file_id": [r.file_id for r in refs], "shard": [str(r.shard) for r in refs],
                         "shard_name": [Path(r.shard).name for r in refs]})


def _query(sql: str, params: list, files: pd.DataFrame) -> pd.DataFrame:
    """Run a units query in a fresh DuckDB connection with `files` registered."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("files", files)
        return con.execute(sql, params).df()
    finally:
        con.close()


def parse_order(text: str) -> list[SortKey]:
    """'hz' or 'power:desc,hz': an output order (no keep-fractions: it selects nothing)."""
    keys = []
    for m in re.finditer(r"[^,\s]+", text or ""):
        sm = _SORT_ITEM.match(m.group(0))
        if not sm or sm.group(3):
            raise QueryError("an order key is field[:asc|desc] (fractions belong to --sort, which selects)",
                             query=text, position=m.start(), length=len(m.group(0)))
        try:
            field = UNIT_FIELDSET.resolve(sm.group(1))
        except KeyError as exc:
            raise QueryError(str(exc), query=text, position=m.start(), length=len(sm.group(1))) from None
        keys.append(SortKey(field.name, (sm.group(2) or "asc").lower() == "desc"))
    if not keys:
        raise QueryError("no order key given", query=text or "")
    return keys


def order_units(df: pd.DataFrame, keys: list[SortKey]) -> pd.DataFrame:
    """The same units in another order (the first key first; missing values last; ties keep
    their order)."""
    rows = df.to_dict("records")
    for key in reversed(keys):
        value = _getter(key.field)
        present = [r for r in rows if not _missing(value(r))]
        absent = [r for r in rows if _missing(value(r))]
        present.sort(key=value, reverse=key.descending)
        rows = present + absent
    return pd.DataFrame(rows, columns=df.columns)


def list_units(catalog, query: str | None = None, sort: str | list[SortKey] | None = None,
               limits: Limits | None = None, *, where: str | None = None,
               problems: list[str] | None = None) -> pd.DataFrame:
    """The units of the files matching `where` (a query on the files' fields), selected with
    `query`, `sort` and `limits` from the files' current segmentations. `problems`, when given,
    receives one line per file whose shard could not be used. Raises QueryError."""
    from ..catalog.index import select_file_ids
    from ..io.raw import declare as declare_raw
    from .store import current_shards

    file_ids = select_file_ids(catalog, where) if where is not None and where.strip() else None
    refs, issues = current_shards(catalog, file_ids)
    if problems is not None:
        problems.extend(issues)
    for f in catalog.files({r.file_id for r in refs}):  # rendering reads headerless PCM too
        if f.raw_format:
            declare_raw(f.path, f.raw_format)
    from .labels import current_label_tables, current_unit_map

    return select_units(refs, query, sort, limits, unit_map=current_unit_map(catalog.root),
                        labels=current_label_tables(catalog, {r.file_id for r in refs}))


def sort_rows(rows: list[dict], keys: list[SortKey]) -> list[dict]:
    """The same selection and order as list_units, in Python, for rows in memory (one file)."""
    current = sorted(rows, key=lambda r: (r.get("path") or "", r["start"]))
    for key in keys:
        value = _getter(key.field)
        present = [r for r in current if not _missing(value(r))]
        absent = [r for r in current if _missing(value(r))]
        present.sort(key=value, reverse=key.descending)  # stable: ties keep order
        current = present + absent
        if key.keep < 1.0:
            current = current[:math.ceil(key.keep * len(current))]
    return current


def _getter(name: str):
    if name.startswith("mfcc_"):
        k = int(name[5:]) - 1
        return lambda r: (r.get("mfcc") or [None] * N_MFCC)[k]
    return lambda r: r.get(name)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def unit_field_values(catalog, name: str, file_ids: set[int] | None = None) -> pd.DataFrame | None:
    """file_id, unit and the one unit field `name` of the units of the files' current
    segmentations (only those of `file_ids` when given), typed as list_units types that column
    (mfcc_k: Python floats), in no particular order; None for a label no unit has yet (list_units
    has no such column then). One narrow read of the shards: what a map colours by, without
    listing every column of every unit."""
    from .labels import LABELS, current_label_tables
    from .store import current_shards

    field = UNIT_FIELDSET.resolve(name).name
    if field not in _COLUMN or field in MAP_COLUMNS or field == "mfcc":
        raise ValueError(f"{name} is not a unit column of the shards")
    kind = next((k for k, (_, fields) in LABELS.items() if field in fields), None)
    refs, _ = current_shards(catalog)
    tables = current_label_tables(catalog, {r.file_id for r in refs}).get(kind, {}) if kind else {}
    if kind and not tables:
        return None
    if file_ids is not None:
        refs = [r for r in refs if r.file_id in file_ids]
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ("file_id", "unit", field)})
    if not refs:
        return empty
    files = _shard_files(refs)
    expr, join, params = _COLUMN[field], "", [sorted(set(files["shard"]))]
    if kind:
        files[f"{kind}_table"] = [tables.get(r.file_id) for r in refs]
        used = sorted(set(files[f"{kind}_table"].dropna()))
        if used:  # else: null for every unit asked for, as list_units gives them
            expr = _label_columns([kind])[field]
            join = (f" LEFT JOIN read_parquet(?, filename = true) AS l_{kind} ON l_{kind}.filename = f.{kind}_table"
                    f" AND l_{kind}.unit = u.unit AND l_{kind}.units = f.shard_name")
            params.append(used)
    sql = (f'SELECT f.file_id AS file_id, u."unit" AS unit, {expr} AS "{field}" '
           f"FROM read_parquet(?, filename = true) AS u JOIN files AS f ON u.filename = f.shard{join}")
    df = _query(sql, params, files)
    if field.startswith("mfcc_"):  # list_units gives mfcc as lists of Python floats
        df[field] = df[field].astype(object)
    return df
