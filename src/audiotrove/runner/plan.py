"""Which files need which step: everything lacking a current result, nothing else.

The run model
- An item is one registered file; a result is what one step returned for one content (keyed by
  content hash, step, step version and parameter hash).
- Each file has one current result per step (catalog `current_results`): the one the runner last
  committed or found up to date for it. Everything that reads results reads that one.
- A step that requires another reads the file's current result of that step, whatever its
  parameters. Only a file with none (or one for content it no longer has, or of an older step
  version) gets the requirement computed: with the parameters of its current result when it has
  one, with the defaults otherwise (`requirement_groups`).
"""
from __future__ import annotations

import json
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
    up_to_date_ids: list[int] = field(default_factory=list)  # to be made current (make_current)


def make_plan(catalog: Catalog, step: Step, params: dict, *, file_ids: set[int] | None = None,
              retry_failed: bool = False) -> Plan:
    phash = params_hash(params)
    plan = Plan(step, params, phash)
    statuses = catalog.result_status(step.name, step.version, phash)
    workdir = str(catalog.root / CATALOG_DIR)
    inputs = {name: catalog.current_pointers(name, file_ids) for name in step.requires}
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
            plan.up_to_date_ids.append(f.id)
            continue
        plan.items.append(Item(f.id, path, params, _inputs(inputs, f), workdir, f.raw_format))
    return plan


def requirement_groups(catalog: Catalog, step: Step, *,
                       file_ids: set[int] | None = None) -> list[tuple[dict, set[int]]]:
    """The files whose requirement `step` is not met, grouped by the parameters to run it with:
    [(overrides, file ids), ...]. Met = a current result of this step version for the file's
    present content (ok or failed: a failure stands until --retry-failed)."""
    current = catalog.current_pointers(step.name, file_ids)
    local = catalog.local_copies()
    groups: dict[str, tuple[dict, set[int]]] = {}
    for f in catalog.files(file_ids):
        path = f.path
        if f.kind == "url":
            path = local.get(f.id)
            if path is None or not os.path.isfile(path):
                continue  # not fetched yet: the step's own plan counts it
        res = current.get(f.id)
        if (res is not None and res.step_version == step.version
                and res.content_hash == f.content_hash and _unchanged(f, path)):
            continue
        params = {k: v for k, v in (res.params or {}).items() if k in step.defaults} if res else {}
        params = step.params(params)
        key = json.dumps(params, sort_keys=True)
        groups.setdefault(key, (params, set()))[1].add(f.id)
    return list(groups.values())


def _unchanged(f: FileRow, path: str) -> bool:
    """True when the file's size and mtime are those its stored hash was taken at."""
    return f.content_hash is not None and stat_facts(path) == (f.size_bytes, f.mtime_ns)


def _inputs(inputs: dict, f: FileRow) -> dict:
    """The current ok results of the required steps for this file's content, by step name."""
    out = {}
    for name, by_file in inputs.items():
        res = by_file.get(f.id)
        if res is not None and res.status == "ok" and res.content_hash == f.content_hash:
            out[name] = res.data
    return out
