"""CLI command: mosaic (re-make a target out of units of the collection).

    audiotrove mosaic TARGET -o out.wav [--corpus-where Q] [--corpus-units Q] [--segment onset|window:S]
        [--match yamnet|descriptors|random|FIELD=WEIGHT,...] [--k 20] [--pitch match|free]
        [--max-reuse N] [--layers N] [--smooth W] [--crossfade MS] [--mix 0..1] [--seed N] [--score out.csv]
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import EXIT_FAILURES, EXIT_OK, err, fail, open_catalog, output_folder


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("mosaic")(mosaic_cmd)


def mosaic_cmd(
    target: str = typer.Argument(..., help="A file of the collection (path or id), a unit (FILE_ID:UNIT), any audio file, or PATH@START-END (s or m:ss)."),
    output: Path = typer.Option(..., "--output", "-o", help="Audio file to write (.wav, .flac, .ogg, .mp3)."),
    corpus_where: Optional[str] = typer.Option(None, "--corpus-where", "-w", help="Only units of the files matching this query."),
    corpus_units: Optional[str] = typer.Option(None, "--corpus-units", "-u", help="Only units matching this unit query (power > -40, hz > 100...)."),
    segment: str = typer.Option("onset", "--segment", help="How the target is cut: onset, speech or window:SECONDS."),
    match: str = typer.Option("yamnet", "--match", "-m", help="yamnet, descriptors, PATH.onnx, random, and/or FIELD=WEIGHT,... (power, hz, centroid, flatness, rolloff, zcr, clarity, dur, mfcc): e.g. yamnet,hz=2."),
    k: int = typer.Option(20, "--k", "-k", min=1, max=1000, help="Candidates per target unit from the index."),
    pitch: str = typer.Option("free", "--pitch", help="match: shift each unit to the target unit's pitch (resampling, at most +-12 semitones, when both are pitched); free: leave it."),
    max_reuse: Optional[int] = typer.Option(None, "--max-reuse", min=1, help="Use no corpus unit more than N times."),
    layers: int = typer.Option(1, "--layers", min=1, max=8, help="Up to N corpus units summed per target unit (greedy on mel spectra)."),
    smooth: float = typer.Option(0.0, "--smooth", min=0.0, help="Weight of continuity: 0 = independent picks, higher = fewer jumps between sources."),
    crossfade: float = typer.Option(0.0, "--crossfade", min=0.0, help="Each unit rings on MS milliseconds past its end, equal-power cross-faded with the next."),
    fade: float = typer.Option(5.0, "--fade", min=0.0, help="Fade in/out of each unit, ms (without --crossfade)."),
    mix: float = typer.Option(0.0, "--mix", min=0.0, max=1.0, help="Blend the original target underneath: 0 = none, 1 = only the target."),
    seed: int = typer.Option(0, "--seed", help="Seed for ties and --match random: the same seed gives the same mosaic."),
    score: Optional[Path] = typer.Option(None, "--score", help="Write what was chosen as CSV (target unit, corpus unit, distance, gain_db, shift_semitones, layer)."),
):
    """Re-make TARGET out of units of the collection (concatenative synthesis).

    The target is cut into units (as `segment`) and each is embedded (as `embed --units`); the
    index proposes --k candidates per target unit among the corpus units passing the filters
    (the target's own file is left out); the choice weighs the match cost, continuity
    (--smooth, dynamic programming over the candidates) and --max-reuse. Each chosen unit is
    gain-matched to the target unit's level, optionally pitch-shifted (--pitch match), fitted
    to its duration with short fades and placed at its start: the output has the target's
    length, rate and rhythm, sample-aligned. The target is read and the output written block
    by block: memory does not grow with the target's audio. Needs `segment` and
    `embed --units` (with the model --match names) first.
    """
    from ..catalog.query import QueryError
    from ..io.write import WriteError, format_for
    from ..models import ModelError
    from ..mosaic import make_mosaic, write_score
    from ..report.format import counted

    try:
        format_for(output)
    except WriteError as exc:
        raise fail(str(exc))
    if score is not None and score.suffix.lower() != ".csv":
        raise fail("--score writes CSV: give a name ending in .csv")
    with open_catalog() as cat:
        try:
            output_folder(output)
            if score is not None:
                output_folder(score)
            result = make_mosaic(cat, target, output=output, corpus_where=corpus_where, corpus_units=corpus_units,
                                 segment=segment, match=match, k=k, pitch=pitch, max_reuse=max_reuse,
                                 layers=layers, smooth=smooth, crossfade_ms=crossfade, fade_ms=fade, mix=mix,
                                 seed=seed)
            if score is not None:
                write_score(result.score, score)
        except (UsageError, QueryError, ModelError) as exc:
            raise fail(str(exc))
        except (WriteError, OSError) as exc:
            raise fail(f"cannot write {output}: {exc}", code=EXIT_FAILURES)
    for s in result.skipped[:5]:
        err.print(f"[yellow]skipped[/] {s}")
    placed = int(result.score["path"].notna().sum()) if len(result.score) else 0
    err.print(f"{counted(result.target_units, 'target unit')}, {counted(placed, 'corpus unit')} from "
              f"{counted(result.sources, 'file')}, {counted(result.jumps, 'jump')} between sources"
              + (f", {result.silent_units} left silent (--max-reuse)" if result.silent_units else "")
              + f"; {result.frames / result.sample_rate:.2f} s, {result.sample_rate} Hz -> {output}")
    if score is not None:
        err.print(f"score -> {score}")
    raise typer.Exit(EXIT_FAILURES if result.skipped else EXIT_OK)


__all__ = ["register"]
