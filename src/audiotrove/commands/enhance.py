"""CLI: `audiotrove enhance [FILES...] [--where Q] -o OUTDIR [options]`.

Runs the `enhance` step (steps/enhance.py) on the chosen files of the collection: resumable,
parallel, cached by parameters like every step. FILES not yet in the collection are added;
without a collection, FILES are enhanced through a temporary one (one-off mode). At the end a
table shows, per file, what changed (noise floor, SNR, loudness, true peak, clicks, hum).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from .common import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    err,
    exit_code,
    fail,
    run_step_cli,
)


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("enhance")(enhance_cmd)


def enhance_cmd(
    files: Optional[List[str]] = typer.Argument(
        None, help="Files or folders to enhance (added to the collection if new). Default: every file."),
    out_dir: Path = typer.Option(..., "-o", "--out-dir", help="Output folder: `NAME.enhanced.EXT` per file (another free name when that one is taken)."),
    where: Optional[str] = typer.Option(None, "--where", help='Query choosing the files, e.g. "snr < 20".'),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="archival | speech | music (with no option at all: archival)."),
    denoise: Optional[float] = typer.Option(None, "--denoise", metavar="AMOUNT", help="Noise reduction 0-100."),
    denoise_method: Optional[str] = typer.Option(
        None, "--denoise-method", help="auto (default: deepfilter when speech is the main content, else lsa) | deepfilter "
             "(DeepFilterNet3 speech network, fused with MMSE-LSA below 8 kHz) | lsa (MMSE-LSA, any content) | classic | rnnoise."),
    noise_profile: Optional[str] = typer.Option(
        None, "--noise-profile", metavar="START:END|auto",
        help="Classic subtraction: noise profile from this region (seconds) or the quiet stretches."),
    isolate_speech: Optional[float] = typer.Option(
        None, "--isolate-speech", metavar="AMOUNT",
        help="Keep speech, lower the rest, 0-100: 0.4 dB per point, at most 40 dB (room tone stays)."),
    dehum: Optional[str] = typer.Option(None, "--dehum", metavar="auto|50|60|off",
                                        help="Notch mains hum and harmonics (auto: the detected hum)."),
    declick: Optional[bool] = typer.Option(None, "--declick/--no-declick", help="Repair clicks and crackle."),
    highpass: Optional[float] = typer.Option(None, "--highpass", metavar="HZ", help="Cut rumble below HZ."),
    loudness: Optional[float] = typer.Option(None, "--loudness", metavar="LUFS",
                                             help="Normalise integrated loudness (linear gain)."),
    true_peak_max: Optional[float] = typer.Option(
        None, "--true-peak-max", metavar="DBTP",
        help="True-peak ceiling of every output (default -1): a final limiter keeps it, --loudness respects it."),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="wav | flac | mp3 (default wav). A video keeps its container: wav or flac here "
                               "is the format of its audio stem (--stem)."),
    stem: Optional[str] = typer.Option(
        None, "--stem", metavar="wav|flac",
        help="Videos: also write the cleaned audio, sample-aligned, as `<name>.enhanced.stem.<ext>` beside the video."),
    preview: bool = typer.Option(False, "--preview", help="Also write a before/after spectrogram PNG."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
    item_timeout: Optional[float] = typer.Option(
        None, "--item-timeout", metavar="SECONDS", min=0.001,
        help="Time limit per file, after which it fails and the batch goes on (default: 60 s + 10 x the seconds of audio decoded)."),
):
    """Restore recordings into OUTDIR: denoise, dehum, declick, high-pass, isolate speech, loudness.

    Originals are never written to; each output is written under a temporary name and renamed.
    A video keeps its picture, copied bit for bit. Before/after numbers are stored with each
    file (fields `enhance.before.*`, `enhance.after.*`, `enhance.change.*`, enhance.output).
    """
    from ..catalog.db import Catalog, CatalogError
    from ..steps.enhance import DEFAULTS, EnhanceError, resolve_options
    from .common import State

    out_dir = _check_out_dir(out_dir)
    params = {
        "out_dir": str(out_dir), "format": fmt.lower() if fmt else None,
        "stem": stem.lower() if stem else None, "preset": preset,
        "denoise": denoise, "denoise_method": denoise_method, "noise_profile": noise_profile,
        "isolate_speech": isolate_speech, "dehum": dehum, "declick": declick, "highpass": highpass,
        "loudness": loudness, "true_peak_max": true_peak_max, "preview": preview,
    }
    if params["format"] not in (None, "wav", "flac", "mp3"):
        raise fail(f"--format takes wav, flac or mp3, not {fmt!r}")
    if params["stem"] not in (None, "wav", "flac"):
        raise fail(f"--stem takes wav or flac, not {stem!r}")
    try:
        resolve_options({**DEFAULTS, **params})  # usage errors now, not once per file
    except EnhanceError as exc:
        raise fail(str(exc))
    try:
        cat = Catalog.open(State.collection or Path.cwd())
        temp_root = None
    except CatalogError as exc:
        if not files:
            raise fail(f"{exc}\n(or give FILES to enhance them without a collection)")
        if where:
            raise fail("--where needs a collection")
        temp_root = Path(tempfile.mkdtemp(prefix="audiotrove-"))
        cat = Catalog.create(temp_root)
    try:
        code = _run(cat, files, where, params, workers=workers, retry_failed=retry_failed,
                    item_timeout_s=item_timeout, one_off=temp_root is not None)
    finally:
        cat.close()
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)
    raise typer.Exit(code)


def _check_out_dir(out_dir: Path) -> Path:
    """The output folder, absolute and created; a usage error (exit 2) before anything runs
    when it names an existing file or cannot be created. Temporary files that a killed run
    left in it are removed."""
    from ..io.write import sweep_temps

    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise fail(f"-o {out_dir} is an existing file, not a folder: give a folder for the outputs")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create the output folder {out_dir}: {exc.strerror or exc}")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise fail(f"the output folder {out_dir} is not writable")
    swept = sweep_temps(out_dir)
    if swept:
        err.print(f"removed {len(swept)} temporary file(s) left by an interrupted run in {out_dir}")
    return out_dir


def _run(cat, files, where, params, *, workers, retry_failed, item_timeout_s=None, one_off=False) -> int:
    ids = _select(cat, files, where)
    if ids is not None and not ids:
        err.print("no file matches: nothing to enhance")
        return EXIT_OK
    _mark_stale_outputs(cat, params, ids)
    summary = run_step_cli(cat, "enhance", params, workers=workers, file_ids=ids, retry_failed=retry_failed,
                           item_timeout_s=item_timeout_s)
    _print_table(cat, params, ids)
    err.print(summary.line())
    if one_off:  # the temporary collection goes with this command: say why each file failed now
        from rich.markup import escape

        failures = cat.failures()
        for path, step, error in failures:
            err.print("[red]failed[/] " + escape(f"{path} [{step}]: {error}"), soft_wrap=True)
        return EXIT_FAILURES if failures else EXIT_OK
    return exit_code(summary)


def _select(cat, files, where) -> set[int] | None:
    """File ids: FILES (added when new) and/or the --where query; None for every file."""
    chosen: set[int] | None = None
    if files:
        from ..catalog.sources import expand_sources

        found = expand_sources(files)
        for path, why in found.skipped:
            err.print(f"[yellow]skipped[/] {path}: {why}")
        if not found.entries:
            raise fail("none of FILES is a media file")
        added, _ = cat.add_files(found.entries)
        if added:
            err.print(f"added {added} file(s) to the collection")
        wanted = {path for path, _, _ in found.entries}
        chosen = {f.id for f in cat.files() if f.path in wanted}
    if where:
        from ..catalog.index import QueryError, select_file_ids

        try:
            matched = select_file_ids(cat, where)
        except QueryError as exc:
            from rich.markup import escape

            err.print("[red]error:[/] " + escape(str(exc)), soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        chosen = matched if chosen is None else chosen & matched
    return chosen


def _current_results(cat, params, ids):
    """(file, data) of the stored ok results for these parameters and the files' content."""
    from ..io.hashing import params_hash
    from ..steps import get_step

    step = get_step("enhance")
    phash = params_hash(step.params(params))
    rows = cat.conn.execute(
        "SELECT f.id, f.path, r.id AS rid, r.data FROM files f JOIN results r ON r.content_hash = f.content_hash "
        "WHERE r.step = 'enhance' AND r.step_version = ? AND r.params_hash = ? AND r.status = 'ok'",
        (step.version, phash),
    ).fetchall()
    for row in rows:
        if ids is None or row["id"] in ids:
            yield row, json.loads(row["data"] or "{}")


