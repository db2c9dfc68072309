"""Which files need which step: everything lacking a current result, nothing else."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..catalog.db import CATALOG_DIR, Catalog, FileRow
from ..io.hashing import params_hash
from ..steps import Item, Step
from .worker import stat_facts


@dataclass
class Plan:
    step: Step
    params: dict
    params_hash: str
    items: list[Item] = field(default_factory=list)
    up_to_date: int = 0
    failed_before: int = 0  # up to date, but their stored result is an error (see --retry-failed)
    urls_pending: int = 0  # URLs without a verified local copy yet (`audiotrove fetch` gets them)


def make_plan(catalog: Catalog, step: Step, params: dict, *, file_ids: set[int] | None = None,
              retry_failed: bool = False) -> Plan:
    phash = params_hash(params)
    plan = Plan(step, params, phash)
    statuses = catalog.result_status(step.name, step.version, phash)
    workdir = str(catalog.root / CATALOG_DIR)
    local = catalog.local_copies()
    for f in catalog.files(file_ids):
        path = f.path
        if f.kind == "url":  # a fetched URL is processed like a local file: its verified copy
            path = local.get(f.id)
            if path is None or not os.path.isfile(path):
                plan.urls_pending += 1
                continue
        status = statuses.get(f.content_hash) if _unchanged(f, path) else None
        if status == "ok" or (status == "error" and not retry_failed):
            plan.up_to_date += 1
            plan.failed_before += status == "error"
            continue
        plan.items.append(Item(f.id, path, params, _inputs(catalog, step, f), workdir))
    return plan


def _unchanged(f: FileRow, path: str) -> bool:
    """True when the file's size and mtime are those its stored hash was taken at."""
    return f.content_hash is not None and stat_facts(path) == (f.size_bytes, f.mtime_ns)


def _inputs(catalog: Catalog, step: Step, f: FileRow) -> dict:
    if not step.requires or f.content_hash is None:
        return {}
    latest = catalog.latest_results(f.content_hash)
    return {name: latest[name].data for name in step.requires
            if name in latest and latest[name].status == "ok"}
