"""Frame-level audio features, streamed: spectra, mel bands, MFCC, chroma, contrast, pitch, tempo.

Everything here works on one analysis grid so a file is decoded and transformed once:

    n_fft, hop = analysis_frame(sample_rate_hz)   # ~46 ms frames, ~11.6 ms hop at any rate
    framer = Framer(n_fft=n_fft, hop=hop)          # centred frames: frame k is centred on sample k*hop
    analyzer = FrameAnalyzer(sample_rate_hz=sr, n_fft=n_fft, hop=hop)
    for mono_block in blocks:
        batch = analyzer.analyze(framer.push(mono_block))
    batch = analyzer.analyze(framer.finish())

A FrameBatch holds, per frame: level (dBFS of the hop around the frame centre), the power
spectrum, mel-band levels for onset detection, MFCC, pitch (hz, clarity). Features of a
stretch of audio (a unit, a window) are computed from the frames whose centres fall in it:
spectral shape (centroid, rolloff, flatness, contrast, chroma) from their mean power
spectrum, MFCC as the mean of the frames' MFCC, pitch as the median of the voiced frames.

`FeatureSeries` turns a block stream into a tidy time series (one row per window of
`hop_s` seconds), carrying its state across blocks: the rows do not depend on block size.

The mel filterbank, DCT-based MFCC, chroma and contrast are written here on numpy/scipy
(librosa is not a runtime dependency: it pulls numba and its import alone costs seconds).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

from . import pitch as _pitch

ALL_FEATURES = ("rms", "zcr", "centroid", "rolloff", "flatness", "contrast", "chroma", "mfcc",
                "pitch", "tempo")
N_MFCC = 13
MFCC_MELS = 40
MFCC_FMAX_HZ = 8000.0  # fixed band edges: MFCCs stay comparable across sample rates
ONSET_MELS = 64
ONSET_FMIN_HZ = 30.0
ONSET_FMAX_HZ = 16000.0
LEVEL_FLOOR_DB = -120.0
MEL_FLOOR_DB = -80.0
ROLLOFF_FRACTION = 0.85
CONTRAST_FMIN_HZ = 200.0
CONTRAST_BANDS = 6  # octave bands above CONTRAST_FMIN_HZ -> 7 values with the band below it
CONTRAST_QUANTILE = 0.02
CHROMA_FMIN_HZ = 32.7  # C1
CHROMA_FMAX_HZ = 5000.0
TEMPO_WINDOW_S = 8.0
TEMPO_MIN_BPM = 30.0
TEMPO_MAX_BPM = 300.0
TEMPO_PRIOR_BPM = 120.0
_EPS = 1e-12


# --- the analysis grid ----------------------------------------------------------------------

def analysis_frame(sample_rate_hz: float) -> tuple[int, int]:
    """(n_fft, hop) in samples: a power of two >= 40 ms (long enough for 50 Hz pitch), hop n/4."""
    n_fft = 1 << max(8, math.ceil(math.log2(0.04 * sample_rate_hz)))
    return n_fft, n_fft // 4


class Framer:
    """Cut a stream of mono samples into overlapping frames centred on k * hop.

    push(samples) returns the frames now complete, shape (m, n_fft), float32; finish()
    pads the end with zeros and returns the rest (the frames whose centre lies in the
    signal: ceil(length / hop) frames in all). The signal is zero-padded before sample 0.
    """

    def __init__(self, *, n_fft: int, hop: int):
        if hop < 1 or n_fft < hop:
            raise ValueError("need 1 <= hop <= n_fft")
        self.n_fft, self.hop = n_fft, hop
        self._buf = np.zeros(n_fft // 2, dtype=np.float32)  # left padding
        self._next = 0  # next frame index
        self._base = -(n_fft // 2)  # absolute sample index of _buf[0]
        self.total_samples = 0
        self._done = False

    @property
    def frames_emitted(self) -> int:
        return self._next

    def push(self, samples: np.ndarray) -> np.ndarray:
        if self._done:
            raise RuntimeError("Framer.push after finish")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.total_samples += len(samples)
        self._buf = np.concatenate([self._buf, samples])
        return self._take(len(self._buf))

    def finish(self) -> np.ndarray:
        """The remaining frames, zero-padded at the end."""
        self._done = True
        n_total = -(-self.total_samples // self.hop)  # frames with centre < length
        last_end = (n_total - 1) * self.hop + self.n_fft - self.n_fft // 2 - self._base
        if n_total > self._next and last_end > len(self._buf):
            self._buf = np.concatenate([self._buf, np.zeros(last_end - len(self._buf), np.float32)])
        frames = self._take(len(self._buf), limit=n_total)
        return frames

    def _take(self, available: int, limit: int | None = None) -> np.ndarray:
        # frame k spans absolute [k*hop - n_fft//2, k*hop - n_fft//2 + n_fft)
        first = self._next * self.hop - self.n_fft // 2 - self._base
        count = (available - first - self.n_fft) // self.hop + 1 if available - first >= self.n_fft else 0
        if limit is not None:
            count = max(0, min(count, limit - self._next))
        if count <= 0:
            return np.zeros((0, self.n_fft), dtype=np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self._buf[first:], self.n_fft)[::self.hop][:count]
        frames = np.array(view)
        self._next += count
        keep_from = self._next * self.hop - self.n_fft // 2 - self._base
        self._buf = self._buf[keep_from:]
        self._base += keep_from
        return frames


# --- filterbanks ----------------------------------------------------------------------------

def hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (mel)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    logstep = math.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / logstep, hz / f_sp)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    logstep = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), f_sp * mel)


def fft_frequencies(*, sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each rfft bin."""
    return np.arange(n_fft // 2 + 1) * (sample_rate_hz / n_fft)


def mel_filterbank(*, sample_rate_hz: float, n_fft: int, n_mels: int, fmin_hz: float = 0.0,
                   fmax_hz: float | None = None) -> scipy.sparse.csr_matrix:
    """Triangular mel filters (peak 1) as a sparse (n_bins, n_mels) matrix: power @ fb.

    Every filter is at least one FFT bin wide (a filter narrower than the bin spacing takes
    its nearest bin), so no band is empty at low sample rates.
    """
    fmax_hz = min(fmax_hz or sample_rate_hz / 2, sample_rate_hz / 2)
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    f = freqs[:, None]
    up = (f - lower) / np.maximum(centre - lower, _EPS)
    down = (upper - f) / np.maximum(upper - centre, _EPS)
    weights = np.maximum(0.0, np.minimum(up, down))
    empty = weights.sum(axis=0) == 0
    if empty.any():
        nearest = np.abs(freqs[:, None] - centre[None, empty]).argmin(axis=0)
        weights[nearest, np.flatnonzero(empty)] = 1.0
    return scipy.sparse.csr_matrix(weights.astype(np.float32))


def chroma_filterbank(*, sample_rate_hz: float, n_fft: int, fmin_hz: float = CHROMA_FMIN_HZ,
                      fmax_hz: float = CHROMA_FMAX_HZ) -> scipy.sparse.csr_matrix:
    """(n_bins, 12) weights of each FFT bin to pitch classes C..B (Gaussian, 0.5 semitone wide)."""
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    use = (freqs >= fmin_hz) & (freqs <= min(fmax_hz, sample_rate_hz / 2))
    midi = np.zeros_like(freqs)
    midi[use] = 69.0 + 12.0 * np.log2(freqs[use] / _pitch.A4_HZ)
    classes = np.arange(12)
    # circular distance in semitones between each bin's pitch and each pitch class
    dist = (midi[:, None] - classes[None, :]) % 12.0
    dist = np.minimum(dist, 12.0 - dist)
    weights = np.exp(-0.5 * (dist / 0.5) ** 2) * use[:, None]
    weights[weights < 1e-3] = 0.0
    return scipy.sparse.csr_matrix(weights.astype(np.float32))


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_in, n_out) via scipy.fft: mfcc = mel_db @ basis."""
    return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=1)[:, :n_out].copy()


# --- features of spectra --------------------------------------------------------------------

def spectral_shape(power: np.ndarray, freqs: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(centroid Hz, rolloff Hz, flatness 0-1) of one power spectrum; Nones for silence.

    centroid: magnitude-weighted mean frequency; rolloff: the frequency below which
    ROLLOFF_FRACTION of the magnitude lies; flatness: geometric / arithmetic mean of power.
    """
    power = np.asarray(power, dtype=np.float64)
    total = power.sum()
    if not total > _EPS * power.size:
        return None, None, None
    mag = np.sqrt(power)
    centroid = float((freqs * mag).sum() / mag.sum())
    cum = np.cumsum(mag)
    rolloff = float(freqs[min(int(np.searchsorted(cum, ROLLOFF_FRACTION * cum[-1])), len(freqs) - 1)])
    p = power + 1e-10
    flatness = float(np.exp(np.mean(np.log(p))) / np.mean(p))
    return centroid, rolloff, flatness


