"""Fundamental frequency: a fast, vectorised YIN-style estimator with a clarity measure.

For every frame x (n samples) the squared-difference function of YIN,

    d(tau) = sum_{j < n - tau} (x_j - x_{j+tau})^2 = m(tau) - 2 r(tau),
    m(tau) = sum_{j < n - tau} x_j^2 + sum_{j >= tau} x_j^2,

is normalised by m(tau) into n(tau) = 1 - d(tau) / m(tau) = 2 r(tau) / m(tau) (McLeod's
normalised square difference; 1 for a perfectly periodic frame at its period, ~0 for noise).
The autocorrelation r comes from one real FFT per frame, all frames of a batch at once.

The period is the first local maximum of n(tau) (after the first zero crossing, so the
central lobe is never taken) whose height reaches `peak_ratio` times the frame's highest
maximum: taking the first strong dip of d avoids YIN's octave-too-low errors, the ratio
avoids octave-too-high ones. Parabolic interpolation refines the lag to a fraction of a
sample. `clarity` is n(tau) at the chosen period, in [0, 1]: the harmonicity of the frame.

A unit's pitch (`unit_pitch`) is the frames' median, or, where the sound before the unit
still rings into it and the frames read the mixture's period, the pitch of what the unit
adds (`added_sound_pitch`).

Hand-written because no well-kept library offers a vectorised YIN without heavy dependencies
(librosa's pyin is ~7x real time, and librosa is not a runtime dependency of audiotrove).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
A4_HZ = 440.0

DEFAULT_FMIN_HZ = 50.0
DEFAULT_FMAX_HZ = 2000.0
DEFAULT_PEAK_RATIO = 0.88
# Frames quieter than this (mean square, relative to full scale) are not analysed: -90 dBFS.
_SILENT_MEAN_SQUARE = 1e-9


def lag_range(*, sample_rate_hz: float, frame_length: int, fmin_hz: float = DEFAULT_FMIN_HZ,
              fmax_hz: float = DEFAULT_FMAX_HZ) -> tuple[int, int]:
    """(min_lag, max_lag) in samples for an fmin_hz..fmax_hz search in frames of frame_length.

    The longest period searched is capped at half the frame, so the overlap stays >= n/2.
    """
    if fmin_hz <= 0 or fmax_hz <= fmin_hz:
        raise ValueError("need 0 < fmin_hz < fmax_hz")
    min_lag = max(2, int(math.floor(sample_rate_hz / fmax_hz)))
    max_lag = min(int(math.ceil(sample_rate_hz / fmin_hz)), frame_length // 2)
    if max_lag <= min_lag + 2:
        raise ValueError(
            f"frame of {frame_length} samples at {sample_rate_hz} Hz is too short for fmin {fmin_hz} Hz")
    return min_lag, max_lag


def frame_pitch(frames: np.ndarray, *, sample_rate_hz: float, fmin_hz: float = DEFAULT_FMIN_HZ,
                fmax_hz: float = DEFAULT_FMAX_HZ, peak_ratio: float = DEFAULT_PEAK_RATIO
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pitch of each frame: (hz, clarity), arrays of shape (n_frames,).

    frames: (n_frames, n) float array of raw (unwindowed) samples.
    hz: fundamental frequency in Hz, NaN where no period was found (silence, noise).
    clarity: 0-1 harmonicity at the chosen period (0 where hz is NaN).
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise ValueError("frames must be 2-D (n_frames, frame_length)")
    n_frames, n = frames.shape
    hz = np.full(n_frames, np.nan, dtype=np.float64)
    clarity = np.zeros(n_frames, dtype=np.float64)
    if n_frames == 0:
        return hz, clarity
    min_lag, max_lag = lag_range(sample_rate_hz=sample_rate_hz, frame_length=n,
                                 fmin_hz=fmin_hz, fmax_hz=fmax_hz)
    x = frames - frames.mean(axis=1, keepdims=True)
    sq = x * x
    loud = sq.mean(axis=1) > _SILENT_MEAN_SQUARE
    if not loud.any():
        return hz, clarity
    idx = np.flatnonzero(loud)
    x, sq = x[idx], sq[idx]
    nsdf = _nsdf(x, sq, max_lag + 2)
    tau, peak = _pick_period(nsdf, min_lag=min_lag, max_lag=max_lag, peak_ratio=peak_ratio)
    found = np.isfinite(tau)
    hz[idx[found]] = sample_rate_hz / tau[found]
    clarity[idx[found]] = np.clip(peak[found], 0.0, 1.0)
    return hz, clarity


def _nsdf(x: np.ndarray, sq: np.ndarray, n_lags: int) -> np.ndarray:
    """Normalised square difference n(tau) for tau in [0, n_lags), each row of x (float32)."""
    rows, n = x.shape
    size = scipy.fft.next_fast_len(n + n_lags, real=True)
    spec = scipy.fft.rfft(x, size, axis=1)
    parts = spec.view(np.float32)
    parts = parts * parts
    acf = scipy.fft.irfft(parts[:, ::2] + parts[:, 1::2], size, axis=1)[:, :n_lags]
    # m(tau) = sum_{j < n-tau} x_j^2 + sum_{j >= tau} x_j^2
    #        = 2 * total - (sum of the first tau squares) - (sum of the last tau squares)
    total = sq.sum(axis=1, dtype=np.float64).astype(np.float32)[:, None]
    prefix = np.zeros((rows, n_lags), np.float32)
    suffix = np.zeros((rows, n_lags), np.float32)
    np.cumsum(sq[:, :n_lags - 1], axis=1, out=prefix[:, 1:])
    np.cumsum(sq[:, :n - n_lags:-1], axis=1, out=suffix[:, 1:])
    m = 2.0 * total - prefix
    m -= suffix
    np.maximum(m, np.float32(1e-30), out=m)
    acf += acf
    acf /= m
    return acf


def _pick_period(nsdf: np.ndarray, *, min_lag: int, max_lag: int, peak_ratio: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Chosen lag (fractional samples, NaN if none) and the interpolated peak height per row."""
    rows = nsdf.shape[0]
    lags = np.arange(nsdf.shape[1])
    # only lags after the first negative value: the central lobe is not a period
    negative = (nsdf < 0) & (lags >= 1)
    first_neg = np.where(negative.any(axis=1), negative.argmax(axis=1), nsdf.shape[1])
    mid = nsdf[:, 1:-1]
    is_max = (mid > nsdf[:, :-2]) & (mid >= nsdf[:, 2:]) & (mid > 0)
    inner = lags[1:-1]
    is_max &= (inner >= min_lag) & (inner <= max_lag)
    is_max &= inner[None, :] > first_neg[:, None]
    heights = np.where(is_max, mid, -np.inf)
    best = heights.max(axis=1)
    has = np.isfinite(best)
    strong = is_max & (mid >= peak_ratio * best[:, None])
    choice = strong.argmax(axis=1) + 1  # index into nsdf
    tau = np.full(rows, np.nan)
    peak = np.zeros(rows)
    r = np.flatnonzero(has)
    if r.size == 0:
        return tau, peak
    t = choice[r]
    a, b, c = nsdf[r, t - 1], nsdf[r, t], nsdf[r, t + 1]
    denom = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(denom < 0, 0.5 * (a - c) / denom, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    tau[r] = t + shift
    peak[r] = b - 0.25 * (a - c) * shift
    return tau, peak


def pitch_track(signal: np.ndarray, *, sample_rate_hz: float, frame_s: float = 0.046,
                hop_s: float = 0.0116, fmin_hz: float = DEFAULT_FMIN_HZ,
                fmax_hz: float = DEFAULT_FMAX_HZ, peak_ratio: float = DEFAULT_PEAK_RATIO
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch over a whole (mono) signal in memory: (times_s, hz, clarity).

    Frame k starts at k * hop; times_s is the frame centre in seconds. For files, stream
    frames through `frame_pitch` instead (see audiotrove.dsp.features.FrameAnalyzer).
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n = max(int(round(frame_s * sample_rate_hz)), 2 * int(math.ceil(sample_rate_hz / fmin_hz)))
    hop = max(1, int(round(hop_s * sample_rate_hz)))
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x), np.float32)])
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    times = (np.arange(len(frames)) * hop + n / 2) / sample_rate_hz
    hz, clarity = np.empty(len(frames)), np.empty(len(frames))
    step = 512  # bounded temporary memory: the FFT of 512 frames at a time
    for i in range(0, len(frames), step):
        hz[i:i + step], clarity[i:i + step] = frame_pitch(
            frames[i:i + step], sample_rate_hz=sample_rate_hz, fmin_hz=fmin_hz,
            fmax_hz=fmax_hz, peak_ratio=peak_ratio)
    return times, hz, clarity


