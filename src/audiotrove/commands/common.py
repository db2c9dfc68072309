"""What every command shares: global options, output formats, errors and exits, running a step.

Errors: a command raises `UsageError` (errors.py) for a bad request: `main` prints one clean line
(or, with `--format json`/`jsonl`, one JSON object on stdout) and exits 2. Anything else that
escapes a command is a bug: one line naming the command and the exception, the traceback kept
in the collection's .audiotrove/errors.log (printed with `--debug`), exit 1.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import typer
from rich.console import Console

from ..catalog.db import CATALOG_DIR, Catalog, CatalogError, find_root
from ..errors import LOG_NAME, UsageError, bug_message, log_bug

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ("table", "csv", "json", "jsonl")

# No wrapping when the stream is not a terminal (a log file keeps whole lines).
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


class State:
    """Global options (set by the app callback) and the current command's output format."""

    collection: Optional[Path] = None
    debug: bool = False
    fmt: str = "table"
    executor: Optional[str] = None  # --executor local|dask (commands/cluster.py)
    scheduler: Optional[str] = None  # --scheduler ADDRESS
    path_map: list = []  # --path-map LOCAL=REMOTE texts


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print an error (text, or a JSON object on stdout under --format json/jsonl) and return
    the Exit to raise: `raise fail("...")`."""
    print_error(message, code=code)
    return typer.Exit(code)


def print_error(message: str, *, code: int = EXIT_USAGE, kind: str = "usage") -> None:
    if State.fmt in ("json", "jsonl"):
        print(json.dumps({"error": message, "kind": kind, "exit": code}), flush=True)
        return
    from rich.markup import escape

    err.print("[red]error:[/] " + escape(message), soft_wrap=True)


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    """Record the command's output format (errors follow it); UsageError if unknown."""
    if fmt not in allowed:
        raise UsageError(f"unknown format {fmt!r}: use {', '.join(allowed)}")
    State.fmt = fmt
    return fmt


def open_catalog() -> Catalog:
    """The collection of -C (or the current folder or a parent); CatalogError (a UsageError)."""
    return Catalog.open(State.collection or Path.cwd())


def output_folder(path: Path) -> Path:
    """Create the folder an output file goes to (every -o does); UsageError if impossible."""
    folder = Path(path).expanduser().resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
    return folder


def progress_printer(stream=sys.stderr, threshold: int = 5000) -> Callable[[int, int], None]:
    """An index-sync progress callback that prints a line now and then when the work is large."""
    def report(done: int, total: int) -> None:
        if total >= threshold:
            end = "\n" if done >= total else "\r"
            print(f"indexing results: {done}/{total} files", end=end, file=stream, flush=True)
    return report


def open_index(cat: Catalog):
    """The catalog's field index, up to date; a warning when a read-only catalog is stale."""
    from ..views import open_index as _open

    idx = _open(cat, progress=progress_printer())
    if idx.stale_files:
        err.print(f"[yellow]warning:[/] the catalog is read-only; {idx.stale_files} changed file(s) "
                  "are not re-indexed")
    return idx


# --- running a step ------------------------------------------------------------------------

