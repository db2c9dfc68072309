"""Transcripts: the chosen files' transcripts and the phrase search over their words.

    search_transcripts   `search` (CLI) and the web's Search page: the hits and how many
                         transcripts were searched
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterator


def iter_transcripts(cat, file_ids) -> Iterator[tuple[int, str, dict]]:
    """(file id, path, transcript) of each chosen file with an ok transcribe result."""
    for f, results in cat.iter_current("transcribe"):
        if file_ids is not None and f.id not in file_ids:
            continue
        res = results.get("transcribe")
        if res is not None and res.status == "ok" and isinstance((res.data or {}).get("transcript"), dict):
            yield f.id, f.path, res.data["transcript"]


_WORD = re.compile(r"[\w*?']+", re.UNICODE)


def normalize_words(text: str) -> list[str]:
    """Lower case, punctuation dropped (apostrophes kept inside words): 'Mr. Dashwood,' -> mr,
    dashwood; Chinese characters and kana one word each: '協會分析' -> 協, 會, 分, 析."""
    from ..models.whisper import UNSPACED

    out = []
    for w in _WORD.findall(text.lower()):
        # a character of a script written without spaces is a word of its own (steps/transcribe)
        out += [p for p in UNSPACED.split(w.strip("'")) if p and p != "'"]
    return out


def join_words(words: list[str]) -> str:
    """Words as text: spaces between them, none next to a Chinese character or kana."""
    from ..models.whisper import word_gap

    return "".join((word_gap(words[k - 1], w) if k else "") + w for k, w in enumerate(words))


@dataclass
class Hit:
    path: str
    start: float  # s, first word's start
    end: float  # s, last word's end
    words: str  # the words that matched, as said
    context: str  # the words around it (--context), the hit in [brackets]


def find_phrase(path: str, transcript: dict, phrase: str, *, context_s: float) -> list[Hit]:
    """Every occurrence of the phrase's words, in order, in the transcript's words (case and
    punctuation ignored; * and ? are wildcards within a word)."""
    wanted = normalize_words(phrase)
    words = transcript.get("words") or []
    if not wanted or not words:
        return []
    said = [normalize_words(str(w[2])) for w in words]
    # a transcribed token may hold several words ("o'clock", "well-known"): flatten, keep owners
    flat: list[tuple[str, int]] = [(t, i) for i, toks in enumerate(said) for t in toks]
    hits: list[Hit] = []
    n = len(wanted)
    k = 0
    while k + n <= len(flat):
        if all(fnmatchcase(flat[k + j][0], wanted[j]) for j in range(n)):
            first, last = flat[k][1], flat[k + n - 1][1]
            start, end = float(words[first][0]), float(words[last][1])
            around = []
            for i, w in enumerate(words):
                if float(w[1]) >= start - context_s and float(w[0]) <= end + context_s:
                    text = str(w[2])
                    if i == first:
                        text = "[" + text
                    if i == last:
                        text = text + "]"
                    around.append(text)
            hits.append(Hit(path, round(start, 3), round(end, 3),
                            join_words([str(w[2]) for w in words[first:last + 1]]), join_words(around)))
            k += n
        else:
            k += 1
    return hits


def search_transcripts(catalog, phrase: str, *, file_ids: set[int] | None = None, context_s: float = 5.0,
                       limit: int | None = None) -> tuple[list[Hit], int]:
    """Every occurrence of `phrase` in the chosen files' transcripts (at most `limit`), and the
    number of transcripts searched."""
    hits: list[Hit] = []
    searched = 0
    for _, path, transcript in iter_transcripts(catalog, file_ids):
        searched += 1
        hits += find_phrase(path, transcript, phrase, context_s=max(0.0, context_s))
        if limit and len(hits) >= limit:
            hits = hits[:limit]
            break
    return hits, searched


__all__ = ["Hit", "find_phrase", "iter_transcripts", "join_words", "normalize_words", "search_transcripts"]
