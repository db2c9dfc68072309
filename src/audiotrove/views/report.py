"""The report's data: what the HTML page shows, as plain JSON-ready data (`report --format json`)."""
from __future__ import annotations

from ..catalog.index import FieldIndex
from ..catalog.query import Node


def report_data(index: FieldIndex, *, where: str | Node | None = None, spec: str | None = None,
                minority: float = 0.25, max_problems: int | None = None,
                max_restored: int | None = None, title: str | None = None) -> dict:
    """{"title", "collection", "where", "stats" (the `stats` object), "problems": {"groups":
    {category: {"title", "count", "query"}}, "files": [{"path", "categories", "reasons",
    "values"}]}, "restored": {"count", "query", "median_change", "files": [{"path", "output",
    "chain", "notes", "values"}]}}. Raises QueryError."""
    from ..report.problems import find_problems
    from ..report.restored import find_restored
    from ..report.summary import summarize

    node = index.parse(where) if isinstance(where, str) and where.strip() else (
        where if not isinstance(where, str) else None)
    stats = summarize(index, where=node, minority=minority)
    problems, groups = find_problems(index, where=node, stats=stats, spec=spec)
    restored, info = find_restored(index, where=node, limit=max_restored)
    fields = index.fields
    root = index.catalog.root

    def plain(values: dict) -> dict:
        out = {}
        for name, v in values.items():
            f = fields.get(name)
            out[name] = f.json_value(v) if f is not None else v
        return out

    return {
        "title": title or f"{root.name} — audiotrove report",
        "collection": str(root),
        "where": where if isinstance(where, str) and where.strip() else None,
        "stats": stats,
        "problems": {
            "groups": groups,
            "files": [{"path": p.path, "categories": p.categories, "reasons": p.reasons,
                       "values": plain(p.values)}
                      for p in (problems if max_problems is None else problems[:max_problems])],
        },
        "restored": {**info, "files": [{"path": r.path, "output": r.output, "chain": r.chain,
                                        "notes": r.notes, "values": plain(r.values)}
                                       for r in restored]},
    }


__all__ = ["report_data"]
