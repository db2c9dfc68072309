"""`audiotrove fetch`: download every registered URL that has no verified local copy.

The downloads run on threads (io/fetch.py); this module is their coordinator: it alone writes
the catalog, one small transaction per finished item (`fetch.*` of the file), so a kill loses
nothing but the items in flight, whose partial bytes stay on disk for the next run to resume.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ..catalog.db import CATALOG_DIR, Catalog
from ..io.fetch import CHECKSUM_ALGOS, Download, Fetched, Fetcher, FetchOptions, mask_url

CACHE_DIR = "cache"


def cache_folder(cat: Catalog, to: str | os.PathLike | None = None) -> Path:
    """--to DIR, or the collection's cache <collection>/.audiotrove/cache."""
    return Path(to).resolve() if to else cat.root / CATALOG_DIR / CACHE_DIR


@dataclass
class FetchSummary:
    ok: int = 0
    failed: int = 0
    present: int = 0          # already fetched and still on disk
    bytes: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (masked URL, message)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        text = (f"fetch: {self.ok} ok, {self.failed} failed, {self.present} already fetched; "
                f"{self.bytes / 1e6:.1f} MB in {self.elapsed_s:.1f} s ({self.mb_per_s:.1f} MB/s)")
        if self.interrupted:
            text += "; interrupted: run again to resume (partial files are kept)"
        return text


def pending(cat: Catalog) -> tuple[list, int]:
    """(URL files without a verified local copy, how many have one)."""
    local = cat.local_copies()
    todo, present = [], 0
    for f in cat.files():
        if f.kind != "url":
            continue
        path = local.get(f.id)
        if path and os.path.isfile(path):
            present += 1
        else:
            todo.append(f)
    return todo, present


def fetch_urls(cat: Catalog, options: FetchOptions, *, to: str | os.PathLike | None = None,
               show_progress: bool = True, on_failure=None) -> FetchSummary:
    """Fetch what is pending; raises KeyboardInterrupt (with `.summary`) after saving what finished."""
    folder = cache_folder(cat, to)
    folder.mkdir(parents=True, exist_ok=True)
    todo, present = pending(cat)
    summary = FetchSummary(present=present)
    attrs = cat.attrs(name="source")
    downloads = []
    for f in todo:
        source = attrs.get(f.id, {}).get("source", {})
        sums = {a: str(source[a]).lower() for a in CHECKSUM_ALGOS if source.get(a)}
        downloads.append(Download(key=f.id, url=f.path, folder=folder, checksums=sums))
    started = time.perf_counter()
    with FetchProgress(len(downloads), enabled=show_progress) as progress:
        fetcher = Fetcher(options, on_bytes=progress.add_bytes)
        waiting = {f.id for f in todo}
        urls = {f.id: f.path for f in cat.files() if f.kind == "url"}
        for fid, path in cat.local_copies().items():  # names other URLs hold stay theirs
            if fid not in waiting and fid in urls:
                fetcher.claim(path, urls[fid])
        results = fetcher.run(downloads)
        try:
            for got in results:
                cat.set_attrs([(got.key, "fetch", got.record())])
                if got.status == "ok":
                    summary.ok += 1
                    summary.bytes += got.bytes - got.resumed_from
                else:
                    summary.failed += 1
                    summary.failures.append((mask_url(got.url), got.error or "failed"))
                    if on_failure is not None:
                        on_failure(got)
                progress.done(got)
        except KeyboardInterrupt as exc:
            summary.interrupted = True
            summary.elapsed_s = time.perf_counter() - started
            exc.summary = summary  # type: ignore[attr-defined]
            raise
        finally:
            results.close()  # stops the download threads at once, whatever happened here
    summary.elapsed_s = time.perf_counter() - started
    return summary


class FetchProgress:
    """A Rich bar: files done / total, bytes, MB/s, ETA, failures (only on a terminal)."""

    def __init__(self, total: int, *, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled and total > 0 and self.console.is_terminal
        self.bytes = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]fetch[/]"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("files"), _Volume(self), TimeRemainingColumn(),
            TextColumn("{task.fields[failures]}"), console=self.console, disable=not self.enabled)
        self.task = self.progress.add_task("fetch", total=total, failures="")

    def __enter__(self) -> "FetchProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def add_bytes(self, n: int) -> None:  # called from the download threads
        with self.lock:
            self.bytes += n

    def volume(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return f"{self.bytes / 1e6:.1f} MB · {self.bytes / 1e6 / elapsed:.1f} MB/s"

    def done(self, got: Fetched) -> None:
        self.failed += got.status != "ok"
        failures = f"[red]{self.failed} failed[/]" if self.failed else ""
        self.progress.update(self.task, advance=1, failures=failures)


class _Volume(ProgressColumn):
    """Bytes so far and MB/s, read live from the download threads' counter."""

    def __init__(self, owner: FetchProgress):
        super().__init__()
        self.owner = owner

    def render(self, task) -> Text:
        return Text(self.owner.volume())
