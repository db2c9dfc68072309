"""The `transcribe` step: the words said in a file, with their times, by Whisper (faster-whisper).

Parameters
    model          tiny.en | base | PATH of a CTranslate2 Whisper folder (models/whisper.py)
    language       auto | en | fr | ... (auto: detected on the first stretch of speech, then kept)
    beam           beam size, 1 (greedy, fastest) to 5
    context_s      s of audio kept on each side of a speech section
    merge_gap_s    s: speech sections closer than this are decoded as one stretch

Only the speech sections of the file's analysis (audio.speech.sections, from the required
analyze step) are decoded and transcribed, each widened by `context_s`; music, silence and
other sounds are skipped. When the analysis has no speech sections field (content detection
off), the whole file is transcribed; when its list is capped, everything after the last listed
section is. Each stretch is read by seeking (files libsndfile reads) or by streaming the decoder
(the others), mixed to mono, resampled to 16 kHz in a stream, and handed to Whisper in windows
of at most `WINDOW_S`, cut at the quietest 20 ms near the window's end: memory stays bounded
on a file of any length. Times are in the file's timeline (s from its start).

The result stored with the file (queryable: `transcript ~ "*freedom*"`, `words_per_minute > 180`):
    {"transcript": {
        "text"                  the words, segment texts joined by spaces
        "language", "language_probability"   ISO 639-1 code, 0-1 (1.0 when given or English-only)
        "words"                 [[start_s, end_s, word, probability], ...]
        "segments"              [[start_s, end_s, text], ...]   (Whisper's sentence-like segments)
        "word_count"            count
        "words_per_minute"      1/min: words over the duration of the speech sections
        "speech_duration"       s: the speech sections' total (the whole file without them)
        "decoded_duration"      s of audio handed to Whisper (sections + context)
        "model"                 the model's name or path
        "speech_source"         "analysis" | "whole file"
    }}
"""
from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np

from ..errors import ItemError
from ..io.decode import DecodeError, open_audio
from ..models import ModelError
from ..models.whisper import SAMPLE_RATE_HZ, is_english_only, load_model
from .base import Item, Step
from .segment import speech_sections  # (sections, covered_until_s) of an analysis

VERSION = "1"
DEFAULTS: dict = {"model": "tiny.en", "language": "auto", "beam": 1, "context_s": 0.5,
                  "merge_gap_s": 2.0}
WINDOW_S = 120.0  # longest stretch handed to Whisper at once (its 30 s windows run inside);
# its log-mel features are held whole: about 0.7 MB per second of window on top of the model
CUT_SEARCH_S = 10.0  # a long stretch is cut at the quietest 20 ms of its last CUT_SEARCH_S
MIN_WINDOW_S = 0.2  # shorter stretches are not worth a decoder pass
_READ_FRAMES = 65536


class TranscribeError(ItemError):
    """A file could not be transcribed; the message says why."""


# --- which stretches to decode ----------------------------------------------------------------

def plan_spans(sections: list | None, *, duration_s: float | None, context_s: float,
               merge_gap_s: float, until_s: float | None = None) -> list[tuple[float, float]]:
    """The stretches (start_s, end_s) to decode: speech sections widened by context_s, clipped
    to the file, merged where they overlap or are less than merge_gap_s apart.

    sections None: the whole file. until_s (a capped section list): everything after it too.
    """
    end_of_file = duration_s if duration_s is not None and duration_s > 0 else math.inf
    if sections is None:
        return [(0.0, end_of_file)]
    raw = sorted((float(s), float(e)) for s, e in sections if float(e) > float(s))
    if until_s is not None and until_s < end_of_file:
        raw.append((until_s, end_of_file))
    spans: list[list[float]] = []
    for start, end in raw:
        start, end = max(0.0, start - context_s), min(end_of_file, end + context_s)
        if spans and start - spans[-1][1] <= merge_gap_s:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(s, e) for s, e in spans if e - s > 0]