def spectral_shape_rows(power: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """spectral_shape for each row of (m, n_bins) power: arrays with NaN for silent rows."""
    power = np.asarray(power, dtype=np.float64)
    total = power.sum(axis=1)
    silent = ~(total > _EPS * power.shape[1])
    mag = np.sqrt(power)
    msum = np.maximum(mag.sum(axis=1), _EPS)
    centroid = (mag @ freqs) / msum
    cum = np.cumsum(mag, axis=1)
    idx = (cum < ROLLOFF_FRACTION * cum[:, -1:]).sum(axis=1)
    rolloff = freqs[np.minimum(idx, len(freqs) - 1)]
    p = power + 1e-10
    flatness = np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)
    for arr in (centroid, rolloff, flatness):
        arr[silent] = np.nan
    return centroid, rolloff, flatness


def contrast_bands(*, sample_rate_hz: float, n_fft: int) -> list[np.ndarray]:
    """Bin indices of the spectral-contrast bands: below 200 Hz, then octaves up to Nyquist."""
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    edges = [0.0] + [CONTRAST_FMIN_HZ * 2 ** i for i in range(CONTRAST_BANDS)] + [sample_rate_hz / 2 + 1]
    bands = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        idx = np.flatnonzero((freqs >= lo) & (freqs < hi))
        if idx.size == 0:  # a band above Nyquist at low sample rates: reuse the top bin
            idx = np.array([len(freqs) - 1])
        bands.append(idx)
    return bands


