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
