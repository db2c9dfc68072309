"""Loudness normalisation with a true-peak ceiling: one linear gain, never a compressor.

The gain that brings the integrated loudness (BS.1770, `dsp.loudness`) to the target is
reduced, when needed, so that the true peak (`dsp.peaks`) stays at or under the ceiling.
Nothing else changes: when the ceiling limits the gain, the result is quieter than the
target, and the result says so (`limited_by_true_peak`, `expected_lufs`) instead of
silently switching to dynamic compression or limiting.
"""
from __future__ import annotations

import numpy as np

DEFAULT_TRUE_PEAK_MAX_DBTP = -1.0


def normalization_gain(*, measured_lufs: float | None, true_peak_dbtp: float | None,
                       target_lufs: float, true_peak_max_dbtp: float = DEFAULT_TRUE_PEAK_MAX_DBTP) -> dict:
    """The linear gain (dB) to apply, and what it gives.

    measured_lufs: integrated loudness of the audio (LUFS), None when it cannot be measured
    (silence or shorter than 400 ms): the gain is then 0 dB and `reason` says why.
    true_peak_dbtp: its true peak (dBTP), None for digital silence.
    Returns {"gain_db", "target_lufs", "true_peak_max_dbtp", "expected_lufs" (LUFS),
    "expected_true_peak" (dBTP), "limited_by_true_peak" (bool)[, "reason"]}.
    """
    out = {"gain_db": 0.0, "target_lufs": float(target_lufs), "true_peak_max_dbtp": float(true_peak_max_dbtp),
           "expected_lufs": measured_lufs, "expected_true_peak": true_peak_dbtp, "limited_by_true_peak": False}
    if measured_lufs is None:
        out["reason"] = "loudness could not be measured (silence or shorter than 400 ms): gain left at 0 dB"
        return out
    gain = float(target_lufs) - float(measured_lufs)
    if true_peak_dbtp is not None and true_peak_dbtp + gain > true_peak_max_dbtp:
        gain = float(true_peak_max_dbtp) - float(true_peak_dbtp)
        out["limited_by_true_peak"] = True
        out["reason"] = (f"gain limited by the true-peak ceiling ({true_peak_max_dbtp:g} dBTP): "
                         f"{float(target_lufs) - float(measured_lufs) - gain:.2f} LU short of the target; "
                         "no compression or limiting applied")
    out["gain_db"] = round(gain, 4)
    out["expected_lufs"] = round(float(measured_lufs) + gain, 3)
    out["expected_true_peak"] = None if true_peak_dbtp is None else round(float(true_peak_dbtp) + gain, 3)
    return out


def db_to_gain(gain_db: float) -> float:
    """dB -> linear amplitude factor."""
    return float(10.0 ** (gain_db / 20.0))


class GainStream:
    """A constant gain (dB) as a stream stage (`process`/`flush`, no delay)."""

    def __init__(self, gain_db: float, *, channels: int):
        self.factor = np.float32(db_to_gain(gain_db))
        self.channels = channels

    def process(self, block: np.ndarray) -> np.ndarray:
        return (np.asarray(block, np.float32) * self.factor).astype(np.float32)

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.channels), np.float32)


def normalize_loudness(audio: np.ndarray, *, sample_rate: int, target_lufs: float,
                       true_peak_max_dbtp: float = DEFAULT_TRUE_PEAK_MAX_DBTP) -> tuple[np.ndarray, dict]:
    """Normalise a whole array (frames[, channels]) to `target_lufs` under the ceiling.

    Returns (audio * gain, the `normalization_gain` dict).
    """
    from .loudness import integrated_loudness
    from .peaks import true_peak_dbtp

    info = normalization_gain(
        measured_lufs=integrated_loudness(audio, sample_rate=sample_rate),
        true_peak_dbtp=true_peak_dbtp(audio, sample_rate=sample_rate),
        target_lufs=target_lufs, true_peak_max_dbtp=true_peak_max_dbtp,
    )
    return np.asarray(audio, np.float32) * np.float32(db_to_gain(info["gain_db"])), info


# --- the final stage: nothing leaves enhance above the true-peak ceiling --------------------

FULL_SCALE = 1.0 - 2.0 ** -15  # the largest positive 16-bit level: at or beyond it a sample is clipped


def full_scale_samples(block: np.ndarray) -> int:
    """Samples at or beyond full scale (|x| >= 1 - 2^-15): clipped, or clipped once stored as PCM."""
    return int(np.count_nonzero(np.abs(np.asarray(block)) >= FULL_SCALE))


class GainFloor:
    """A spectral gain model (`setup`/`gains`, see dsp.denoise.StftDenoiser) whose gains never
    go below `floor_db`: bounds what a chain of suppressions (noise reduction times speech
    isolation) takes away anywhere in time and frequency."""

    def __init__(self, model, *, floor_db: float):
        self.model = model
        self.floor_db = float(floor_db)
        self.floor = 10.0 ** (self.floor_db / 20.0)

    def setup(self, **kwargs) -> None:
        self.model.setup(**kwargs)

    def gains(self, power: np.ndarray, start_frame: int) -> np.ndarray:
        return np.maximum(self.model.gains(power, start_frame), self.floor)