def _mark_stale_outputs(cat, params, ids) -> None:
    """A stored result whose output file is missing or is no longer the one it describes (size
    and hash recorded with it) is marked stale, so that the file is made again: "already up to
    date" is said only of outputs that are on disk as made. The result is not deleted: the
    new one replaces it."""
    from ..steps.enhance import output_problem

    stale = []
    for row, data in _current_results(cat, params, ids):
        problem = output_problem(data.get("enhance") or {})
        if problem:
            stale.append((row["rid"], problem))
    if stale:
        cat.mark_stale(stale)
        err.print(f"{len(stale)} output(s) missing or changed since they were made: made again")


def _arrow(before: dict, after: dict, key: str) -> str:
    b, a = before.get(key), after.get(key)
    if b is None and a is None:
        return "-"
    show = lambda v: "-" if v is None else (f"{v:d}" if isinstance(v, int) else f"{v:.1f}")
    return f"{show(b)}→{show(a)}"


COLUMNS = (("noise dBFS", "noise_floor_dbfs"), ("SNR dB", "snr_db"), ("LUFS", "loudness_lufs"),
           ("dBTP", "true_peak_dbtp"), ("clipped", "clipped_samples"), ("clicks/min", "clicks_per_min"),
           ("hum dB", "hum_level_db"))


def _print_table(cat, params, ids) -> None:
    """Before → after per file (stdout); the outputs are OUTDIR/<name>.enhanced.<ext>."""
    from rich.console import Console
    from rich.table import Table

    rows = sorted(_current_results(cat, params, ids), key=lambda r: r[0]["path"])
    if not rows:
        return
    table = Table(title=f"enhance → {params['out_dir']} (before→after)", title_justify="left",
                  box=None, pad_edge=False)
    table.add_column("file", overflow="fold")
    for heading, _ in COLUMNS:
        table.add_column(heading, justify="right", no_wrap=True)
    for row, data in rows:
        e = data.get("enhance") or {}
        before, after = e.get("before") or {}, e.get("after") or {}
        table.add_row(Path(row["path"]).name, *(_arrow(before, after, key) for _, key in COLUMNS))
    Console(soft_wrap=False, width=max(Console().width, 120)).print(table)


__all__ = ["register", "enhance_cmd", "EXIT_FAILURES"]
