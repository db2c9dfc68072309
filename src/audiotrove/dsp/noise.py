"""Noise floor, SNR, mains hum, clicks and DC offset in one streaming pass.

`NoiseMeter(sample_rate, channels)` follows the meter protocol of `audiotrove.dsp`
(update(block) ... result()) and returns

    {"noise": {
        "level_average": dBFS,       noise level: mean power of the noise lobe of 20 ms frame levels
        "snr_average": dB,           active signal power over noise power
        "hum": {"frequency": 50 | 60 | None (Hz, nominal mains), "frequency_measured": Hz,
                "level": dB above the local spectral floor (strongest harmonic),
                "level_dbfs": dBFS (all found harmonics together), "harmonics": [1, 2, ...]},
        "clicks_per_minute": float,  isolated impulses < 2 ms per minute of audio
        "num_clicks": int,
        "dc_offset": float,          signed mean sample value (fraction of full scale), the
                                     channel with the largest |mean|
        "digital_silence_duration": s, frames excluded from the floor (exact zeros / DC only)
        "non_finite_samples": int,   NaN / inf samples, replaced by 0 for measuring
        "reason": str                only when a value is None: why
    }}

Definitions
- Frame level: AC power (mean square after removing each channel's frame mean, so a DC
  offset does not pass for noise), averaged over channels, of consecutive 20 ms frames, in
  dBFS (10 log10 of the mean square; a full-scale sine is -3 dBFS). Averaging powers, not
  the amplitude mix, keeps uncorrelated noise in two channels from losing 3 dB.
  Frames are 20 ms, not longer: the gaps between words are often only 50-150 ms, and with
  50 ms frames the floor of short utterances (xmas.wav, cmu_arctic a0003 in the test data)
  landed 10-20 dB up inside the speech.
- Frames that are exact digital zero, or constant (DC only), are excluded from the
  statistics and reported as `digital_silence_duration`; a file made only of them gets
  level_average = None with a reason.
- level_average: the mean power of the noise, from the lobe of quiet frame levels. Frame
  levels of steady noise spread around their mean (20 ms of white noise: +-0.3 dB; of pink
  noise, whose low octaves hold few cycles per frame: +-2 dB), so a low percentile alone reads
  low (the 5th percentile of pink noise 1.7-3 dB under its level). The 1st and 5th percentiles
  (inside the noise lobe as long as 5 % of the frames are pauses) give the lobe's centre and
  spread (a normal distribution in dB); the noise level is the mean power of the frames up to
  2 spreads above the centre, corrected for that cut. Steady noise reads within 0.4 dB on
  average, 0.6 dB at most (white or pink; bench/RESULTS_noise.md). The spread is taken as at most MAX_SPREAD_DB: quiet frames that spread wider are
  not one steady noise (a fade, changing room tone), and the level stays near their 5th
  percentile. For a file that is never quiet (dense music, a steady tone) it is the level of
  its quietest stretches.
- snr_average: active-speech (signal) power over noise power, in dB: the signal power of a
  frame is its power minus the noise power; the active frames are those above the noise
  lobe (1.645 spreads over its centre) and within 30 dB of the loudest signal frames (as an
  active speech level, ITU-T P.56, leaves out pauses and breath); the mean of their signal
  power over the noise power. It tracks the true SNR of speech in white or pink noise to
  within about 2 dB on average from 0 to 20 dB, and reads 2.5-3 dB low at 30 dB, where the
  recordings' own background adds to the noise (bench/RESULTS_noise.md). None (with a reason) when no
  frame rises clearly out of the noise lobe (steady noise or a steady tone: there is no
  signal to set against the floor).
- Hum: `audiotrove.dsp.hum`; clicks: `audiotrove.dsp.clicks` (both on the channel mix).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .blocks import as_block
from .clicks import ClickDetector
from .hum import HumDetector
from .spectrum import StreamFramer

__all__ = ["LevelSplit", "NoiseMeter", "dc_offset", "measure_noise", "noise_floor_dbfs", "snr_db",
           "split_levels"]

FRAME_S = 0.02
LOBE_PERCENTILES = (1.0, 5.0)  # where the noise lobe is read (inside it if >= 5 % are pauses)
_Z_LOBE = (-2.3263478740408408, -1.6448536269514729)  # standard normal quantiles of those
NOISE_CUT_SPREADS = 2.0   # frames up to this many spreads over the lobe centre are noise
ACTIVE_SPREADS = 1.645    # frames above this many spreads over the centre carry signal...
ACTIVE_RANGE_DB = 30.0    # ... if within this of the loudest signal frames (95th percentile)
SIGNAL_SPREADS = 3.0      # a signal exists if 1 % of frames rise this many spreads...
SIGNAL_MARGIN_DB = 1.0    # ... plus this over the lobe centre
MIN_SPREAD_DB = 0.05
# Steady noise spreads at most ~2 dB in 20 ms frames (pink noise from 20 Hz: 1.5 dB); a wider
# spread of the quietest frames means they are not one steady noise (a fade, room tone that
# changes, speech in the 5 %): the lobe is then read as at most this wide
MAX_SPREAD_DB = 2.0
HIST_MIN_DB = -200.0
HIST_MAX_DB = 20.0
HIST_STEP_DB = 0.05
# a frame whose AC power is below this share of its raw power is constant (DC only)
_CONSTANT_FRAME_SHARE = 1e-10


class _LevelHistogram:
    """Histogram of frame levels (dB) with the summed power per bin: exact means above a level."""

    def __init__(self):
        self.n_bins = round((HIST_MAX_DB - HIST_MIN_DB) / HIST_STEP_DB)
        self.counts = np.zeros(self.n_bins, np.int64)
        self.power = np.zeros(self.n_bins, np.float64)

    def add(self, power: np.ndarray) -> None:
        power = np.asarray(power, np.float64)
        level = 10 * np.log10(np.maximum(power, 1e-300))
        idx = np.clip(((level - HIST_MIN_DB) / HIST_STEP_DB).astype(np.int64), 0, self.n_bins - 1)
        self.counts += np.bincount(idx, minlength=self.n_bins)
        self.power += np.bincount(idx, weights=power, minlength=self.n_bins)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile_db(self, q: float) -> float:
        """Level below which q % of the frames lie (linear interpolation inside the bin)."""
        cum = np.cumsum(self.counts)
        rank = q / 100.0 * cum[-1]
        i = int(np.searchsorted(cum, rank, side="left"))
        i = min(i, self.n_bins - 1)
        below = cum[i - 1] if i > 0 else 0
        inside = self.counts[i]
        frac = (rank - below) / inside if inside else 0.5
        return float(HIST_MIN_DB + (i + min(max(frac, 0.0), 1.0)) * HIST_STEP_DB)

    def _bin(self, level_db: float) -> int:
        return min(max(math.ceil((level_db - HIST_MIN_DB) / HIST_STEP_DB), 0), self.n_bins)

    def power_between(self, lo_db: float, hi_db: float) -> tuple[float, int]:
        """(summed power, frame count) of the frames in bins from lo_db up to below hi_db."""
        a, b = self._bin(lo_db), self._bin(hi_db)
        if b <= a:
            return 0.0, 0
        return float(self.power[a:b].sum()), int(self.counts[a:b].sum())

    def mean_power_above(self, level_db: float) -> tuple[float, int]:
        """(mean power, frame count) of the frames in bins starting at or above level_db."""
        i = math.ceil((level_db - HIST_MIN_DB) / HIST_STEP_DB)
        i = min(max(i, 0), self.n_bins)
        n = int(self.counts[i:].sum())
        return (float(self.power[i:].sum()) / n if n else 0.0), n


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class LevelSplit:
    """How noise_and_snr reads a histogram of frame levels: which bins are noise, which signal.

    noise frames: the bins below `noise_below_db` (the noise lobe up to its cut), of which
    those below `centre_db` are its core, where signal reaches least; active frames: the bins
    from `active_from_db` up (None when no signal rises out of the lobe).
    Another histogram with the same bins (dsp.change: the output power of the same frames)
    can be read over exactly these frames.
    """
    noise_power: float              # mean power of the noise (corrected for the lobe's cut)
    centre_db: float
    noise_below_db: float
    active_from_db: float | None
    snr_db: float | None

    @property
    def noise_db(self) -> float:
        return 10 * math.log10(self.noise_power)


def split_levels(hist: _LevelHistogram) -> LevelSplit | None:
    """The noise level, SNR and the frames they are read from (see the module doc); None for
    no frames."""
    if not hist.total:
        return None
    p_lo, p_hi = (hist.percentile_db(q) for q in LOBE_PERCENTILES)
    spread = min(max((p_hi - p_lo) / (_Z_LOBE[1] - _Z_LOBE[0]), MIN_SPREAD_DB), MAX_SPREAD_DB)
    centre = p_hi - _Z_LOBE[1] * spread
    noise_below = centre + NOISE_CUT_SPREADS * spread + HIST_STEP_DB
    power, count = hist.power_between(HIST_MIN_DB, noise_below)
    if count == 0:
        return LevelSplit(10 ** (p_hi / 10), centre, noise_below, None, None)
    # the mean of a lognormal lobe cut at `cut` is low by Phi(k - s) / Phi(k)
    s = spread * math.log(10) / 10
    noise = power / count * _normal_cdf(NOISE_CUT_SPREADS) / _normal_cdf(NOISE_CUT_SPREADS - s)
    no_signal = LevelSplit(noise, centre, noise_below, None, None)
    signal_floor = centre + SIGNAL_SPREADS * spread + SIGNAL_MARGIN_DB
    _, n_signal = hist.power_between(signal_floor, HIST_MAX_DB + 1)
    if n_signal < max(2, 0.01 * hist.total):
        return no_signal
    # active frames: above the lobe, and within ACTIVE_RANGE_DB of the loudest signal frames
    active_lo = centre + ACTIVE_SPREADS * spread
    _, n_active = hist.power_between(active_lo, HIST_MAX_DB + 1)
    below = hist.total - n_active
    top_db = hist.percentile_db(100.0 * (below + 0.95 * n_active) / hist.total)
    top_signal = 10 ** (top_db / 10) - noise
    if top_signal <= 0:
        return no_signal
    floor_db = 10 * math.log10(noise + top_signal * 10 ** (-ACTIVE_RANGE_DB / 10))
    active_from = max(active_lo, floor_db)
    power, count = hist.power_between(active_from, HIST_MAX_DB + 1)
    signal = power / count - noise if count else 0.0
    if signal <= 0:
        return no_signal
    return LevelSplit(noise, centre, noise_below, active_from, 10 * math.log10(signal / noise))


def noise_and_snr(hist: _LevelHistogram) -> tuple[float | None, float | None]:
    """(noise level dBFS, SNR dB) from a histogram of frame levels (see the module doc).

    The SNR is None when no signal rises out of the noise lobe; both None for no frames.
    """
    split = split_levels(hist)
    return (None, None) if split is None else (split.noise_db, split.snr_db)


class _FrameLevels:
    """20 ms AC frame levels of an interleaved stream, kept as a histogram (see module doc)."""

    def __init__(self, sample_rate: int, channels: int):
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.frame_length = max(1, round(FRAME_S * self.sample_rate))
        L, C = self.frame_length, self.channels
        self._framer = StreamFramer(L * C, L * C, dtype=np.float32)
        # per-channel sums of a frame as one matrix product: (m, L*C) @ (L*C, C)
        self._channel_picker = np.tile(np.eye(C, dtype=np.float32), (L, 1)) if C > 1 else None
        self.hist = _LevelHistogram()
        self.silent_frames = 0
        self.silent_samples = 0  # per channel
        self._finished = False

    def push(self, interleaved: np.ndarray) -> None:
        self._add(self._framer.push(interleaved))

    def finish(self) -> None:
        """Shorter than one frame: measure what there is as one frame."""
        if not self._finished and self.hist.total + self.silent_frames == 0 \
                and len(self._framer.pending):
            self._add(self._framer.pending[None, :])
        self._finished = True

    def _add(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        width = frames.shape[1]
        L = width // self.channels
        raw = np.einsum("ij,ij->i", frames, frames).astype(np.float64)
        if self._channel_picker is not None and width == self._channel_picker.shape[0]:
            sums = (frames @ self._channel_picker).astype(np.float64)
        else:
            sums = frames.reshape(len(frames), L, self.channels).sum(axis=1, dtype=np.float64)
        ac = (raw - (sums**2).sum(axis=1) / L) / width
        raw /= width
        silent = (raw <= 0) | (ac <= _CONSTANT_FRAME_SHARE * raw)
        self.silent_frames += int(np.count_nonzero(silent))
        self.silent_samples += int(np.count_nonzero(silent)) * L
        if not silent.all():
            self.hist.add(ac[~silent])

    @property
    def silent_duration_s(self) -> float:
        return self.silent_samples / self.sample_rate

    def floor_db(self) -> float | None:
        return noise_and_snr(self.hist)[0]


class NoiseMeter:
    """Streaming noise floor / SNR / hum / clicks / DC meter (see module doc)."""

    def __init__(self, sample_rate: int, channels: int):
        if sample_rate < 1 or channels < 1:
            raise ValueError("sample_rate and channels must be >= 1")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._levels = _FrameLevels(self.sample_rate, self.channels)
        self._mix = np.full(self.channels, 1.0 / self.channels, np.float32)
        self._sums = np.zeros(self.channels, np.float64)
        self._ones = np.ones(0, np.float32)
        self._n = 0
        self._non_finite = 0
        self._clicks = ClickDetector(self.sample_rate)
        self._num_clicks = 0
        self._hum = HumDetector(self.sample_rate)
        self._result: dict | None = None

    def update(self, block: np.ndarray) -> None:
        if self._result is not None:
            raise RuntimeError("update() after result()")
        block = as_block(block, self.channels, np.float32)
        n = len(block)
        if not n:
            return
        block = np.ascontiguousarray(block)
        if len(self._ones) < n:
            self._ones = np.ones(n, np.float32)
        sums = self._ones[:n] @ block  # NaN / inf propagate: one pass checks and sums
        if not np.isfinite(sums).all():
            finite = np.isfinite(block)
            self._non_finite += int(block.size - np.count_nonzero(finite))
            block = np.where(finite, block, np.float32(0))
            sums = self._ones[:n] @ block
        self._n += n
        self._sums += sums
        self._levels.push(block.reshape(-1))
        mono = block[:, 0] if self.channels == 1 else block @ self._mix
        self._num_clicks += len(self._clicks.process(mono))
        self._hum.update(mono)

    def result(self) -> dict:
        if self._result is None:
            self._result = {"noise": self._finish()}
        return self._result

    def _finish(self) -> dict:
        reasons: list[str] = []
        sr, n = self.sample_rate, self._n
        self._levels.finish()
        hist = self._levels.hist
        out: dict = {"level_average": None, "snr_average": None}
        floor, snr = noise_and_snr(hist)
        if n == 0:
            reasons.append("no samples")
        elif floor is None:
            reasons.append(
                "digital silence (every frame is exact zero or constant): no noise floor")
        else:
            out["level_average"] = round(float(floor), 2)
            if snr is not None:
                out["snr_average"] = round(float(snr), 2)
            else:
                reasons.append("no frame rises clearly above the noise floor "
                               "(steady noise or tone): no SNR")
        if n:
            out["hum"] = self._hum.result()
        else:
            out["hum"] = {"frequency": None, "frequency_measured": None, "level": None,
                          "level_dbfs": None, "harmonics": [], "reason": "no samples"}
        self._num_clicks += len(self._clicks.flush())
        if n >= 3:
            out["clicks_per_minute"] = round(self._num_clicks / (n / sr / 60.0), 2)
            out["num_clicks"] = self._num_clicks
        else:
            out["clicks_per_minute"] = None
            out["num_clicks"] = None
            reasons.append("fewer than 3 samples: no click detection")
        if n:
            means = self._sums / n
            out["dc_offset"] = round(float(means[int(np.argmax(np.abs(means)))]), 7)
        else:
            out["dc_offset"] = None
        out["digital_silence_duration"] = round(self._levels.silent_duration_s, 3)
        out["non_finite_samples"] = self._non_finite
        if reasons:
            out["reason"] = "; ".join(reasons)
        return out


def _as_2d(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    return audio[:, None] if audio.ndim == 1 else audio


def measure_noise(audio: np.ndarray, *, sample_rate: int) -> dict:
    """The NoiseMeter result ({"noise": {...}}) for a whole (frames,) or (frames, ch) array."""
    audio = _as_2d(audio)
    meter = NoiseMeter(sample_rate, audio.shape[1])
    meter.update(audio)
    return meter.result()


def noise_floor_dbfs(audio: np.ndarray, *, sample_rate: int) -> float | None:
    """Noise floor in dBFS (mean power of the noise lobe of 20 ms AC frame levels, see the
    module doc); None for digital silence.

    Only the frame statistics are computed (no hum or click analysis).
    """
    audio = _as_2d(audio)
    levels = _FrameLevels(sample_rate, audio.shape[1])
    levels.push(np.where(np.isfinite(audio), audio, np.float32(0)).reshape(-1))
    levels.finish()
    floor = levels.floor_db()
    return None if floor is None else round(float(floor), 2)


def snr_db(audio: np.ndarray, *, sample_rate: int) -> float | None:
    """SNR in dB (active signal power over noise power, see the module doc), None if undefined."""
    return measure_noise(audio, sample_rate=sample_rate)["noise"]["snr_average"]


def dc_offset(audio: np.ndarray) -> float | None:
    """Signed mean sample value of the channel with the largest |mean| (fraction of full scale)."""
    audio = _as_2d(audio)
    if not len(audio):
        return None
    means = np.where(np.isfinite(audio), audio, 0).mean(axis=0, dtype=np.float64)
    return float(means[int(np.argmax(np.abs(means)))])
