"""Effective bandwidth: the highest frequency of real content (lossy-encode / upsampling cutoffs).

`BandwidthMeter(sample_rate, channels)` (meter protocol of `audiotrove.dsp`) returns
{"bandwidth": {"frequency": Hz}} or {"bandwidth": {"frequency": None, "reason": why}}.

Method (streaming, memory bounded):
1. Long-term average spectrum of the channel mix: Blackman-Harris frames of ~46 ms (a power of two:
   2048 at 44.1/48 kHz), one frame every two frame lengths (half the signal is enough for a
   long-term average, and it halves the cost). Frames are filed by level (3 dB classes) with
   one summed spectrum per class, so the loud frames can be chosen at the end: those within
   30 dB of the 95th-percentile frame level (pauses and fades do not dilute the content).
   Exact digital-zero frames are skipped. The 4-term Blackman-Harris window (side lobes
   -92 dB) keeps a tone's leakage under the 80 dB limit below (Hann's reaches -80 dB
   20 bins away).
2. The power spectrum is smoothed with a moving average over ~1 % of the bins (a narrow
   line keeps its energy; a cliff moves by half the width, ~0.5 % of Nyquist). The floor is
   the minimum of the smoothed spectrum in dB above min(1 kHz, fs/8): the bottom of the
   cliff, or where a natural roll-off meets the noise. A percentile was tried and fails when
   the cutoff is close to Nyquist (a Vorbis file cut at 10.6 kHz of 11.025: the floor region is
   4 % of the bins). The reference is the maximum above 20 Hz.
3. A sharp cutoff wins: the highest bin where the mean level of the 3 % of the bins just
   below it (after up to 3 % of bins of transition; a level band, not the cut's own skirt)
   stands 25 dB above everything up to Nyquist; the bandwidth is where the spectrum has
   fallen 10 dB under that in-band level. This finds a lossy encoder's or a resampler's
   lowpass even when its stop band holds encoder noise or filter ripple 30-50 dB down, well
   above the file's floor.
4. Without a cliff: a spectrum within 12 dB of flat (white noise) has content up to
   Nyquist. Otherwise the bandwidth is the highest frequency still above the threshold
   max(floor + clip(0.15 * (reference - floor), 6, 15) dB, reference - 80 dB): the point
   above which a natural roll-off has fallen to the noise / quantisation floor. The 80 dB
   limit keeps window leakage and float rounding (no floor at all in synthetic float
   signals) from counting as content.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal.windows import blackmanharris

from .blocks import as_block
from .spectrum import StreamFramer, power_spectrum_scale

__all__ = ["BandwidthMeter", "bandwidth_from_spectrum", "effective_bandwidth_hz"]

FRAME_S = 0.046
LOUD_RANGE_DB = 30.0
LOUD_PERCENTILE = 95.0
CLASS_STEP_DB = 3.0
CLASS_MIN_DB = -160.0
CLASS_MAX_DB = 20.0
FLAT_DB = 12.0
DYNAMIC_LIMIT_DB = 80.0
MARGIN_SHARE = 0.15
MARGIN_MIN_DB = 6.0
MARGIN_MAX_DB = 15.0
MIN_FRAME = 32
CLIFF_DB = 25.0
CLIFF_EDGE_DB = 10.0
CLIFF_FLAT_DB = 6.0  # largest tilt (dB) between the halves of the in-band reference
CLIFF_TRANSITION = 0.03  # share of the bins a cutoff may take to fall
CLIFF_REFERENCE = 0.03  # share of the bins below it that sets the in-band level


def _frame_length(sample_rate: int) -> int:
    return int(2 ** max(5, round(math.log2(FRAME_S * sample_rate))))


def bandwidth_from_spectrum(power: np.ndarray, *, sample_rate: int) -> float | None:
    """Effective bandwidth (Hz) from a one-sided power spectrum of rfft length (see module doc).

    None when nothing rises above DC (a DC-only or empty spectrum).
    """
    power = np.asarray(power, np.float64)
    n_bins = len(power)
    if n_bins < 2 or not float(power.max()) > 0:
        return None
    nyquist = sample_rate / 2
    freqs = np.linspace(0.0, nyquist, n_bins)
    bin_hz = freqs[1] if n_bins > 1 else nyquist
    first = max(5, math.ceil(20.0 / bin_hz))  # skip DC and its window leakage
    if first >= n_bins:
        return None
    ref_all = float(10 * np.log10(max(float(power.max()), 1e-30)))
    power = power.copy()
    power[:first] = 0.0
    width = max(3, round(0.01 * n_bins) | 1)
    # moving average of the power (a narrow line keeps its energy, a cliff moves by width / 2)
    smooth = 10 * np.log10(np.maximum(uniform_filter1d(power, width, mode="nearest"), 1e-30))
    ref = float(smooth[first:].max())
    if ref < ref_all - DYNAMIC_LIMIT_DB:
        return None  # nothing but DC
    cliff = _cliff_bin(smooth, first, ref)
    if cliff is not None:
        return float(freqs[cliff])
    band = freqs >= min(1000.0, sample_rate / 8)
    band[:first] = False
    floor = float(smooth[band].min()) if band.any() else ref
    if ref - floor < FLAT_DB:
        return float(nyquist)
    margin = min(max(MARGIN_SHARE * (ref - floor), MARGIN_MIN_DB), MARGIN_MAX_DB)
    threshold = max(floor + margin, ref - DYNAMIC_LIMIT_DB)
    above = np.flatnonzero(smooth[first:] > threshold)
    if not len(above):
        return None
    return float(freqs[first + above[-1]])


def _cliff_bin(smooth_db: np.ndarray, first: int, ref_db: float) -> int | None:
    """Last bin before the highest sharp cutoff, or None when the spectrum has none.

    A cutoff at bin i: the mean level of the `CLIFF_REFERENCE` band that ends
    `CLIFF_TRANSITION` before i stands `CLIFF_DB` above everything from i to Nyquist, is
    real content (within DYNAMIC_LIMIT_DB of the reference) and is level (its two halves
    within CLIFF_FLAT_DB: a band on the cut's own skirt is not in-band). The answer is the
    last bin before i still within `CLIFF_EDGE_DB` of that in-band level.
    """
    n = len(smooth_db)
    transition = max(2, round(CLIFF_TRANSITION * n))
    reference = max(2, round(CLIFF_REFERENCE * n))
    start = first + transition + reference
    if start >= n:
        return None
    suffix_max = np.maximum.accumulate(smooth_db[::-1])[::-1]
    csum = np.concatenate(([0.0], np.cumsum(smooth_db)))
    i = np.arange(start, n)
    end = i - transition
    half = reference // 2
    in_band = (csum[end] - csum[end - reference]) / reference
    # the reference band must be level content, not the upper part of the cut's own skirt
    tilt = (csum[end - reference + half] - csum[end - reference]) / half \
        - (csum[end] - csum[end - half]) / half
    ok = (in_band - suffix_max[i] >= CLIFF_DB) & (in_band >= ref_db - DYNAMIC_LIMIT_DB) \
        & (np.abs(tilt) <= CLIFF_FLAT_DB)
    if not ok.any():
        return None
    top = int(i[np.flatnonzero(ok)[-1]])
    level = in_band[top - start]
    lo = top - transition - reference
    edge = np.flatnonzero(smooth_db[lo : top + 1] >= level - CLIFF_EDGE_DB)
    return lo + int(edge[-1])


class BandwidthMeter:
    """Streaming effective-bandwidth meter (see module doc)."""

    def __init__(self, sample_rate: int, channels: int):
        if sample_rate < 1 or channels < 1:
            raise ValueError("sample_rate and channels must be >= 1")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.frame_length = _frame_length(self.sample_rate)
        self._framer = StreamFramer(self.frame_length, 2 * self.frame_length, dtype=np.float32)
        self._window = blackmanharris(self.frame_length, sym=False).astype(np.float32)
        self._scale = power_spectrum_scale(self._window)
        self._mix = np.full(self.channels, 1.0 / self.channels, np.float32)
        n_classes = round((CLASS_MAX_DB - CLASS_MIN_DB) / CLASS_STEP_DB)
        self._class_spectra = np.zeros((n_classes, self.frame_length // 2 + 1))
        self._class_counts = np.zeros(n_classes, np.int64)
        self._zero_frames = 0
        self._n = 0
        self._result: dict | None = None

    def update(self, block: np.ndarray) -> None:
        if self._result is not None:
            raise RuntimeError("update() after result()")
        block = as_block(block, self.channels, np.float32)
        if not len(block):
            return
        mono = block[:, 0] if self.channels == 1 else block @ self._mix
        if not math.isfinite(float(mono.sum(dtype=np.float64))):
            block = np.where(np.isfinite(block), block, np.float32(0))
            mono = block[:, 0] if self.channels == 1 else block @ self._mix
        self._n += len(block)
        self._add(self._framer.push(mono))

    def _add(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        spec = np.fft.rfft(frames * self._window, axis=1)
        power = spec.real**2 + spec.imag**2
        energy = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frames.shape[1]
        nonzero = energy > 0
        self._zero_frames += int(np.count_nonzero(~nonzero))
        if not nonzero.any():
            return
        level = 10 * np.log10(energy[nonzero])
        cls = np.clip(((level - CLASS_MIN_DB) / CLASS_STEP_DB).astype(np.int64), 0,
                      len(self._class_counts) - 1)
        self._class_counts += np.bincount(cls, minlength=len(self._class_counts))
        np.add.at(self._class_spectra, cls, power[nonzero].astype(np.float64))

    def result(self) -> dict:
        if self._result is None:
            self._result = self._finish()
        return self._result

    def _finish(self) -> dict:
        if self._class_counts.sum() + self._zero_frames == 0:
            pending = self._framer.pending
            if len(pending) >= MIN_FRAME:  # shorter than one frame: zero-pad what there is
                frame = np.zeros(self.frame_length, np.float32)
                frame[: len(pending)] = pending[: self.frame_length]
                self._add(frame[None, :])
            else:
                return _result(None, f"too short: fewer than {MIN_FRAME} samples")
        counts = self._class_counts
        if counts.sum() == 0:
            return _result(None, "digital silence")
        cum = np.cumsum(counts)
        loud_class = int(np.searchsorted(cum, LOUD_PERCENTILE / 100 * cum[-1]))
        lowest = max(0, loud_class - round(LOUD_RANGE_DB / CLASS_STEP_DB))
        spectrum = self._class_spectra[lowest:].sum(axis=0) / counts[lowest:].sum()
        bandwidth = bandwidth_from_spectrum(spectrum * self._scale, sample_rate=self.sample_rate)
        if bandwidth is None:
            return _result(None, "no content above DC")
        return _result(round(bandwidth, 1))


def _result(frequency_hz: float | None, reason: str | None = None) -> dict:
    group: dict = {"frequency": frequency_hz}
    if reason is not None:
        group["reason"] = reason
    return {"bandwidth": group}


def effective_bandwidth_hz(audio: np.ndarray, *, sample_rate: int) -> float | None:
    """Effective bandwidth (Hz) of a whole (frames,) or (frames, ch) signal; None if silent."""
    audio = np.asarray(audio, np.float32)
    audio = audio[:, None] if audio.ndim == 1 else audio
    meter = BandwidthMeter(sample_rate, audio.shape[1])
    meter.update(audio)
    return meter.result()["bandwidth"]["frequency"]
