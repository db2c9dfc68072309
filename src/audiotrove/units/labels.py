"""Labels other steps give units, joined to the units when they are listed or queried.

Two steps write, per file, a small Parquet table with one row per unit of the file's current
segmentation (`unit`, and `units`: the name of the unit shard it was computed from, so a table
from an older segmentation never labels the new units):
    tag       (steps/tag.py, a segmented file)     -> tag (AudioSet display name), tag_score (0-1)
    classify  (steps/classify.py, unit-level model) -> label, confidence (0-1)
The step's current result names its table (tags.unit_table, class.shard with class.level
"unit"); list_units (units/select.py) joins them as the unit fields tag, tag_score,
class.label and class.confidence (units/schema.py).

A map (maps/) is stored as a Parquet table <collection>/.audiotrove/maps/<name>-<level>.parquet
(`table_path`, here because list_units reads it); the default unit map gives units the fields
map.x, map.y, map.order, map.cluster, grid.col and grid.row. maps/store.py writes it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..catalog.db import CATALOG_DIR, Catalog

# kind -> (step, {unit field: table column})
LABELS = {
    "tag": ("tag", {"tag": "tag", "tag_score": "tag_score"}),
    "class": ("classify", {"class.label": "label", "class.confidence": "confidence"}),
}
TAGS_DIRNAME = "tags"
CLASSES_DIRNAME = "classes"
MAPS_DIRNAME = "maps"
DEFAULT_MAP_NAME = "map"


def maps_dir(root: str | os.PathLike) -> Path:
    """<collection>/.audiotrove/maps (not created)."""
    return Path(root) / CATALOG_DIR / MAPS_DIRNAME


def table_path(root: str | os.PathLike, name: str, level: str) -> Path:
    """Where the map `name` of `level` (file | unit) lives."""
    return maps_dir(root) / f"{name}-{level}.parquet"


def current_unit_map(root: str | os.PathLike) -> str | None:
    """The default unit map's table, when there is one."""
    path = table_path(root, DEFAULT_MAP_NAME, "unit")
    return str(path) if path.exists() else None


def _table_name(kind: str, data: dict) -> str | None:
    if kind == "tag":
        return (data.get("tags") or {}).get("unit_table")
    c = data.get("class") or {}
    return c.get("shard") if c.get("level") == "unit" else None


def current_label_tables(catalog: Catalog, file_ids: set[int] | None = None) -> dict[str, dict[int, str]]:
    """{kind: {file_id: the table's path}} of the files' current results (existing tables only)."""
    base = Path(catalog.root) / CATALOG_DIR
    folder = {"tag": base / TAGS_DIRNAME, "class": base / CLASSES_DIRNAME}
    out: dict[str, dict[int, str]] = {}
    for kind, (step, _) in LABELS.items():
        found: dict[int, str] = {}
        for f, results in catalog.iter_current(step, with_result=True):
            res = results.get(step)
            if (file_ids is not None and f.id not in file_ids) or res is None or res.status != "ok" or not res.data:
                continue
            name = _table_name(kind, res.data)
            if name and (folder[kind] / name).exists():
                found[f.id] = str(folder[kind] / name)
        if found:
            out[kind] = found
    return out


def orphan_label_tables(catalog: Catalog, *, used_data: Iterable[str] | None = None) -> list[Path]:
    """Tag and class tables no stored result of their step names (`used_data`: the result JSON
    texts to count as stored, default all); `gc` removes them, as it does unit shards."""
    base = Path(catalog.root) / CATALOG_DIR
    out: list[Path] = []
    for kind, (step, _) in LABELS.items():
        folder = base / (TAGS_DIRNAME if kind == "tag" else CLASSES_DIRNAME)
        if not folder.exists():
            continue
        texts = used_data if used_data is not None else (r[0] for r in catalog.conn.execute(
            "SELECT data FROM results WHERE step = ? AND status = 'ok'", (step,)))
        used = set()
        for text in texts:
            try:
                data = json.loads(text) or {}
            except (TypeError, ValueError):
                continue
            name = (data.get("tags") or {}).get("unit_table") if kind == "tag" else (data.get("class") or {}).get("shard")
            if name:
                used.add(name)
        out += sorted(p for p in folder.glob("*.parquet") if p.name not in used)
    return out