def summarize_pitch(hz: np.ndarray, clarity: np.ndarray, level_db: np.ndarray | None = None, *,
                    min_clarity: float = 0.6, min_voiced_fraction: float = 0.3,
                    loud_range_db: float = 30.0) -> tuple[float | None, float]:
    """One pitch for a stretch of frames (a unit): (hz or None when unpitched, clarity 0-1).

    Only the loud frames count (level within loud_range_db of the loudest, when level_db
    is given). hz is the median over voiced frames (clarity >= min_clarity), taken on a log
    scale; None when fewer than min_voiced_fraction of the loud frames are voiced.
    clarity is the median clarity of the loud frames.
    """
    hz = np.asarray(hz, dtype=np.float64)
    clarity = np.asarray(clarity, dtype=np.float64)
    if hz.size == 0:
        return None, 0.0
    loud = np.ones(hz.size, dtype=bool)
    if level_db is not None:
        level_db = np.asarray(level_db, dtype=np.float64)
        loud = level_db >= level_db.max() - loud_range_db
    c = clarity[loud]
    unit_clarity = float(_median(c)) if c.size else 0.0
    voiced = loud & np.isfinite(hz) & (clarity >= min_clarity)
    n_voiced = int(np.count_nonzero(voiced))
    if n_voiced == 0 or n_voiced < min_voiced_fraction * np.count_nonzero(loud):
        return None, unit_clarity
    return float(np.exp(_median(np.log(hz[voiced])))), unit_clarity