def spectral_contrast(power: np.ndarray, bands: list[np.ndarray]) -> np.ndarray:
    """Per frame and band, peak minus valley level in dB: (m, len(bands)).

    Peak / valley: mean power of the top / bottom CONTRAST_QUANTILE of the band's bins.
    """
    power = np.asarray(power, dtype=np.float64)
    out = np.empty((power.shape[0], len(bands)))
    for j, idx in enumerate(bands):
        band = np.sort(power[:, idx], axis=1)
        k = max(1, int(round(CONTRAST_QUANTILE * idx.size)))
        valley = band[:, :k].mean(axis=1)
        peak = band[:, -k:].mean(axis=1)
        out[:, j] = 10.0 * np.log10(peak + 1e-10) - 10.0 * np.log10(valley + 1e-10)
    return out


def zero_crossing_rate(x: np.ndarray) -> float:
    """Fraction of adjacent sample pairs whose sign differs (0-1); 2 f / sr for a sine of f Hz."""
    x = np.asarray(x).reshape(-1)
    if len(x) < 2:
        return 0.0
    s = np.signbit(x)
    return float(np.count_nonzero(s[1:] != s[:-1]) / (len(x) - 1))


def power_db(mean_square: float) -> float:
    """Level in dB (re full scale) of a mean square value; LEVEL_FLOOR_DB for silence."""
    return float(max(LEVEL_FLOOR_DB, 10.0 * math.log10(mean_square + 1e-30)))


