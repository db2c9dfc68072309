"""Units: the `units` listing (and what `render` renders), and `gc` of unit shards."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..catalog.db import Catalog
from ..units.select import Limits, SortKey
from ..units.select import list_units as select_list_units
from ..units.labels import orphan_label_tables
from ..units.store import SEGMENT_STEP, orphan_shards, units_dir


@dataclass
class UnitListing:
    """The selected units (a DataFrame: path, file_id, then the unit columns), the problems met
    (one line per file whose shard could not be read) and whether anything is segmented yet."""

    frame: object
    problems: list[str] = field(default_factory=list)
    segmented: bool = True


def list_units(catalog: Catalog, query: str | None = None, *, where: str | None = None,
               sort: str | list[SortKey] | None = None, per_file: int | None = None,
               limit: int | None = None) -> UnitListing:
    """Units of the files matching `where` (file fields), filtered by `query` (unit fields),
    sorted with keep-fractions (see units/select.py). Raises QueryError."""
    problems: list[str] = []
    df = select_list_units(catalog, query, sort, Limits(per_file, limit), where=where, problems=problems)
    segmented = catalog.conn.execute(
        "SELECT 1 FROM current_results c JOIN results r ON r.id = c.result_id "
        "WHERE c.step = ? AND r.status = 'ok' LIMIT 1", (SEGMENT_STEP,)).fetchone() is not None
    return UnitListing(df, problems, segmented)


@dataclass
class GarbageReport:
    """What `gc` found (and removed unless dry_run): results of content that no registered
    file has any more, and unit shards and tag / class tables that no remaining result points to."""

    results: int = 0
    shards: list[str] = field(default_factory=list)
    shard_bytes: int = 0
    dry_run: bool = False


def collect_garbage(catalog: Catalog, *, dry_run: bool = False) -> GarbageReport:
    """Remove results of content no registered file has (a file that changed or was
    replaced), then the unit shards no remaining result uses. Current results are never
    removed (they belong to a file's present content)."""
    report = GarbageReport(dry_run=dry_run)
    orphan_results = "SELECT id FROM results WHERE content_hash NOT IN " \
                     "(SELECT content_hash FROM files WHERE content_hash IS NOT NULL)"
    if dry_run:
        report.results = len(catalog.conn.execute(orphan_results).fetchall())
        kept = catalog.conn.execute(
            "SELECT data FROM results WHERE step = ? AND status = 'ok' AND id NOT IN "
            f"({orphan_results})", (SEGMENT_STEP,)).fetchall()
        shards = orphan_shards(catalog, used_data=[r[0] for r in kept])
        kept = catalog.conn.execute(
            "SELECT data FROM results WHERE step IN ('tag', 'classify') AND status = 'ok' AND id NOT IN "
            f"({orphan_results})").fetchall()
        shards += orphan_label_tables(catalog, used_data=[r[0] for r in kept])
    else:
        with catalog.transaction() as conn:
            report.results = conn.execute(f"DELETE FROM results WHERE id IN ({orphan_results})").rowcount
        shards = orphan_shards(catalog) + orphan_label_tables(catalog)
    for path in shards:
        try:
            report.shard_bytes += path.stat().st_size
            if not dry_run:
                path.unlink()
            report.shards.append(path.name)
        except FileNotFoundError:
            continue
    if not dry_run:  # temporary files of an interrupted write
        base = units_dir(catalog)
        old = time.time() - 3600  # a write in progress is younger than that
        for tmp in (base.glob(".tmp-*") if base.exists() else []):
            if tmp.stat().st_mtime > old:
                continue
            report.shard_bytes += tmp.stat().st_size
            tmp.unlink()
            report.shards.append(tmp.name)
    return report


def frame_records(df) -> list[dict]:
    """A listing's rows as `--format json` prints them and the web's JSON twins send them:
    NaN -> None, numpy scalars -> Python."""
    out = []
    for record in df.to_dict("records"):
        row = {}
        for k, v in record.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "item") and not isinstance(v, (list, str)):
                v = v.item()
            row[k] = v
        out.append(row)
    return out


__all__ = ["UnitListing", "list_units", "GarbageReport", "collect_garbage", "frame_records"]
