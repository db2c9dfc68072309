"""One item by its catalog id: a file's record, its audio, a unit's stretch; keyset paging.

What the browser (web/) asks for one thing at a time. Each function costs one indexed lookup,
whatever the collection's size (the listings' `catalog.files()` / `iter_current()` read every
file, too slow per request at 100 000 files).

    file_row(catalog, file_id)            the FileRow, or None
    audio_path(catalog, file_id)          the file to read: the path, or a fetched URL's local copy
    file_record(index, file_id)           its JSON object, exactly as `ls --format json` prints it
    unit_stretch(catalog, file_id, unit)  (audio path, start s, dur s) of one unit, or None
    paging_keys, after_node               the condition "comes after this row" (keyset paging)
"""
from __future__ import annotations

import json
from typing import Sequence

from ..catalog.db import Catalog, FileRow
from ..catalog.fields import Field
from ..catalog.index import FieldIndex
from ..catalog.query import And, Compare, Node, Or


def file_row(catalog: Catalog, file_id: int) -> FileRow | None:
    row = catalog.conn.execute(
        "SELECT id, path, kind, size_bytes, mtime_ns, content_hash, raw_format FROM files WHERE id = ?",
        (int(file_id),)).fetchone()
    return None if row is None else FileRow(*tuple(row))


def audio_path(catalog: Catalog, file_id: int) -> str | None:
    """The file to decode for `file_id`: its path, or for a URL its verified local copy (None
    when the URL was not fetched, or the id is unknown)."""
    f = file_row(catalog, file_id)
    if f is None:
        return None
    if f.kind != "url":
        return f.path
    row = catalog.conn.execute(
        "SELECT json_extract(data, '$.local_path') FROM file_attrs WHERE file_id = ? AND name = 'fetch' "
        "AND json_extract(data, '$.status') = 'ok'", (int(file_id),)).fetchone()
    return row[0] if row and row[0] else None


def file_record(index: FieldIndex, file_id: int) -> dict | None:
    """The file's JSON object (as `ls --format json` prints it), None for an unknown id."""
    f = file_row(index.catalog, file_id)
    if f is None:
        return None
    node = Compare(index.fields.resolve("path"), "=", f.path)
    for text in index.record_texts(node, limit=1):
        return json.loads(text)
    return None


def unit_stretch(catalog: Catalog, file_id: int, unit: int) -> tuple[str, float, float] | None:
    """(audio path, start s, dur s) of unit `unit` of the file's current segmentation."""
    from ..units.store import SEGMENT_STEP, read_shard, units_dir

    row = catalog.conn.execute(
        "SELECT r.data FROM current_results c JOIN results r ON r.id = c.result_id "
        "WHERE c.file_id = ? AND c.step = ? AND r.status = 'ok'", (int(file_id), SEGMENT_STEP)).fetchone()
    if row is None or not row[0]:
        return None
    name = (json.loads(row[0]).get("units") or {}).get("shard")
    path = audio_path(catalog, file_id)
    shard = units_dir(catalog) / name if name else None
    if shard is None or path is None or not shard.exists():
        return None
    table = read_shard(shard).select(["unit", "start", "dur"]).to_pydict()
    for u, start, dur in zip(table["unit"], table["start"], table["dur"]):
        if u == unit:
            return path, float(start), float(dur)
    return None


def paging_keys(index: FieldIndex, sort: Sequence[tuple[Field, bool]] | None) -> list[tuple[Field, bool]]:
    """The keys that order a listing completely: the sort keys up to path, then path."""
    path = index.fields.resolve("path")
    keys = list(sort or [])
    for k, (f, _) in enumerate(keys):
        if f.name == "path":  # path is unique: nothing after it matters
            return keys[:k + 1]
    return keys + [(path, False)]


def after_node(index: FieldIndex, sort: Sequence[tuple[Field, bool]] | None, last: Sequence) -> Node:
    """The rows after `last` in the listing order `index.order_by(sort)` gives (the keys, each
    with missing values last, then path): `last` holds the last row's values of
    `paging_keys(index, sort)`. A query node, so it joins the user's query and goes through the
    same compiler."""
    path = index.fields.resolve("path")
    keys = paging_keys(index, sort)
    values = list(last)
    if len(values) != len(keys):
        raise ValueError("the paging cursor does not fit the sort keys")
    options = []
    for k, (f, desc) in enumerate(keys):
        equal = [Compare(g, "=", v) for (g, _), v in zip(keys[:k], values[:k])]
        v = values[k]
        if v is None:
            continue  # missing values come last: nothing of this key sorts after them
        beyond = Compare(f, "<" if desc else ">", v)
        after = beyond if f.name == "path" else Or((beyond, Compare(f, "=", None)))
        options.append(And(tuple(equal) + (after,)) if equal else after)
    if not options:
        return Compare(path, "=", None)  # nothing comes after (a path is never missing)
    return options[0] if len(options) == 1 else Or(tuple(options))


__all__ = ["file_row", "audio_path", "file_record", "unit_stretch", "paging_keys", "after_node"]
