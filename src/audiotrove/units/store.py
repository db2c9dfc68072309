"""The unit store: one Parquet shard per (audio, segmentation) under <collection>/.audiotrove/units/.

A shard holds the unit rows of one file's audio for one segmentation (mode, durations,
segment step version); it is named by a digest of the decoded audio and of that
configuration, so identical audio shares one shard and re-running writes the same name.
The shard carries no path: the catalog says which files use it. The `segment` step's
result (keyed by content hash, step version and parameters, like every result) holds
`units.shard`, the shard's file name; listing joins the files' current results to their shards in
DuckDB, so a query over hundreds of millions of units reads only the columns and row
groups it needs.

Shards are written to a temporary name and renamed (a crash never leaves half a shard).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog.db import CATALOG_DIR, Catalog
from ..io.write import temp_path
from .schema import SCHEMA

UNITS_DIRNAME = "units"
SEGMENT_STEP = "segment"

def units_dir(catalog: Catalog) -> Path:
    """<collection>/.audiotrove/units (not created)."""
    return Path(catalog.root) / CATALOG_DIR / UNITS_DIRNAME


def config_key(config: dict) -> str:
    """A short stable hash of a segmentation configuration (mode, durations, version)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def shard_name(audio_digest: str, config: dict) -> str:
    return f"{audio_digest}-{config_key(config)}.parquet"


def rows_to_table(rows: Iterable[dict]) -> pa.Table:
    rows = list(rows)
    columns = {name: [r.get(name) for r in rows] for name in SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def write_shard(directory: str | os.PathLike, name: str, rows: Iterable[dict]) -> Path:
    """Write the rows as <directory>/<name> (atomically); return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = rows_to_table(rows)
    tmp = temp_path(directory / name)  # a name no `*.parquet` reader takes for a shard
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=65536)
        os.replace(tmp, directory / name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return directory / name


def read_shard(path: str | os.PathLike) -> pa.Table:
    return pq.read_table(path, schema=SCHEMA)


def unit_spans(units_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, start_s, dur_s) of a unit shard, sorted by start."""
    table = read_shard(units_path).select(["unit", "start", "dur"])
    unit = table.column("unit").to_numpy()
    start = table.column("start").to_numpy()
    dur = table.column("dur").to_numpy()
    order = np.argsort(start, kind="stable")
    return unit[order], start[order], dur[order]


@dataclass
class ShardRef:
    file_id: int
    path: str  # the audio file
    shard: Path  # its unit shard
    content_hash: str | None


def current_shards(catalog: Catalog, file_ids: set[int] | None = None) -> tuple[list[ShardRef], list[str]]:
    """The shard of each file's current ok segment result, and the problems met ('path: why').

    Files never segmented are skipped silently; a result whose shard is gone is reported.
    """
    base = units_dir(catalog)
    refs: list[ShardRef] = []
    problems: list[str] = []
    local = catalog.local_copies()  # a fetched URL's audio is its verified local copy
    for f, results in catalog.iter_current(SEGMENT_STEP, with_result=True):
        if file_ids is not None and f.id not in file_ids:
            continue
        res = results.get(SEGMENT_STEP)
        if res is None or res.status != "ok" or not res.data:
            continue
        name = ((res.data.get("units") or {}).get("shard"))
        if not name:
            continue
        shard = base / name
        if not shard.exists():
            problems.append(f"{f.path}: its unit shard {name} is missing (run `audiotrove segment` again)")
            continue
        refs.append(ShardRef(f.id, local.get(f.id, f.path), shard, f.content_hash))
    return refs, problems


def orphan_shards(catalog: Catalog, *, used_data: Iterable[str] | None = None) -> list[Path]:
    """Shards no stored segment result points to (`used_data`: the result JSON texts to count
    as stored, default all); `gc` removes them."""
    base = units_dir(catalog)
    if not base.exists():
        return []
    used = set()
    if used_data is None:
        used_data = (r[0] for r in catalog.conn.execute(
            "SELECT data FROM results WHERE step = ? AND status = 'ok'", (SEGMENT_STEP,)))
    for data in used_data:
        try:
            name = (json.loads(data).get("units") or {}).get("shard")
        except (TypeError, ValueError, AttributeError):
            continue
        if name:
            used.add(name)
    return sorted(p for p in base.glob("*.parquet") if p.name not in used)
