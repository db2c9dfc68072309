"""Programme loudness per ITU-R BS.1770-4 and EBU R 128 (Tech 3341 / Tech 3342), streaming.

What is measured
- K-weighting: the BS.1770 pre-filter (high shelf, about +4 dB above 2 kHz) followed by the
  RLB high-pass (about 38 Hz). BS.1770 publishes the two biquads for 48 kHz only; here they
  are derived for any sample rate from the analog prototypes behind that table (centre
  frequency, Q and gain of each section, bilinear transform with pre-warping at the centre
  frequency). At 48 kHz this reproduces the published coefficients to 1e-8. Below 48 kHz
  the bilinear transform bends the shelf (-0.2 dB at 1 kHz for 8 kHz audio), so there the
  shelf's coefficients are then fitted to the 48 kHz magnitude (see `_refine_shelf`). The
  response matches the 48 kHz one within 0.015 dB at every rate from 8 kHz up.
- Channel weights: mono and stereo 1.0 each. 5.0 (L R C Ls Rs) and 5.1 (L R C LFE Ls Rs,
  the FFmpeg/SMPTE order): L, R, C 1.0, LFE 0 (excluded), Ls, Rs 1.41 (+1.5 dB). Every
  other channel count: 1.0 for each channel (no layout is assumed). Mono is measured as a
  single channel (no dual-mono +3 dB), as BS.1770 and FFmpeg's ebur128 filter do.
- Momentary loudness: 400 ms windows every 100 ms. Short-term: 3 s windows every 100 ms.
- Integrated (programme) loudness: 400 ms gating blocks with 75 % overlap, absolute gate
  -70 LUFS, relative gate -10 LU below the mean of the blocks above the absolute gate.
- Loudness range (EBU Tech 3342): short-term values (3 s, 100 ms hop), absolute gate
  -70 LUFS, relative gate -20 LU below the mean of the values above the absolute gate,
  LRA = 95th - 10th percentile of what remains (nearest rank, as in Tech 3342's annex).
- Sample peak (dBFS) and true peak (dBTP): see `audiotrove.dsp.peaks`.

Windows and gating blocks are whole multiples of 100 ms sub-blocks; sub-block k covers
samples [floor(k*fs/10), floor((k+1)*fs/10)), so rates that are not multiples of 10 Hz
work too. Only complete windows count: a trailing part shorter than 100 ms is ignored.

Memory: the meter keeps one float64 per 100 ms sub-block (36,000 per hour, 288 kB), the
filter state and the peak meter's history; never the audio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.optimize import least_squares
from scipy.signal import freqz, sosfilt

from .blocks import as_block
from .peaks import PeakMeter

__all__ = [
    "ABSOLUTE_GATE_LUFS",
    "LRA_RELATIVE_GATE_LU",
    "RELATIVE_GATE_LU",
    "LoudnessMeter",
    "channel_weights",
    "integrated_loudness",
    "k_weighting_sos",
    "loudness_range",
]

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_LOW_PERCENTILE = 0.10
LRA_HIGH_PERCENTILE = 0.95
SUBBLOCKS_PER_SECOND = 10  # 100 ms hop
MOMENTARY_SUBBLOCKS = 4  # 400 ms
SHORT_TERM_SUBBLOCKS = 30  # 3 s
_LOUDNESS_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(sum G_i z_i)

# Analog prototypes of the BS.1770 K-weighting, as fitted to its 48 kHz table.
_SHELF_HZ = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_BAND_EXPONENT = 0.4996667741545416  # band gain Vb = Vh ** this
_HIGHPASS_HZ = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """K-weighting filter at `sample_rate` (Hz) as second-order sections (n, 6), float64.

    Section 1 is the pre-filter (high shelf), section 2 the RLB high-pass. Below about
    3.7 kHz sampling the shelf would sit above the Nyquist frequency: it is then left out
    (only the high-pass is applied; its effect on such band-limited audio is below 0.5 dB).
    """
    return _k_weighting_sos(float(sample_rate)).copy()


@lru_cache(maxsize=32)
def _k_weighting_sos(fs: float) -> np.ndarray:
    if fs <= 2 * _HIGHPASS_HZ:
        raise ValueError(f"sample rate {fs:g} Hz is too low for K-weighting")
    sections = []
    if _SHELF_HZ < 0.45 * fs:
        shelf = _shelf_bilinear(fs)
        if fs < 48000.0:
            shelf = _refine_shelf(shelf, fs)
        sections.append(shelf)
    a0 = _highpass_a0(fs)
    k = math.tan(math.pi * _HIGHPASS_HZ / fs)
    # BS.1770's 48 kHz table keeps the numerator at (1, -2, 1), not divided by a0: its
    # pass band sits a0(48 kHz) = 1.005 (+0.04 dB) above unity. Keeping (1, -2, 1) at every
    # rate would move that gain with the rate (+0.09 dB at 16 kHz, +0.2 dB at 8 kHz), so the
    # numerator is scaled to keep the 48 kHz pass-band gain: exactly (1, -2, 1) at 48 kHz.
    g = _highpass_a0(48000.0) / a0
    sections.append(
        [g, -2.0 * g, g, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    )
    return np.array(sections, dtype=np.float64)


def _shelf_bilinear(fs: float) -> list[float]:
    """The pre-filter shelf by bilinear transform, pre-warped at its centre frequency."""
    k = math.tan(math.pi * _SHELF_HZ / fs)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_BAND_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    return [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]


def _refine_shelf(shelf: list[float], fs: float) -> list[float]:
    """Fit the shelf's magnitude to the 48 kHz one below 0.45 fs (rates under 48 kHz).

    The bilinear transform squeezes a shelf centred at 1.7 kHz towards a low Nyquist
    frequency: -0.2 dB at 1 kHz for 8 kHz audio, -0.1 dB at 11.025 kHz. A least-squares fit
    of the five biquad coefficients to the 48 kHz response (log-spaced, 100 Hz to 0.45 fs,
    in dB) brings this under 0.012 dB at 8 kHz and 0.001 dB at 16 kHz. The fit starts from
    the bilinear design and is kept only if it is stable and closer.
    """
    ref = _shelf_bilinear(48000.0)
    freqs = np.geomspace(100.0, 0.45 * fs, 200)
    _, h_ref = freqz(ref[:3], ref[3:], worN=freqs, fs=48000.0)
    target = 20.0 * np.log10(np.abs(h_ref))

    def error(p: np.ndarray) -> np.ndarray:
        _, h = freqz(p[:3], np.r_[1.0, p[3:]], worN=freqs, fs=fs)
        return 20.0 * np.log10(np.abs(h)) - target

    start = np.array([*shelf[:3], *shelf[4:]])
    fit = least_squares(error, start)
    poles = np.roots(np.r_[1.0, fit.x[3:]])
    if np.all(np.abs(poles) < 0.999) and np.abs(fit.fun).max() < np.abs(error(start)).max():
        return [*fit.x[:3], 1.0, *fit.x[3:]]
    return shelf


def _highpass_a0(fs: float) -> float:
    k = math.tan(math.pi * _HIGHPASS_HZ / fs)
    return 1.0 + k / _HIGHPASS_Q + k * k


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights G_i for `channels` channels (see the module docstring)."""
    if channels == 5:  # L R C Ls Rs
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:  # L R C LFE Ls Rs
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


