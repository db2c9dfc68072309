"""The report's data: what the HTML page shows, as plain JSON-ready data (`report --format json`)."""
from __future__ import annotations

from ..catalog.index import FieldIndex
from ..catalog.query import Node


def report_data(index: FieldIndex, *, where: str | Node | None = None, spec: str | None = None,
                minority: float = 0.25, max_problems: int | None = None,
                max_restored: int | None = None, title: str | None = None,
                max_transcripts: int | None = None, transcript_chars: int | None = None) -> dict:
    """{"title", "collection", "where", "stats" (the `stats` object), "problems": {"groups":
    {category: {"title", "count", "query"}}, "files": [{"path", "categories", "reasons",
    "values"}]}, "restored": {"count", "query", "median_change", "files": [{"path", "output",
    "chain", "notes", "values"}]}, "transcripts": {"count", "query", "max_chars", "files":
    [{"path", "values", "lines": [{"start", "end", "text", "words": [[start, word], ...], "cut"}],
    "shown_chars", "total_chars", "more_segments"}]}} (transcripts as the page shows them: the
    first max_transcripts files, each cut to transcript_chars). Raises QueryError."""
    from ..report.problems import find_problems
    from ..report.restored import find_restored
    from ..report.summary import summarize
    from ..report.transcripts import MAX_CHARS, MAX_FILES, find_transcripts

    node = index.parse(where) if isinstance(where, str) and where.strip() else (
        where if not isinstance(where, str) else None)
    stats = summarize(index, where=node, minority=minority)
    problems, groups = find_problems(index, where=node, stats=stats, spec=spec)
    restored, info = find_restored(index, where=node, limit=max_restored)
    transcripts, transcript_info = find_transcripts(
        index, where=node, limit=MAX_FILES if max_transcripts is None else max_transcripts,
        max_chars=MAX_CHARS if transcript_chars is None else transcript_chars)
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
        "transcripts": {**transcript_info, "files": [
            {"path": t.path, "values": plain(t.values),
             "lines": [{"start": ln.start, "end": ln.end, "text": ln.text,
                        "words": [list(w) for w in ln.words], "cut": ln.cut} for ln in t.lines],
             "shown_chars": t.shown_chars, "total_chars": t.total_chars,
             "more_segments": t.more_segments} for t in transcripts]},
    }


__all__ = ["report_data"]
