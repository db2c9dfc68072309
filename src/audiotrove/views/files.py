"""File listings: what `ls`, `export` and `Collection.frame()` show, from the field index."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..catalog.db import Catalog
from ..catalog.fields import Field
from ..catalog.index import FieldIndex, select_file_ids
from ..catalog.query import Node, parse_field_list, parse_sort

# The columns `ls` shows by default (those with a value among the selected files).
LS_DEFAULT = (
    "status", "media_info.container.duration", "media_info.audio.codec",
    "media_info.audio.sample_rate", "media_info.audio.channels", "audio.loudness.measured",
    "audio.loudness.true_peak", "audio.noise.snr_average",
)
SHAPES = ("summary", "all", "records")


def open_index(catalog: Catalog, *, progress: Callable[[int, int], None] | None = None) -> FieldIndex:
    """The catalog's field index, brought up to date (`index.stale_files` > 0 on a read-only
    catalog that has changed since it was last indexed)."""
    return FieldIndex.open(catalog, progress=progress)


@dataclass
class Listing:
    """Rows of fields. `rows` are tuples in `columns` order with the values as the index keeps
    them (lists as JSON text, bools 0/1): `dicts()` gives JSON values. With the "records" shape,
    `texts` holds each file's whole JSON object as text instead (columns and rows empty)."""

    columns: list[Field]
    rows: Iterator[tuple] = field(default_factory=lambda: iter(()))
    texts: Iterator[str] | None = None
    path_last: bool = False  # the last two columns are path and error (a table shows them last)

    def dicts(self) -> Iterator[dict]:
        cols = self.columns
        for row in self.rows:
            yield {f.name: f.json_value(v) for f, v in zip(cols, row)}


def list_files(index: FieldIndex, query: str | Node | None = None, *,
               fields: str | Sequence[str] | None = None, sort: str | None = None,
               limit: int | None = None, shape: str = "summary") -> Listing:
    """The files matching `query`, in `sort` order (path by default). Raises QueryError.

    With `fields`, those columns (path first unless named, for every shape but "summary").
    Without: "summary" = the LS_DEFAULT columns that have data, then path and error;
    "all" = path then every field with data (export); "records" = whole JSON objects."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    node = index.parse(query) if isinstance(query, str) and query.strip() else (
        None if isinstance(query, str) else query)
    keys = parse_sort(sort, index.fields) if sort else None
    chosen = parse_field_list(fields, index.fields) if fields else None
    path, error = index.fields.resolve("path"), index.fields.resolve("error")
    if chosen is None and shape == "records":
        return Listing([], texts=index.record_texts(node, sort=keys, limit=limit))
    path_last = False
    if chosen is None:
        if shape == "summary":
            chosen = index.populated([index.fields.resolve(n) for n in LS_DEFAULT], node)
        else:
            chosen = [path] + index.populated([f for f in index.export_fields(node) if f.name != "path"], node)
    if shape == "summary" and path not in chosen:
        chosen = [*chosen, path, error]
        path_last = True
    elif path not in chosen:
        chosen = [path, *chosen]
    return Listing(chosen, index.rows(node, columns=chosen, sort=keys, limit=limit), path_last=path_last)


def file_frame(index: FieldIndex, *, where: str | Node | None = None,
               fields: Sequence[str] | str | None = None, sort: str | None = None,
               limit: int | None = None):
    """A pandas DataFrame, one row per selected file, dotted field names as columns (every
    field with data by default). Integer fields are "Int64", true/false "boolean", lists
    Python lists."""
    import pandas as pd

    if fields:
        listing = list_files(index, where, fields=fields, sort=sort, limit=limit, shape="all")
    else:
        listing = file_listing_all(index, where, sort, limit=limit)
    cols = listing.columns
    rows = list(listing.rows)
    data = {f.name: _series(f, [r[k] for r in rows], pd) for k, f in enumerate(cols)}
    return pd.DataFrame(data, columns=[f.name for f in cols])


def _series(f: Field, values: list, pd):
    if f.kind == "list":
        return pd.Series([f.json_value(v) for v in values], dtype=object)
    if f.kind == "bool":
        return pd.Series([f.json_value(v) for v in values], dtype="boolean")
    if f.kind == "number":
        if f.integer:
            try:
                return pd.Series(pd.array(values, dtype="Int64"))
            except (TypeError, ValueError):
                pass
        try:
            return pd.Series(values, dtype="float64")
        except (TypeError, ValueError):
            return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)


def export_files(index: FieldIndex, output: str | os.PathLike, *, where: str | None = None,
                 fields: str | Sequence[str] | None = None, sort: str | None = None) -> int:
    """Write the selection to `output` (.csv, .parquet, .json, .jsonl; written to a temporary
    name, then renamed; its folder is created). Returns the number of rows."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    suffix = output.suffix.lower()
    try:
        if suffix in (".json", ".jsonl"):
            if fields:
                listing = list_files(index, where, fields=fields, sort=sort, shape="all")
            else:
                listing = file_listing_all(index, where, sort)
            n = 0
            with open(tmp, "w", encoding="utf-8") as fh:
                if suffix == ".json":
                    fh.write("[")
                for row in listing.dicts():
                    text = json.dumps(row)
                    if suffix == ".json":
                        fh.write(("\n" if n == 0 else ",\n") + text)
                    else:
                        fh.write(text + "\n")
                    n += 1
                if suffix == ".json":
                    fh.write("\n]\n")
        else:
            df = file_frame(index, where=where, fields=fields, sort=sort)
            n = len(df)
            if suffix == ".csv":
                for name in df.columns:
                    if index.fields.resolve(name).kind == "list":
                        df[name] = [None if v is None else json.dumps(v) for v in df[name]]
                df.to_csv(tmp, index=False)
            else:
                _mixed_lists_as_json(df, index)
                df.to_parquet(tmp, index=False)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def _mixed_lists_as_json(df, index: FieldIndex) -> None:
    """List columns Arrow cannot type (transcript.words: [start, end, "word", p]) become JSON
    text, as in CSV; the others stay lists."""
    import pyarrow as pa

    for name in df.columns:
        if index.fields.resolve(name).kind != "list":
            continue
        try:
            pa.array(df[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            df[name] = [None if v is None else json.dumps(v) for v in df[name]]


def file_listing_all(index: FieldIndex, where, sort, *, limit: int | None = None) -> Listing:
    """path, then every registered field, then discovered fields with data (export columns)."""
    node = index.parse(where) if isinstance(where, str) and where.strip() else (
        None if isinstance(where, str) else where)
    cols = index.export_fields(node)
    if not any(f.name == "path" for f in cols):
        cols = [index.fields.resolve("path"), *cols]
    keys = parse_sort(sort, index.fields) if sort else None
    return Listing(cols, index.rows(node, columns=cols, sort=keys, limit=limit))


__all__ = ["LS_DEFAULT", "Listing", "list_files", "file_frame", "export_files", "open_index",
           "select_file_ids"]