# --- reading them, bounded ----------------------------------------------------------------------

def _span_blocks(path: str, spans: list[tuple[float, float]]) -> Iterator[tuple[int, np.ndarray, int]]:
    """(span index, mono float32 block, sample rate) pieces of every span, in order.

    libsndfile formats seek to each span; the others stream the decoder once and keep only
    the pieces inside spans."""
    reader = open_audio(path)
    sr = reader.sample_rate
    bounds = [(int(round(s * sr)), None if math.isinf(e) else int(round(e * sr))) for s, e in spans]
    if reader.backend == "soundfile":
        import soundfile as sf

        try:
            with sf.SoundFile(path) as f:
                for index, (s0, s1) in enumerate(bounds):
                    f.seek(min(s0, f.frames))
                    left = (f.frames if s1 is None else min(s1, f.frames)) - min(s0, f.frames)
                    while left > 0:
                        block = f.read(min(_READ_FRAMES, left), dtype="float32", always_2d=True)
                        if len(block) == 0:
                            break
                        left -= len(block)
                        yield index, _mono(block), sr
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DecodeError(f"decoding failed: {exc}") from exc
        return
    pos = 0
    index = 0
    for block in reader.blocks(_READ_FRAMES):
        b0, b1 = pos, pos + len(block)
        pos = b1
        while index < len(bounds):
            s0, s1 = bounds[index]
            end = b1 if s1 is None else s1
            if s0 < b1 and end > b0:
                yield index, _mono(block[max(s0, b0) - b0:min(end, b1) - b0]), sr
            if s1 is not None and s1 <= b1:
                index += 1
                continue
            break
        if index >= len(bounds):
            break


def _mono(block: np.ndarray) -> np.ndarray:
    x = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        x = np.where(bad, np.float32(0.0), x)
    return np.ascontiguousarray(x, dtype=np.float32)


def _quietest_cut(x: np.ndarray, *, search_frames: int, frame: int = 320) -> int:
    """Index (a multiple of `frame` from the end region) of the quietest 20 ms frame in x's tail."""
    start = max(0, len(x) - search_frames)
    tail = x[start:]
    n = len(tail) // frame
    if n < 2:
        return len(x)
    energy = np.square(tail[:n * frame].reshape(n, frame), dtype=np.float32).sum(axis=1)
    best = int(np.argmin(energy[1:])) + 1  # never cut at the very start of the search region
    return start + best * frame + frame // 2


