"""One-off mode: analyze files without a collection (a temporary one, removed afterwards)."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..catalog.db import Catalog
from ..catalog.fields import Field
from ..catalog.records import file_record
from ..catalog.sources import expand_sources


@dataclass
class OneOffResult:
    """records: one JSON object per file in the order given (as `ls --format jsonl` prints them;
    a file that could not be added: {"path", "status": "error", "error"}); columns and rows:
    the `ls` table of them; failed: how many failed."""

    records: list[dict] = field(default_factory=list)
    columns: list[Field] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    failed: int = 0


def analyze_files(files: list[str], overrides: dict | None = None, *, workers: int | None = None,
                  show_progress: bool = False, run: Callable | None = None,
                  raw_format: str | None = None, item_timeout_s: float | None = None,
                  on_record: Callable[[dict], None] | None = None) -> OneOffResult:
    """Analyze FILES in a temporary collection; `run` is the runner call (runner.run_step by
    default; the CLI passes its Ctrl-C-aware wrapper).

    `on_record(record)` receives each file's record as soon as it and every file given before
    it are done: the order of `records`, shown while the batch runs (and kept if it is cut short)."""
    from ..runner import run_step
    from .files import list_files, open_index

    run = run or run_step
    tmp = Path(tempfile.mkdtemp(prefix="audiotrove-"))
    out = OneOffResult()
    try:
        with Catalog.create(tmp) as cat:
            found = expand_sources(files)
            cat.add_files(found.entries, raw_format=raw_format)
            in_order = _InOrder(cat, [path for path, _, _ in found.entries], on_record)
            summary = run(cat, "analyze", overrides or {}, workers=workers,
                          show_progress=show_progress and len(found.entries) > 1,
                          item_timeout_s=item_timeout_s, on_commit=in_order.done)
            out.records = in_order.finish()
            for path, why in found.skipped:
                out.records.append({"path": path, "status": "error", "error": why})
                if on_record is not None:
                    on_record(out.records[-1])
            listing = list_files(open_index(cat), shape="summary")
            out.columns, out.rows = listing.columns, list(listing.rows)
        out.failed = summary.failed + len(found.skipped)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _InOrder:
    """The records of `paths` in their order, each handed to `on_record` once it and all
    before it are committed."""

    def __init__(self, catalog: Catalog, paths: list[str], on_record: Callable[[dict], None] | None):
        self.catalog, self.paths, self.on_record = catalog, paths, on_record
        self.ids = catalog.file_ids(paths)
        self.rows = {f.id: f for f in catalog.files()}  # file_record reads only the path
        self.finished: set[int] = set()
        self.records: list[dict] = []

    def done(self, file_id: int) -> None:
        self.finished.add(file_id)
        if self.on_record is not None:
            self._emit(lambda path: self.ids.get(path) in self.finished)

    def finish(self) -> list[dict]:
        self._emit(lambda path: True)
        return self.records

    def _emit(self, ready: Callable[[str], bool]) -> None:
        while len(self.records) < len(self.paths) and ready(self.paths[len(self.records)]):
            path = self.paths[len(self.records)]
            f = self.rows[self.ids[path]]
            record = file_record(f, self.catalog.current_results(f.id))
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)


__all__ = ["OneOffResult", "analyze_files"]
