"""A user's metadata table joined onto the files: `add --metadata items.csv --match-column filename`.

Each row is matched to files by the value of its match column, tried as: the exact path or URL;
the file name (the last part of the path or URL, percent-decoded); the name of the fetched copy;
the Internet Archive identifier or template id (`source.identifier`, `source.id`). Every column
becomes a field `meta.<column>` (names cleaned to letters, digits and _): a column whose values
are all numbers is stored as numbers, otherwise as text; empty cells are left out.
A `.tsv` file is read with tabs; anything else with commas (UTF-8, a BOM is fine).
"""
from __future__ import annotations

import csv
import os
import re
import urllib.parse
from pathlib import Path

from ..catalog.db import Catalog
from ..errors import UsageError


def column_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text.strip()).strip("_")
    if not name:
        return "column"
    return name if re.match(r"[A-Za-z_]", name) else "c_" + name


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


def _typed_columns(rows: list[dict], columns: list[str]) -> dict[str, bool]:
    """column -> True when every non-empty value is a number."""
    numeric = {}
    for c in columns:
        ok = True
        for r in rows:
            v = (r.get(c) or "").strip()
            if v:
                try:
                    x = _number(v)
                    ok = x == x and abs(x) != float("inf")
                except ValueError:
                    ok = False
            if not ok:
                break
        numeric[c] = ok
    return numeric


def _keys(path: str, attrs: dict) -> set[str]:
    keys = {path}
    tail = urllib.parse.unquote(urllib.parse.urlsplit(path).path) if "://" in path else path
    keys.add(os.path.basename(tail.rstrip("/")))
    local = (attrs.get("fetch") or {}).get("local_path")
    if local:
        keys.add(os.path.basename(local))
    src = attrs.get("source") or {}
    for k in ("identifier", "id"):
        if src.get(k):
            keys.add(str(src[k]))
    return {k for k in keys if k}


def apply_metadata(cat: Catalog, table: str | Path, *, match_column: str) -> dict:
    """Store meta.* for every matched file; returns counts {rows, matched_rows, files, unmatched}."""
    table = Path(table)
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="\t" if table.suffix.lower() == ".tsv" else ",")
            header = reader.fieldnames or []
            rows = list(reader)
    except OSError as exc:
        raise UsageError(f"cannot read the metadata table {table}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{table} is not a readable CSV file: {exc}") from None
    if match_column not in header:
        raise UsageError(f"{table} has no column {match_column!r}; its columns: {', '.join(header)}")
    columns = [c for c in header if c is not None]
    names = {c: column_name(c) for c in columns}
    numeric = _typed_columns(rows, columns)
    attrs = cat.attrs()
    index: dict[str, list[int]] = {}
    for f in cat.files():
        for key in _keys(f.path, attrs.get(f.id, {})):
            index.setdefault(key, []).append(f.id)
    updates: dict[int, dict] = {}
    matched = 0
    unmatched: list[str] = []
    for r in rows:
        value = (r.get(match_column) or "").strip()
        ids = index.get(value) or index.get(os.path.basename(value)) or []
        if not ids:
            unmatched.append(value)
            continue
        matched += 1
        data = {}
        for c in columns:
            v = (r.get(c) or "").strip()
            if v:
                data[names[c]] = _number(v) if numeric[c] else v
        for fid in ids:
            updates.setdefault(fid, {}).update(data)
    cat.set_attrs([(fid, "meta", data) for fid, data in updates.items()], merge=True)
    return {"rows": len(rows), "matched_rows": matched, "files": len(updates), "unmatched": unmatched}