def speech_windows(path: str, spans: list[tuple[float, float]], *,
                   window_s: float = WINDOW_S) -> Iterator[tuple[float, np.ndarray]]:
    """(start_s in the file, 16 kHz mono float32 audio) windows covering every span, in order.

    A span longer than window_s is cut at the quietest 20 ms of each window's last
    CUT_SEARCH_S; memory holds one window (window_s x 16 000 float32) at most."""
    import soxr

    max_frames = int(window_s * SAMPLE_RATE_HZ)
    search = int(min(CUT_SEARCH_S, window_s / 2) * SAMPLE_RATE_HZ)
    buf = np.zeros(max_frames, np.float32)
    filled = 0
    emitted = 0  # 16 kHz samples of the current span already handed out
    current = -1
    resampler = None

    def push(x: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        nonlocal filled, emitted
        while len(x):
            take = min(len(x), max_frames - filled)
            buf[filled:filled + take] = x[:take]
            filled += take
            x = x[take:]
            if filled == max_frames:
                cut = _quietest_cut(buf, search_frames=search)
                yield spans[current][0] + emitted / SAMPLE_RATE_HZ, buf[:cut].copy()
                emitted += cut
                rest = filled - cut
                buf[:rest] = buf[cut:filled]
                filled = rest

    def flush() -> Iterator[tuple[float, np.ndarray]]:
        nonlocal filled, emitted
        if resampler is not None:
            yield from push(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        if filled:
            yield spans[current][0] + emitted / SAMPLE_RATE_HZ, buf[:filled].copy()
        filled, emitted = 0, 0

    for index, block, sr in _span_blocks(path, spans):
        if index != current:
            if current >= 0:
                yield from flush()
            current = index
            resampler = None if sr == SAMPLE_RATE_HZ else soxr.ResampleStream(
                sr, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ")
        x = block if resampler is None else resampler.resample_chunk(block)
        yield from push(x)
    if current >= 0:
        yield from flush()


# --- transcribing them ---------------------------------------------------------------------------

def transcribe_file(path: str, params: dict, analysis: dict | None, *, cpu_threads: int = 0) -> dict:
    """Transcribe the speech of `path` (see the module doc); raises TranscribeError / DecodeError."""
    params = {**DEFAULTS, **params}
    model_name = str(params["model"])
    language = str(params.get("language") or "auto").lower()
    english_only = is_english_only(model_name)
    if english_only and language not in ("auto", "en"):
        raise TranscribeError(f"model {model_name} knows English only: use --model base "
                              f"(or a multilingual model folder) for --language {language}")
    beam = int(params["beam"])
    try:
        model = load_model(model_name, cpu_threads=cpu_threads)
    except ModelError as exc:
        raise TranscribeError(str(exc)) from exc
    sections, until = speech_sections(analysis)
    duration = (((analysis or {}).get("media_info") or {}).get("container") or {}).get("duration")
    spans = plan_spans(sections, duration_s=duration, context_s=float(params["context_s"]),
                       merge_gap_s=float(params["merge_gap_s"]), until_s=until)
    if sections is not None:
        speech_s = sum(max(0.0, float(e) - float(s)) for s, e in sections)
        if until is not None and duration:
            speech_s += max(0.0, float(duration) - until)
    else:
        speech_s = None

    fixed_language = None if language == "auto" else language
    detected, probability = ("en", 1.0) if english_only else (fixed_language, 1.0 if fixed_language else None)
    words: list[list] = []
    segments: list[list] = []
    decoded = 0.0
    for start_s, audio in speech_windows(path, spans):
        seconds = len(audio) / SAMPLE_RATE_HZ
        decoded += seconds
        if seconds < MIN_WINDOW_S:
            continue
        pieces, info = model.transcribe(
            audio, language=detected, beam_size=beam, word_timestamps=True, vad_filter=False,
            condition_on_previous_text=False)
        for seg in pieces:  # a generator: decoding happens here
            text = seg.text.strip()
            if not text:
                continue
            segments.append([_t(start_s + seg.start), _t(start_s + seg.end), text])
            for w in seg.words or ():
                word = w.word.strip()
                if word:
                    words.append([_t(start_s + w.start), _t(start_s + w.end), word,
                                  round(float(w.probability), 3)])
        if detected is None:  # auto: the first stretch decides for the rest of the file
            detected, probability = info.language, float(info.language_probability)
    if speech_s is None:
        speech_s = decoded
    count = len(words)
    return {"transcript": {
        "text": " ".join(s[2] for s in segments),
        "language": detected if segments else None,  # no words: no language to tell
        "language_probability": None if probability is None or not segments else round(probability, 3),
        "words": words,
        "segments": segments,
        "word_count": count,
        "words_per_minute": round(count / (speech_s / 60.0), 1) if speech_s > 0 else None,
        "speech_duration": round(speech_s, 3),
        "decoded_duration": round(decoded, 3),
        "model": model_name,
        "speech_source": "analysis" if sections is not None else "whole file",
    }}


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


def _run(item: Item) -> dict:
    analysis = (item.inputs or {}).get("analyze")
    if analysis is None:
        raise TranscribeError("no analysis of this file (analyze failed or has not run): "
                              "its speech sections are needed")
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    return transcribe_file(item.path, item.params, analysis, cpu_threads=threads)


STEP = Step(
    name="transcribe",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    requires=("analyze",),
    summary="transcribe the speech sections with Whisper (words with times, language)",
)
