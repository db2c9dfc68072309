"""The pure parts of concatenative re-synthesis (`audiotrove mosaic`): arrays in, arrays out.

    gain = match_gain_db(source_db=-30.0, target_db=-18.0)          # 12.0 dB
    shift = pitch_shift_semitones(source_hz=220.0, target_hz=330.0)  # 7.02 semitones
    y = resample_shift(x, semitones=shift, sample_rate_hz=44100, out_rate_hz=44100)
    y = fit_to_length(y, n_samples=8820, fade_in=220, fade_out=220)  # trimmed/padded, faded
    path = best_path(unit_cost, transition_cost)                      # Viterbi over a lattice
    layers = greedy_layers(target_mel, candidate_mels, max_layers=3)  # [(index, power scale)]
    out = RollingOutput(frames=n, channels=2, block_frames=65536)    # pieces in, finished blocks out

Levels are dB RMS re full scale (dsp.features.power_db: a full-scale sine reads -3.01 dB).
Pitch shifts are by resampling (the sound plays faster and higher, or slower and lower, as a
sampler does), never more than 12 semitones either way. Fades are raised-cosine ramps, or
equal-power (sine/cosine) when two unrelated sounds cross-fade.
"""
from __future__ import annotations

import math

import numpy as np

from .features import power_db

MAX_SHIFT_SEMITONES = 12.0
MAX_BOOST_DB = 30.0  # a near-silent source is not raised by more than this
PEAK_CEILING_DB = -0.1  # nor is any source raised into clipping (dB re full scale)


def level_db(x: np.ndarray) -> float:
    """dB RMS re full scale of a signal (frames[, channels]): mean square over all samples."""
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return power_db(0.0)
    return power_db(float(np.mean(x * x)))


def match_gain_db(*, source_db: float, target_db: float, max_boost_db: float = MAX_BOOST_DB,
                  source_peak: float | None = None, peak_ceiling_db: float = PEAK_CEILING_DB) -> float:
    """The gain (dB) that brings a source at source_db to target_db; never more than max_boost_db,
    nor more than lifts the source's peak (|sample|, full scale 1) above peak_ceiling_db."""
    gain = min(target_db - source_db, max_boost_db)
    if source_peak is not None and source_peak > 0:
        gain = min(gain, peak_ceiling_db - 20.0 * math.log10(source_peak))
    return float(gain)


def db_to_amplitude(gain_db: float) -> float:
    return float(10.0 ** (gain_db / 20.0))


def pitch_shift_semitones(*, source_hz: float | None, target_hz: float | None,
                          max_semitones: float = MAX_SHIFT_SEMITONES) -> float:
    """Semitones that move source_hz onto target_hz; 0 when either is unpitched (None, NaN, <= 0).

    A larger interval is folded by whole octaves until it lies within +-max_semitones (the note
    is right, an octave off), so no sound is ever sped up or slowed down by more than an octave.
    """
    if not _pitched(source_hz) or not _pitched(target_hz):
        return 0.0
    d = 12.0 * math.log2(float(target_hz) / float(source_hz))
    while d > max_semitones:
        d -= 12.0
    while d < -max_semitones:
        d += 12.0
    return float(d)


def _pitched(hz) -> bool:
    return hz is not None and isinstance(hz, (int, float, np.floating)) and math.isfinite(hz) and hz > 0


def resample_shift(x: np.ndarray, *, semitones: float, sample_rate_hz: int, out_rate_hz: int) -> np.ndarray:
    """x (frames[, channels]) at sample_rate_hz, pitch-shifted by resampling and converted to
    out_rate_hz in one step: up by s semitones plays 2^(s/12) times faster (and shorter).
    Returns float32 of the same rank. |semitones| <= 12."""
    if abs(semitones) > MAX_SHIFT_SEMITONES + 1e-9:
        raise ValueError(f"pitch shift of {semitones:.2f} semitones: at most +-12")
    x = np.asarray(x, np.float32)
    factor = 2.0 ** (semitones / 12.0)
    in_rate = float(sample_rate_hz) * factor
    if len(x) == 0 or (abs(factor - 1.0) < 1e-9 and int(sample_rate_hz) == int(out_rate_hz)):
        return x.copy()
    import soxr

    y = soxr.resample(x, in_rate, float(out_rate_hz), quality="HQ")
    return np.asarray(y, np.float32)


