"""Render units, in a given order, as one audio file: short fades so nothing clicks, a gap or a
crossfade between units, any mix of source files, sample rates and channel counts.

    render_units(df, "out.wav", gap_s=0.1)             # df: path, start, dur (list_units)
    render_units(df, "out.flac", crossfade_ms=30)

Every unit gets a raised-cosine fade in and out of fade_ms. With crossfade_ms, consecutive
units overlap by that much with equal-power fades (units are unrelated sounds, so their
powers add); the crossfade is shortened where a unit is shorter than twice its length. The
output is written block by block to a temporary name and renamed: memory holds one unit and
one crossfade at a time (plus, for files only PyAV can decode, the units taken from them,
read in one pass per file).

Output: the sample rate of the first unit's file unless given (others resampled with soxr),
mono when every source is mono, else stereo (mono sources on both channels, sources with
more than two channels give their first two). WAV and FLAC are 24-bit PCM, other formats
the library's default; samples are clipped to [-1, 1].
"""
from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..io.decode import DecodeError, open_audio

DEFAULT_FADE_MS = 5.0


@dataclass
class RenderSummary:
    path: str
    units: int
    skipped: list[str]  # 'path @ start: why' for units that could not be read
    duration_s: float
    sample_rate: int  # Hz: the highest rate among the units' files unless chosen
    channels: int
    resampled: int = 0  # units whose file had another rate (resampled with soxr)


@dataclass
class _Request:
    index: int
    path: str
    start_s: float
    dur_s: float


