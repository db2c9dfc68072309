"""Placing the chosen corpus units: read, pitch-shift, gain-match, fit, fade, sum, mix.

Each layer of a target unit [s, s + n) (samples of the target):
  1. its corpus unit is read (units/render.SegmentReader: seeks where libsndfile can, one pass
     per file otherwise), mixed to the output's channels, pitch-shifted by resampling and
     brought to the target's rate in one soxr call (dsp/mosaic.resample_shift);
  2. fitted to n samples (+ the crossfade tail), and gain-matched: its level over the slot
     (dB RMS) is brought to the target unit's level (less, for a layer, by its share of the
     target's power), but never raised by more than 30 dB nor so far that its peak passes
     -0.1 dBFS (a quiet source with a high crest factor stays below the target's level then);
  3. faded in and out (raised cosine of `fade_ms`, or equal-power over `crossfade_ms`, the tail
     running on past the unit's end under the next unit's fade-in) and added at sample s.
The output has the target's length, rate and channels (at most 2); `mix` blends the target
underneath (out = (1 - mix) * mosaic + mix * target); samples are clipped to [-1, 1]. It is
made block by block (dsp/mosaic.RollingOutput): the units come in the order of their starts,
everything before the next start is final and goes out, so memory holds a block and the units
being placed, and the target is read again block by block for the mix, never whole.

Layers (`layers` > 1): the mel power spectrum of the target unit (cut from the target's
stream) and of its cheapest candidates (after their shift) go to dsp/mosaic.greedy_layers, which
keeps the chosen unit and adds those that lower the spectral error, each with its share of the
power.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from ..dsp.melspec import YAMNET, htk_mel_matrix, magnitude_frames
from ..dsp.mosaic import (
    RollingOutput,
    db_to_amplitude,
    fit_to_length,
    greedy_layers,
    level_db,
    match_gain_db,
    resample_shift,
    source_seconds_needed,
)
from ..io.decode import DEFAULT_BLOCK_FRAMES, DecodeError
from ..units.render import SegmentReader, _Request, _to_channels

LAYER_CANDIDATES = 8  # the cheapest candidates the layer search considers per target unit (the chosen one included)
WINDOW_PIECES = 2048  # corpus pieces read under one plan (see PieceReader)


def mel_power(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean mel power spectrum (64 bands, YAMNet's front end at 16 kHz) of a signal (frames[, ch])."""
    import soxr

    x = np.asarray(x, np.float32)
    mono = x.mean(axis=1) if x.ndim == 2 else x
    if sample_rate != YAMNET.sample_rate_hz and len(mono):
        mono = np.asarray(soxr.resample(mono, sample_rate, YAMNET.sample_rate_hz), np.float32)
    if len(mono) < YAMNET.frame_length:
        mono = np.concatenate([mono, np.zeros(YAMNET.frame_length - len(mono), np.float32)])
    mag = magnitude_frames(mono, YAMNET).astype(np.float64)
    weights = htk_mel_matrix(sample_rate_hz=YAMNET.sample_rate_hz, n_fft=YAMNET.n_fft, n_mels=YAMNET.n_mels,
                             fmin_hz=YAMNET.fmin_hz, fmax_hz=YAMNET.fmax_hz)
    return ((mag ** 2) @ weights).mean(axis=0)


class PieceReader:
    """Reads corpus units as pieces ready to place: at the output's rate and channels, shifted.

    Pieces are read in the order of their index, window_pieces at a time under one
    units/render.SegmentReader: files libsndfile reads are seeked into; a file only PyAV decodes
    is decoded once per window, and that window's pieces of it are held until read. So memory
    holds at most one window's pieces, whatever the number of pieces."""

    def __init__(self, requests: list[dict], *, sample_rate: int, channels: int,
                 window_pieces: int = WINDOW_PIECES):
        self.sample_rate, self.channels = sample_rate, channels
        self._reqs = [_Request(i, r["path"], r["start"], r["dur"]) for i, r in enumerate(requests)]
        self._shift = [r["shift"] for r in requests]
        self._window = window_pieces
        self._reader, self._reader_window = None, -1
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self._reqs)

    def read(self, i: int) -> np.ndarray | None:
        req = self._reqs[i]
        w = i // self._window
        if w != self._reader_window:
            self._reader = SegmentReader(self._reqs[w * self._window:(w + 1) * self._window])
            self._reader_window = w
        try:
            rate = self._reader.info(req.path)[0]
            x = self._reader.read(req)
        except DecodeError as exc:
            self.skipped.append(f"{req.path} @ {req.start_s:.3f} s: {exc}")
            return None
        if len(x) == 0:
            self.skipped.append(f"{req.path} @ {req.start_s:.3f} s: no samples there")
            return None
        x = _to_channels(np.asarray(x, np.float32), self.channels)
        y = resample_shift(x, semitones=self._shift[i], sample_rate_hz=rate, out_rate_hz=self.sample_rate)
        return y if y.ndim == 2 else y[:, None]


