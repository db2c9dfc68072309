"""CLI commands for speech: transcribe (and export subtitles), search what was said.

    audiotrove transcribe [--where Q] [--model tiny.en|base|PATH] [--language auto|en|...] [--beam 1..5]
    audiotrove transcribe [--where Q] --export srt|vtt|txt|json -o DIR
    audiotrove search "phrase" [--where Q] [--context 5s] [--render hits.wav] [--format table|jsonl]

The transcripts are the latest `transcribe` results (the `transcript.*` fields of `ls`).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional

import typer

from ..io.write import write_text_atomic
from ..views.transcripts import Hit, iter_transcripts, normalize_words, search_transcripts
from .common import EXIT_FAILURES, EXIT_OK, err, exit_code, fail, open_catalog, run_step_cli
from .units import _select  # --where Q -> file ids (None: all)

EXPORT_FORMATS = ("srt", "vtt", "txt", "json")
RENDER_PAD_S = 0.25  # s of audio kept before and after each hit in --render
RENDER_GAP_S = 0.4  # s of silence between hits in --render


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("transcribe")(transcribe_cmd)
    app.command("search")(search_cmd)


# --- transcribe ----------------------------------------------------------------------------------

def transcribe_cmd(
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    model: str = typer.Option("tiny.en", "--model", "-m", help="tiny.en (English, fastest), base (multilingual) or the path of a CTranslate2 Whisper model folder."),
    language: str = typer.Option("auto", "--language", "-l", help="auto (detect) or a language code: en, fr, de, ca..."),
    beam: int = typer.Option(1, "--beam", min=1, max=5, help="Beam size: 1 greedy (fastest) to 5 (Whisper's usual, a little more accurate)."),
    export: Optional[str] = typer.Option(None, "--export", "-e", help="Also write one file per transcript: srt, vtt, txt or json (needs -o)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for --export (created if missing)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Transcribe the speech of every file (or those matching --where), with word times.

    Only the analysis' speech sections are decoded (music and silence are skipped), each with
    0.5 s of context. Stored per file: transcript.text, transcript.language (+ probability),
    transcript.words ([start_s, end_s, word, probability]), transcript.segments,
    transcript.word_count, transcript.words_per_minute. Requires analyze (run first if needed).
    Models ship in `pip install 'audiotrove[asr]'`; nothing is downloaded.
    """
    from ..models import ModelError
    from ..models.whisper import is_english_only, model_folder, require_runtime

    if export is not None:
        if export not in EXPORT_FORMATS:
            raise fail(f"unknown export format {export!r}: use {', '.join(EXPORT_FORMATS)}")
        if output is None:
            raise fail("--export needs -o DIR")
    language = language.strip().lower()
    _check_language(language, model, is_english_only(model))
    model_arg = model if model in ("tiny.en", "base") else os.path.abspath(os.path.expanduser(model))
    try:
        require_runtime()
        model_folder(model_arg)  # checks (and joins) the model once here, before any work
    except ModelError as exc:
        raise fail(str(exc))
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"model": model_arg, "language": language, "beam": beam}
        summary = run_step_cli(cat, "transcribe", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed)
        err.print(summary.line())
        code = exit_code(summary)
        if export is not None:
            found = list(iter_transcripts(cat, file_ids))
            spoken = [t for t in found if t[2].get("segments")]
            written = export_transcripts(spoken, output, export)
            err.print(f"{written} {export} file(s) -> {output}"
                      + (f" ({len(found) - len(spoken)} without speech: none written)" if len(found) > len(spoken) else ""))
        raise typer.Exit(code)


def _check_language(language: str, model: str, english_only: bool) -> None:
    if language == "auto":
        return
    if english_only and language != "en":
        raise fail(f"model {model} knows English only: use --model base (or a multilingual "
                   f"model folder) for --language {language}")
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES as codes
    except ImportError:  # the runtime check below says what to install
        return
    if language not in codes:
        raise fail(f"unknown language {language!r}: use auto or a Whisper language code "
                   f"({', '.join(sorted(codes)[:12])}...)")


# --- export ----------------------------------------------------------------------------------

def _clock(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: dict) -> str:
    """SubRip: numbered cues, HH:MM:SS,mmm --> HH:MM:SS,mmm, one cue per segment."""
    cues = [f"{i}\n{_clock(s, ',')} --> {_clock(e, ',')}\n{text}\n"
            for i, (s, e, text) in enumerate(transcript.get("segments") or [], start=1)]
    return "\n".join(cues)


