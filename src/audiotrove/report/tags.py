"""What is in the collection: the `tag` step's classes summed over the selected files.

    rows, tagged = tag_table(index, where=node, limit=20)
    # rows: [{"class", "files", "share", "hours", "examples": [(path, %), ...]}, ...], most files first

files     selected files where the class is present (tags.<class> not null)
share     % of the tagged files' duration where the class is present (files weighted by their
          duration when it is known, equally otherwise)
hours     h of audio where the class is present (files with a known duration)
examples  the files where the class takes the largest share
"""
from __future__ import annotations

from ..catalog.index import TABLE, FieldIndex
from ..catalog.query import Node

FIELD_PREFIX = "tags."
CHUNK = 200  # aggregate columns per SQL statement


def class_fields(index: FieldIndex) -> list:
    """The per-class tag fields present in the data (tags.<class> numbers, not the registered ones)."""
    return [f for f in index.fields
            if f.name.startswith(FIELD_PREFIX) and f.kind == "number" and not f.registered]


def tag_table(index: FieldIndex, *, where: Node | None = None, limit: int = 20,
              examples: int = 3) -> tuple[list[dict], int]:
    """(the `limit` classes present in most files, the number of tagged files)."""
    fields = class_fields(index)
    sql, params = index.where(where)
    windows = index.column(index.fields.resolve("tags.windows"))
    dur = index.column(index.fields.resolve("media_info.container.duration"))
    tagged_where = f"({sql}) AND {windows} IS NOT NULL"
    tagged, total_s = index.conn.execute(
        f"SELECT count(*), sum({dur}) FROM {TABLE} WHERE {tagged_where}", params).fetchone()
    if not tagged or not fields:
        return [], int(tagged or 0)
    weight = f"coalesce({dur}, 1.0)"
    total_w = index.conn.execute(f"SELECT sum({weight}) FROM {TABLE} WHERE {tagged_where}",
                                 params).fetchone()[0] or 1.0
    stats = []
    for start in range(0, len(fields), CHUNK):
        part = fields[start:start + CHUNK]
        exprs = []
        for f in part:
            col = index.column(f)
            exprs += [f"count({col})", f"sum({col} * {weight})", f"sum({col} * {dur})"]
        row = index.conn.execute(f"SELECT {', '.join(exprs)} FROM {TABLE} WHERE {tagged_where}",
                                 params).fetchone()
        for k, f in enumerate(part):
            n, wsum, dsum = row[3 * k:3 * k + 3]
            if n:
                stats.append((f, int(n), (wsum or 0.0) / total_w, (dsum or 0.0) / 100 / 3600))
    stats.sort(key=lambda s: (-s[1], -s[2], s[0].name))
    rows = []
    for f, n, share, hours in stats[:limit]:
        col = index.column(f)
        found = index.conn.execute(
            f"SELECT path, {col} FROM {TABLE} WHERE ({sql}) AND {col} IS NOT NULL "
            f"ORDER BY {col} DESC, path LIMIT ?", [*params, examples]).fetchall()
        rows.append({"class": f.name[len(FIELD_PREFIX):], "files": n, "share": share,
                     "hours": hours if total_s else None, "examples": [(p, v) for p, v in found]})
    return rows, int(tagged)