def request(row, *, target_dur_s: float, shift: float, tail_s: float) -> dict:
    """What to read of a corpus unit: from its start, what the slot needs (at most the unit)."""
    need = source_seconds_needed(target_dur_s + tail_s, shift) + 0.01
    return {"path": row["path"], "start": float(row["start"]), "dur": float(min(row["dur"], need)),
            "shift": float(shift)}


def target_spans(blocks: Iterable[np.ndarray], spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The mono mix of each span [s, e) of the target (spans sorted by start), in order, cut from
    its blocks as the stream passes (vectors/embed.StreamCutter: memory holds the spans pending)."""
    from ..vectors.embed import StreamCutter

    cutter = StreamCutter(spans)
    for block in blocks:
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        for _, x in cutter.push(mono):
            yield x
    for _, x in cutter.finish():
        yield x


def choose_layers(target_blocks: Iterable[np.ndarray], sample_rate: int, channels: int,
                  spans: list[tuple[int, int]], candidates: list[list[dict]], *, max_layers: int
                  ) -> list[list[tuple[int, float]]]:
    """For each target unit, [(candidate index, share of the target's power)], the chosen
    candidate (index 0 of its list) first. candidates[t]: request dicts, chosen first;
    target_blocks: the target's audio, block by block (one pass, unit by unit with its candidates)."""
    reader = PieceReader([c for cs in candidates for c in cs], sample_rate=sample_rate, channels=channels)
    target_audio = target_spans(target_blocks, spans)
    out = []
    i = 0
    for t, cs in enumerate(candidates):
        s, e = spans[t]
        target_x = next(target_audio)
        spectra: dict[int, np.ndarray] = {}
        for j in range(len(cs)):
            piece = reader.read(i)
            i += 1
            if piece is not None:
                spectra[j] = mel_power(piece[:e - s], sample_rate)
        if not cs or 0 not in spectra:
            out.append([(0, 1.0)] if cs else [])
            continue
        target = mel_power(target_x, sample_rate)
        total = target.sum()
        if total <= 0:
            out.append([(0, 1.0)])
            continue
        idx = sorted(spectra)
        mats = np.stack([spectra[j] / max(spectra[j].sum(), 1e-20) for j in idx])
        picked = greedy_layers(target / total, mats, max_layers=max_layers, first=0)
        out.append([(idx[k], share) for k, share in picked])
    return out


def render(write: Callable[[np.ndarray], None], *, frames: int, channels: int, sample_rate: int,
           spans: list[tuple[int, int]], target_db: list[float], layers: list[list[dict]], fade_ms: float,
           crossfade_ms: float, mix: float, target_blocks: Iterable[np.ndarray] | None = None,
           block_frames: int = DEFAULT_BLOCK_FRAMES) -> tuple[list[list[float | None]], list[str]]:
    """Render the mosaic (frames, channels) block by block: `write(block)` gets its blocks in
    order (block_frames each, the last shorter). Returns each layer's gain (dB; None when
    unread) and the corpus units that could not be read.

    layers[t]: request dicts of target unit t, each with a "share" of the target's power;
    target_blocks: the target's audio in blocks of block_frames (needed when mix > 0)."""
    out = RollingOutput(frames=frames, channels=channels, block_frames=block_frames)
    target = iter(target_blocks) if mix > 0 else None

    def finish(blocks: list[np.ndarray]) -> None:
        for block in blocks:
            if target is not None:
                block = (1.0 - mix) * block + mix * next(target)
            np.clip(block, -1.0, 1.0, out=block)
            write(block)

    flat = [(t, j, r) for t, ls in enumerate(layers) for j, r in enumerate(ls)]
    reader = PieceReader([r for _, _, r in flat], sample_rate=sample_rate, channels=channels)
    fade = int(round(fade_ms / 1000 * sample_rate))
    xfade = int(round(crossfade_ms / 1000 * sample_rate))
    gains: list[list[float | None]] = [[None] * len(ls) for ls in layers]
    for i, (t, j, r) in enumerate(flat):
        s, e = spans[t]
        n = e - s
        piece = reader.read(i)
        if piece is None or n <= 0:
            continue
        tail = min(xfade, frames - e)
        fitted = fit_to_length(piece, n_samples=n + tail, fade_in=0, fade_out=0)
        source_db = level_db(fitted[:n])
        want_db = target_db[t] + 10.0 * np.log10(max(r.get("share", 1.0), 1e-6))
        gain = match_gain_db(source_db=source_db, target_db=want_db, source_peak=float(np.abs(fitted).max()))
        if xfade:
            placed = fit_to_length(piece, n_samples=n + tail, fade_in=xfade, fade_out=xfade, equal_power_fades=True)
        else:
            placed = fit_to_length(piece, n_samples=n, fade_in=fade, fade_out=fade)
        finish(out.add(s, placed * db_to_amplitude(gain)))
        gains[t][j] = round(gain, 3)
    finish(out.close())
    return gains, reader.skipped


__all__ = ["PieceReader", "choose_layers", "mel_power", "render", "request", "target_spans"]
