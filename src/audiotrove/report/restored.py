"""Restored files for the report: the selected files that have an `enhance` result, with its
output, chain, notes and the before / after / change numbers (see steps/enhance.py).

Read from the field index in one query (no per-file JSON decoding); whether each output still
exists, and how a browser can play it, is settled later by media.restored_media.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..catalog.index import TABLE, FieldIndex
from ..catalog.query import And, Node, Present
from .format import stored_list

# (key of enhance.before/after/change, label, unit of before/after, unit of change, better):
# better = -1 when lower is better, +1 when higher is better, 0 when neither (a level).
# hum: dB above the local spectral floor; null when no hum was detected.
METRICS = (
    ("noise_floor_dbfs", "noise floor", "dBFS", "dB", -1),
    ("snr_db", "SNR", "dB", "dB", +1),
    ("loudness_lufs", "loudness", "LUFS", "LU", 0),
    ("true_peak_dbtp", "true peak", "dBTP", "dB", 0),
    ("clicks_per_min", "clicks", "/min", "/min", -1),
    ("hum_level_db", "hum", "dB", "dB", -1),
    ("clipped_samples", "clipped samples", "", "", -1),
)
QUERY = "enhance.output?"
# Fields read per restored file; the optional ones are found in the data, not registered.
FIELDS = (
    "path", "enhance.output", "enhance.preset", "media_info.container.kind", "media_info.audio.codec",
    "media_info.container.duration",
    *(f"enhance.{when}.{key}" for when in ("before", "after", "change") for key, *_ in METRICS),
)
OPTIONAL = ("enhance.chain", "enhance.notes", "enhance.video")


@dataclass
class Restored:
    file_id: int
    path: str
    output: str
    chain: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)


def restored_query(index: FieldIndex, where: Node | None) -> Node:
    present = Present(index.fields.resolve("enhance.output"))
    return present if where is None else And((where, present))


def find_restored(index: FieldIndex, *, where: Node | None = None,
                  limit: int | None = None) -> tuple[list[Restored], dict]:
    """(up to `limit` restored files in path order, {"count", "query", "median_change": {key: value}})."""
    node = restored_query(index, where)
    count = index.count(node)
    info: dict = {"count": count, "query": QUERY, "median_change": {}}
    if not count:
        return [], info
    change = [index.fields.resolve(f"enhance.change.{key}") for key, *_ in METRICS]
    matrix = index.matrix(change, node)
    for k, (key, *_) in enumerate(METRICS):
        col = matrix[:, k] if matrix.size else np.zeros(0)
        col = col[np.isfinite(col)]
        if col.size:
            info["median_change"][key] = float(np.median(col))
    names = list(FIELDS) + [n for n in OPTIONAL if n in index.fields]
    rows = index.rows(node, columns=names, raw_columns=[f"{TABLE}.file_id"],
                      limit=None if limit is None else max(0, int(limit)))
    out = []
    for row in rows:
        v = dict(zip(names, row[1:]))
        out.append(Restored(row[0], v["path"], v["enhance.output"], chain=_texts(v.get("enhance.chain")),
                            notes=_texts(v.get("enhance.notes")), values=v))
    return out, info


__all__ = ["METRICS", "QUERY", "Restored", "find_restored", "restored_query"]


def _texts(value) -> list[str]:
    return [str(v) for v in stored_list(value, text_as_item=True)]