class SegmentReader:
    """Read stretches of files: seeking where libsndfile can, one decoding pass per file
    for the formats only PyAV reads (their requested stretches are collected then)."""

    def __init__(self, requests: list[_Request]):
        self._by_path: dict[str, list[_Request]] = defaultdict(list)
        for r in requests:
            self._by_path[r.path].append(r)
        self._info: dict[str, tuple[int, int, str]] = {}
        self._cache: dict[int, np.ndarray] = {}

    def info(self, path: str) -> tuple[int, int, str]:
        """(sample_rate, channels, backend) of a file; DecodeError if unreadable."""
        if path not in self._info:
            reader = open_audio(path)
            self._info[path] = (reader.sample_rate, reader.channels, reader.backend)
        return self._info[path]

    def read(self, req: _Request) -> np.ndarray:
        sr, ch, backend = self.info(req.path)
        if backend == "soundfile":
            import soundfile as sf

            start = int(round(req.start_s * sr))
            frames = int(round(req.dur_s * sr))
            try:
                with sf.SoundFile(req.path) as f:
                    f.seek(min(start, f.frames))
                    return f.read(frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise DecodeError(f"cannot read: {exc}") from exc
        if req.index not in self._cache:
            self._decode_pass(req.path)
        return self._cache.pop(req.index)

    def _decode_pass(self, path: str) -> None:
        sr, ch, _ = self.info(path)
        wanted = sorted(self._by_path[path], key=lambda r: r.start_s)
        spans = [(r.index, int(round(r.start_s * sr)), int(round((r.start_s + r.dur_s) * sr))) for r in wanted]
        parts: dict[int, list[np.ndarray]] = {i: [] for i, _, _ in spans}
        pos = 0
        last_end = max((e for _, _, e in spans), default=0)
        for block in open_audio(path).blocks():
            b0, b1 = pos, pos + len(block)
            for i, s, e in spans:
                if s < b1 and e > b0:
                    parts[i].append(block[max(s, b0) - b0:min(e, b1) - b0])
            pos = b1
            if pos >= last_end:
                break
        for i, _, _ in spans:
            self._cache[i] = np.concatenate(parts[i]) if parts[i] else np.zeros((0, ch), np.float32)


def _fade(n: int) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 over n samples (excluding both ends)."""
    if n <= 0:
        return np.ones(0, np.float32)
    t = (np.arange(n) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _equal_power(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(n) + 0.5) / n
    return np.sin(0.5 * np.pi * t).astype(np.float32), np.cos(0.5 * np.pi * t).astype(np.float32)


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(axis=1, keepdims=True, dtype=np.float32)
    if x.shape[1] == 1:
        return np.repeat(x, channels, axis=1)
    return x[:, :channels]


def _subtype(path: str) -> str | None:
    ext = Path(path).suffix.lower()
    return "PCM_24" if ext in (".wav", ".flac", ".aif", ".aiff") else None


def render_units(units, out_path: str | os.PathLike, *, gap_s: float = 0.0, crossfade_ms: float = 0.0,
                 fade_ms: float = DEFAULT_FADE_MS, sample_rate_hz: int | None = None) -> RenderSummary:
    """Write the units (rows with path, start, dur; a DataFrame or an iterable of dicts) in
    order to out_path. Raises ValueError for bad arguments, DecodeError if no unit is readable."""
    import soundfile as sf
    import soxr

    if gap_s < 0 or crossfade_ms < 0 or fade_ms < 0:
        raise ValueError("gap, crossfade and fade must be >= 0")
    if gap_s > 0 and crossfade_ms > 0:
        raise ValueError("choose a gap or a crossfade, not both")
    rows = _rows(units)
    if not rows:
        raise ValueError("no units to render")
    out_path = os.fspath(out_path)
    if not Path(out_path).suffix or not sf.check_format(_format_of(out_path)):
        raise ValueError(f"cannot write {Path(out_path).suffix or 'files without extension'}: "
                         "use .wav, .flac, .ogg or .aiff")
    requests = [_Request(i, str(r["path"]), float(r["start"]), float(r["dur"])) for i, r in enumerate(rows)]
    reader = SegmentReader(requests)
    skipped: list[str] = []
    readable: list[_Request] = []
    for req in requests:
        try:
            reader.info(req.path)
            readable.append(req)
        except DecodeError as exc:
            skipped.append(f"{req.path} @ {req.start_s:.3f} s: {exc}")
    if not readable:
        raise DecodeError("none of the units' files can be read: " + "; ".join(skipped[:3]))
    # The output rate: the highest among the units' files (nothing is made coarser), or the user's.
    rate = int(sample_rate_hz or max(reader.info(r.path)[0] for r in readable))
    channels = 1 if all(reader.info(r.path)[1] == 1 for r in readable) else 2
    fade = int(round(fade_ms / 1000 * rate))
    xfade = int(round(crossfade_ms / 1000 * rate))
    gap = np.zeros((int(round(gap_s * rate)), channels), np.float32)

    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    resampled = 0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-render-", suffix=Path(out_path).suffix, dir=directory)
    os.close(fd)
    written = 0
    count = 0
    try:
        with sf.SoundFile(tmp, "w", samplerate=rate, channels=channels, format=_format_of(out_path),
                          subtype=_subtype(out_path)) as out:
            tail: np.ndarray | None = None  # the end of the previous unit, waiting for its crossfade
            for req in readable:
                try:
                    x = reader.read(req)
                except DecodeError as exc:
                    skipped.append(f"{req.path} @ {req.start_s:.3f} s: {exc}")
                    continue
                if len(x) == 0:
                    skipped.append(f"{req.path} @ {req.start_s:.3f} s: no samples there")
                    continue
                src_rate = reader.info(req.path)[0]
                x = _to_channels(np.asarray(x, np.float32), channels)
                if src_rate != rate:
                    resampled += 1
                    x = soxr.resample(x, src_rate, rate).astype(np.float32, copy=False)
                    if x.ndim == 1:
                        x = x[:, None]
                x = np.array(x, dtype=np.float32)
                n = len(x)
                f = min(fade, n // 2)
                if f:
                    ramp = _fade(f)[:, None]
                    x[:f] *= ramp
                    x[n - f:] *= ramp[::-1]
                if xfade and tail is not None:
                    c = min(xfade, len(tail), n // 2)
                    fade_in, fade_out = _equal_power(c)
                    mix = tail[len(tail) - c:] * fade_out[:, None] + x[:c] * fade_in[:, None]
                    out.write(np.clip(tail[:len(tail) - c], -1, 1))
                    out.write(np.clip(mix, -1, 1))
                    written += len(tail)
                    x = x[c:]
                elif tail is not None:
                    out.write(np.clip(tail, -1, 1))
                    written += len(tail)
                    if len(gap):
                        out.write(gap)
                        written += len(gap)
                if xfade:
                    keep = min(xfade, len(x) // 2)
                    out.write(np.clip(x[:len(x) - keep], -1, 1))
                    written += len(x) - keep
                    tail = x[len(x) - keep:]
                else:
                    tail = x
                count += 1
            if tail is not None:
                out.write(np.clip(tail, -1, 1))
                written += len(tail)
        if count == 0:
            raise DecodeError("none of the units could be read: " + "; ".join(skipped[:3]))
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return RenderSummary(out_path, count, skipped, written / rate, rate, channels, resampled)


def _format_of(path: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    return {"aif": "AIFF", "aiff": "AIFF", "oga": "OGG"}.get(ext, ext.upper())


def _rows(units) -> list[dict]:
    if hasattr(units, "to_dict"):
        return units[["path", "start", "dur"]].to_dict("records")
    return [dict(r) for r in units]


def render_sorted(path: str, rows: Iterable[dict], out_path: str, **kwargs) -> RenderSummary:
    """Render rows of one file (no path column needed) in the given order."""
    return render_units([{"path": path, "start": r["start"], "dur": r["dur"]} for r in rows], out_path, **kwargs)
