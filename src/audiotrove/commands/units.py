"""CLI commands for units and features: segment, units, render, sort, features.

    audiotrove segment [--where Q] [--mode onset|speech|window:SECONDS] [--min-dur S] [--max-dur S]
    audiotrove units [QUERY] [--where Q] [--sort power:desc:0.75,clarity:desc] [--per-file N] [--limit N]
    audiotrove render --units QUERY [--where Q] [--sort hz] -o out.wav [--gap S | --crossfade MS]
    audiotrove sort FILE --by hz|power|clarity|dur [--desc] -o out.wav
    audiotrove features FILE... | --where Q  [--hop 0.1] [--set rms,zcr,...] -o out.parquet [--summary]
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UsageError
from .common import (
    EXIT_FAILURES,
    EXIT_OK,
    check_format,
    err,
    exit_code,
    fail,
    open_catalog,
    output_folder,
    run_step_cli,
)

_FORMATS = ("table", "csv", "json", "jsonl", "parquet")
DEFAULT_FEATURES = "rms,zcr,centroid,rolloff,flatness,mfcc,pitch"


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("segment")(segment_cmd)
    app.command("units")(units_cmd)
    app.command("render")(render_cmd)
    app.command("sort")(sort_cmd)
    app.command("features")(features_cmd)
    app.command("gc")(gc_cmd)


# --- segment ----------------------------------------------------------------------------------

def segment_cmd(
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    mode: str = typer.Option("onset", "--mode", "-m", help="onset, speech or window:SECONDS."),
    min_dur: Optional[float] = typer.Option(None, "--min-dur", help="Shortest unit kept, s (onset 0.08, speech 0.2, window: half of it)."),
    max_dur: Optional[float] = typer.Option(None, "--max-dur", help="Longest unit, s (onset 1.0, speech 10)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
    item_timeout: Optional[float] = typer.Option(
        None, "--item-timeout", metavar="SECONDS", min=0.001,
        help="Time limit per file, after which it fails and the batch goes on (default: 60 s + 10 x the seconds of audio decoded)."),
):
    """Cut every file (or those matching --where) into units and describe them.

    Units (file, start, dur, power, hz, note, octave, clarity, centroid, flatness, rolloff,
    zcr, mfcc) go to Parquet shards under .audiotrove/units/; each file gets units.count,
    units.median_power, units.median_hz, units.median_clarity, units.median_dur.
    Requires analyze (run first if needed; speech mode uses its speech sections).
    """
    from ..units.extract import ModeError, parse_mode, resolve_durations

    try:
        kind, window = parse_mode(mode)
        lo, hi = resolve_durations(mode, min_dur, max_dur)
    except ModeError as exc:
        raise fail(str(exc))
    canonical = kind if window is None else f"window:{window:g}"
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"mode": canonical, "min_dur": lo, "max_dur": hi}
        summary = run_step_cli(cat, "segment", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed, item_timeout_s=item_timeout)
        err.print(summary.line())
        if kind == "speech":
            _speech_source_note(cat, file_ids)
        raise typer.Exit(exit_code(summary))


def _speech_source_note(cat, file_ids) -> None:
    fallback = 0
    for f, results in cat.iter_current("segment"):
        if file_ids is not None and f.id not in file_ids:
            continue
        res = results.get("segment")
        if res and res.status == "ok" and ((res.data or {}).get("units") or {}).get("speech_source") == "level":
            fallback += 1
    if fallback:
        err.print(f"[yellow]note:[/] {fallback} file(s) had no speech sections in their analysis: "
                  "their speech units come from level alone")


def _select(cat, where: Optional[str]):
    if where is None or not where.strip():
        return None
    from ..catalog.index import select_file_ids
    from ..catalog.query import QueryError

    try:
        ids = select_file_ids(cat, where)
    except QueryError as exc:
        raise fail(str(exc))
    if not ids:
        raise fail(f"no file matches --where {where!r}", code=EXIT_OK)
    return set(ids)


# --- units (list) -------------------------------------------------------------------------------

def units_cmd(
    query: Optional[str] = typer.Argument(None, help="Unit filter: power > -30 and clarity > 0.8, hz > 1kHz, note = A, dur < 300ms ..."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="File filter (the files' fields)."),
    sort: Optional[str] = typer.Option(None, "--sort", "-s", help="key[:asc|desc][:fraction],... e.g. power:desc:0.75,clarity:desc"),
    per_file: Optional[int] = typer.Option(None, "--per-file", min=1, help="At most N units per file."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="At most N units in all."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, jsonl, json, csv or parquet (parquet needs -o)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
):
    """List units (after `segment`): a file filter, a unit filter, a sort with keep-fractions, limits."""
    check_format(fmt, _FORMATS)
    df = _list(query, where, sort, per_file, limit)
    _write_table(df, fmt, output)


def _list(query, where, sort, per_file, limit):
    from ..catalog.query import QueryError
    from ..views import list_units

    with open_catalog() as cat:
        try:
            found = list_units(cat, query, where=where, sort=sort, per_file=per_file, limit=limit)
        except QueryError as exc:
            raise fail(str(exc))
        for p in found.problems:
            err.print(f"[yellow]warning:[/] {p}")
        if not found.segmented:
            err.print("no units yet: run `audiotrove segment` first")
    return found.frame


def _write_table(df, fmt: str, output: Optional[Path]) -> None:
    if fmt == "parquet":
        if output is None:
            raise UsageError("--format parquet needs -o FILE")
        output_folder(output)
        df.to_parquet(output, index=False)
        err.print(f"{len(df)} units -> {output}")
        return
    if output:
        output_folder(output)
    stream = open(output, "w", newline="") if output else sys.stdout
    try:
        if fmt == "table":
            _print_table(df, stream)
        elif fmt == "csv":
            flat = _expand_mfcc(df)
            flat.to_csv(stream, index=False)
        else:
            from ..views.units import frame_records

            records = frame_records(df)
            if fmt == "json":
                json.dump(records, stream, indent=2)
                stream.write("\n")
            else:
                for r in records:
                    stream.write(json.dumps(r) + "\n")
    finally:
        if output:
            stream.close()
            err.print(f"{len(df)} units -> {output}")


def _expand_mfcc(df):
    import pandas as pd

    if "mfcc" not in df.columns:
        return df
    from ..units.schema import N_MFCC

    mf = pd.DataFrame([v if isinstance(v, list) else [None] * N_MFCC for v in df["mfcc"]],
                      columns=[f"mfcc_{i + 1}" for i in range(N_MFCC)], index=df.index)
    return pd.concat([df.drop(columns=["mfcc"]), mf], axis=1)


def _print_table(df, stream) -> None:
    """A compact human view: start, dur, power, pitch, clarity, centroid, path."""
    stream.write(f"{'start':>9} {'dur':>6} {'power':>7} {'hz':>8} {'note':>4} {'clarity':>7} {'centroid':>8}  path\n")
    for r in df.itertuples(index=False):
        hz = "" if _missing(r.hz) else f"{r.hz:.1f}"
        note = "" if _missing(r.note) else f"{r.note}{int(r.octave)}"
        centroid = "" if _missing(r.centroid) else f"{r.centroid:.0f}"
        stream.write(f"{r.start:>9.3f} {r.dur:>6.3f} {r.power:>7.1f} {hz:>8} {note:>4} {r.clarity:>7.2f} "
                     f"{centroid:>8}  {r.path}\n")
    err.print(f"{len(df)} units")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# --- render ----------------------------------------------------------------------------------

def render_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="Audio file to write (.wav, .flac, .ogg, .aiff)."),
    units: Optional[str] = typer.Option(None, "--units", "-u", help="Unit filter (as for `units`)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="File filter."),
    sort: Optional[str] = typer.Option(None, "--sort", "-s", help="Which units: key[:asc|desc][:fraction],... "
                                       "(as for `units`; with --per-file/--limit it decides which are kept)."),
    order: Optional[str] = typer.Option(None, "--order", help="The order they are played in: KEY[:desc][,KEY...] "
                                        "(default: the order --sort leaves, else path and start)."),
    per_file: Optional[int] = typer.Option(None, "--per-file", min=1, help="At most N units per file."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="At most N units in all."),
    gap: float = typer.Option(0.0, "--gap", min=0.0, help="Silence between units, s."),
    crossfade: float = typer.Option(0.0, "--crossfade", min=0.0, help="Overlap consecutive units by MS milliseconds."),
    fade: float = typer.Option(5.0, "--fade", min=0.0, help="Fade in/out of each unit, ms."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", min=8000, max=384000, help="Output rate, Hz "
                                              "(default: the highest rate among the units' files)."),
):
    """Render the selected units, in order, as one audio file (short fades, so nothing clicks).

    `--sort` selects (`power:desc:0.75,clarity:desc --per-file 100`), `--order` sets the order
    they are played in (`--order hz`), without changing which units were kept.
    """
    from ..catalog.query import QueryError
    from ..io.decode import DecodeError
    from ..units.render import render_units
    from ..units.select import order_units, parse_order

    try:
        order_keys = parse_order(order) if order else None
    except QueryError as exc:
        raise fail(str(exc))
    df = _list(units, where, sort, per_file, limit)
    if len(df) == 0:
        raise fail("no unit matches: nothing to render", code=EXIT_FAILURES)
    if order_keys:
        df = order_units(df, order_keys)
    output_folder(output)
    try:
        summary = render_units(df, output, gap_s=gap, crossfade_ms=crossfade, fade_ms=fade,
                               sample_rate_hz=sample_rate)
    except (ValueError, DecodeError) as exc:
        raise fail(str(exc), code=EXIT_FAILURES)
    _report_render(summary)


def _report_render(summary) -> None:
    for s in summary.skipped[:10]:
        err.print(f"[yellow]skipped[/] {s}")
    if len(summary.skipped) > 10:
        err.print(f"[yellow]... {len(summary.skipped) - 10} more skipped[/]")
    if summary.resampled:
        err.print(f"note: {summary.resampled} unit(s) resampled to {summary.sample_rate} Hz "
                  "(their files have another rate; --sample-rate chooses the output rate)")
    err.print(f"{summary.units} units, {summary.duration_s:.2f} s, {summary.sample_rate} Hz, "
              f"{summary.channels} ch -> {summary.path}")
    if summary.skipped:
        raise typer.Exit(EXIT_FAILURES)


# --- sort (one file) ---------------------------------------------------------------------------

def sort_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Audio file to re-order."),
    output: Path = typer.Option(..., "--output", "-o", help="Audio file to write."),
    by: str = typer.Option("hz", "--by", "-b", help="hz, power, clarity, dur (or any unit field: centroid, zcr...)."),
    desc: bool = typer.Option(False, "--desc", help="Descending order."),
    mode: str = typer.Option("onset", "--mode", "-m", help="onset, speech or window:SECONDS."),
    min_dur: Optional[float] = typer.Option(None, "--min-dur", help="Shortest unit kept, s."),
    max_dur: Optional[float] = typer.Option(None, "--max-dur", help="Longest unit, s."),
    gap: float = typer.Option(0.0, "--gap", min=0.0, help="Silence between units, s."),
    crossfade: float = typer.Option(0.0, "--crossfade", min=0.0, help="Overlap consecutive units by MS."),
    fade: float = typer.Option(5.0, "--fade", min=0.0, help="Fade in/out of each unit, ms."),
):
    """Segment + describe + render one file: its units re-ordered by a feature (no collection needed)."""
    from ..catalog.query import QueryError
    from ..io.decode import DecodeError, open_audio
    from ..units.extract import ModeError, UnitExtractor, resolve_durations
    from ..units.render import render_sorted
    from ..units.select import parse_sort, sort_rows

    try:
        keys = parse_sort(f"{by}:{'desc' if desc else 'asc'}")
        lo, hi = resolve_durations(mode, min_dur, max_dur)
        reader = open_audio(file)
        ex = UnitExtractor(sample_rate_hz=reader.sample_rate, channels=reader.channels, mode=mode,
                           min_dur_s=lo, max_dur_s=hi)
        rows: list[dict] = []
        for block in reader.blocks():
            rows += ex.update(block)
        rows += ex.finish()
    except (QueryError, ModeError) as exc:
        raise fail(str(exc))
    except DecodeError as exc:
        raise fail(f"{file}: {exc}", code=EXIT_FAILURES)
    if not rows:
        raise fail(f"{file}: no units found (try --mode window:0.5 or a smaller --min-dur)", code=EXIT_FAILURES)
    ordered = sort_rows(rows, keys)
    output_folder(output)
    try:
        summary = render_sorted(os.fspath(file), ordered, os.fspath(output), gap_s=gap,
                                crossfade_ms=crossfade, fade_ms=fade)
    except (ValueError, DecodeError) as exc:
        raise fail(str(exc), code=EXIT_FAILURES)
    _report_render(summary)


# --- features (time series) --------------------------------------------------------------------

def features_cmd(
    files: Optional[List[Path]] = typer.Argument(None, help="Audio files (one-off). Without: the collection's files."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="The collection's files matching this query."),
    hop: float = typer.Option(0.1, "--hop", min=0.005, help="Window (row) length, s."),
    feature_set: str = typer.Option(DEFAULT_FEATURES, "--set",
                                    help=f"Comma list of features, or all. Default: {DEFAULT_FEATURES.replace(',', ', ')}; "
                                    "all adds contrast, chroma and tempo (slower)."),
    summary: bool = typer.Option(False, "--summary", help="One row per file: mean, std, p10, p50, p90 of each column."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=".parquet or .csv (default: CSV on stdout)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    mfcc_top_db: Optional[float] = typer.Option(
        None, "--mfcc-top-db", min=0.0,
        help="librosa's default MFCC: floor every mel band this many dB below the file's loudest "
        "(librosa: 80; reads each file twice). Default: no clip, a sound's MFCC do not depend on the rest of the file."),
):
    """Time-series features: one row per window and file (time in s), tidy, ready to join.

    Columns by default: path, file_id (collection files), time (s, window start), rms (dBFS),
    zcr (0-1), centroid, rolloff (Hz), flatness (0-1), mfcc_1..13, hz (Hz, empty when
    unpitched), clarity (0-1). With `--set all` also contrast_1..7 (dB), chroma_C..chroma_B (0-1)
    and tempo (BPM, local, over 8 s).
    """
    from ..dsp.features import ALL_FEATURES, feature_columns
    from ..units.series import FeatureJob, run_feature_jobs

    names = list(ALL_FEATURES) if feature_set.strip() == "all" else \
        [n.strip() for n in feature_set.split(",") if n.strip()]
    try:
        feature_columns(names)
    except ValueError as exc:
        raise fail(str(exc))
    if output is not None and output.suffix.lower() not in (".parquet", ".csv"):
        raise fail("-o must end in .parquet or .csv")
    if output is not None:
        output_folder(output)
    if files:
        if where:
            raise fail("give FILES or --where, not both")
        jobs = [FeatureJob(os.path.abspath(p), None) for p in files]
    else:
        with open_catalog() as cat:
            ids = _select(cat, where)
            local = cat.local_copies()  # fetched URLs: their verified local copies
            jobs = [FeatureJob(local.get(f.id, f.path), f.id, f.raw_format) for f in cat.files(ids)
                    if f.kind == "file" or f.id in local]
    if not jobs:
        raise fail("no files to process")
    from ..runner.executor import LocalPoolExecutor, default_workers

    executor = LocalPoolExecutor(min(workers or default_workers(), len(jobs)))
    failed = run_feature_jobs(jobs, features=names, hop_s=hop, summary=summary, output=output,
                              executor=executor, mfcc_top_db=mfcc_top_db, on_error=lambda p, e: err.print(f"[red]error[/] {p}: {e}"))
    if output is not None and output.exists():
        rows, cols = _table_shape(output)
        err.print(f"wrote {rows} row(s) x {cols} column(s) to {output}")
    if failed:
        err.print(f"[red]{failed} of {len(jobs)} file(s) failed[/]")
    raise typer.Exit(EXIT_FAILURES if failed else EXIT_OK)


def _table_shape(path: Path) -> tuple[int, int]:
    """(rows, columns) of a written Parquet or CSV table."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        return meta.num_rows, meta.num_columns
    import csv

    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        return sum(1 for _ in reader), len(header)


# --- gc ------------------------------------------------------------------------------------------

def gc_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Say what would be removed, remove nothing."),
):
    """Remove what nothing uses any more: results of content no registered file has (a file that
    changed or was replaced), then unit shards and tag / class tables no remaining result points
    to. Says what it frees."""
    from ..report.format import size
    from ..views import collect_garbage

    with open_catalog() as cat:
        found = collect_garbage(cat, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    print(f"{verb} {found.results} result(s) of content no file has and {len(found.shards)} unit "
          f"shard(s) or label table(s) ({size(found.shard_bytes)})")
