"""The command line: thin front door over the catalog and the runner.

Exit status: 0 all ok, 1 some items failed (the message says how many), 2 usage or setup error,
130 interrupted (Ctrl-C; run the same command again to resume).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from .catalog.db import Catalog
from .catalog.records import file_record
from .catalog.sources import expand_sources
from .commands import embed as embed_commands
from .commands import tag as tag_commands
from .commands import enhance as enhance_commands
from .commands import fetch as fetch_commands
from .commands import insight as insight_commands
from .commands import map as map_commands
from .commands import transcribe as transcribe_commands
from .commands import units as units_commands
from .commands.common import EXIT_FAILURES, EXIT_OK, State, err, exit_code, fail, open_catalog, run_step_cli

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
) -> None:
    State.collection = collection


@app.command()
def init(folder: Path = typer.Argument(Path("."), help="Folder to make a collection (created if missing).")):
    """Create a collection: FOLDER/.audiotrove/ holds the catalog (SQLite, WAL)."""
    cat = Catalog.create(folder)
    err.print(f"collection ready: {cat.root} (catalog {cat.db_path})")
    err.print(f"next: audiotrove -C {folder} add <folders, files or lists>")
    cat.close()


@app.command()
def add(
    sources: Optional[List[str]] = typer.Argument(None, help="Folders (recursive), files, list files (*.txt or @list), URLs."),
    ids: Optional[str] = typer.Option(None, "--ids", help="File of record ids, one a line (optional TAB sha256:...): URLs from --template."),
    template: Optional[str] = typer.Option(None, "--template", help="URL template: 'https://host/{group}/{dir}/{id}.wav'."),
    id_pattern: Optional[str] = typer.Option(None, "--id-pattern", help="Regular expression for the ids; its named groups are template variables."),
    field: List[str] = typer.Option([], "--field", help="NAME=EXPR, a further variable: 'dir={id|rstrip:ab}' (repeatable)."),
    ia_query: Optional[str] = typer.Option(None, "--ia-query", help="Internet Archive search: 'collection:(FedFlix) AND mediatype:(movies)'."),
    ia_format: Optional[str] = typer.Option(None, "--ia-format", help="File format or extension to take from each item (mp4, flac, 'VBR MP3')."),
    ia_multi: bool = typer.Option(False, "--ia-multi", help="Every file of the format, not only the largest per item."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many Internet Archive items."),
    ia_base_url: Optional[str] = typer.Option(None, "--ia-base-url", help="Internet Archive API base (default $AUDIOTROVE_IA_URL or https://archive.org)."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help="CSV (or .tsv) of your metadata: each column becomes a field meta.<column>."),
    match_column: Optional[str] = typer.Option(None, "--match-column", help="The --metadata column naming the file (path, URL, file name or id)."),
):
    """Register sources in the collection. Re-adding a file is a no-op.

    URLs are stored (user:password removed: put credentials in ~/.netrc) and downloaded by
    `audiotrove fetch`; a list file may give a checksum after a tab: `URL<TAB>sha256:...`.
    """
    from .errors import UsageError
    from .sources.adding import RemoteOptions, add_remote, check
    from .sources.register import record_checksums

    remote = RemoteOptions(ids, template, id_pattern, list(field), ia_query, ia_format, ia_multi, limit,
                           ia_base_url, metadata, match_column)
    if not sources and not remote.any():
        raise fail("nothing to add: give folders, files, lists or URLs, or --ids, --ia-query, --metadata")
    with open_catalog() as cat:
        try:
            check(remote)
            if sources:
                found = expand_sources(sources)
                added, present = cat.add_files(found.entries)
                record_checksums(cat, found.checksums)
                for path, why in found.skipped:
                    err.print(f"[yellow]skipped[/] {path}: {why}")
                if found.credentials_removed:
                    err.print(f"[yellow]note[/] user:password removed from {found.credentials_removed} URL(s) "
                              "(never stored): give them to `fetch` through ~/.netrc or $NETRC")
                print(f"added {added}, already present {present}, skipped {len(found.skipped)}")
            add_remote(cat, remote, say=print, warn=lambda m: err.print(f"[yellow]{m}[/]"))
        except UsageError as exc:
            raise fail(str(exc))


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
        raise typer.Exit(_analyze_one_off(files, workers, overrides, item_timeout))
    with open_catalog() as cat:
        summary = run_step_cli(cat, "analyze", overrides, workers=workers, retry_failed=retry_failed,
                               item_timeout_s=item_timeout)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))


def _analyze_one_off(files: list[str], workers: Optional[int], overrides: dict,
                     item_timeout: Optional[float] = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="audiotrove-"))
    try:
        with Catalog.create(tmp) as cat:
            found = expand_sources(files)
            cat.add_files(found.entries)
            summary = run_step_cli(cat, "analyze", overrides, workers=workers,
                                   show_progress=len(found.entries) > 1, item_timeout_s=item_timeout)
            by_path = {f.path: file_record(f, res) for f, res in cat.iter_latest()}
            for path, _, _ in found.entries:
                print(json.dumps(by_path[path]), flush=True)
            for path, why in found.skipped:
                print(json.dumps({"path": path, "status": "error", "error": why}), flush=True)
        failed = summary.failed + len(found.skipped)
        if failed:
            err.print(f"[red]{failed} of {len(found.entries) + len(found.skipped)} file(s) failed[/]")
        return EXIT_FAILURES if failed else EXIT_OK
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@app.command()
def status():
    """Counts per step and state, and the failures with their messages."""
    with open_catalog() as cat:
        total = cat.file_count()
        print(f"collection {cat.root}: {total} files")
        counts = cat.step_counts()
        done: dict[str, int] = {}
        for step, state, n in counts:
            print(f"  {step:<10} {state:<6} {n}")
            done[step] = done.get(step, 0) + n
        for step, n in done.items():
            if total - n:
                print(f"  {step:<10} {'todo':<6} {total - n}")
        failures = cat.failures()
        if failures:
            print("failures:")
            for path, step, error in failures:
                print(f"  {path} [{step}]: {error}")
        raise typer.Exit(EXIT_FAILURES if failures else EXIT_OK)


for _module in (
    insight_commands,
    enhance_commands,
    units_commands,
    transcribe_commands,
    embed_commands,
    tag_commands,
    fetch_commands,
    map_commands,
):
    _module.register(app)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
