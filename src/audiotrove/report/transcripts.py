"""Transcripts for the report: the selected files with a `transcribe` result, each with its
Whisper segments and the words in them, with their times (s in the file's timeline).

    shown, info = find_transcripts(index, where=node, limit=40, max_chars=2000)
    # shown: [Transcript(file_id, path, values, lines, shown_chars, total_chars, more_segments)]
    # info:  {"count": files with a transcript, "query": the query that lists them all}

Bounded whatever the collection: at most `limit` files (in path order), and of each the first
segments up to `max_chars` characters of text (a segment longer than what is left is cut
between words); the page says how much is left out and how to get all of it. Read from the
field index in one query (segments and words are stored there as JSON lists).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog.index import TABLE, FieldIndex
from ..catalog.query import And, Node, Present
from ..models.whisper import word_gap
from .format import stored_list

QUERY = "transcript.text?"
MAX_FILES = 40
MAX_CHARS = 2000  # characters of each transcript shown (about 350 words, 2.5 minutes of speech)
FIELDS = ("path", "media_info.container.kind", "media_info.audio.codec",
          "media_info.container.duration", "transcript.text", "transcript.language",
          "transcript.word_count", "transcript.words_per_minute", "transcript.model",
          "transcript.segments", "transcript.words")


@dataclass
class Line:
    """One segment: start and end (s), its text, and its words as [(start_s, word), ...]
    (empty when the result has no word times: the text is shown as it is)."""

    start: float
    end: float
    text: str
    words: list[tuple[float, str]] = field(default_factory=list)
    cut: bool = False  # the segment goes on beyond what is shown


@dataclass
class Transcript:
    file_id: int
    path: str
    values: dict
    lines: list[Line]
    shown_chars: int  # characters of text in `lines`
    total_chars: int  # characters of the whole transcript
    more_segments: int  # segments not shown (wholly or in part)

    @property
    def cut(self) -> bool:
        return self.more_segments > 0


def transcript_query(index: FieldIndex, where: Node | None) -> Node:
    present = Present(index.fields.resolve(QUERY.rstrip("?")))
    return present if where is None else And((where, present))


def find_transcripts(index: FieldIndex, *, where: Node | None = None, limit: int | None = MAX_FILES,
                     max_chars: int = MAX_CHARS) -> tuple[list[Transcript], dict]:
    """(up to `limit` transcribed files in path order, each cut to `max_chars`, {"count", "query"})."""
    node = transcript_query(index, where)
    count = index.count(node)
    info = {"count": count, "query": QUERY, "max_chars": int(max_chars)}
    if not count or (limit is not None and limit <= 0):
        return [], info
    names = [n for n in FIELDS if n in index.fields]
    rows = index.rows(node, columns=names, raw_columns=[f"{TABLE}.file_id"],
                      limit=None if limit is None else int(limit))
    out = []
    for row in rows:
        v = dict(zip(names, row[1:]))
        segments = stored_list(v.pop("transcript.segments", None))
        words = stored_list(v.pop("transcript.words", None))
        text = v.pop("transcript.text", None) or ""
        lines = cut_lines(segments, words, max_chars=max_chars)
        shown = sum(len(line.text) for line in lines) + max(0, len(lines) - 1)
        more = sum(1 for s in segments if _segment(s)) - len(lines) + (1 if lines and lines[-1].cut else 0)
        out.append(Transcript(row[0], v["path"], v, lines, shown, len(text), more))
    return out, info


def cut_lines(segments: list, words: list, *, max_chars: int) -> list[Line]:
    """The first segments as Lines, up to max_chars characters of text.

    Words go to the segment they start in (from its start to the next segment's start); a
    segment longer than what is left of max_chars is cut after its last word that fits (or its
    text, when it has no words, after the last whole word that fits)."""
    segs = [s for s in (_segment(x) for x in segments) if s]
    ws = [w for w in (_word(x) for x in words) if w]
    lines: list[Line] = []
    used, k = 0, 0
    for i, (start, end, text) in enumerate(segs):
        until = segs[i + 1][0] if i + 1 < len(segs) else float("inf")
        mine = []
        while k < len(ws) and ws[k][0] < until:
            mine.append(ws[k])
            k += 1
        left = max_chars - used
        if left <= 0:
            break
        if len(text) <= left:
            lines.append(Line(start, end, text, mine))
            used += len(text) + 1
            continue
        if mine:  # cut between words
            kept, part = [], ""
            for w in mine:
                longer = part + (word_gap(kept[-1][1], w[1]) if kept else "") + w[1]
                if len(longer) > left:
                    break
                kept.append(w)
                part = longer
            if kept:
                lines.append(Line(start, end, part, kept, cut=True))
        else:
            part = text[:left + 1].rsplit(" ", 1)[0] if " " in text[:left + 1] else text[:left]
            if part:
                lines.append(Line(start, end, part, cut=True))
        break
    return lines


def _segment(x) -> tuple[float, float, str] | None:
    try:
        start, end, text = float(x[0]), float(x[1]), str(x[2]).strip()
    except (TypeError, ValueError, IndexError):
        return None
    return (start, end, text) if text else None


def _word(x) -> tuple[float, str] | None:
    try:
        start, word = float(x[0]), str(x[2]).strip()
    except (TypeError, ValueError, IndexError):
        return None
    return (start, word) if word else None


__all__ = ["Line", "MAX_CHARS", "MAX_FILES", "QUERY", "Transcript", "cut_lines", "find_transcripts",
           "transcript_query"]