def _median(values: np.ndarray) -> float:
    """np.median of a short 1-D array without NaN, without its overhead (a feature series
    asks for two per row): the middle value, or the mean of the middle two."""
    s = np.sort(values)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


# unit_pitch: when the sound before a unit lingers into it (a guitar string still ringing, a
# bowed or sung cross-fade, a note over a held one), the frames read the period of the mixture
# (the old note, or a common subharmonic of both: G2 under D4 + G4); the unit's pitch is then
# taken from what the unit adds. Rendered melodies (bench/bench_onsets.py), units on the right
# note: nylon guitar 0.88 -> 1.00, cello 0.87 -> 0.95, choir 0.58 -> 0.71, none lower; a melody
# over held notes (bench/bench_unit_pitch.py) 0.20 -> 0.38. See bench/RESULTS_onsets.md.
NEW_MIN_FRACTION = 0.1    # the added sound is at least this share of the unit's power...
NEW_MAX_FRACTION = 0.95   # ...and at most this (else little is left of the sound before)
NEW_MIN_CLARITY = 0.85    # the added sound must be clearly periodic
NEW_MIN_SEMITONES = 1.5   # within this of the frames' reading, keep the frames' (more precise) hz


def added_sound_pitch(power: np.ndarray, before_power: np.ndarray, *, window: np.ndarray,
                      sample_rate_hz: float, fmin_hz: float = DEFAULT_FMIN_HZ,
                      fmax_hz: float = DEFAULT_FMAX_HZ, peak_ratio: float = DEFAULT_PEAK_RATIO
                      ) -> tuple[float | None, float, float]:
    """Pitch of what a stretch of frames adds to the sound just before it.

    power: (m, n_fft // 2 + 1) power spectra of the stretch's frames, taken with `window`;
    before_power: (k, same) spectra of frames that end before the stretch starts.
    The added spectrum is the stretch's mean spectrum less the loudest of the frames before,
    bin by bin, clipped at 0; its autocorrelation (inverse FFT), divided by the window's own
    (as in Boersma's autocorrelation method, Praat), is searched for the period like a
    frame's n(tau).

    Returns (hz or None, added_fraction, clarity): added_fraction is the added power over the
    stretch's power (0-1), clarity the height (<= 1) of the normalised autocorrelation at the
    period; hz is None when nothing is added or no period is found.
    """
    power = np.asarray(power, dtype=np.float64)
    before = np.asarray(before_power, dtype=np.float64)
    n = len(window)
    bins = n // 2 + 1
    if power.ndim != 2 or before.ndim != 2 or power.shape[1] != bins or before.shape[1] != bins:
        raise ValueError("power and before_power must be (frames, n_fft // 2 + 1) for the window")
    mean = power.mean(axis=0) if len(power) else np.zeros(bins)
    added = np.maximum(mean - before.max(axis=0), 0.0) if len(before) else mean
    total = float(mean.sum())
    if total <= 0.0 or not np.any(added > 0):
        return None, 0.0, 0.0
    fraction = float(added.sum()) / total
    min_lag, max_lag = lag_range(sample_rate_hz=sample_rate_hz, frame_length=n,
                                 fmin_hz=fmin_hz, fmax_hz=fmax_hz)
    w = np.asarray(window, dtype=np.float64)
    w_acf = scipy.fft.irfft(np.abs(scipy.fft.rfft(w)) ** 2, n)[:max_lag + 2]
    acf = scipy.fft.irfft(added, n)[:max_lag + 2]
    # the windowed autocorrelation fades with the lag as the window's does: divide that out;
    # above 1 only by noise, which must not outrank the true period's peak
    acf = np.minimum(acf / np.maximum(w_acf, 1e-12 * w_acf[0]) / (acf[0] / w_acf[0]), 1.0)
    tau, peak = _pick_period(acf[None, :], min_lag=min_lag, max_lag=max_lag, peak_ratio=peak_ratio)
    if not np.isfinite(tau[0]):
        return None, fraction, 0.0
    return sample_rate_hz / float(tau[0]), fraction, float(np.clip(peak[0], 0.0, 1.0))