# --- per-frame analysis -----------------------------------------------------------------------

@dataclass
class FrameBatch:
    """Features of consecutive frames, index `start` onwards (frame k is centred on k * hop)."""

    start: int
    level_db: np.ndarray            # (m,) dBFS of the hop around each frame centre
    power: np.ndarray               # (m, n_bins) one-sided power spectrum (float32)
    onset_db: np.ndarray            # (m, ONSET_MELS) mel-band levels, dB, floored at MEL_FLOOR_DB
    mfcc: np.ndarray                # (m, N_MFCC)
    hz: np.ndarray                  # (m,) NaN when unpitched
    clarity: np.ndarray             # (m,)
    contrast: np.ndarray | None = None  # (m, 7) when asked for

    def __len__(self) -> int:
        return len(self.level_db)

    @classmethod
    def concat(cls, batches: list["FrameBatch"]) -> "FrameBatch":
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        contrast = None if first.contrast is None else np.concatenate([b.contrast for b in batches])
        return cls(first.start, *(np.concatenate([getattr(b, name) for b in batches])
                                  for name in ("level_db", "power", "onset_db", "mfcc", "hz", "clarity")),
                   contrast=contrast)

    def slice(self, lo: int, hi: int) -> "FrameBatch":
        """Frames with absolute index in [lo, hi)."""
        a, b = max(0, lo - self.start), max(0, hi - self.start)
        return FrameBatch(self.start + a, self.level_db[a:b], self.power[a:b], self.onset_db[a:b],
                          self.mfcc[a:b], self.hz[a:b], self.clarity[a:b],
                          None if self.contrast is None else self.contrast[a:b])


@functools.lru_cache(maxsize=16)
def _grid_constants(sample_rate_hz: float, n_fft: int) -> tuple:
    """Window, filterbanks and DCT of one analysis grid, built once per process (a sample
    library of short one-shots would otherwise spend more time here than analysing)."""
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    # a sine of amplitude A gives A^2 / 2 (its mean square) in its peak bin
    scale = np.float32(2.0 / window.sum() ** 2)
    onset_fb = mel_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft, n_mels=ONSET_MELS,
                              fmin_hz=ONSET_FMIN_HZ, fmax_hz=ONSET_FMAX_HZ)
    mfcc_fb = mel_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft, n_mels=MFCC_MELS,
                             fmin_hz=0.0, fmax_hz=MFCC_FMAX_HZ)
    dct = _dct_matrix(MFCC_MELS, N_MFCC).astype(np.float32)
    bands = contrast_bands(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    for arr in (freqs, dct):
        arr.setflags(write=False)
    return (freqs, window.astype(np.float32), scale, onset_fb, mfcc_fb, onset_fb.T.tocsr(),
            mfcc_fb.T.tocsr(), dct, bands)


@functools.lru_cache(maxsize=16)
def _cached_chroma(sample_rate_hz: float, n_fft: int) -> scipy.sparse.csr_matrix:
    return chroma_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft)


