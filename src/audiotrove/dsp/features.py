"""Frame-level audio features, streamed: spectra, mel bands, MFCC, chroma, contrast, pitch, tempo.

Everything here works on one analysis grid so a file is decoded and transformed once:

    n_fft, hop = analysis_frame(sample_rate_hz)   # ~46 ms frames, ~11.6 ms hop at any rate
    framer = Framer(n_fft=n_fft, hop=hop)          # centred frames: frame k is centred on sample k*hop
    analyzer = FrameAnalyzer(sample_rate_hz=sr, n_fft=n_fft, hop=hop)
    for mono_block in blocks:
        batch = analyzer.analyze(framer.push(mono_block))
    batch = analyzer.analyze(framer.finish())

A FrameBatch holds, per frame: level (dBFS of the hop around the frame centre), the power
spectrum, log-frequency band levels for onset detection, MFCC, pitch (hz, clarity), and on
request the frame's mean square, zero-crossing rate, centroid, rolloff, flatness and contrast.
Chroma comes from ChromaFrames, on frames twice as long centred on the same hops.

Definitions follow librosa's defaults for the same frame (n_fft, periodic Hann, centred,
zero-padded) and hop, so numbers compare with librosa-based work (tests/test_features_librosa.py
checks it where librosa is installed; README "Feature definitions" gives the tolerances):
    rms        frame mean square (rectangular, n_fft samples) = librosa.feature.rms ** 2
    zcr        sign changes / n_fft                             = librosa.feature.zero_crossing_rate
    centroid   magnitude-weighted mean frequency                = librosa.feature.spectral_centroid
    rolloff    lowest bin holding 85 % of the magnitude         = librosa.feature.spectral_rolloff
    flatness   geometric / arithmetic mean of power             = librosa.feature.spectral_flatness
    contrast   dB of magnitude, peak - valley, 200 Hz octaves   = librosa.feature.spectral_contrast
    chroma     Ellis' chroma filters (tuning 0), max 1 per frame, on frames twice as long (bass notes)
                                                                = librosa.feature.chroma_stft(tuning=0, n_fft=2 n_fft)
    mfcc       128 Slaney mel bands 0-Nyquist, dB, DCT-II ortho = librosa.feature.mfcc (first 13),
               without librosa's whole-file top_db clip (see MFCC_AMIN)
The floors are relative (flatness, contrast) so a gain change moves none of
flatness, contrast, chroma, centroid, rolloff or zcr; see the constants below.

A stretch of audio (a row of the feature series) takes the mean of its frames' values
(librosa's way; rms as the mean of the frames' mean squares). The unit descriptors of
audiotrove.units take centroid, rolloff and flatness of the unit's mean power spectrum.

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
N_MFCC = 13  # librosa's default is 20; its first 13 are these
MFCC_MELS = 128  # librosa: 128 Slaney-normalised mel bands from 0 Hz to Nyquist
# librosa's power_to_db floor, on librosa's |STFT|^2 scale (about 150 dB below a full-scale
# sine's band). librosa also clips at the file's top - 80 dB (top_db=80): not done here, so a
# frame's MFCC do not depend on the rest of the file (a unit's MFCC are the same in any file);
# equal to librosa.feature.mfcc(S=librosa.power_to_db(melspectrogram, top_db=None)).
MFCC_AMIN = 1e-10
# onset bands: triangular filters on a log-frequency axis, 24 per octave (SuperFlux's
# resolution: a semitone change of a low note moves its partials to other bands, which 64 mel
# bands do not resolve below ~1 kHz); below ~700 Hz a band is one FFT bin
ONSET_BANDS_PER_OCTAVE = 24
ONSET_FMIN_HZ = 30.0
ONSET_FMAX_HZ = 16000.0
LEVEL_FLOOR_DB = -120.0
MEL_FLOOR_DB = -80.0
ROLLOFF_FRACTION = 0.85
CONTRAST_FMIN_HZ = 200.0
CONTRAST_BANDS = 6  # octave bands above CONTRAST_FMIN_HZ -> 7 values with the band below it
CONTRAST_QUANTILE = 0.02
CONTRAST_TOP_DB = 80.0  # peak and valley floored 80 dB (of magnitude) below the frame's top peak
# flatness: power floored FLATNESS_FLOOR_DB below the frame's mean power (librosa: an
# absolute 1e-10, so its flatness moves with the playback level)
FLATNESS_FLOOR_DB = 120.0
CHROMA_CENTRE_OCTAVE = 5.0  # librosa.filters.chroma: octave weighting centred on C5...
CHROMA_OCTAVE_WIDTH = 2.0  # ... a Gaussian 2 octaves wide
CHROMA_FRAME_FACTOR = 2  # chroma frames are twice the analysis frame (see ChromaFrames)
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
    window: (n_fft,) float32, each frame comes multiplied by it (one pass over the frames
    instead of a copy and then a product).
    """

    def __init__(self, *, n_fft: int, hop: int, window: np.ndarray | None = None):
        if hop < 1 or n_fft < hop:
            raise ValueError("need 1 <= hop <= n_fft")
        self.n_fft, self.hop = n_fft, hop
        self.window = window
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
        frames = np.array(view) if self.window is None else view * self.window
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
                   fmax_hz: float | None = None, slaney_norm: bool = False) -> scipy.sparse.csr_matrix:
    """Triangular mel filters as a sparse (n_bins, n_mels) matrix: power @ fb.

    Peak 1, or with slaney_norm area-normalised (2 / band width in Hz, librosa's norm='slaney').
    Every filter is at least one FFT bin wide (a filter narrower than the bin spacing takes
    its nearest bin), so no band is empty at low sample rates (librosa leaves it empty).
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
    if slaney_norm:
        weights *= 2.0 / (upper - lower)
    return scipy.sparse.csr_matrix(weights.astype(np.float32))


@functools.lru_cache(maxsize=16)
def onset_filterbank(*, sample_rate_hz: float, n_fft: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The onset bands: (n_bins, n_bands) sparse triangular filters (peak 1) and their centre
    frequencies in Hz. Centres ONSET_BANDS_PER_OCTAVE per octave from ONSET_FMIN_HZ to
    ONSET_FMAX_HZ (or Nyquist), each rounded to its FFT bin, duplicates merged (as madmom's
    log filterbank for SuperFlux); each filter spans from the previous centre to the next."""
    bin_hz = sample_rate_hz / n_fft
    fmax_hz = min(ONSET_FMAX_HZ, sample_rate_hz / 2)
    n = int(math.floor(ONSET_BANDS_PER_OCTAVE * math.log2(fmax_hz / ONSET_FMIN_HZ)))
    centres = ONSET_FMIN_HZ * 2.0 ** (np.arange(-1, n + 1) / ONSET_BANDS_PER_OCTAVE)
    bins = np.unique(np.round(centres / bin_hz).astype(int))
    bins = bins[(bins > 0) & (bins < n_fft // 2)]
    weights = np.zeros((n_fft // 2 + 1, len(bins) - 2), np.float32)
    for i in range(len(bins) - 2):
        lo, mid, hi = bins[i], bins[i + 1], bins[i + 2]
        weights[lo:mid + 1, i] = np.linspace(0.0, 1.0, mid - lo + 1)
        weights[mid:hi + 1, i] = np.linspace(1.0, 0.0, hi - mid + 1)
    centre_hz = bins[1:-1] * bin_hz
    centre_hz.setflags(write=False)
    return scipy.sparse.csr_matrix(weights), centre_hz


def chroma_filterbank(*, sample_rate_hz: float, n_fft: int, tuning: float = 0.0,
                      centre_octave: float = CHROMA_CENTRE_OCTAVE,
                      octave_width: float | None = CHROMA_OCTAVE_WIDTH) -> np.ndarray:
    """(n_bins, 12) weights of each FFT bin to pitch classes C..B: librosa.filters.chroma.

    Ellis' chroma filters: each bin spreads over the pitch classes by a Gaussian as wide as
    the bin itself (a bass bin spanning several semitones spreads over all of them, so the
    harmonics, where bins are narrow in semitones, name the pitch class), each bin's weights
    have unit L2 norm, and bins are weighted by a Gaussian in octaves centred on
    centre_octave (C5 by default) and octave_width wide. tuning: fraction of a semitone.
    """
    n_chroma = 12
    freqs = np.linspace(0, sample_rate_hz, n_fft, endpoint=False)[1:]
    a440 = _pitch.A4_HZ * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(freqs / (a440 / 16.0))  # semitones above A0
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))  # 0 Hz: 1.5 octaves below bin 1
    binwidth = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1.0]))
    d = frqbins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    half = round(n_chroma / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * d / binwidth[None, :]) ** 2)
    wts /= np.maximum(np.sqrt((wts ** 2).sum(axis=0, keepdims=True)), np.finfo(np.float64).tiny)
    if octave_width is not None:
        wts *= np.exp(-0.5 * ((frqbins / n_chroma - centre_octave) / octave_width) ** 2)[None, :]
    wts = np.roll(wts, -3, axis=0)  # row 0 = C (A0-based above)
    return np.ascontiguousarray(wts[:, : n_fft // 2 + 1].T, dtype=np.float32)


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_in, n_out) via scipy.fft: mfcc = mel_db @ basis."""
    return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=1)[:, :n_out].copy()


# --- features of spectra --------------------------------------------------------------------

def _flatness_rows(power: np.ndarray) -> np.ndarray:
    """Geometric / arithmetic mean of each row of power, floored FLATNESS_FLOOR_DB below the
    row's mean (a relative floor: the value does not move with the playback level)."""
    power = np.asarray(power, dtype=np.float32)
    mean = power.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    floor = np.maximum(mean * np.float32(10.0 ** (-FLATNESS_FLOOR_DB / 10.0)), np.finfo(np.float32).tiny)
    logs = np.log(np.maximum(power, floor))
    gmean = np.exp(logs.mean(axis=1, dtype=np.float64))
    amean = np.maximum(power, floor).mean(axis=1, dtype=np.float64)
    return gmean / amean


def spectral_shape(power: np.ndarray, freqs: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(centroid Hz, rolloff Hz, flatness 0-1) of one power spectrum; Nones for silence.

    centroid: magnitude-weighted mean frequency; rolloff: the lowest bin frequency below
    which ROLLOFF_FRACTION of the magnitude lies; flatness: geometric / arithmetic mean of
    power (floored FLATNESS_FLOOR_DB below its mean). As librosa, on one spectrum.
    """
    c, r, f = spectral_shape_rows(np.asarray(power, dtype=np.float64)[None, :], freqs)
    if np.isnan(c[0]):
        return None, None, None
    return float(c[0]), float(r[0]), float(f[0])


def spectral_shape_rows(power: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """spectral_shape for each row of (m, n_bins) power: arrays with NaN for silent rows."""
    power = np.asarray(power, dtype=np.float32)
    mag = np.sqrt(power)
    total = power.sum(axis=1, dtype=np.float64)
    silent = ~(total > _EPS * power.shape[1])
    msum = np.maximum(mag.sum(axis=1, dtype=np.float64), _EPS)
    centroid = (mag @ freqs.astype(np.float32)).astype(np.float64) / msum
    cum = np.cumsum(mag, axis=1)
    idx = np.argmax(cum >= np.float32(ROLLOFF_FRACTION) * cum[:, -1:], axis=1)
    rolloff = freqs[idx].astype(np.float64)
    flatness = _flatness_rows(power)
    for arr in (centroid, rolloff, flatness):
        arr[silent] = np.nan
    return centroid, rolloff, flatness


def contrast_bands(*, sample_rate_hz: float, n_fft: int) -> list[tuple[np.ndarray, int]]:
    """The spectral-contrast bands as librosa cuts them: (bin indices, quantile count) each.

    Band 0 is 0-200 Hz, then octaves up to Nyquist (the last band runs to Nyquist); each band
    above the first also takes the bin just below its edge, each but the last drops its top
    bin, and the peak / valley count is CONTRAST_QUANTILE of the band's size (at least 1).
    A band above Nyquist (sample rates below 12.8 kHz, where librosa refuses) reuses the top bin.
    """
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    octa = np.zeros(CONTRAST_BANDS + 2)
    octa[1:] = CONTRAST_FMIN_HZ * 2.0 ** np.arange(CONTRAST_BANDS + 1)
    bands = []
    for k, (lo, hi) in enumerate(zip(octa[:-1], octa[1:])):
        current = (freqs >= lo) & (freqs <= hi)
        idx = np.flatnonzero(current)
        if idx.size == 0:
            bands.append((np.array([len(freqs) - 1]), 1))
            continue
        if k > 0 and idx[0] > 0:
            current[idx[0] - 1] = True
        if k == CONTRAST_BANDS:
            current[idx[-1] + 1:] = True
        sub = np.flatnonzero(current)
        if k < CONTRAST_BANDS and sub.size > 1:
            sub = sub[:-1]
        count = int(max(1, np.rint(CONTRAST_QUANTILE * np.count_nonzero(current))))
        bands.append((sub, min(count, sub.size)))
    return bands


def spectral_contrast(power: np.ndarray, bands: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Per frame and band, peak minus valley in dB of magnitude: (m, len(bands)).

    Peak / valley: mean magnitude of the top / bottom quantile of the band's bins (librosa's
    spectral_contrast); both floored CONTRAST_TOP_DB below the frame's highest peak, so the
    value does not depend on the playback level. A silent frame gives 0.
    """
    mag = np.sqrt(np.asarray(power, dtype=np.float32))
    peak = np.empty((mag.shape[0], len(bands)))
    valley = np.empty_like(peak)
    for j, (idx, k) in enumerate(bands):
        n = len(idx)
        band = mag[:, idx[0]:idx[-1] + 1]  # bands are contiguous runs of bins
        if n > 2 * k:  # the k smallest and k largest, without a full sort
            band = np.partition(band, (k - 1, n - k), axis=1)
        else:
            band = np.sort(band, axis=1)
        valley[:, j] = band[:, :k].mean(axis=1, dtype=np.float64)
        peak[:, j] = band[:, -k:].mean(axis=1, dtype=np.float64)
    floor = peak.max(axis=1, keepdims=True) * 10.0 ** (-CONTRAST_TOP_DB / 10.0)
    floor = np.maximum(floor, np.finfo(np.float64).tiny)
    return 10.0 * np.log10(np.maximum(peak, floor)) - 10.0 * np.log10(np.maximum(valley, floor))


def zero_crossing_rate(x: np.ndarray) -> float:
    """Fraction of adjacent sample pairs whose sign differs (0-1); 2 f / sr for a sine of f Hz."""
    x = np.asarray(x).reshape(-1)
    if len(x) < 2:
        return 0.0
    s = np.signbit(x)
    return float(np.count_nonzero(s[1:] != s[:-1]) / (len(x) - 1))


def power_db(mean_square: float) -> float:
    """Level in dB (re full scale) of a mean square value; LEVEL_FLOOR_DB for silence.

    dB re a full-scale square wave (mean square 1): a full-scale sine reads -3.01 (meters
    that follow AES17 read 0 dBFS for it).
    """
    return float(max(LEVEL_FLOOR_DB, 10.0 * math.log10(mean_square + 1e-30)))


# --- per-frame analysis -----------------------------------------------------------------------

@dataclass
class FrameBatch:
    """Features of consecutive frames, index `start` onwards (frame k is centred on k * hop).

    The optional arrays are None unless the analyzer was asked for them.
    """

    start: int
    level_db: np.ndarray            # (m,) dBFS of the hop around each frame centre
    power: np.ndarray               # (m, n_bins) one-sided power spectrum (float32)
    onset_db: np.ndarray            # (m, n_bands) onset band levels (onset_filterbank), dB, floored at MEL_FLOOR_DB
    mfcc: np.ndarray                # (m, N_MFCC)
    hz: np.ndarray                  # (m,) NaN when unpitched
    clarity: np.ndarray             # (m,)
    contrast: np.ndarray | None = None  # (m, 7) dB
    frame_ms: np.ndarray | None = None  # (m,) mean square of the whole frame (rectangular)
    zcr: np.ndarray | None = None       # (m,) sign changes / n_fft
    centroid: np.ndarray | None = None  # (m,) Hz, NaN when silent
    rolloff: np.ndarray | None = None   # (m,) Hz, NaN when silent
    flatness: np.ndarray | None = None  # (m,) 0-1, NaN when silent

    _ARRAYS = ("level_db", "power", "onset_db", "mfcc", "hz", "clarity", "contrast", "frame_ms",
               "zcr", "centroid", "rolloff", "flatness")

    def __len__(self) -> int:
        return len(self.level_db)

    @classmethod
    def concat(cls, batches: list["FrameBatch"]) -> "FrameBatch":
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        return cls(first.start, **{
            name: None if getattr(first, name) is None
            else np.concatenate([getattr(b, name) for b in batches]) for name in cls._ARRAYS})

    def slice(self, lo: int, hi: int) -> "FrameBatch":
        """Frames with absolute index in [lo, hi)."""
        a, b = max(0, lo - self.start), max(0, hi - self.start)
        return FrameBatch(self.start + a, **{
            name: None if getattr(self, name) is None else getattr(self, name)[a:b]
            for name in self._ARRAYS})


@functools.lru_cache(maxsize=16)
def _grid_constants(sample_rate_hz: float, n_fft: int) -> tuple:
    """Window, filterbanks and DCT of one analysis grid, built once per process (a sample
    library of short one-shots would otherwise spend more time here than analysing)."""
    freqs = fft_frequencies(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    # a sine of amplitude A gives A^2 / 2 (its mean square) in its peak bin
    scale = np.float32(2.0 / window.sum() ** 2)
    onset_fb, _ = onset_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    # MFCC as librosa: Slaney-normalised filters on |STFT|^2 (our power / scale)
    mfcc_fb = mel_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft, n_mels=MFCC_MELS,
                             fmin_hz=0.0, fmax_hz=None, slaney_norm=True)
    mfcc_fb = (mfcc_fb / float(scale)).astype(np.float32).tocsr()
    dct = _dct_matrix(MFCC_MELS, N_MFCC).astype(np.float32)
    bands = contrast_bands(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    for arr in (freqs, dct):
        arr.setflags(write=False)
    return (freqs, window.astype(np.float32), scale, onset_fb, mfcc_fb, onset_fb.T.tocsr(),
            mfcc_fb.T.tocsr(), dct, bands)


@functools.lru_cache(maxsize=16)
def _cached_chroma(sample_rate_hz: float, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(chroma filters, periodic Hann window) of chroma frames of n_fft samples."""
    fb = chroma_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    for a in (fb, window):
        a.setflags(write=False)
    return fb, window


def _power_rows(spec: np.ndarray) -> np.ndarray:
    """re^2 + im^2 of each complex value (rows of an rfft), squared in spec's own memory
    (spec is overwritten): the same numbers as spec.real ** 2 + spec.imag ** 2, without
    its three temporaries."""
    parts = spec.view(spec.real.dtype)
    np.multiply(parts, parts, out=parts)
    return parts[:, ::2] + parts[:, 1::2]


class FrameAnalyzer:
    """Compute a FrameBatch from frames of a Framer (same n_fft and hop).

    pitch, contrast, shape (frame_ms, zcr, centroid, rolloff, flatness): which of the
    optional features to compute (chroma: ChromaFrames, on longer frames). mfcc_floor_db: floor of the mel band levels (dB) under
    the MFCC, librosa's top_db clip (the file's top mel band level minus top_db, see
    mfcc_top_level_db); None: no floor but MFCC_AMIN. `top_mel_db` keeps the highest mel band
    level seen so far (the first pass of that mode).
    """

    def __init__(self, *, sample_rate_hz: float, n_fft: int, hop: int, pitch: bool = True,
                 contrast: bool = False, shape: bool = False,
                 fmin_hz: float = _pitch.DEFAULT_FMIN_HZ, fmax_hz: float = _pitch.DEFAULT_FMAX_HZ,
                 mfcc_floor_db: float | None = None):
        self.sample_rate_hz, self.n_fft, self.hop = float(sample_rate_hz), n_fft, hop
        self.mfcc_floor_db = mfcc_floor_db
        self.top_mel_db = -np.inf
        self.want_pitch, self.want_contrast = pitch, contrast
        self.want_shape = shape
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
            return FrameBatch(
                start, z, np.zeros((0, nb), np.float32), np.zeros((0, self.onset_fb.shape[1]), np.float32),
                np.zeros((0, N_MFCC), np.float32), z.copy(), z.copy(),
                contrast=np.zeros((0, len(self.contrast_bands))) if self.want_contrast else None,
                **({k: z.copy() for k in ("frame_ms", "zcr", "centroid", "rolloff", "flatness")}
                   if self.want_shape else {}))
        centre = frames[:, self._hop_slice]
        ms = np.mean(centre.astype(np.float64) ** 2, axis=1)
        level_db = np.maximum(LEVEL_FLOOR_DB, 10.0 * np.log10(ms + 1e-30))
        power = _power_rows(scipy.fft.rfft(frames * self.window, axis=1))
        power *= self._scale
        power = power.astype(np.float32, copy=False)
        onset_db = 10.0 * np.log10(np.asarray(self._onset_fbT @ power.T).T + 1e-10)
        onset_db = np.maximum(onset_db, MEL_FLOOR_DB).astype(np.float32)
        # librosa.feature.mfcc: power_to_db(melspectrogram), amin 1e-10 (see MFCC_AMIN)
        mel_db = 10.0 * np.log10(np.maximum(np.asarray(self._mfcc_fbT @ power.T).T, MFCC_AMIN))
        mel_db = mel_db.astype(np.float32, copy=False)
        self.top_mel_db = max(self.top_mel_db, float(mel_db.max()))
        if self.mfcc_floor_db is not None:
            mel_db = np.maximum(mel_db, np.float32(self.mfcc_floor_db))
        mfcc = mel_db @ self.dct
        if self.want_pitch:
            hz, clarity = _pitch.frame_pitch(frames, sample_rate_hz=self.sample_rate_hz,
                                             fmin_hz=self.fmin_hz, fmax_hz=self.fmax_hz)
        else:
            hz, clarity = np.full(m, np.nan), np.zeros(m)
        batch = FrameBatch(start, level_db, power, onset_db, mfcc, hz, clarity)
        if self.want_contrast:
            batch.contrast = spectral_contrast(power, self.contrast_bands)
        if self.want_shape:
            batch.frame_ms = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / self.n_fft
            signs = np.signbit(frames)
            batch.zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / self.n_fft
            batch.centroid, batch.rolloff, batch.flatness = spectral_shape_rows(power, self.freqs)
        return batch


class ChromaFrames:
    """Chroma of frames CHROMA_FRAME_FACTOR times the analysis frame (about 93 ms), centred
    on the same k * hop: librosa.feature.chroma_stft(tuning=0, n_fft=that, hop_length=hop).

    A 46 ms frame (21.5 Hz bins) cannot name a bass note below C2: the partials of a C1 note,
    32.7 Hz apart, are not resolved, and its chroma names a neighbour (3 of C1..B1 right,
    librosa at the same frame 4); at twice the length every note C1..C7 is named (librosa's
    own default, n_fft 2048 at 22.05 kHz, is that length too).

        chroma = ChromaFrames(sample_rate_hz=sr, n_fft=n_fft, hop=hop)
        rows = chroma.push(mono_block)   # (m, 12), C..B, each frame's maximum 1 (0 when silent)
        rows = chroma.finish()
    """

    def __init__(self, *, sample_rate_hz: float, n_fft: int, hop: int):
        self.n_fft = CHROMA_FRAME_FACTOR * n_fft
        self.fb, self.window = _cached_chroma(float(sample_rate_hz), self.n_fft)
        self.framer = Framer(n_fft=self.n_fft, hop=hop, window=self.window)  # frames come windowed
        self.next_index = 0  # frames emitted so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self._chroma(self.framer.push(samples))

    def finish(self) -> np.ndarray:
        return self._chroma(self.framer.finish())

    def _chroma(self, frames: np.ndarray) -> np.ndarray:
        self.next_index += len(frames)
        if not len(frames):
            return np.zeros((0, 12))
        raw = (_power_rows(scipy.fft.rfft(frames, axis=1)) @ self.fb).astype(np.float64)
        top = raw.max(axis=1, keepdims=True)
        return np.where(top > 0, raw / np.where(top > 0, top, 1.0), 0.0)


def spectral_flux(onset_db: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Onset novelty per frame: mean over onset bands of the rise in dB from the previous frame.

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


def mfcc_top_level_db(blocks, *, sample_rate_hz: float, hop_s: float | None = None) -> float:
    """The highest mel band level (dB, MFCC scale) over a whole signal given as mono or
    (frames, channels) blocks, on the frames of FeatureSeries(hop_s=...): the reference of
    librosa's top_db clip (-inf when silent)."""
    n_fft, hop = analysis_frame(sample_rate_hz)
    if hop_s is not None:
        hop = max(1, min(hop, int(round(hop_s * sample_rate_hz))))
    framer = Framer(n_fft=n_fft, hop=hop)
    analyzer = FrameAnalyzer(sample_rate_hz=sample_rate_hz, n_fft=n_fft, hop=hop, pitch=False)
    for block in blocks:
        analyzer.analyze(framer.push(_mono(block)))
    analyzer.analyze(framer.finish())
    return analyzer.top_mel_db


# --- tempo ------------------------------------------------------------------------------------

TEMPO_CONTINUITY_OCTAVES = 0.03  # a local tempo stays within ~2 % of the previous one...
TEMPO_JUMP_WEIGHT = 0.3  # ... unless another is 3x stronger (a real tempo change)


def _tempo_candidates(novelty: np.ndarray, *, frame_rate_hz: float, min_bpm: float, max_bpm: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(lags in frames, their normalised autocorrelation, full autocorrelation) of a stretch
    of onset novelty; None when it is too short or flat."""
    return _tempo_candidates_rows([novelty], frame_rate_hz=frame_rate_hz, min_bpm=min_bpm, max_bpm=max_bpm)[0]


def _tempo_candidates_rows(stretches: list[np.ndarray], *, frame_rate_hz: float, min_bpm: float,
                           max_bpm: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """_tempo_candidates of each stretch, the stretches of one length in one batch of FFTs
    (a feature series asks for one per row: one FFT call per row cost more than the FFT)."""
    out: list = [None] * len(stretches)
    by_length: dict[int, list[int]] = {}
    for k, stretch in enumerate(stretches):
        by_length.setdefault(len(stretch), []).append(k)
    for n, ks in by_length.items():
        max_lag = min(n - 2, int(math.ceil(60.0 * frame_rate_hz / min_bpm)))
        min_lag = max(1, int(math.floor(60.0 * frame_rate_hz / max_bpm)))
        if n < 4 or max_lag <= min_lag + 1:
            continue
        x = np.array([stretches[k] for k in ks], dtype=np.float64).reshape(len(ks), n)
        x = x - x.mean(axis=1, keepdims=True)
        size = scipy.fft.next_fast_len(2 * n, real=True)
        spec = scipy.fft.rfft(x, size, axis=1)
        acf = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, size, axis=1)[:, :max_lag + 2]
        lags = np.arange(min_lag, max_lag + 1)
        for j, k in enumerate(ks):
            if acf[j, 0] <= 0 or not np.any(x[j]):
                continue
            row = acf[j] / acf[j, 0]
            out[k] = (lags, row[min_lag:max_lag + 1], row)
    return out


def _pick_tempo(lags: np.ndarray, score: np.ndarray, acf: np.ndarray, frame_rate_hz: float) -> float | None:
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


def tempo_bpm(novelty: np.ndarray, *, frame_rate_hz: float, min_bpm: float = TEMPO_MIN_BPM,
              max_bpm: float = TEMPO_MAX_BPM, prior_bpm: float = TEMPO_PRIOR_BPM) -> float | None:
    """Dominant tempo (BPM) of a stretch of onset novelty, from its autocorrelation.

    The autocorrelation is weighted by a log-normal prior around prior_bpm (one octave wide)
    so a beat and its half or double are told apart; None when the novelty is flat.
    """
    found = _tempo_candidates(novelty, frame_rate_hz=frame_rate_hz, min_bpm=min_bpm, max_bpm=max_bpm)
    if found is None:
        return None
    lags, r, acf = found
    bpm = 60.0 * frame_rate_hz / lags
    return _pick_tempo(lags, r * np.exp(-0.5 * np.log2(bpm / prior_bpm) ** 2), acf, frame_rate_hz)


class TempoTracker:
    """Local tempo with continuity: successive calls on overlapping stretches of novelty.

    The first tempo is tempo_bpm's; each later one weighs the autocorrelation also by a
    log-normal around the previous tempo (continuity_octaves wide, never below jump_weight),
    so the curve does not hop between a beat, its half, double or 3:2 on steady music, yet
    moves to a new tempo that is clearly stronger than anything near the old one.
    """

    def __init__(self, *, min_bpm: float = TEMPO_MIN_BPM, max_bpm: float = TEMPO_MAX_BPM,
                 prior_bpm: float = TEMPO_PRIOR_BPM, continuity_octaves: float = TEMPO_CONTINUITY_OCTAVES,
                 jump_weight: float = TEMPO_JUMP_WEIGHT):
        self.min_bpm, self.max_bpm, self.prior_bpm = min_bpm, max_bpm, prior_bpm
        self.continuity_octaves, self.jump_weight = continuity_octaves, jump_weight
        self.bpm: float | None = None

    def update(self, novelty: np.ndarray, *, frame_rate_hz: float) -> float | None:
        return self.choose(_tempo_candidates(novelty, frame_rate_hz=frame_rate_hz, min_bpm=self.min_bpm,
                                             max_bpm=self.max_bpm), frame_rate_hz=frame_rate_hz)

    def choose(self, found, *, frame_rate_hz: float) -> float | None:
        """update() on the candidates of the stretch (_tempo_candidates' answer)."""
        if found is None:
            return None
        lags, r, acf = found
        bpm = 60.0 * frame_rate_hz / lags
        weight = np.exp(-0.5 * np.log2(bpm / self.prior_bpm) ** 2)
        if self.bpm is not None:
            near = np.exp(-0.5 * (np.log2(bpm / self.bpm) / self.continuity_octaves) ** 2)
            weight = weight * (self.jump_weight + (1.0 - self.jump_weight) * near)
        tempo = _pick_tempo(lags, r * weight, acf, frame_rate_hz)
        if tempo is not None:
            self.bpm = tempo
        return tempo


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

    Columns (see feature_columns): time (s, window start), rms (dBFS: dB re a full-scale
    square wave, a full-scale sine reads -3.01), zcr (0-1), centroid / rolloff (Hz),
    flatness (0-1), contrast_1..7 (dB), chroma_C..chroma_B (0-1), mfcc_1..13, hz (Hz, NaN
    unpitched), clarity (0-1), tempo (BPM, local tempo over TEMPO_WINDOW_S centred on the
    window, tracked with continuity).

    A row is the mean of the values of the analysis frames centred in its window (rms: the
    mean of their mean squares, in dB; centroid, rolloff, flatness: over the frames that are
    not silent; pitch: the median of the voiced frames); with hop_s equal to the frame hop
    every row is one frame, exactly librosa's frame values.

        series = FeatureSeries(sample_rate_hz=sr, hop_s=0.1, features=("rms", "mfcc"))
        for block in blocks: rows = series.update(block)   # dict of column arrays (maybe empty)
        rows = series.finish()

    mfcc_floor_db: librosa's default MFCC (power_to_db with top_db=80) floors every mel band
    80 dB below the loudest band of the whole file: pass mfcc_top_level_db(blocks) - 80
    (a first pass over the file) to get exactly that; None (default) does not clip.
    """

    def __init__(self, *, sample_rate_hz: float, hop_s: float = 0.1,
                 features: tuple[str, ...] | list[str] = ALL_FEATURES,
                 tempo_window_s: float = TEMPO_WINDOW_S, mfcc_floor_db: float | None = None):
        if hop_s <= 0:
            raise ValueError("hop_s must be > 0")
        self.features = tuple(dict.fromkeys(features))
        self.columns = ["time"] + feature_columns(self.features)
        self.sr = float(sample_rate_hz)
        self.hop_s = float(hop_s)
        n_fft, hop = analysis_frame(sample_rate_hz)
        hop = max(1, min(hop, int(round(hop_s * sample_rate_hz))))
        self.n_fft, self.frame_hop = n_fft, hop
        self.frame_rate_hz = self.sr / hop
        self.framer = Framer(n_fft=n_fft, hop=hop)
        want = set(self.features)
        self.analyzer = FrameAnalyzer(sample_rate_hz=sample_rate_hz, n_fft=n_fft, hop=hop,
                                      pitch="pitch" in want, contrast="contrast" in want,
                                      shape=bool(want & {"rms", "zcr", "centroid", "rolloff", "flatness"}),
                                      mfcc_floor_db=mfcc_floor_db)
        self.chroma = ChromaFrames(sample_rate_hz=sample_rate_hz, n_fft=n_fft, hop=hop) if "chroma" in want else None
        self._chroma_rows = np.zeros((0, 12))  # chroma of kept frames, from frame _chroma_start
        self._chroma_start = 0
        self.tempo_half = int(round(tempo_window_s * self.frame_rate_hz / 2))
        self.tempo_tracker = TempoTracker() if "tempo" in want else None
        self._frames: list[FrameBatch] = []
        self._flux = np.zeros(0)  # novelty of kept frames (for tempo)
        self._flux_start = 0
        self._prev_onset_db: np.ndarray | None = None
        self._win = 0  # next window index to emit
        self._samples = 0

    # window i covers samples [edge(i), edge(i+1))
    def _edge(self, i: int) -> int:
        return int(round(i * self.hop_s * self.sr))

    def update(self, block: np.ndarray) -> dict[str, np.ndarray]:
        mono = _mono(block)
        self._samples += len(mono)
        batch = self.analyzer.analyze(self.framer.push(mono))
        self._add_frames(batch)
        if self.chroma is not None:
            self._chroma_rows = np.concatenate([self._chroma_rows, self.chroma.push(mono)])
        return self._emit(final=False)

    def finish(self) -> dict[str, np.ndarray]:
        batch = self.analyzer.analyze(self.framer.finish())
        self._add_frames(batch)
        if self.chroma is not None:
            self._chroma_rows = np.concatenate([self._chroma_rows, self.chroma.finish()])
        return self._emit(final=True)

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
        if self.chroma is not None:  # its longer frames complete later
            frames_have = min(frames_have, self.chroma.next_index)
        spans: list[tuple[int, int, int]] = []  # (window, first frame, end frame)
        while True:
            i = self._win
            lo, hi = self._edge(i), self._edge(i + 1)
            if lo >= self._samples:
                break  # no sample of this window yet
            if hi > self._samples:
                if not final:
                    break  # samples of this window not complete yet
                hi = self._samples
            first_f = -(-lo // self.frame_hop)
            last_f = -(-hi // self.frame_hop)  # frames with centre in [lo, hi)
            need = last_f + (self.tempo_half if "tempo" in self.features else 0)
            if not final and frames_have < need:
                break
            spans.append((i, first_f, max(last_f, first_f + 1)))
            self._win += 1
        out = self._rows(spans)
        self._trim()
        return out

    def _tempo_candidates(self, spans: list[tuple[int, int, int]]) -> list:
        """The tempo candidates of each window (the novelty over TEMPO_WINDOW_S around it), in one batch."""
        stretches = []
        for _, f_lo, f_hi in spans:
            centre = (f_lo + f_hi) // 2
            a = max(self._flux_start, centre - self.tempo_half)
            b = min(self._flux_start + len(self._flux), centre + self.tempo_half)
            stretches.append(self._flux[a - self._flux_start:max(b, a) - self._flux_start])
        t = self.tempo_tracker
        return _tempo_candidates_rows(stretches, frame_rate_hz=self.frame_rate_hz, min_bpm=t.min_bpm, max_bpm=t.max_bpm)

    def _frames_between(self, lo: int, hi: int) -> FrameBatch | None:
        parts = [b.slice(lo, hi) for b in self._frames if b.start < hi and b.start + len(b) > lo]
        parts = [p for p in parts if len(p)]
        return FrameBatch.concat(parts) if parts else None

    def _rows(self, spans: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
        """The rows of these windows (window, its frames [f_lo, f_hi)) as columns, every mean
        of every window at once: a row per window, one numpy call per column, not per row."""
        out = {"time": np.array([i * self.hop_s for i, _, _ in spans], dtype=np.float64)}
        n = len(spans)
        f_lo = np.array([s[1] for s in spans], dtype=np.int64)
        f_hi = np.array([s[2] for s in spans], dtype=np.int64)
        fb = self._frames_between(int(f_lo.min()) - 1, int(f_hi.max())) if n else None
        if fb is None:
            a = b = np.zeros(n, np.int64)
        else:  # a window without frames (shorter than a hop, at the very end) takes the frame before
            a, b = _clip_ranges(f_lo - fb.start, f_hi - fb.start, len(fb))
            empty = b <= a
            a, b = _clip_ranges(np.where(empty, f_lo - 1 - fb.start, a), np.where(empty, f_lo - fb.start, b), len(fb))
        for name in self.features:
            if name in ("rms", "zcr"):
                mean = _window_means(fb.frame_ms if name == "rms" else fb.zcr, a, b) if fb is not None else np.full(n, np.nan)
                out[name] = np.maximum(LEVEL_FLOOR_DB, 10.0 * np.log10(mean + 1e-30)) if name == "rms" else mean
            elif name in ("centroid", "rolloff", "flatness"):  # over the frames that are not silent
                out[name] = _window_means(getattr(fb, name), a, b, skip_nan=True) if fb is not None else np.full(n, np.nan)
            elif name in ("contrast", "mfcc"):
                width = CONTRAST_BANDS + 1 if name == "contrast" else N_MFCC
                vals = _window_means(getattr(fb, name), a, b) if fb is not None else np.full((n, width), np.nan)
                for j in range(width):
                    out[f"{name}_{j + 1}"] = vals[:, j]
            elif name == "chroma":
                total = len(self._chroma_rows)
                ca, cb = _clip_ranges(f_lo - self._chroma_start, f_hi - self._chroma_start, total)
                empty = cb <= ca  # as above: the frame before (else 0)
                before = np.maximum(f_lo - 1 - self._chroma_start, 0)
                ca, cb = _clip_ranges(np.where(empty, before, ca), np.where(empty, before + 1, cb), total)
                vals = _window_means(self._chroma_rows, ca, cb)
                vals[cb <= ca] = 0.0
                for j, note in enumerate(_pitch.NOTE_NAMES):
                    out[f"chroma_{note}"] = vals[:, j]
            elif name == "pitch":  # a median: one window at a time
                hz, clarity = np.full(n, np.nan), np.zeros(n)
                for k in np.flatnonzero(b > a) if fb is not None else ():
                    w = slice(a[k], b[k])
                    found, clarity[k] = _pitch.summarize_pitch(fb.hz[w], fb.clarity[w], fb.level_db[w])
                    hz[k] = np.nan if found is None else found
                out["hz"], out["clarity"] = hz, clarity
            elif name == "tempo":  # the tracker's continuity: one window after the other
                found = self._tempo_candidates(spans)
                out["tempo"] = np.array([np.nan if t is None else t for t in (
                    self.tempo_tracker.choose(f, frame_rate_hz=self.frame_rate_hz) for f in found)], dtype=np.float64)
        return {c: out[c] for c in self.columns}

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
        if self.chroma is not None and keep_from > self._chroma_start:
            cut = min(keep_from - self._chroma_start, len(self._chroma_rows))
            self._chroma_rows = self._chroma_rows[cut:]
            self._chroma_start += cut
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


def _clip_ranges(a: np.ndarray, b: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranges [a, b) cut to [0, length), as slicing cuts them (an empty one has b == a)."""
    a = np.clip(a, 0, length)
    return a, np.maximum(np.clip(b, 0, length), a)


def _window_means(values: np.ndarray, a: np.ndarray, b: np.ndarray, *, skip_nan: bool = False) -> np.ndarray:
    """Mean of values[a_k:b_k] for each k (float64 rows of a 1-D or 2-D values), NaN where
    the range is empty (or, skip_nan, holds no finite value), with one np.add.reduceat."""
    values = np.asarray(values, dtype=np.float64)
    count = (b - a).astype(np.float64)
    if skip_nan:
        finite = np.isfinite(values)
        values = np.where(finite, values, 0.0)
        count = _window_sums(finite.astype(np.float64), a, b)
    sums = _window_sums(values, a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / (count if values.ndim == 1 else count[:, None])
    empty = count == 0
    means[empty] = np.nan
    return means


def _window_sums(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    padded = np.concatenate([values, np.zeros((1,) + values.shape[1:])])  # b may be len(values)
    if not len(a):
        return padded[:0]
    sums = np.add.reduceat(padded, np.stack([a, b], axis=1).ravel(), axis=0)[::2]
    sums[b <= a] = 0.0  # reduceat gives values[a] for an empty range
    return sums


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
