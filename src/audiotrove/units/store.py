"""The unit store: one Parquet shard per (audio, segmentation) under <collection>/.audiotrove/units/.

A shard holds the unit rows of one file's audio for one segmentation (mode, durations,
segment step version); it is named by a digest of the decoded audio and of that
configuration, so identical audio shares one shard and re-running writes the same name.
The shard carries no path: the catalog says which files use it. The `segment` step's
result (keyed by content hash, step version and parameters, like every result) holds
`units.shard`, the shard's file name; listing joins the current files to their shards in
DuckDB, so a query over hundreds of millions of units reads only the columns and row
groups it needs.

Shards are written to a temporary name and renamed (a crash never leaves half a shard).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog.db import CATALOG_DIR, Catalog
from ..io.write import temp_path
from .extract import UNIT_COLUMNS

UNITS_DIRNAME = "units"
SEGMENT_STEP = "segment"
N_MFCC = 13

SCHEMA = pa.schema([
    pa.field("unit", pa.int32(), nullable=False),
    pa.field("start", pa.float64(), nullable=False),
    pa.field("dur", pa.float64(), nullable=False),
    pa.field("power", pa.float32()),
    pa.field("hz", pa.float32()),
    pa.field("note", pa.string()),
    pa.field("octave", pa.int16()),
    pa.field("clarity", pa.float32()),
    pa.field("centroid", pa.float32()),
    pa.field("flatness", pa.float32()),
    pa.field("rolloff", pa.float32()),
    pa.field("zcr", pa.float32()),
    pa.field("mfcc", pa.list_(pa.float32(), N_MFCC)),
])
assert tuple(SCHEMA.names) == UNIT_COLUMNS


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


@dataclass
class ShardRef:
    file_id: int
    path: str  # the audio file
    shard: Path  # its unit shard
    content_hash: str | None


def current_shards(catalog: Catalog, file_ids: set[int] | None = None) -> tuple[list[ShardRef], list[str]]:
    """The shard of each file's latest ok segment result, and the problems met ('path: why').

    Files never segmented are skipped silently; a result whose shard is gone is reported.
    """
    base = units_dir(catalog)
    refs: list[ShardRef] = []
    problems: list[str] = []
    local = catalog.local_copies()  # a fetched URL's audio is its verified local copy
    for f, results in catalog.iter_latest(SEGMENT_STEP):
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


def mark_current(catalog: Catalog, *, step_version: str, params_hash: str,
                 content_hashes: Iterable[str]) -> int:
    """Make one segmentation the latest segment result of these files.

    Results are keyed by parameters, so segmenting again with parameters used before finds
    the old results up to date and stores nothing new; this moves their `created_at` to now
    so `units` listings and `units.count` (which read the latest result) follow the user's
    last choice. Returns the number of results touched.
    """
    hashes = [h for h in content_hashes if h]
    if not hashes:
        return 0
    now = time.time()
    touched = 0
    with catalog.transaction() as conn:
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            cur = conn.execute(
                f"UPDATE results SET created_at = ? WHERE step = ? AND step_version = ? AND params_hash = ? "
                f"AND status = 'ok' AND content_hash IN ({','.join('?' * len(chunk))})",
                [now, SEGMENT_STEP, step_version, params_hash, *chunk])
            touched += cur.rowcount
    return touched


def orphan_shards(catalog: Catalog) -> list[Path]:
    """Shards no stored segment result points to (left by older segmentations); for cleanup."""
    base = units_dir(catalog)
    if not base.exists():
        return []
    used = set()
    for (data,) in catalog.conn.execute(
            "SELECT data FROM results WHERE step = ? AND status = 'ok'", (SEGMENT_STEP,)):
        try:
            name = (json.loads(data).get("units") or {}).get("shard")
        except (TypeError, ValueError, AttributeError):
            continue
        if name:
            used.add(name)
    return sorted(p for p in base.glob("*.parquet") if p.name not in used)
