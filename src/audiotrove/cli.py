"""The command line: thin front door over the catalog and the runner.

Exit status: 0 all ok, 1 some items failed (the message says how many), 2 usage or setup error,
130 interrupted (Ctrl-C; run the same command again to resume).
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .catalog.db import Catalog
from .catalog.sources import expand_sources
from .commands import cluster as cluster_commands
from .commands import embed as embed_commands
from .commands import tag as tag_commands
from .commands import enhance as enhance_commands
from .commands import fetch as fetch_commands
from .commands import insight as insight_commands
from .commands import map as map_commands
from .commands import serve as serve_commands
from .commands import mosaic as mosaic_commands
from .commands import transcribe as transcribe_commands
from .commands import units as units_commands
from .commands.common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    State,
    check_format,
    err,
    exit_code,
    fail,
    handle_bug,
    handle_usage,
    open_catalog,
    plain_help,
    run_step_cli,
    write_dicts,
)
from .errors import UsageError

plain_help()

app = typer.Typer(
    name="audiotrove",
    help=(
        "Analyze, query, restore and cut large collections of recorded sound.\n\n"
        "Typical use: `audiotrove init coll`, `audiotrove -C coll add ~/recordings`, "
        "`audiotrove -C coll analyze`, `audiotrove -C coll ls --format jsonl`. "
        "One-off: `audiotrove analyze a.wav b.mp3` prints one JSON object per file."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap as paragraphs; blank lines separate them
)


@app.callback()
def main_options(
    collection: Optional[Path] = typer.Option(
        None, "-C", "--collection", help="Collection folder (default: the current folder or a parent)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Print the traceback of an internal error (a bug), as kept in "
        ".audiotrove/errors.log."),
    executor: Optional[str] = typer.Option(
        None, "--executor", metavar="local|dask", help="Where the items of a step run (also an option of each "
        "step command): local processes, or a Dask cluster (see `audiotrove cluster`)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", metavar="ADDRESS", help="Dask scheduler address (default $AUDIOTROVE_SCHEDULER)."),
    path_map: List[str] = typer.Option(
        [], "--path-map", metavar="LOCAL=REMOTE", help="Dask workers see the folder LOCAL as REMOTE (repeatable)."),
) -> None:
    State.collection = collection
    State.debug = debug
    State.executor, State.scheduler, State.path_map = executor, scheduler, list(path_map)


@app.command()
def init(folder: Path = typer.Argument(Path("."), help="Folder to make a collection (created if missing).")):
    """Create a collection: FOLDER/.audiotrove/ holds the catalog (SQLite, WAL)."""
    cat = Catalog.create(folder)
    err.print(f"collection ready: {cat.root} (catalog {cat.db_path})")
    err.print(f"next: audiotrove -C {folder} add <folders, files or lists>")
    cat.close()


SKIPPED_SHOWN = 50  # skipped files listed one by one (the count is always complete)


def _raw_format(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    from .io.raw import parse_raw

    try:
        return parse_raw(text).text
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@app.command()
def add(
    sources: Optional[List[str]] = typer.Argument(None, help="Folders (recursive), files, list files (*.txt or @list), URLs."),
    raw: Optional[str] = typer.Option(
        None, "--raw", metavar="RATE:CHANNELS:FORMAT", help="The files are headerless PCM of this format, "
        "e.g. 8000:1:s16le (formats: s8, u8, s16le, s16be, s24le, s24be, s32le, s32be, f32le, f32be, "
        "f64le, f64be, ulaw, alaw)."),
    ids: Optional[str] = typer.Option(None, "--ids", help="File of record ids, one a line (optional TAB sha256:...): URLs from --template."),
    template: Optional[str] = typer.Option(None, "--template", help="URL template: 'https://host/{group}/{dir}/{id}.wav'."),
    id_pattern: Optional[str] = typer.Option(None, "--id-pattern", help="Regular expression for the ids; its named groups are template variables."),
    field: List[str] = typer.Option([], "--field", help="NAME=EXPR, a further variable: 'dir={id|rstrip:ab}' (repeatable)."),
    ia_query: Optional[str] = typer.Option(None, "--ia-query", help="Internet Archive search: 'collection:(FedFlix) AND mediatype:(movies)'."),
    ia_format: Optional[str] = typer.Option(None, "--ia-format", help="File format or extension to take from each item (mp4, flac, 'VBR MP3')."),
    ia_multi: bool = typer.Option(False, "--ia-multi", help="Every file of the format, not only the largest per item."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many Internet Archive items."),
    ia_base_url: Optional[str] = typer.Option(None, "--ia-base-url", help="Internet Archive API base (default $AUDIOTROVE_IA_URL or https://archive.org)."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help="CSV (or .tsv) of your metadata: each column becomes a field `meta.<column>`."),
    match_column: Optional[str] = typer.Option(None, "--match-column", help="The --metadata column naming the file (path, URL, file name or id)."),
):
    """Register sources in the collection. Re-adding a file is a no-op.

    Files in folders are registered by their extension (audio and video containers); every
    other file is counted as skipped, with the reason. Exit status 1 when nothing named could
    be added. URLs are stored (user:password removed: put credentials in ~/.netrc) and
    downloaded by `audiotrove fetch`; a list file may give a checksum after a tab:
    `URL<TAB>sha256:...`.
    """
    from .sources.adding import RemoteOptions, add_remote, check
    from .sources.register import record_checksums

    remote = RemoteOptions(ids, template, id_pattern, list(field), ia_query, ia_format, ia_multi, limit,
                           ia_base_url, metadata, match_column)
    if not sources and not remote.any():
        raise fail("nothing to add: give folders, files, lists or URLs, or --ids, --ia-query, --metadata")
    raw_format = _raw_format(raw)
    nothing_added = False
    with open_catalog() as cat:
        try:
            check(remote)
            if sources:
                found = expand_sources(sources)
                if raw_format:  # headerless PCM: the local files named
                    found.entries = [(p, k, s) for p, k, s in found.entries if k == "file"]
                added, present = cat.add_files(found.entries, raw_format=raw_format)
                record_checksums(cat, found.checksums)
                for path, why in found.skipped[:SKIPPED_SHOWN]:
                    err.print(f"[yellow]skipped[/] {path}: {why}")
                if len(found.skipped) > SKIPPED_SHOWN:
                    err.print(f"[yellow]... and {len(found.skipped) - SKIPPED_SHOWN} more skipped[/]")
                if found.credentials_removed:
                    err.print(f"[yellow]note[/] user:password removed from {found.credentials_removed} URL(s) "
                              "(never stored): give them to `fetch` through ~/.netrc or $NETRC")
                print(f"added {added}, already present {present}, skipped {len(found.skipped)}")
                nothing_added = not found.entries and not remote.any()
            add_remote(cat, remote, say=print, warn=lambda m: err.print(f"[yellow]{m}[/]"))
        except UsageError as exc:
            raise fail(str(exc))
    if nothing_added:
        err.print("[red]nothing could be added[/]")
        raise typer.Exit(EXIT_FAILURES)


@app.command()
def analyze(
    files: Optional[List[str]] = typer.Argument(
        None, help="One-off mode: analyze these files (no collection) and print one JSON object per line."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
    silence_threshold: Optional[float] = typer.Option(
        None, "--silence-threshold", help="Absolute silence threshold in dBFS (default -60)."),
    silence_min: Optional[float] = typer.Option(
        None, "--silence-min", help="Shortest silence reported, in seconds (default 2)."),
    quality: Optional[bool] = typer.Option(
        None, "--quality/--no-quality", help="DNSMOS speech quality score on up to 3 speech windows (default off: it costs about 0.2 s CPU per 9 s window)."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="One-off mode: jsonl (one JSON object per "
                            "file, the default), json, csv or table."),
    raw: Optional[str] = typer.Option(None, "--raw", metavar="RATE:CHANNELS:FORMAT",
                                      help="One-off mode: FILES are headerless PCM of this format (see add --raw)."),
    item_timeout: Optional[float] = typer.Option(
        None, "--item-timeout", metavar="SECONDS", min=0.001,
        help="Time limit per file, after which it fails and the batch goes on (default: 60 s + 10 x the seconds of audio decoded)."),
):
    """Analyze every registered file lacking a current result (or the FILES given).

    One pass over the decoded audio measures media info, loudness (BS.1770-4 / EBU R128, LRA,
    true peak), clipping, noise floor and SNR, hum, clicks, DC offset, bandwidth and the
    speech / music / silence / other sections. Changing an option recomputes every file.
    """
    overrides = {"silence_threshold_dbfs": silence_threshold, "silence_min_s": silence_min,
                 "quality": quality}
    if files:
        check_format(fmt)
        raise typer.Exit(_analyze_one_off(files, workers, overrides, fmt, _raw_format(raw), item_timeout))
    with open_catalog() as cat:
        summary = run_step_cli(cat, "analyze", overrides, workers=workers, retry_failed=retry_failed,
                               item_timeout_s=item_timeout)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))


def _analyze_one_off(files: list[str], workers: Optional[int], overrides: dict, fmt: str,
                     raw_format: Optional[str] = None, item_timeout: Optional[float] = None) -> int:
    from .views.oneoff import analyze_files

    def print_line(record: dict) -> None:  # jsonl: each file's line as soon as it is ready
        print(json.dumps(record), flush=True)

    result = analyze_files(files, overrides, workers=workers, show_progress=fmt != "table",
                           run=run_step_cli, raw_format=raw_format, item_timeout_s=item_timeout,
                           on_record=print_line if fmt == "jsonl" else None)
    if fmt == "json":
        write_dicts(result.records, fmt)
    elif fmt != "jsonl":  # jsonl: printed as the files finished
        from .catalog.records import flatten
        from .commands.common import write_listing
        from .views.files import Listing

        if fmt == "csv":
            flat = [flatten(r) for r in result.records]
            names: list[str] = []
            for r in flat:
                names += [n for n in r if n not in names]
            write_dicts(flat, "csv", columns=names)
        else:
            write_listing(Listing(result.columns, iter(result.rows), path_last=True), "table")
    failed = result.failed
    if failed:
        err.print(f"[red]{failed} of {len(result.records)} file(s) failed[/]")
        for r in result.records:
            if r.get("status") == "error" and fmt not in ("json", "jsonl"):
                err.print(f"  {r['path']}: {r.get('error')}")
    return EXIT_FAILURES if failed else EXIT_OK


@app.command()
def status(fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or jsonl.")):
    """Files per step and state (of each file's current result; todo: none yet), URLs not
    fetched yet, and the failures with their messages."""
    from .views import status as collection_status

    check_format(fmt)
    with open_catalog() as cat:
        st = collection_status(cat)
    if fmt == "json":
        print(json.dumps(st, indent=2))
    elif fmt in ("csv", "jsonl"):
        rows = [{"kind": "count", **s, "path": None, "error": None} for s in st["steps"]]
        rows += [{"kind": "failure", "step": f["step"], "state": "error", "files": 1, "path": f["path"],
                  "error": f["error"]} for f in st["failures"]]
        write_dicts(rows, fmt, columns=["kind", "step", "state", "files", "path", "error"])
    else:
        print(f"collection {st['root']}: {st['files']} files")
        for s in st["steps"]:
            print(f"  {s['step']:<10} {s['state']:<6} {s['files']}")
        if st["urls_not_fetched"]:
            print(f"  {st['urls_not_fetched']} URL(s) not fetched")
        if st["failures"]:
            print("failures:")
            for f in st["failures"]:
                print(f"  {f['path']} [{f['step']}]: {f['error']}")
    raise typer.Exit(EXIT_FAILURES if st["failures"] else EXIT_OK)


for _module in (
    insight_commands,
    enhance_commands,
    units_commands,
    transcribe_commands,
    embed_commands,
    tag_commands,
    fetch_commands,
    map_commands,
    serve_commands,
    mosaic_commands,
    cluster_commands,
):
    _module.register(app)
cluster_commands.add_executor_options(app)


def _guarded(command):
    """A command whose usage errors exit 2 with one clean line (a JSON object under --format
    json), and whose bugs exit 1 with one line and the traceback logged (see commands/common)."""
    name = command.__name__.removesuffix("_cmd")

    @functools.wraps(command)
    def run(*args, **kwargs):
        State.fmt = "table"
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, BrokenPipeError):
            raise
        except UsageError as exc:
            raise typer.Exit(handle_usage(exc))
        except Exception as exc:  # a bug: one line, the traceback logged
            raise typer.Exit(handle_bug(exc, name))
    return run


for _info in app.registered_commands:
    _info.callback = _guarded(_info.callback)


def main() -> None:
    try:
        app()  # standalone: Typer's own usage errors and Exit end the process here
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except UsageError as exc:
        sys.exit(handle_usage(exc))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: one line, the traceback logged
        sys.exit(handle_bug(exc, _command_name()))


def _command_name() -> str:
    args = sys.argv[1:]
    for k, a in enumerate(args):
        if a.startswith("-"):
            continue
        if k and args[k - 1] in ("-C", "--collection"):
            continue
        return a
    return ""


if __name__ == "__main__":
    main()
