"""Segment and describe in one pass over a block stream: the unit rows of one file.

    ex = UnitExtractor(sample_rate_hz=sr, channels=ch, mode="onset")
    for block in reader.blocks():
        rows += ex.update(block)
    rows += ex.finish()

Pure computation (no files, no catalog): blocks of float32 (frames, channels) in, unit rows
out. Memory is bounded: the audio kept is the span of units not yet final (at most
max_dur_s plus a few analysis frames), the frame features likewise.

A unit row: the columns of units/schema.py (unit, start, dur, power, hz, note, octave, clarity,
centroid, flatness, rolloff, zcr, mfcc), with their units.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..dsp import pitch as _pitch
from ..dsp.features import (
    FrameAnalyzer,
    FrameBatch,
    Framer,
    analysis_frame,
    power_db,
    spectral_shape,
    zero_crossing_rate,
)
from ..dsp.onsets import (
    ONSET_DEFAULTS,
    SPEECH_DEFAULTS,
    OnsetSegmenter,
    SpeechSegmenter,
    WindowSegmenter,
)

# frames (ending before a unit's start) that unit_pitch compares the unit with: about 70 ms
BEFORE_FRAMES = 3


class ModeError(ValueError):
    """A segmentation mode or duration bound that makes no sense (the message says why)."""


def parse_mode(mode: str) -> tuple[str, float | None]:
    """'onset' -> ('onset', None); 'window:2.5' -> ('window', 2.5). Raises ModeError."""
    text = (mode or "").strip().lower()
    if text in ("onset", "speech"):
        return text, None
    if text.startswith("window:") or text.startswith("window="):
        try:
            seconds = float(text[7:])
        except ValueError:
            raise ModeError(f"bad window length in {mode!r}: use window:SECONDS, e.g. window:1.5") from None
        if not 0.01 <= seconds <= 600:
            raise ModeError("window length must be between 0.01 and 600 s")
        return "window", seconds
    raise ModeError(f"unknown mode {mode!r}: use onset, speech or window:SECONDS")


def resolve_durations(mode: str, min_dur_s: float | None, max_dur_s: float | None) -> tuple[float, float]:
    """Concrete (min_dur_s, max_dur_s) for a mode: the user's values or the mode's defaults."""
    kind, window = parse_mode(mode)
    if kind == "window":
        lo = window / 2 if min_dur_s is None else float(min_dur_s)
        hi = window if max_dur_s is None else float(max_dur_s)
        if hi < window:
            raise ModeError(f"--max-dur {hi} s is shorter than the window ({window} s)")
    else:
        defaults = ONSET_DEFAULTS if kind == "onset" else SPEECH_DEFAULTS
        lo = defaults["min_dur_s"] if min_dur_s is None else float(min_dur_s)
        hi = defaults["max_dur_s"] if max_dur_s is None else float(max_dur_s)
    if not 0 < lo <= hi:
        raise ModeError(f"need 0 < min-dur <= max-dur (got {lo} and {hi} s)")
    if hi > 600:
        raise ModeError("max-dur above 600 s: use a window mode or cut the file first")
    return lo, hi


class UnitExtractor:
    """Streaming segment + describe (see the module docstring)."""

    def __init__(self, *, sample_rate_hz: float, channels: int, mode: str = "onset",
                 min_dur_s: float | None = None, max_dur_s: float | None = None,
                 speech_sections: list | None = None, speech_sections_until_s: float | None = None,
                 fmin_hz: float = _pitch.DEFAULT_FMIN_HZ, fmax_hz: float = _pitch.DEFAULT_FMAX_HZ):
        self.sr = float(sample_rate_hz)
        self.channels = int(channels)
        kind, window = parse_mode(mode)
        lo, hi = resolve_durations(mode, min_dur_s, max_dur_s)
        self.n_fft, self.hop = analysis_frame(self.sr)
        self.framer = Framer(n_fft=self.n_fft, hop=self.hop)
        self.analyzer = FrameAnalyzer(sample_rate_hz=self.sr, n_fft=self.n_fft, hop=self.hop,
                                      fmin_hz=fmin_hz, fmax_hz=fmax_hz)
        if kind == "onset":
            self.segmenter = OnsetSegmenter(sample_rate_hz=self.sr, hop=self.hop, min_dur_s=lo, max_dur_s=hi)
        elif kind == "speech":
            self.segmenter = SpeechSegmenter(sample_rate_hz=self.sr, hop=self.hop, sections=speech_sections,
                                             sections_until_s=speech_sections_until_s,
                                             min_dur_s=lo, max_dur_s=hi)
        else:
            self.segmenter = WindowSegmenter(sample_rate_hz=self.sr, hop=self.hop, window_s=window, min_dur_s=lo)
        # bounded history: mono samples and mean-square-over-channels, and frame features
        self._mono = np.zeros(0, np.float32)
        self._ms = np.zeros(0, np.float32)
        self._buf_start = 0
        self._frames: list[FrameBatch] = []
        self._count = 0
        self.total_samples = 0
        self.max_buffered_samples = 0  # for tests: the memory bound holds

    def update(self, block: np.ndarray) -> list[dict]:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1:
            block = block[:, None]
        if not np.isfinite(block).all():  # NaN/inf samples count as silence, as in analyze
            block = np.where(np.isfinite(block), block, np.float32(0.0))
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        ms = (block * block).mean(axis=1, dtype=np.float32)
        self._mono = np.concatenate([self._mono, mono])
        self._ms = np.concatenate([self._ms, ms])
        self.total_samples += len(block)
        self.max_buffered_samples = max(self.max_buffered_samples, len(self._mono))
        batch = self.analyzer.analyze(self.framer.push(mono))
        units = self._segment(batch)
        rows = self._describe_all(units)
        self._trim()
        return rows

    def finish(self) -> list[dict]:
        batch = self.analyzer.analyze(self.framer.finish())
        units = self._segment(batch)
        units += self.segmenter.finish(self.total_samples)
        return self._describe_all(units)

    def _segment(self, batch: FrameBatch) -> list[tuple[int, int]]:
        if len(batch):
            self._frames.append(batch)
        return self.segmenter.update(batch.start, batch.level_db, batch.onset_db, batch.hz, batch.clarity)

    def _describe_all(self, units: list[tuple[int, int]]) -> list[dict]:
        rows = []
        for s, e in units:
            rows.append(self.describe(s, e))
        return rows

    def describe(self, start: int, end: int) -> dict:
        """The row of the unit [start, end) (absolute samples; must still be buffered)."""
        lo, hi = start - self._buf_start, end - self._buf_start
        if lo < 0 or hi > len(self._mono):
            raise RuntimeError("unit outside the buffered audio (a segmenter bug)")
        x = self._mono[lo:hi]
        ms = float(np.mean(self._ms[lo:hi], dtype=np.float64)) if hi > lo else 0.0
        f_lo = -(-start // self.hop)
        f_hi = -(-end // self.hop)
        fb = self._frames_between(f_lo, f_hi)
        if fb is None or len(fb) == 0:  # shorter than a hop: the frame nearest its middle
            mid = int(round((start + end) / 2 / self.hop))
            fb = self._frames_between(mid, mid + 1) or self._frames_between(f_lo - 1, f_lo)
        mean_power = fb.power.astype(np.float64).mean(axis=0)
        centroid, rolloff, flatness = spectral_shape(mean_power, self.analyzer.freqs)
        last_before = (start - self.n_fft // 2) // self.hop  # the last frame ending by `start`
        before = self._frames_between(last_before - BEFORE_FRAMES + 1, last_before + 1)
        hz, clarity = _pitch.unit_pitch(
            fb.hz, fb.clarity, fb.level_db, power=fb.power,
            before_power=None if before is None else before.power, window=self.analyzer.window,
            sample_rate_hz=self.sr, fmin_hz=self.analyzer.fmin_hz, fmax_hz=self.analyzer.fmax_hz)
        note, octave = _pitch.hz_to_note(hz)
        row = {
            "unit": self._count,
            "start": start / self.sr,
            "dur": (end - start) / self.sr,
            "power": round(power_db(ms), 3),
            "hz": None if hz is None else round(hz, 3),
            "note": note,
            "octave": octave,
            "clarity": round(clarity, 4),
            "centroid": None if centroid is None else round(centroid, 2),
            "flatness": None if flatness is None else round(flatness, 5),
            "rolloff": None if rolloff is None else round(rolloff, 2),
            "zcr": round(zero_crossing_rate(x), 5),
            "mfcc": [round(float(v), 3) for v in fb.mfcc.astype(np.float64).mean(axis=0)],
        }
        self._count += 1
        return row

    def _frames_between(self, lo: int, hi: int) -> FrameBatch | None:
        parts = [b.slice(lo, hi) for b in self._frames if b.start < hi and b.start + len(b) > lo]
        parts = [p for p in parts if len(p)]
        return FrameBatch.concat(parts) if parts else None

    def _trim(self) -> None:
        keep = min(self.segmenter.earliest_needed_sample, self.total_samples)
        cut = keep - self._buf_start
        if cut > 0:
            self._mono = self._mono[cut:]
            self._ms = self._ms[cut:]
            self._buf_start = keep
        # the frames before a unit still to come stay: unit_pitch compares the unit with them
        keep_frame = keep // self.hop - 1 - (self.n_fft // 2) // self.hop - BEFORE_FRAMES
        kept = []
        for b in self._frames:
            if b.start + len(b) > keep_frame:
                kept.append(b.slice(keep_frame, b.start + len(b)) if b.start < keep_frame else b)
        self._frames = kept


def extract_units(blocks: Iterable[np.ndarray], *, sample_rate_hz: float, channels: int,
                  **params) -> Iterator[dict]:
    """Unit rows of a block stream, as they become final; params as UnitExtractor."""
    ex = UnitExtractor(sample_rate_hz=sample_rate_hz, channels=channels, **params)
    for block in blocks:
        yield from ex.update(block)
    yield from ex.finish()


def summarize_units(rows: list[dict]) -> dict:
    """The per-file summary stored with the file: {"count", "median_power" (dB), "median_hz"
    (Hz, over pitched units; None if none), "median_clarity" (0-1), "median_dur" (s)}."""
    if not rows:
        return {"count": 0, "median_power": None, "median_hz": None, "median_clarity": None,
                "median_dur": None}
    hz = [r["hz"] for r in rows if r["hz"] is not None]
    return {
        "count": len(rows),
        "median_power": round(float(np.median([r["power"] for r in rows])), 3),
        "median_hz": round(float(np.median(hz)), 3) if hz else None,
        "median_clarity": round(float(np.median([r["clarity"] for r in rows])), 4),
        "median_dur": round(float(np.median([r["dur"] for r in rows])), 4),
    }
