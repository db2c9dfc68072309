"""Mains hum (50 / 60 Hz and harmonics) from a long-term high-resolution spectrum.

Method (streaming, memory bounded):
1. The channel mix is resampled to 1000 Hz with soxr's streaming resampler (its
   anti-alias filter removes everything above ~450 Hz, so a 1 kHz tone cannot alias onto a
   mains line; soxr is bit-exact whatever the block size).
2. A Welch spectrum (2 s Hann frames, 50 % overlap: 0.5 Hz bins) is accumulated over the
   whole file; every `PERSISTENCE_FRAMES` frames a partial spectrum records which bins were
   narrow peaks at that time, so a line must be present through the recording, not only
   during one sustained note.
3. For each mains series (50 Hz: harmonics 1..8, 60 Hz: 1..7) the strongest local peak
   within +-1 % of k * f0 (tolerates 49.8 / 60.2 Hz grids and slow tape transfers) is compared
   with the median of the bins 3..12 Hz away (the local spectral floor). A harmonic is
   "found" when this prominence exceeds 6 + 12 / sqrt(frames) dB (stricter for short
   files, whose spectra are noisier), its line is louder than -90 dBFS, and (files of 3 or
   more persistence windows) it was a peak in at least half of them.
4. The found harmonics must agree on one fundamental (each within 0.5 Hz of k * f); hum is
   reported when at least two agree, or when one line at k = 1 or 2 stands 20 dB above the
   floor. When both series qualify, the one with the larger summed excess wins.

Musical notes sit on the equal-tempered grid (G1 = 49.0 Hz, G2 = 98.0, B2 = 123.5 ...), 2-3 %
away from the mains lines, outside the tolerance; speech pitch moves and leaves no line.
"""
from __future__ import annotations

import math

import numpy as np
import soxr

from .spectrum import WelchAccumulator

__all__ = ["HumDetector", "analyse_hum_spectrum", "detect_hum"]

HUM_RATE_HZ = 1000
SEGMENT_SAMPLES = 2000  # 2 s at 1000 Hz -> 0.5 Hz bins
HOP_SAMPLES = 1000
BIN_HZ = HUM_RATE_HZ / SEGMENT_SAMPLES
MAINS_HZ = (50.0, 60.0)
TOLERANCE = 0.01  # relative search window around k * f0
MAX_LINE_HZ = 450.0  # soxr passband edge at 1000 Hz (leave room for the floor ring)
FLOOR_INNER_HZ = 3.0
FLOOR_OUTER_HZ = 12.0
MIN_LINE_DBFS = -90.0
STRONG_SINGLE_DB = 20.0
AGREEMENT_HZ = 0.5
PERSISTENCE_FRAMES = 5
PERSISTENCE_PEAK_DB = 6.0
PERSISTENCE_MIN_WINDOWS = 3
PERSISTENCE_SHARE = 0.5


def _threshold_db(n_frames: int) -> float:
    return 6.0 + 12.0 / math.sqrt(max(n_frames, 1))


def _ring_offsets() -> np.ndarray:
    inner = round(FLOOR_INNER_HZ / BIN_HZ)
    outer = round(FLOOR_OUTER_HZ / BIN_HZ)
    right = np.arange(inner, outer + 1)
    return np.concatenate((-right[::-1], right))


def _search_bins() -> np.ndarray:
    """Bins within the +-1 % windows of every mains harmonic examined, plus one bin each side."""
    bins = []
    for f0 in MAINS_HZ:
        for k in range(1, _max_harmonic(f0) + 1):
            lo = math.floor(k * f0 * (1 - TOLERANCE) / BIN_HZ) - 1
            hi = math.ceil(k * f0 * (1 + TOLERANCE) / BIN_HZ) + 1
            bins.extend(range(lo, hi + 1))
    return np.unique(np.asarray(bins, np.int64))


def _max_harmonic(f0: float) -> int:
    return int((MAX_LINE_HZ - FLOOR_OUTER_HZ) / (f0 * (1 + TOLERANCE)))