def unit_pitch(hz: np.ndarray, clarity: np.ndarray, level_db: np.ndarray, *, power: np.ndarray,
               before_power: np.ndarray | None, window: np.ndarray, sample_rate_hz: float,
               fmin_hz: float = DEFAULT_FMIN_HZ, fmax_hz: float = DEFAULT_FMAX_HZ,
               loud_range_db: float = 30.0) -> tuple[float | None, float]:
    """One pitch for a unit, aware of the sound before it: (hz or None, clarity 0-1).

    hz, clarity, level_db, power: the unit's frames (frame_pitch's output, level in dB, power
    spectra taken with `window`); before_power: spectra of frames that end before the unit
    starts (None or empty: nothing known before). As summarize_pitch, except that when the
    sound before is still there (what the unit adds is 10-95 % of its power) and the added
    sound has a clear pitch (clarity >= NEW_MIN_CLARITY) more than NEW_MIN_SEMITONES away
    from the frames' reading, the added sound's pitch is the unit's: the new note, not the
    period of the mixture.
    """
    f0, unit_clarity = summarize_pitch(hz, clarity, level_db, loud_range_db=loud_range_db)
    if f0 is None or before_power is None or len(before_power) == 0 or len(power) == 0:
        return f0, unit_clarity
    level_db = np.asarray(level_db, dtype=np.float64)
    loud = level_db >= level_db.max() - loud_range_db
    new_hz, fraction, new_clarity = added_sound_pitch(
        np.asarray(power)[loud], before_power, window=window, sample_rate_hz=sample_rate_hz,
        fmin_hz=fmin_hz, fmax_hz=fmax_hz)
    if (new_hz is not None and NEW_MIN_FRACTION <= fraction <= NEW_MAX_FRACTION
            and new_clarity >= NEW_MIN_CLARITY
            and abs(12.0 * math.log2(new_hz / f0)) >= NEW_MIN_SEMITONES):
        return new_hz, unit_clarity
    return f0, unit_clarity


def hz_to_midi(hz: float) -> float:
    """MIDI note number (69 = A4 = 440 Hz), fractional."""
    return 69.0 + 12.0 * math.log2(hz / A4_HZ)


def hz_to_note(hz: float | None) -> tuple[str | None, int | None]:
    """('A', 4) for 440 Hz: the nearest equal-tempered note name (C..B, sharps) and octave.

    Scientific pitch notation: C4 is middle C (261.63 Hz). (None, None) for None/NaN/<= 0.
    """
    if hz is None or not math.isfinite(hz) or hz <= 0:
        return None, None
    midi = int(round(hz_to_midi(hz)))
    return NOTE_NAMES[midi % 12], midi // 12 - 1


def note_to_hz(note: str, octave: int) -> float:
    """Frequency in Hz of an equal-tempered note: note_to_hz('A', 4) == 440.0."""
    midi = (octave + 1) * 12 + NOTE_NAMES.index(note)
    return A4_HZ * 2.0 ** ((midi - 69) / 12.0)
