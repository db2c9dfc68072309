"""Summaries: the `stats` object, the field list, the collection's status."""
from __future__ import annotations

from typing import Sequence

from ..catalog.db import Catalog
from ..catalog.fields import Field, FieldSet, describe_fields, registry
from ..catalog.index import FieldIndex
from ..catalog.records import PRIMARY_STEP


def stats(index: FieldIndex, fields: Sequence[str | Field] | None = None, *, where=None,
          bins: str | int | None = "auto", minority: float = 0.25,
          price_per_minute: float | None = None, workers: int | None = None,
          step: str = "analyze") -> dict:
    """Totals, uniformity and distributions (see report/summary.py): `stats --format json`."""
    from ..catalog.query import parse_field_list
    from ..report.summary import summarize

    if fields and any(isinstance(f, str) for f in fields):
        fields = parse_field_list([f.name if isinstance(f, Field) else f for f in fields], index.fields)
    return summarize(index, where=where, fields=fields, bins=bins, minority=minority,
                     price_per_minute=price_per_minute, workers=workers, step=step)


def field_list(index: FieldIndex | None = None) -> list[dict]:
    """Every field (name, kind, unit, description, discrete, aliases, registered): the
    registry's, plus those discovered in a collection's data when an index is given."""
    fields: FieldSet = registry() if index is None else index.fields
    items = describe_fields(fields)
    for item, f in zip(items, fields):
        item["registered"] = f.registered
    return items


def status(catalog: Catalog) -> dict:
    """{"root", "files", "urls_not_fetched", "steps": [{"step", "state", "files"}],
    "failures": [{"path", "step", "error"}]}: the steps that were run, files per state of
    their current result, files not analyzed yet ("todo" of analyze, the step every file gets;
    other steps run on the files asked for), and every current failure, URLs whose last
    download failed included (step "fetch")."""
    files = catalog.files()
    total = len(files)
    fetched = catalog.local_copies()
    urls = sum(1 for f in files if f.kind == "url" and f.id not in fetched)
    steps: list[dict] = []
    done: dict[str, int] = {}
    for step, state, n in catalog.step_counts():
        steps.append({"step": step, "state": state, "files": n})
        done[step] = done.get(step, 0) + n
    for step, n in done.items():
        todo = total - urls - n
        if todo > 0 and step == PRIMARY_STEP:
            steps.append({"step": step, "state": "todo", "files": todo})
    failures = [{"path": p, "step": s, "error": e} for p, s, e in catalog.failures()]
    # URLs whose last download failed (`fetch` records its outcome in the file's fetch.* group)
    tried = catalog.attrs(name="fetch")
    for f in files:
        got = tried.get(f.id, {}).get("fetch", {})
        if f.kind == "url" and f.id not in fetched and got.get("status") == "error":
            failures.append({"path": got.get("url") or f.path, "step": "fetch",
                             "error": got.get("error") or "failed"})
    return {"root": str(catalog.root), "files": total, "urls_not_fetched": urls,
            "steps": steps, "failures": failures}


__all__ = ["stats", "field_list", "status"]
