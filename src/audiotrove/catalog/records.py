"""The JSON object for one file: path, status, error, then the data of its current results
(one per step, see db.py `current_results`).

    {"path": ..., "status": "ok"|"error"|"pending", "error": <message or null>,
     "source": {...}, "fetch": {...}, "meta": {...},   # per-file attributes, when present
     "media_info": {...}, "audio": {...}, ...}

The dotted names of this object (`media_info.audio.sample_rate`) are the column names of
every export and the field names of the query language.
"""
from __future__ import annotations

from .db import FileRow, ResultRow

PRIMARY_STEP = "analyze"


def file_record(f: FileRow, results: dict[str, ResultRow], attrs: dict | None = None) -> dict:
    """`attrs`: the file's per-file groups ({"source": {...}, "fetch": {...}, "meta": {...}})."""
    primary = results.get(PRIMARY_STEP)
    if primary is None:
        status, error = "pending", None
    else:
        status, error = primary.status, primary.error
    record: dict = {"path": f.path, "status": status, "error": error}
    for name in sorted(attrs or {}):
        record[name] = dict(attrs[name])
    for name in sorted(results, key=lambda n: n != PRIMARY_STEP):
        res = results[name]
        if res.status == "ok" and res.data:
            _merge(record, res.data)
    return record


def _merge(into: dict, data: dict) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def flatten(record: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are kept as values."""
    out: dict = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
