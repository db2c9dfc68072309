"""`audiotrove fetch`: download every registered URL that has no verified local copy
(`--refresh`: and ask the server, with the copy's ETag / Last-Modified, whether the others
changed; a changed file is downloaded again and replaces its copy, so the steps redo it).

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
from ..io.fetch import CHECKSUM_ALGOS, Download, Fetched, Fetcher, FetchOptions, contained, mask_url

CACHE_DIR = "cache"


def cache_folder(cat: Catalog, to: str | os.PathLike | None = None) -> Path:
    """--to DIR, or the collection's cache <collection>/.audiotrove/cache."""
    return Path(to).resolve() if to else cat.root / CATALOG_DIR / CACHE_DIR


@dataclass
class FetchSummary:
    ok: int = 0
    failed: int = 0
    present: int = 0          # already fetched and still on disk (not checked)
    unchanged: int = 0        # --refresh: the copy is current (304, or the same bytes sent again)
    updated: int = 0          # --refresh: a changed file, downloaded again
    bytes: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (masked URL, message)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        checked = f", {self.unchanged} unchanged, {self.updated} updated" if self.unchanged or self.updated else ""
        text = (f"fetch: {self.ok} ok, {self.failed} failed, {self.present} already fetched{checked}; "
                f"{self.bytes / 1e6:.1f} MB in {self.elapsed_s:.1f} s ({self.mb_per_s:.1f} MB/s)")
        if self.interrupted:
            text += "; interrupted: run again to resume (partial files are kept)"
        return text


def pending(cat: Catalog, *, refresh: bool = False) -> tuple[list, int]:
    """(URL files to fetch: those without a verified local copy, all of them with `refresh`;
    how many have a copy and are left as they are)."""
    local = cat.local_copies()
    todo, present = [], 0
    for f in cat.files():
        if f.kind != "url":
            continue
        path = local.get(f.id)
        if path and os.path.isfile(path) and not refresh:
            present += 1
        else:
            todo.append(f)
    return todo, present


def fetch_urls(cat: Catalog, options: FetchOptions, *, to: str | os.PathLike | None = None,
               show_progress: bool = True, on_failure=None, refresh: bool = False) -> FetchSummary:
    """Fetch what is pending (`refresh`: also check the fetched files, see the module docstring);
    raises KeyboardInterrupt (with `.summary`) after saving what finished."""
    folder = cache_folder(cat, to)
    folder.mkdir(parents=True, exist_ok=True)
    todo, present = pending(cat, refresh=refresh)
    summary = FetchSummary(present=present)
    attrs = cat.attrs(name="source")
    local = {fid: path for fid, path in cat.local_copies().items() if os.path.isfile(path)}
    before = cat.attrs(name="fetch") if refresh else {}
    downloads = []
    for f in todo:
        source = attrs.get(f.id, {}).get("source", {})
        sums = {a: str(source[a]).lower() for a in CHECKSUM_ALGOS if source.get(a)}
        record = before.get(f.id, {}).get("fetch", {}) if f.id in local else {}
        validators = {k: record[k] for k in ("etag", "last_modified") if record.get(k)}
        downloads.append(Download(key=f.id, url=f.path, folder=folder, checksums=sums,
                                  validators=validators))
    started = time.perf_counter()

    def failed(got: Fetched) -> None:
        summary.failed += 1
        summary.failures.append((mask_url(got.url), got.error or "failed"))
        if on_failure is not None:
            on_failure(got)

    with FetchProgress(len(downloads), enabled=show_progress) as progress:
        fetcher = Fetcher(options, on_bytes=progress.add_bytes)
        urls = {f.id: f.path for f in cat.files() if f.kind == "url"}
        for fid, path in cat.local_copies().items():  # names other URLs hold stay theirs
            if fid in urls:
                fetcher.claim(path, urls[fid])
        results = fetcher.run(downloads)
        try:
            for got in results:
                old = local.get(got.key)
                if old is not None and (got.unchanged or got.status != "ok"):
                    # current (304), or the check failed: the copy stays, and so does its record
                    record = {k: v for k, v in before[got.key]["fetch"].items() if k != "check_error"}
                    record["checked_at"] = got.fetched_at
                    if got.unchanged:
                        summary.ok += 1
                        summary.unchanged += 1
                    else:
                        record["check_error"] = got.error
                        failed(got)
                    cat.set_attrs([(got.key, "fetch", record)])
                    progress.done(got)
                    continue
                cat.set_attrs([(got.key, "fetch", got.record())])
                if got.status == "ok":
                    summary.ok += 1
                    summary.bytes += got.bytes - got.resumed_from
                    if old is not None and got.sha256 == before[got.key]["fetch"].get("sha256"):
                        summary.unchanged += 1  # sent again (no validator to ask with), same bytes
                    elif old is not None:
                        summary.updated += 1
                        if os.path.realpath(old) != os.path.realpath(got.path) and contained(folder, Path(old)):
                            os.remove(old)  # the copy under an older name (Content-Disposition)
                else:
                    failed(got)
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