class FrameAnalyzer:
    """Compute a FrameBatch from frames of a Framer (same n_fft and hop)."""

    def __init__(self, *, sample_rate_hz: float, n_fft: int, hop: int, pitch: bool = True,
                 contrast: bool = False, fmin_hz: float = _pitch.DEFAULT_FMIN_HZ,
                 fmax_hz: float = _pitch.DEFAULT_FMAX_HZ):
        self.sample_rate_hz, self.n_fft, self.hop = float(sample_rate_hz), n_fft, hop
        self.want_pitch, self.want_contrast = pitch, contrast
        self.fmin_hz = max(fmin_hz, sample_rate_hz / (n_fft // 2) * 1.01)
        self.fmax_hz = min(fmax_hz, sample_rate_hz / 4)
        (self.freqs, self.window, self._scale, self.onset_fb, self.mfcc_fb, self._onset_fbT,
         self._mfcc_fbT, self.dct, self.contrast_bands) = _grid_constants(float(sample_rate_hz), n_fft)
        self.next_index = 0
        lo = n_fft // 2 - hop // 2
        self._hop_slice = slice(lo, lo + hop)

    def analyze(self, frames: np.ndarray) -> FrameBatch:
        m = len(frames)
        start = self.next_index
        self.next_index += m
        if m == 0:
            nb = len(self.freqs)
            z = np.zeros((0,), np.float64)
            return FrameBatch(start, z, np.zeros((0, nb), np.float32), np.zeros((0, ONSET_MELS), np.float32),
                              np.zeros((0, N_MFCC), np.float32), z.copy(), z.copy(),
                              np.zeros((0, len(self.contrast_bands))) if self.want_contrast else None)
        centre = frames[:, self._hop_slice]
        ms = np.mean(centre.astype(np.float64) ** 2, axis=1)
        level_db = np.maximum(LEVEL_FLOOR_DB, 10.0 * np.log10(ms + 1e-30))
        spec = scipy.fft.rfft(frames * self.window, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2) * self._scale
        power = power.astype(np.float32, copy=False)
        onset_db = 10.0 * np.log10(np.asarray(self._onset_fbT @ power.T).T + 1e-10)
        onset_db = np.maximum(onset_db, MEL_FLOOR_DB).astype(np.float32)
        mel_db = 10.0 * np.log10(np.asarray(self._mfcc_fbT @ power.T).T + 1e-10)
        mel_db = np.maximum(mel_db, MEL_FLOOR_DB - 20.0).astype(np.float32)
        mfcc = mel_db @ self.dct
        if self.want_pitch:
            hz, clarity = _pitch.frame_pitch(frames, sample_rate_hz=self.sample_rate_hz,
                                             fmin_hz=self.fmin_hz, fmax_hz=self.fmax_hz)
        else:
            hz, clarity = np.full(m, np.nan), np.zeros(m)
        contrast = spectral_contrast(power, self.contrast_bands) if self.want_contrast else None
        return FrameBatch(start, level_db, power, onset_db, mfcc, hz, clarity, contrast)


def spectral_flux(onset_db: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Onset novelty per frame: mean over mel bands of the rise in dB from the previous frame.

    The previous frame is max-filtered across 3 neighbouring bands first (as in SuperFlux),
    so vibrato does not read as onsets. `previous` is the frame before the first row (None:
    silence at MEL_FLOOR_DB, so a sound at the very start is an onset).
    """
    onset_db = np.asarray(onset_db, dtype=np.float32)
    if previous is None:
        previous = np.full(onset_db.shape[1], MEL_FLOOR_DB, dtype=np.float32)
    prev = np.vstack([previous[None, :], onset_db[:-1]])
    widened = prev.copy()
    widened[:, 1:] = np.maximum(widened[:, 1:], prev[:, :-1])
    widened[:, :-1] = np.maximum(widened[:, :-1], prev[:, 1:])
    return np.maximum(onset_db - widened, 0.0).mean(axis=1).astype(np.float64)


# --- tempo ------------------------------------------------------------------------------------

def tempo_bpm(novelty: np.ndarray, *, frame_rate_hz: float, min_bpm: float = TEMPO_MIN_BPM,
              max_bpm: float = TEMPO_MAX_BPM, prior_bpm: float = TEMPO_PRIOR_BPM) -> float | None:
    """Dominant tempo (BPM) of a stretch of onset novelty, from its autocorrelation.

    The autocorrelation is weighted by a log-normal prior around prior_bpm (one octave wide)
    so a beat and its half or double are told apart; None when the novelty is flat.
    """
    x = np.asarray(novelty, dtype=np.float64)
    x = x - x.mean()
    if len(x) < 4 or not np.any(x):
        return None
    max_lag = min(len(x) - 2, int(math.ceil(60.0 * frame_rate_hz / min_bpm)))
    min_lag = max(1, int(math.floor(60.0 * frame_rate_hz / max_bpm)))
    if max_lag <= min_lag + 1:
        return None
    size = scipy.fft.next_fast_len(2 * len(x), real=True)
    spec = scipy.fft.rfft(x, size)
    acf = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, size)[:max_lag + 2]
    if acf[0] <= 0:
        return None
    acf = acf / acf[0]
    lags = np.arange(min_lag, max_lag + 1)
    bpm = 60.0 * frame_rate_hz / lags
    weight = np.exp(-0.5 * (np.log2(bpm / prior_bpm)) ** 2)
    score = acf[min_lag:max_lag + 1] * weight
    i = int(np.argmax(score))
    if score[i] <= 0:
        return None
    lag = float(lags[i])
    if 0 < i < len(score) - 1:  # parabolic refinement on the raw autocorrelation
        a, b, c = acf[lags[i] - 1], acf[lags[i]], acf[lags[i] + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag += float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    return 60.0 * frame_rate_hz / lag


# --- a tidy time series from a block stream ------------------------------------------------

def feature_columns(features: tuple[str, ...] | list[str]) -> list[str]:
    """Column names produced for a feature set (after 'time')."""
    cols: list[str] = []
    for name in features:
        if name == "rms":
            cols.append("rms")
        elif name == "zcr":
            cols.append("zcr")
        elif name in ("centroid", "rolloff", "flatness"):
            cols.append(name)
        elif name == "contrast":
            cols += [f"contrast_{i + 1}" for i in range(CONTRAST_BANDS + 1)]
        elif name == "chroma":
            cols += [f"chroma_{n}" for n in _pitch.NOTE_NAMES]
        elif name == "mfcc":
            cols += [f"mfcc_{i + 1}" for i in range(N_MFCC)]
        elif name == "pitch":
            cols += ["hz", "clarity"]
        elif name == "tempo":
            cols.append("tempo")
        else:
            raise ValueError(f"unknown feature {name!r}; known: {', '.join(ALL_FEATURES)}")
    return cols


class FeatureSeries:
    """Streaming time series: one row per window [i*hop_s, (i+1)*hop_s) of the file.

    Columns (see feature_columns): time (s, window start), rms (dBFS), zcr (0-1),
    centroid / rolloff (Hz), flatness (0-1), contrast_1..7 (dB), chroma_C..chroma_B
    (0-1, max 1), mfcc_1..13, hz (Hz, NaN unpitched), clarity (0-1), tempo (BPM, local
    tempo over TEMPO_WINDOW_S centred on the window).

        series = FeatureSeries(sample_rate_hz=sr, hop_s=0.1, features=("rms", "mfcc"))
        for block in blocks: rows = series.update(block)   # dict of column arrays (maybe empty)
        rows = series.finish()
    """

    def __init__(self, *, sample_rate_hz: float, hop_s: float = 0.1,
                 features: tuple[str, ...] | list[str] = ALL_FEATURES,
                 tempo_window_s: float = TEMPO_WINDOW_S):
        if hop_s <= 0:
            raise ValueError("hop_s must be > 0")
        self.features = tuple(dict.fromkeys(features))
        self.columns = ["time"] + feature_columns(self.features)
        self.sr = float(sample_rate_hz)
        self.hop_s = float(hop_s)
        n_fft, hop = analysis_frame(sample_rate_hz)
        hop = max(1, min(hop, int(hop_s * sample_rate_hz)))
        self.n_fft, self.frame_hop = n_fft, hop
        self.frame_rate_hz = self.sr / hop
        self.framer = Framer(n_fft=n_fft, hop=hop)
        self.analyzer = FrameAnalyzer(sample_rate_hz=sample_rate_hz, n_fft=n_fft, hop=hop,
                                      pitch="pitch" in self.features,
                                      contrast="contrast" in self.features)
        self.chroma_fb = _cached_chroma(float(sample_rate_hz), n_fft) \
            if "chroma" in self.features else None
        self.tempo_half = int(round(tempo_window_s * self.frame_rate_hz / 2))
        self._frames: list[FrameBatch] = []
        self._flux = np.zeros(0)  # novelty of kept frames (for tempo)
        self._flux_start = 0
        self._prev_onset_db: np.ndarray | None = None
        # sample-domain accumulators for the window being filled
        self._win = 0  # next window index to emit
        self._acc_ms = 0.0
        self._acc_zc = 0
        self._acc_n = 0
        self._last_sign: bool | None = None
        self._win_ms: list[float] = []
        self._win_zcr: list[float] = []
        self._samples = 0

    # window i covers samples [edge(i), edge(i+1))
    def _edge(self, i: int) -> int:
        return int(round(i * self.hop_s * self.sr))

    def update(self, block: np.ndarray) -> dict[str, np.ndarray]:
        mono = _mono(block)
        self._sample_stats(mono)
        batch = self.analyzer.analyze(self.framer.push(mono))
        self._add_frames(batch)
        return self._emit(final=False)

    def finish(self) -> dict[str, np.ndarray]:
        batch = self.analyzer.analyze(self.framer.finish())
        self._add_frames(batch)
        if self._acc_n:
            self._close_window()
        return self._emit(final=True)

    # -- sample-domain stats (rms, zcr), exact per window
    def _sample_stats(self, mono: np.ndarray) -> None:
        pos = 0
        n = len(mono)
        while pos < n:
            end_abs = self._edge(len(self._win_ms) + 1)
            take = min(n - pos, end_abs - self._samples)
            seg = mono[pos:pos + take].astype(np.float64)
            if take > 0:
                self._acc_ms += float(np.dot(seg, seg))
                signs = np.signbit(seg)
                zc = int(np.count_nonzero(signs[1:] != signs[:-1]))
                if self._last_sign is not None and self._acc_n > 0:
                    zc += int(signs[0] != self._last_sign)
                self._acc_zc += zc
                self._acc_n += take
                self._last_sign = bool(signs[-1])
                self._samples += take
                pos += take
            if self._samples >= end_abs:
                self._close_window()

    def _close_window(self) -> None:
        n = self._acc_n
        self._win_ms.append(self._acc_ms / n if n else 0.0)
        self._win_zcr.append(self._acc_zc / (n - 1) if n > 1 else 0.0)
        self._acc_ms, self._acc_zc, self._acc_n = 0.0, 0, 0

    def _add_frames(self, batch: FrameBatch) -> None:
        if len(batch) == 0:
            return
        self._frames.append(batch)
        if "tempo" in self.features:
            flux = spectral_flux(batch.onset_db, self._prev_onset_db)
            self._flux = np.concatenate([self._flux, flux])
        self._prev_onset_db = batch.onset_db[-1]

    def _emit(self, *, final: bool) -> dict[str, np.ndarray]:
        frames_have = self.analyzer.next_index
        rows: list[dict] = []
        while True:
            i = self._win
            if i >= len(self._win_ms):
                break  # samples of this window not complete yet
            lo = self._edge(i)
            hi = self._edge(i + 1)
            if i == len(self._win_ms) - 1 and final:
                hi = self._samples
            first_f = -(-lo // self.frame_hop)
            last_f = -(-hi // self.frame_hop)  # frames with centre in [lo, hi)
            need = last_f + (self.tempo_half if "tempo" in self.features else 0)
            if not final and frames_have < need:
                break
            rows.append(self._row(i, first_f, max(last_f, first_f + 1)))
            self._win += 1
        self._trim()
        return _to_columns(rows, self.columns)

    def _frames_between(self, lo: int, hi: int) -> FrameBatch | None:
        parts = [b.slice(lo, hi) for b in self._frames if b.start < hi and b.start + len(b) > lo]
        parts = [p for p in parts if len(p)]
        return FrameBatch.concat(parts) if parts else None

    def _row(self, i: int, f_lo: int, f_hi: int) -> dict:
        row: dict = {"time": i * self.hop_s}
        fb = self._frames_between(f_lo, f_hi)
        if fb is None:  # a window shorter than a hop at the very end: take the last frame
            fb = self._frames_between(f_lo - 1, f_lo)
        mean_power = fb.power.astype(np.float64).mean(axis=0) if fb is not None else None
        for name in self.features:
            if name == "rms":
                row["rms"] = power_db(self._win_ms[i])
            elif name == "zcr":
                row["zcr"] = self._win_zcr[i]
            elif name in ("centroid", "rolloff", "flatness"):
                c, r, f = spectral_shape(mean_power, self.analyzer.freqs) if mean_power is not None else (None,) * 3
                row[name] = {"centroid": c, "rolloff": r, "flatness": f}[name]
            elif name == "contrast":
                vals = fb.contrast.mean(axis=0) if fb is not None else [np.nan] * (CONTRAST_BANDS + 1)
                for j, v in enumerate(vals):
                    row[f"contrast_{j + 1}"] = float(v)
            elif name == "chroma":
                ch = np.asarray(self.chroma_fb.T @ mean_power).ravel() if mean_power is not None else np.zeros(12)
                top = ch.max()
                ch = ch / top if top > 0 else ch
                for n, v in zip(_pitch.NOTE_NAMES, ch):
                    row[f"chroma_{n}"] = float(v)
            elif name == "mfcc":
                vals = fb.mfcc.mean(axis=0) if fb is not None else [np.nan] * N_MFCC
                for j, v in enumerate(vals):
                    row[f"mfcc_{j + 1}"] = float(v)
            elif name == "pitch":
                if fb is None:
                    row["hz"], row["clarity"] = None, 0.0
                else:
                    hz, cl = _pitch.summarize_pitch(fb.hz, fb.clarity, fb.level_db)
                    row["hz"], row["clarity"] = hz, cl
            elif name == "tempo":
                centre = (f_lo + f_hi) // 2
                a = max(self._flux_start, centre - self.tempo_half)
                b = min(self._flux_start + len(self._flux), centre + self.tempo_half)
                seg = self._flux[a - self._flux_start:b - self._flux_start]
                row["tempo"] = tempo_bpm(seg, frame_rate_hz=self.frame_rate_hz) if len(seg) else None
        return row

    def _trim(self) -> None:
        """Drop frames no window still needs (bounded memory)."""
        keep_from = -(-self._edge(self._win) // self.frame_hop) - 1
        if "tempo" in self.features:
            keep_from -= self.tempo_half + 1
        keep_from = max(0, keep_from)
        kept = []
        for b in self._frames:
            if b.start + len(b) > keep_from:
                kept.append(b.slice(keep_from, b.start + len(b)) if b.start < keep_from else b)
        self._frames = kept
        if "tempo" in self.features and keep_from > self._flux_start:
            cut = min(keep_from - self._flux_start, len(self._flux))
            self._flux = self._flux[cut:]
            self._flux_start += cut


def _mono(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    if not np.isfinite(block).all():  # NaN/inf samples count as silence
        block = np.where(np.isfinite(block), block, np.float32(0.0))
    if block.ndim == 1:
        return block
    return block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)


def _to_columns(rows: list[dict], columns: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for col in columns:
        vals = [r.get(col) for r in rows]
        out[col] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
    return out


def series_summary(table: dict[str, np.ndarray], *, percentiles: tuple[int, ...] = (10, 50, 90)) -> dict[str, float | None]:
    """One row per file from a time series: '<col>.mean', '.std', '.p10', '.p50', '.p90'.

    NaN values (unpitched windows, silence) are left out; a column with no value gives None.
    """
    out: dict[str, float | None] = {}
    for col, values in table.items():
        if col == "time":
            continue
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            out[f"{col}.mean"] = out[f"{col}.std"] = None
            for p in percentiles:
                out[f"{col}.p{p}"] = None
            continue
        out[f"{col}.mean"] = float(v.mean())
        out[f"{col}.std"] = float(v.std())
        for p, q in zip(percentiles, np.percentile(v, percentiles)):
            out[f"{col}.p{p}"] = float(q)
    return out