def to_vtt(transcript: dict) -> str:
    """WebVTT: a WEBVTT header, then one cue per segment (HH:MM:SS.mmm)."""
    cues = [f"{_clock(s, '.')} --> {_clock(e, '.')}\n{text}\n"
            for s, e, text in transcript.get("segments") or []]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_txt(transcript: dict) -> str:
    """Plain text, one segment per line."""
    return "".join(f"{text}\n" for _, _, text in transcript.get("segments") or [])


def to_json(path: str, transcript: dict) -> str:
    return json.dumps({"path": path, "transcript": transcript}, ensure_ascii=False, indent=1) + "\n"


def export_transcripts(items: Iterable[tuple[int, str, dict]], folder: Path, fmt: str) -> int:
    """One FOLDER/<file stem>.<fmt> per transcript (the stem gets -<file id> when two files share
    it); returns how many were written."""
    items = list(items)
    folder.mkdir(parents=True, exist_ok=True)
    stems: dict[str, int] = {}
    for _, path, _ in items:
        stem = Path(path).stem
        stems[stem] = stems.get(stem, 0) + 1
    for file_id, path, transcript in items:
        stem = Path(path).stem
        name = f"{stem}-{file_id}" if stems[stem] > 1 else stem
        if fmt == "srt":
            text = to_srt(transcript)
        elif fmt == "vtt":
            text = to_vtt(transcript)
        elif fmt == "txt":
            text = to_txt(transcript)
        else:
            text = to_json(path, transcript)
        write_text_atomic(folder / f"{name}.{fmt}", text)
    return len(items)


# --- search ----------------------------------------------------------------------------------

def search_cmd(
    phrase: str = typer.Argument(..., help="Words to find (case and punctuation ignored; * and ? match within a word)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    context: str = typer.Option("5s", "--context", "-c", help="Words shown before and after each hit: 5s, 2.5, 500ms."),
    render: Optional[Path] = typer.Option(None, "--render", "-r", help="Also write the hits, back to back, as one audio file (.wav, .flac, .ogg)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="At most N hits."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or jsonl."),
):
    """Find every occurrence of a phrase in the transcripts: file, time and the words around it.

    Needs `audiotrove transcribe` first. --render plays the hits back to back (with 0.25 s
    before and after each, 0.4 s of silence between).
    """
    from ..catalog.fields import Field
    from ..catalog.query import parse_quantity

    if fmt not in ("table", "jsonl"):
        raise fail(f"unknown format {fmt!r}: use table or jsonl")
    try:
        context_s = parse_quantity(context, Field("context", "number", "s"))
    except ValueError as exc:
        raise fail(f"--context: {exc}")
    if not normalize_words(phrase):
        raise fail("the phrase has no words to look for")
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        hits, searched = search_transcripts(cat, phrase, file_ids=file_ids, context_s=context_s, limit=limit)
    if searched == 0:
        raise fail("no transcripts yet: run `audiotrove transcribe` first", code=EXIT_FAILURES)
    for h in hits:
        if fmt == "jsonl":
            sys.stdout.write(json.dumps(asdict(h), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(f"{h.path}  {_clock(h.start, '.')[:-2]}  {h.context}\n")
    err.print(f"{len(hits)} hit(s) in {searched} transcript(s)")
    if render is not None:
        _render_hits(hits, render)
    raise typer.Exit(EXIT_OK if hits else EXIT_FAILURES)


def _render_hits(hits: list[Hit], output: Path) -> None:
    from ..io.decode import DecodeError
    from ..units.render import render_units

    if not hits:
        err.print("no hits: nothing to render")
        return
    rows = [{"path": h.path, "start": max(0.0, h.start - RENDER_PAD_S),
             "dur": h.end - h.start + 2 * RENDER_PAD_S} for h in hits]
    try:
        summary = render_units(rows, output, gap_s=RENDER_GAP_S)
    except (ValueError, DecodeError) as exc:
        raise fail(str(exc), code=EXIT_FAILURES)
    for s in summary.skipped[:10]:
        err.print(f"[yellow]skipped[/] {s}")
    err.print(f"{summary.units} hit(s), {summary.duration_s:.2f} s -> {summary.path}")