class TruePeakLimiter:
    """A look-ahead true-peak limiter as a stream stage (`process`/`flush`, sample-aligned).

    A safety stage, not a loudness tool: where the signal's true peak (4x oversampled as in
    dsp.peaks, BS.1770-4) stays under the ceiling the gain is exactly 1 and the audio passes
    bit for bit. Around a sample whose true peak would pass the ceiling, the gain comes down
    over `lookahead_s` before it, holds `hold_s` after it and comes back over `lookahead_s`.

    How it is made sure: g_req[n] = min(1, ceiling / peak[n]) where peak[n] is the largest of
    |x[n]| and the interpolated values computed from x[n - 15 .. n]; m[k] = min g_req over
    [k - hold, k + lookahead + 16]; the gain is the moving average of m over [n - ramp, n + ramp]
    (ramp = lookahead). Every m in that average covers the peak when n lies in
    [peak - 16, peak + hold - ramp], so the gain is flat at (or under) g_req over the
    16 samples an interpolated value is made of: the limited signal's true peak is at most
    the ceiling (a 0.02 dB margin covers float rounding and the gain's slope elsewhere).
    Memory: the look-ahead and hold windows, whatever the stream length.
    """

    MARGIN_DB = 0.02

    def __init__(self, *, sample_rate: int, channels: int,
                 ceiling_dbtp: float = DEFAULT_TRUE_PEAK_MAX_DBTP,
                 lookahead_s: float = 0.005, hold_s: float = 0.05):
        from .peaks import TAPS_PER_PHASE, _interpolator_phases, oversampling_factor

        self.channels = int(channels)
        self.ceiling_dbtp = float(ceiling_dbtp)
        self.limit = 10.0 ** ((self.ceiling_dbtp - self.MARGIN_DB) / 20.0)
        factor = oversampling_factor(sample_rate)
        self._phases = _interpolator_phases(factor).astype(np.float64) if factor > 1 else None
        self._taps = TAPS_PER_PHASE
        self._bound = float(np.abs(self._phases).sum(axis=0).max()) if self._phases is not None else 1.0
        self.ramp = max(1, int(round(lookahead_s * sample_rate)))
        self.ahead = self.ramp + TAPS_PER_PHASE
        hold = max(self.ramp, int(round(hold_s * sample_rate)))
        self.hold = hold + (hold + self.ahead) % 2  # the min window (hold + ahead + 1) is odd
        self._fir_hist = np.zeros((TAPS_PER_PHASE - 1, self.channels))
        self._x = np.zeros((0, self.channels), np.float32)   # input not yet output
        self._g = np.ones(self.hold + self.ramp)              # g_req from index (next out - hold - ramp)
        self.frames_in = 0
        self.frames_out = 0
        self.min_gain = 1.0
        self.limited_frames = 0

    def _peaks(self, x: np.ndarray, *, tail: bool = False) -> np.ndarray:
        """Per sample: the largest |sample| and interpolated value ending there (all channels)."""
        ext = np.concatenate([self._fir_hist, np.asarray(x, np.float64)])
        self._fir_hist = ext[len(ext) - (self._taps - 1):]
        peak = np.abs(x).max(axis=1) if len(x) else np.zeros(0)
        if self._phases is None or not len(x):
            return peak
        if float(np.abs(ext).max(initial=0.0)) * self._bound < self.limit:
            return peak  # no interpolated value can reach the ceiling
        inter = np.zeros(len(x))
        for c in range(self.channels):
            col = np.ascontiguousarray(ext[:, c])
            for p in range(self._phases.shape[1]):  # y_p[i] = sum_k h_p[k] x[i - 15 + k]
                np.maximum(inter, np.abs(np.correlate(col, self._phases[:, p], mode="valid")), out=inter)
        return np.maximum(peak, inter)

    def _take(self, x: np.ndarray, peak: np.ndarray) -> None:
        g = np.ones(len(peak))
        over = peak > self.limit
        if over.any():
            g[over] = self.limit / peak[over]
        self._x = np.concatenate([self._x, np.asarray(x, np.float32)])
        self._g = np.concatenate([self._g, g])

    def _emit(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.zeros((0, self.channels), np.float32)
        x = self._x[:n]
        need = n + 2 * self.ramp + self.hold + self.ahead
        seg = self._g[:need]
        if seg.min() >= 1.0:
            y = x.copy()
        else:
            from scipy.ndimage import minimum_filter1d

            w = self.hold + self.ahead + 1
            m = minimum_filter1d(seg, w, mode="nearest")[(w - 1) // 2: len(seg) - (w - 1) // 2]
            k = 2 * self.ramp + 1
            c = np.concatenate([[0.0], np.cumsum(1.0 - m)])  # of 1 - m: exact 1 where nothing is limited
            gain = np.clip(1.0 - (c[k:k + n] - c[:n]) / k, 0.0, 1.0)
            self.min_gain = min(self.min_gain, float(gain.min()))
            self.limited_frames += int(np.count_nonzero(gain < 1.0))
            y = (x * gain[:, None]).astype(np.float32)
        self._x = self._x[n:]
        self._g = self._g[n:]
        self.frames_out += n
        return y

    def process(self, block: np.ndarray) -> np.ndarray:
        x = np.asarray(block, np.float32)
        self.frames_in += len(x)
        self._take(x, self._peaks(x))
        return self._emit(len(self._x) - self.ahead - self.ramp)

    def flush(self) -> np.ndarray:
        # the stream is followed by silence: the interpolation across its end counts too
        zeros = np.zeros((self._taps, self.channels), np.float32)
        self._take(zeros, self._peaks(zeros))
        pad = self.ahead + self.ramp
        self._x = np.concatenate([self._x, np.zeros((pad, self.channels), np.float32)])
        self._g = np.concatenate([self._g, np.ones(pad)])
        y = self._emit(self.frames_in - self.frames_out)
        self._x = self._x[:0]
        return y

    def result(self) -> dict:
        """{"ceiling_dbtp", "max_reduction_db" (dB, 0 when it never acted), "limited_frames"
        (samples per channel where the gain was under 1)}."""
        return {"ceiling_dbtp": self.ceiling_dbtp,
                "max_reduction_db": round(float(-20.0 * np.log10(self.min_gain)), 2) if self.min_gain < 1 else 0.0,
                "limited_frames": self.limited_frames}