def _local_floor(power: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
    """Median of the bins 3..12 Hz away from each bin (or from each of `bins`)."""
    offsets = _ring_offsets()
    pad = int(np.abs(offsets).max())
    padded = np.pad(power, pad, mode="reflect")
    centre = np.arange(len(power)) if bins is None else bins
    return np.median(padded[centre[:, None] + pad + offsets[None, :]], axis=1)


def _peak_mask(power: np.ndarray, bins: np.ndarray, min_db: float) -> np.ndarray:
    """For each of `bins`: a local maximum standing `min_db` above its floor (dilated by 1 bin)."""
    floor = _local_floor(power, bins)
    centre = power[bins]
    peak = (centre >= power[bins - 1]) & (centre >= power[bins + 1])
    peak &= centre > floor * 10 ** (min_db / 10)
    mask = np.zeros(len(power), bool)
    mask[bins[peak]] = True
    mask[bins[peak] - 1] = True
    mask[bins[peak] + 1] = True
    return mask


def analyse_hum_spectrum(
    power: np.ndarray,
    *,
    n_frames: int,
    persistence: np.ndarray | None = None,
    n_windows: int = 0,
) -> dict:
    """Decide on mains hum from a Welch spectrum sampled at `BIN_HZ` (0.5 Hz) steps.

    power: one-sided power per bin (full-scale units, see spectrum.WelchAccumulator) of the
    1000 Hz channel mix; n_frames: frames averaged; persistence: per bin, the number of the
    `n_windows` partial windows in which the bin was a narrow peak.
    Returns {"frequency": 50.0 | 60.0 | None, "frequency_measured": Hz | None,
    "level": dB over the local floor | None, "level_dbfs": dBFS | None, "harmonics": [k, ...]}.
    """
    power = np.asarray(power, np.float64)
    tiny = 1e-300
    floor = np.zeros(len(power))
    floor[_SEARCH_BINS] = _local_floor(power, _SEARCH_BINS)
    threshold = _threshold_db(n_frames)
    use_persistence = persistence is not None and n_windows >= PERSISTENCE_MIN_WINDOWS
    best = None
    for f0 in MAINS_HZ:
        found = []  # (k, f_k, prominence_db, line_power)
        for k in range(1, _max_harmonic(f0) + 1):
            f_lo, f_hi = k * f0 * (1 - TOLERANCE), k * f0 * (1 + TOLERANCE)
            lo, hi = math.floor(f_lo / BIN_HZ), math.ceil(f_hi / BIN_HZ)
            i = lo + int(np.argmax(power[lo : hi + 1]))
            left, centre, right = power[i - 1], power[i], power[i + 1]
            if centre <= 0 or centre < left or centre < right:
                continue  # the window only holds the flank of a peak outside it
            la, lc, lr = (math.log(max(v, tiny)) for v in (left, centre, right))
            denom = la - 2 * lc + lr
            f_k = (i + (0.5 * (la - lr) / denom if denom < 0 else 0.0)) * BIN_HZ
            if not f_lo <= f_k <= f_hi:
                continue
            prominence = 10 * math.log10(max(centre, tiny) / max(floor[i], tiny))
            line_power = max(float(power[i - 2 : i + 3].sum() - 5 * floor[i]), 0.0)
            if prominence < threshold or line_power <= 10 ** (MIN_LINE_DBFS / 10):
                continue
            if use_persistence and persistence[i] < PERSISTENCE_SHARE * n_windows:
                continue
            found.append((k, f_k, prominence, line_power))
        if not found:
            continue
        fundamental = float(np.median([f / k_ for k_, f, _, _ in found]))
        agree = [h for h in found if abs(h[1] - h[0] * fundamental) <= AGREEMENT_HZ]
        if not agree:
            continue
        strong_single = len(agree) == 1 and agree[0][0] <= 2 and agree[0][2] >= STRONG_SINGLE_DB
        if len(agree) < 2 and not strong_single:
            continue
        score = sum(h[2] - threshold for h in agree)
        weights = np.array([h[3] for h in agree])
        fundamental = float(np.average([h[1] / h[0] for h in agree], weights=weights))
        candidate = {
            "frequency": f0,
            "frequency_measured": round(fundamental, 2),
            "level": round(max(h[2] for h in agree), 1),
            "level_dbfs": round(10 * math.log10(float(weights.sum())), 1),
            "harmonics": [h[0] for h in agree],
        }
        if best is None or score > best[0]:
            best = (score, candidate)
    if best is None:
        return {"frequency": None, "frequency_measured": None, "level": None,
                "level_dbfs": None, "harmonics": []}
    return best[1]


_SEARCH_BINS = _search_bins()


class HumDetector:
    """Streaming mains-hum detector on a mono stream (see module doc).

    det = HumDetector(sample_rate=44100); det.update(mono_float32); det.result() -> dict
    """

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self._resampler = soxr.ResampleStream(
            self.sample_rate, HUM_RATE_HZ, 1, dtype="float32", quality="HQ"
        )
        self._welch = WelchAccumulator(SEGMENT_SAMPLES, HOP_SAMPLES)
        n_bins = SEGMENT_SAMPLES // 2 + 1
        self._window_sum = np.zeros(n_bins)
        self._window_frames = 0
        self._persistence = np.zeros(n_bins, np.int64)
        self._n_windows = 0
        self._finished = False

    def update(self, mono: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("update() after result()")
        x = np.ascontiguousarray(mono, dtype=np.float32).reshape(-1)
        if len(x):
            self._consume(self._resampler.resample_chunk(x))

    def _consume(self, y: np.ndarray) -> None:
        for spectrum in self._welch.push(y):
            self._window_sum += spectrum
            self._window_frames += 1
            if self._window_frames == PERSISTENCE_FRAMES:
                self._close_window()

    def _close_window(self) -> None:
        self._persistence += _peak_mask(self._window_sum, _SEARCH_BINS, PERSISTENCE_PEAK_DB)
        self._n_windows += 1
        self._window_sum[:] = 0
        self._window_frames = 0

    def result(self) -> dict:
        if not self._finished:
            self._consume(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            if self._window_frames * 2 >= PERSISTENCE_FRAMES:
                self._close_window()
            self._finished = True
        mean = self._welch.mean()
        if mean is None:
            return {"frequency": None, "frequency_measured": None, "level": None,
                    "level_dbfs": None, "harmonics": [],
                    "reason": f"shorter than {SEGMENT_SAMPLES / HUM_RATE_HZ:g} s: "
                              "too short to resolve mains hum lines"}
        return analyse_hum_spectrum(mean, n_frames=self._welch.n_frames,
                                    persistence=self._persistence, n_windows=self._n_windows)


def detect_hum(audio: np.ndarray, *, sample_rate: int) -> dict:
    """Mains hum of a whole signal, (frames,) or (frames, channels) (channels are averaged).

    Returns the dict of `analyse_hum_spectrum` ("reason" added when the signal is shorter
    than one 2 s analysis frame).
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio @ np.full(audio.shape[1], 1 / audio.shape[1], np.float32)
    mono = audio
    mono = np.where(np.isfinite(mono), mono, np.float32(0))
    det = HumDetector(sample_rate)
    det.update(mono)
    return det.result()
