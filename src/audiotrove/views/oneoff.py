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
                  raw_format: str | None = None, item_timeout_s: float | None = None) -> OneOffResult:
    """Analyze FILES in a temporary collection; `run` is the runner call (runner.run_step by
    default; the CLI passes its Ctrl-C-aware wrapper)."""
    from ..runner import run_step
    from .files import list_files, open_index

    run = run or run_step
    tmp = Path(tempfile.mkdtemp(prefix="audiotrove-"))
    out = OneOffResult()
    try:
        with Catalog.create(tmp) as cat:
            found = expand_sources(files)
            cat.add_files(found.entries, raw_format=raw_format)
            summary = run(cat, "analyze", overrides or {}, workers=workers,
                          show_progress=show_progress and len(found.entries) > 1,
                          item_timeout_s=item_timeout_s)
            by_path = {f.path: file_record(f, res) for f, res in cat.iter_current()}
            out.records = [by_path[path] for path, _, _ in found.entries]
            out.records += [{"path": path, "status": "error", "error": why} for path, why in found.skipped]
            listing = list_files(open_index(cat), shape="summary")
            out.columns, out.rows = listing.columns, list(listing.rows)
        out.failed = summary.failed + len(found.skipped)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["OneOffResult", "analyze_files"]