def _energy_to_lufs(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return _LOUDNESS_OFFSET + 10.0 * np.log10(mean_square)


class LoudnessMeter:
    """Streaming EBU R 128 meter: integrated loudness, LRA, max momentary / short-term, peaks.

    meter = LoudnessMeter(sample_rate=48000, channels=2)
    for block in blocks:          # float (frames, channels), consecutive
        meter.update(block)
    meter.result() -> {"loudness": {...}}

    `weights` overrides the per-channel weights (default: `channel_weights(channels)`).
    `peaks=False` skips the sample and true peak (their fields are then absent), for callers
    that only want loudness. Results do not depend on how the stream is cut into blocks.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        weights: Sequence[float] | None = None,
        peaks: bool = True,
    ):
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._sos = k_weighting_sos(self.sample_rate)
        self._zi = np.zeros((self._sos.shape[0], self.channels, 2))  # filter state per channel
        w = (
            channel_weights(self.channels)
            if weights is None
            else np.asarray(weights, dtype=np.float64)
        )
        if w.shape != (self.channels,):
            raise ValueError(f"need {self.channels} channel weights, got {w.shape}")
        self._weights = w
        # Mono is measured as a single channel, unweighted.
        self._energy_weights = w if self.channels > 1 else np.ones(1)
        self._peaks = PeakMeter(self.sample_rate, self.channels) if peaks else None
        self.frames = 0
        self._done: list[np.ndarray] = []  # completed sub-block energies (sum of G_i z_i^2)
        self._n_done = 0
        self._partial = 0.0  # energy of the sub-block in progress

    def update(self, block: np.ndarray) -> None:
        x = as_block(block, self.channels)
        n = x.shape[0]
        if n == 0:
            return
        if self._peaks is not None:
            self._peaks.update(x)
        # Filter along time with the channels as rows (sosfilt works that way internally;
        # y.T is then a contiguous (channels, frames) array).
        y, self._zi = sosfilt(self._sos, x.T, axis=-1, zi=self._zi)
        np.square(y, out=y)  # y: (channels, frames), per-sample energy of each channel

        fs = self.sample_rate
        start = self.frames
        end = start + n
        self.frames = end
        n_total = (
            SUBBLOCKS_PER_SECOND * end + SUBBLOCKS_PER_SECOND - 1
        ) // fs  # complete sub-blocks
        if n_total == self._n_done:
            self._partial += float(y.sum(axis=1) @ self._energy_weights)
            return
        ks = np.arange(self._n_done + 1, n_total + 1, dtype=np.int64)
        cuts = ks * fs // SUBBLOCKS_PER_SECOND - start  # ends of completed sub-blocks, in (0, n]
        bounds = np.concatenate(([0], cuts))
        # Per-channel sums over each sub-block, then the channel weights: sum of G_i z_i^2.
        if bounds[-1] == n:
            sums = np.add.reduceat(y, bounds[:-1], axis=1).T @ self._energy_weights
            tail = 0.0
        else:
            sums = np.add.reduceat(y, bounds, axis=1).T @ self._energy_weights
            tail = float(sums[-1])
            sums = sums[:-1]
        sums[0] += self._partial
        self._partial = tail
        self._done.append(sums)
        self._n_done = n_total

    # -- series ---------------------------------------------------------------------------
    def _subblocks(self) -> tuple[np.ndarray, np.ndarray]:
        """(energies, lengths in samples) of the completed 100 ms sub-blocks."""
        if len(self._done) > 1:
            self._done = [np.concatenate(self._done)]
        energy = self._done[0] if self._done else np.zeros(0)
        k = np.arange(energy.size + 1, dtype=np.int64)
        lengths = np.diff(k * self.sample_rate // SUBBLOCKS_PER_SECOND).astype(np.float64)
        return energy, lengths

    def _window_lufs(self, subblocks: int) -> np.ndarray:
        energy, lengths = self._subblocks()
        if energy.size < subblocks:
            return np.zeros(0)
        e = sliding_window_view(energy, subblocks).sum(axis=1)
        n = sliding_window_view(lengths, subblocks).sum(axis=1)
        return _energy_to_lufs(e / n)

    def momentary_lufs(self) -> np.ndarray:
        """Momentary loudness (400 ms windows) every 100 ms so far, LUFS (-inf for silence).

        Value j covers [0.1*j, 0.1*j + 0.4) seconds.
        """
        return self._window_lufs(MOMENTARY_SUBBLOCKS)

    def short_term_lufs(self) -> np.ndarray:
        """Short-term loudness (3 s windows) every 100 ms so far, LUFS; value j starts at 0.1*j s."""
        return self._window_lufs(SHORT_TERM_SUBBLOCKS)

    # -- result ---------------------------------------------------------------------------
    def result(self) -> dict:
        """{"loudness": {measured, range, momentary_max, short_term_max, sample_peak, true_peak,
        gating_mode[, reason]}}: LUFS, LU, LUFS, LUFS, dBFS, dBTP."""
        reasons: list[str] = []
        duration = self.frames / self.sample_rate
        momentary = self.momentary_lufs()
        short_term = self.short_term_lufs()
        out: dict = {
            "measured": None,
            "range": None,
            "momentary_max": None,
            "short_term_max": None,
        }
        if self.frames == 0:
            reasons.append("no audio samples")
        elif momentary.size == 0:
            reasons.append(f"shorter than one 400 ms gating block ({duration:.3f} s)")
        else:
            integrated = _gated_integrated(momentary)
            if integrated is None:
                reasons.append("silence: every 400 ms block is below the -70 LUFS absolute gate")
            out["measured"] = _round(integrated)
            m_max = float(momentary.max())
            out["momentary_max"] = _round(m_max if math.isfinite(m_max) else None)
            if out["momentary_max"] is None:
                reasons.append("digital silence: momentary loudness is -inf")
            if short_term.size == 0:
                reasons.append(f"shorter than one 3 s short-term window ({duration:.3f} s)")
            else:
                s_max = float(short_term.max())
                out["short_term_max"] = _round(s_max if math.isfinite(s_max) else None)
                lra = _loudness_range_from_short_term(short_term)
                out["range"] = _round(lra)
                if lra is None and integrated is not None:
                    reasons.append("loudness range: every 3 s window is below the -70 LUFS gate")
        if self._peaks is not None:
            peaks = self._peaks.result()
            out["sample_peak"] = peaks["sample_peak"]
            out["true_peak"] = peaks["true_peak"]
            if "reason" in peaks and self.frames:
                reasons.append(peaks["reason"])
        out["gating_mode"] = "ebu_r128"
        if reasons:
            out["reason"] = "; ".join(dict.fromkeys(reasons))
        return {"loudness": out}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _gated_integrated(block_lufs: np.ndarray) -> float | None:
    """BS.1770-4 gated mean of 400 ms block loudness values (LUFS); None if all gated out."""
    above = block_lufs[block_lufs > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return None
    power = 10.0 ** ((above - _LOUDNESS_OFFSET) / 10.0)
    relative_gate = _LOUDNESS_OFFSET + 10.0 * math.log10(power.mean()) + RELATIVE_GATE_LU
    kept = power[above > relative_gate]
    if kept.size == 0:
        return None
    return _LOUDNESS_OFFSET + 10.0 * math.log10(kept.mean())


def _loudness_range_from_short_term(short_term_lufs: np.ndarray) -> float | None:
    """EBU Tech 3342 LRA (LU) from short-term loudness values; None if all gated out."""
    above = short_term_lufs[short_term_lufs > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return None
    power = 10.0 ** (above / 10.0)
    relative_gate = 10.0 * math.log10(power.mean()) + LRA_RELATIVE_GATE_LU
    kept = np.sort(above[above > relative_gate])
    if kept.size == 0:
        return None
    last = kept.size - 1
    low = kept[math.floor(last * LRA_LOW_PERCENTILE + 0.5)]
    high = kept[math.floor(last * LRA_HIGH_PERCENTILE + 0.5)]
    return float(high - low)


def _meter_over(
    audio: np.ndarray, sample_rate: int, weights: Sequence[float] | None
) -> LoudnessMeter:
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be (frames,) or (frames, channels), got {a.shape}")
    meter = LoudnessMeter(sample_rate, a.shape[1], weights=weights, peaks=False)
    step = 1 << 16  # bounds the float64 temporaries on long arrays
    for i in range(0, a.shape[0], step):
        meter.update(a[i : i + step])
    return meter


def integrated_loudness(
    audio: np.ndarray, *, sample_rate: int, weights: Sequence[float] | None = None
) -> float | None:
    """Integrated loudness (LUFS, BS.1770-4 gating) of a whole array.

    `audio` is (frames,) or (frames, channels), float, full scale 1.0. Returns None when it
    cannot be measured: shorter than 400 ms, or every block below the -70 LUFS gate.
    """
    meter = _meter_over(audio, sample_rate, weights)
    momentary = meter.momentary_lufs()
    if momentary.size == 0:
        return None
    return _gated_integrated(momentary)


def loudness_range(
    audio: np.ndarray, *, sample_rate: int, weights: Sequence[float] | None = None
) -> float | None:
    """Loudness range (LU, EBU Tech 3342) of a whole array; None when shorter than 3 s or silent."""
    meter = _meter_over(audio, sample_rate, weights)
    short_term = meter.short_term_lufs()
    if short_term.size == 0:
        return None
    return _loudness_range_from_short_term(short_term)