def run_step_cli(cat: Catalog, step: str, overrides: dict, **kwargs):
    """run_step with Ctrl-C turned into a clean exit (finished items are already saved), a
    usage error (another run holds the step's lock) into exit status 2; with --debug, the
    tracebacks of bugs met in this run are printed. The items run where --executor says
    (commands/cluster.py: the local pool, or a Dask cluster)."""
    from ..runner import run_step
    from .cluster import chosen_executor

    log = cat.root / CATALOG_DIR / LOG_NAME
    start = log.stat().st_size if log.exists() else 0
    try:
        with chosen_executor(workers=kwargs.get("workers"), item_timeout_s=kwargs.get("item_timeout_s")) as executor:
            if executor is not None:
                kwargs["executor"] = executor
            return run_step(cat, step, overrides, **kwargs)
    except UsageError as exc:
        summary = getattr(exc, "summary", None)  # a cluster gone mid-run: what finished is saved
        if summary is not None:
            err.print(summary.line())
        raise fail(str(exc))
    except KeyboardInterrupt as exc:
        summary = getattr(exc, "summary", None)
        if summary is not None:
            err.print(summary.line())
        err.print("interrupted: finished items are saved; run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    finally:
        if State.debug and log.exists() and log.stat().st_size > start:
            with open(log, encoding="utf-8") as fh:
                fh.seek(start)
                sys.stderr.write(fh.read())


def exit_code(summary) -> int:
    """0 when every item is ok, 1 (and a message saying how many) when some failed,
    in this run or in an earlier one whose failure still stands."""
    failed = summary.failed + getattr(summary, "failed_before", 0)
    if failed:
        err.print(f"[red]{failed} item(s) failed[/]: see `audiotrove status`")
        return EXIT_FAILURES
    return EXIT_OK


# --- writing rows --------------------------------------------------------------------------

def write_lines(lines: Iterable[str], stream=None) -> None:
    """Write lines in chunks (fast for 100 000 rows)."""
    stream = stream or sys.stdout
    write = stream.write
    buf = []
    for line in lines:
        buf.append(line)
        if len(buf) >= 2000:
            write("\n".join(buf) + "\n")
            buf = []
    if buf:
        write("\n".join(buf) + "\n")
    stream.flush()


def json_array(texts: Iterable[str]) -> Iterator[str]:
    """JSON texts as the lines of one JSON array."""
    first = True
    for t in texts:
        yield ("[" if first else ",") + t
        first = False
    yield "[]" if first else "]"


def write_dicts(dicts: Iterable[dict], fmt: str, *, columns: list[str] | None = None,
                stream=None) -> None:
    """Plain rows (dicts of JSON values) as csv, json or jsonl."""
    stream = stream or sys.stdout
    if fmt == "csv":
        dicts = iter(dicts)
        first = next(dicts, None)
        names = columns or (list(first) if first else [])
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(names)
        for d in ([first] if first is not None else []):
            writer.writerow([_csv_cell(d.get(n)) for n in names])
        for d in dicts:
            writer.writerow([_csv_cell(d.get(n)) for n in names])
        stream.flush()
        return
    texts = (json.dumps(d) for d in dicts)
    write_lines(texts if fmt == "jsonl" else json_array(texts), stream)


def _csv_cell(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


def write_listing(listing, fmt: str) -> bool:
    """A views.Listing in any format; False when there was no row (a table says so on stderr)."""
    from ..report import format as text

    if listing.texts is not None:  # whole JSON objects
        texts = iter(listing.texts)
        if fmt == "jsonl":
            write_lines(texts)
        else:
            write_lines(json_array(texts))
        return True
    if fmt != "table":
        write_dicts(listing.dicts(), fmt, columns=[f.name for f in listing.columns])
        return True
    rows = list(listing.rows)
    if not rows:
        return False
    shown = listing.columns[:-2] if listing.path_last else listing.columns
    columns = []
    for k, f in enumerate(shown):
        cell = text.formatter(f)
        cells = [cell(r[k]) for r in rows]
        width = max(len(f.heading), max(map(len, cells)))
        if f.kind == "number":
            columns.append([f.heading.rjust(width)] + [c.rjust(width) for c in cells])
        else:
            columns.append([f.heading.ljust(width)] + [c.ljust(width) for c in cells])
    if listing.path_last:
        n = len(shown)
        columns.append(["path"] + [r[n] + (f"  ({r[n + 1]})" if r[n + 1] else "") for r in rows])
    write_lines("  ".join(line).rstrip() for line in zip(*columns))
    return True


# --- help in plain words ------------------------------------------------------------------------

_PLAIN_TYPES = {"int": "N", "float": "NUMBER", "str": "TEXT", "Path": "PATH", "bool": None}


def plain_help() -> None:
    """Typer's help shows Python types (`<bool>` after every flag, `<list[str]>`, `<int range>
    [x>=1]`): show a word for the value (N, NUMBER, TEXT, PATH; nothing for a flag) and ranges
    in words ("at least 1", "0 to 1"). When stdout is not a terminal, help is not wrapped."""
    import typer.core as core

    def display(self, ctx):
        if getattr(self, "is_flag", False) or getattr(self, "is_bool_flag", False):
            return None
        if self.metavar is not None:
            return self.metavar
        try:
            bare = self.bare_type()
        except Exception:  # noqa: BLE001 - an unusual annotation: fall back to Typer's words
            return core.TyperOption.display_type_rich.__wrapped__(self, ctx)
        many = bare.startswith("list[")
        word = _PLAIN_TYPES.get(bare[5:-1] if many else bare, "VALUE")
        return None if word is None else word + ("..." if many or self.nargs != 1 else "")

    def number_range(self):
        lo, hi = getattr(self, "min", None), getattr(self, "max", None)
        if lo is not None and hi is not None:
            return f"{lo:g} to {hi:g}"
        if lo is not None:
            return f"at least {lo:g}"
        if hi is not None:
            return f"at most {hi:g}"
        return None

    for cls in (core.TyperOption, core.TyperArgument):
        if not hasattr(cls.display_type_rich, "__wrapped__"):
            original = cls.display_type_rich
            display.__wrapped__ = original
            cls.display_type_rich = display
            cls._get_number_range_help_str = number_range
    if not sys.stdout.isatty():  # a log file: wide lines, no wrapping mid-phrase for most texts
        os.environ.setdefault("TERMINAL_WIDTH", "160")  # read by typer.rich_utils when help is shown


# --- the top-level error handler -------------------------------------------------------------

def handle_bug(exc: BaseException, command: str) -> int:
    """An exception no command expected: one line, the traceback logged (and shown with --debug)."""
    trace = "".join(traceback.format_exception(exc))
    message = bug_message(exc, where=f"in `audiotrove {command}`")
    try:
        root = find_root(State.collection or Path.cwd())
        log_bug(root / CATALOG_DIR, message, trace)
    except (CatalogError, OSError):
        message = message.replace(f" (traceback in .audiotrove/{LOG_NAME})", " (run with --debug for the traceback)")
    print_error(message, code=EXIT_FAILURES, kind="bug")
    if State.debug:
        sys.stderr.write(trace)
    return EXIT_FAILURES


def handle_usage(exc: UsageError) -> int:
    print_error(str(exc), code=EXIT_USAGE)
    return EXIT_USAGE


__all__ = ["EXIT_OK", "EXIT_FAILURES", "EXIT_USAGE", "EXIT_INTERRUPTED", "FORMATS", "State", "err",
           "fail", "print_error", "check_format", "open_catalog", "open_index", "output_folder",
           "run_step_cli", "exit_code", "write_lines", "write_dicts", "write_listing", "json_array",
           "handle_bug", "handle_usage", "progress_printer", "plain_help"]