def source_seconds_needed(dur_s: float, semitones: float) -> float:
    """Seconds of source a unit of dur_s needs once shifted by `semitones` (up reads faster)."""
    return dur_s * 2.0 ** (semitones / 12.0)


def raised_cosine(n: int) -> np.ndarray:
    """Ramp 0 -> 1 over n samples (both ends excluded), float32."""
    if n <= 0:
        return np.ones(0, np.float32)
    t = (np.arange(n) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def equal_power(n: int) -> np.ndarray:
    """Ramp 0 -> 1 over n samples whose square plus its mirror's square is 1 (sin of 0..pi/2)."""
    if n <= 0:
        return np.ones(0, np.float32)
    t = (np.arange(n) + 0.5) / n
    return np.sin(0.5 * np.pi * t).astype(np.float32)


def fit_to_length(x: np.ndarray, *, n_samples: int, fade_in: int, fade_out: int,
                  equal_power_fades: bool = False) -> np.ndarray:
    """x (frames, channels) trimmed or zero-padded to n_samples, faded in over its first
    fade_in samples and out over the last fade_out samples of what it holds (the end of the
    material, when x is shorter than n_samples): the result starts and ends at silence."""
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    out = np.zeros((max(int(n_samples), 0), x.shape[1]), np.float32)
    m = min(len(x), len(out))
    out[:m] = x[:m]
    ramp = equal_power if equal_power_fades else raised_cosine
    a = min(int(fade_in), m // 2)
    b = min(int(fade_out), m - a)
    if a > 0:
        out[:a] *= ramp(a)[:, None]
    if b > 0:
        out[m - b:m] *= ramp(b)[::-1, None]
    return out


class RollingOutput:
    """A long signal made of pieces added at their start samples, given out in finished blocks.

        out = RollingOutput(frames=n, channels=2, block_frames=65536)
        for start, piece in pieces:            # starts never decrease
            for block in out.add(start, piece):
                write(block)
        for block in out.close():
            write(block)

    Once a piece starts at sample s, no later piece touches anything before s: the blocks
    before it are final and go out. The blocks are block_frames long (the last one shorter) and
    together exactly `frames` long; a piece running past `frames` is cut there. Samples add in
    float32 in the order the pieces come, so the blocks are bit for bit those of adding every
    piece into one array of `frames` samples. Memory: one block plus the longest piece.
    """

    def __init__(self, *, frames: int, channels: int, block_frames: int):
        if block_frames < 1:
            raise ValueError("block_frames must be at least 1")
        self.frames, self.block_frames = int(frames), int(block_frames)
        self._buf = np.zeros((self.block_frames, channels), np.float32)
        self._start = 0  # the output sample at _buf[0]
        self._last = 0  # the start of the last piece
        self.max_buffered_frames = len(self._buf)  # for tests: the bound holds

    def add(self, start: int, piece: np.ndarray) -> list[np.ndarray]:
        """Add piece (frames, channels) at sample `start`; return the blocks now final."""
        if start < self._last:
            raise ValueError(f"pieces must come in the order of their starts ({start} < {self._last})")
        self._last = start
        done = self._release(min(start, self.frames))
        end = min(start + len(piece), self.frames)
        if end > start:
            need = end - self._start
            if need > len(self._buf):
                grown = np.zeros((max(need, 2 * len(self._buf)), self._buf.shape[1]), np.float32)
                grown[:len(self._buf)] = self._buf
                self._buf = grown
                self.max_buffered_frames = max(self.max_buffered_frames, len(grown))
            self._buf[start - self._start:end - self._start] += piece[:end - start]
        return done

    def close(self) -> list[np.ndarray]:
        """The remaining blocks, up to `frames`."""
        done = self._release(self.frames)
        rest = self.frames - self._start
        if rest > 0:
            done.append(self._buf[:rest].copy())
            self._start = self.frames
        return done

    def _release(self, upto: int) -> list[np.ndarray]:
        done = []
        b = self.block_frames
        while upto - self._start >= b:
            done.append(self._buf[:b].copy())
            self._buf[:-b] = self._buf[b:]
            self._buf[-b:] = 0.0
            self._start += b
        return done


def best_path(unit_cost: np.ndarray, transition_cost=None) -> np.ndarray:
    """The path through a (T, K) lattice that minimises the sum of unit costs plus transition
    costs (Viterbi). transition_cost: (T-1, K, K), [t, a, b] the cost of going from candidate a
    at step t to candidate b at step t+1, or a function t -> that (K, K) matrix (so that a long
    lattice never holds all of them); None for independent choices. Infinite costs forbid
    a choice; a step with no finite choice takes its cheapest index (the caller checks).
    Ties go to the lower index. Returns (T,) candidate indices."""
    cost = np.asarray(unit_cost, np.float64)
    T, K = cost.shape
    if T == 0:
        return np.zeros(0, np.int64)
    if transition_cost is None:
        return np.argmin(cost, axis=1).astype(np.int64)
    back = np.zeros((T, K), np.int64)
    acc = cost[0].copy()
    for t in range(1, T):
        step = transition_cost(t - 1) if callable(transition_cost) else transition_cost[t - 1]
        total = acc[:, None] + np.asarray(step, np.float64)  # (a, b)
        back[t] = np.argmin(total, axis=0)
        acc = total[back[t], np.arange(K)] + cost[t]
        acc[~np.isfinite(acc)] = np.inf
    path = np.zeros(T, np.int64)
    path[-1] = int(np.argmin(acc))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def greedy_layers(target: np.ndarray, candidates: np.ndarray, *, max_layers: int,
                  first: int | None = None, min_improvement: float = 0.05) -> list[tuple[int, float]]:
    """Which candidates, summed, best approximate a target spectrum, and with what scale.

    target: (bands,) mel power spectrum; candidates: (K, bands). Powers of unrelated sounds
    add, so the model is target ~ sum_i c_i * candidate_i with c_i >= 0 (non-negative least
    squares, each band weighted by 1 / its target power, so quiet bands count as much as loud
    ones). Greedy: start from `first` (or the best single candidate), add the candidate that
    lowers the error most, while it lowers it by at least min_improvement of the error so far
    and fewer than max_layers are chosen. Returns [(candidate index, power scale c_i)], the
    first one first; a layer whose scale comes out 0 is dropped (the first is always kept).
    """
    from scipy.optimize import nnls

    t = np.asarray(target, np.float64)
    c = np.asarray(candidates, np.float64)
    if c.ndim != 2 or len(c) == 0:
        return []
    w = 1.0 / (t + 1e-3 * max(float(t.max()), 1e-12) + 1e-20)
    tw = t * w
    cw = c * w[None, :]

    def fit(idx: list[int]) -> tuple[np.ndarray, float]:
        coef, resid = nnls(cw[idx].T, tw)
        return coef, float(resid ** 2)

    if first is None:
        errors = [fit([i])[1] for i in range(len(c))]
        first = int(np.argmin(errors))
    chosen = [int(first)]
    coef, err = fit(chosen)
    while len(chosen) < max(1, int(max_layers)):
        best = None
        for i in range(len(c)):
            if i in chosen:
                continue
            cf, e = fit(chosen + [i])
            if best is None or e < best[2]:
                best = (i, cf, e)
        if best is None or best[2] > (1.0 - min_improvement) * err:
            break
        chosen.append(best[0])
        coef, err = best[1], best[2]
    out = [(chosen[0], float(coef[0]))]
    out += [(i, float(v)) for i, v in zip(chosen[1:], coef[1:]) if v > 0]
    return out


__all__ = ["MAX_SHIFT_SEMITONES", "RollingOutput", "best_path", "db_to_amplitude", "equal_power", "fit_to_length",
           "greedy_layers", "level_db", "match_gain_db", "pitch_shift_semitones", "raised_cosine",
           "resample_shift", "source_seconds_needed"]
