"""A fixed-length descriptor vector of a sound, with no learned weights (the `descriptors` model).

    vec = descriptor_vector(x16k)          # (DESCRIPTOR_DIM,) float32, roughly standardized

From one mono signal at 16 kHz (YAMNet's log-mel front end, dsp/melspec.py):
    log-mel       64 bands: mean over frames less its average over bands
                  (the spectral shape, independent of gain), and the
                  standard deviation over frames                            128
    level         the average of the mean log-mel over bands                  1
    MFCC          orthonormal DCT-II of the log-mel: means of 1..12 (0 is
                  the level again), standard deviations of 0..12             25
    contrast      7 bands (dsp/features.spectral_contrast, dB, on a spectrum
                  floored 60 dB under each frame's peak): mean, std          14
    pitch         voiced fraction (clarity >= 0.6), median pitch of voiced
                  frames (octaves re 440 Hz, 0 when unvoiced), mean clarity  3
Each group is shifted and scaled by fixed constants (typical values of recorded sound), so the
groups weigh alike in a cosine or Euclidean comparison, whatever collection they come from; a
constant per group, not statistics of the collection, so vectors never change when files are
added. Only frames within 50 dB of the loudest frame count (pauses and digital silence are left
out), so a copy at another gain differs in the level alone.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from .features import contrast_bands, spectral_contrast
from .melspec import YAMNET, magnitude_frames, mel_from_magnitude
from .pitch import pitch_track

N_MFCC = 13
MIN_CLARITY = 0.6
DESCRIPTOR_DIM = 2 * YAMNET.n_mels + 1 + (N_MFCC - 1) + N_MFCC + 2 * 7 + 3
CONTRAST_FLOOR = 1e-6  # -60 dB re the frame's strongest bin
GATE_NATS = 50 / 20 * np.log(10)  # 50 dB below the loudest frame, in ln(magnitude)
# (offset, scale) per group: (x - offset) / scale.
_SHAPE = (0.0, 2.0)
_LEVEL = (-3.0, 3.0)
_LOGMEL_STD = (1.0, 1.0)
_MFCC_MEAN = (0.0, 4.0)
_MFCC_STD = (1.0, 2.0)
_CONTRAST_MEAN = (20.0, 8.0)
_CONTRAST_STD = (5.0, 4.0)


@lru_cache(maxsize=1)
def _dct(n_in: int, n_out: int) -> np.ndarray:
    return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=1)[:, :n_out]


def _pitch_frame_gate(x: np.ndarray, n_frames: int, sample_rate_hz: int) -> np.ndarray:
    """Which pitch_track frames (46 ms every 11.6 ms) are within 50 dB of the loudest."""
    n = max(int(round(0.046 * sample_rate_hz)), 2 * int(np.ceil(sample_rate_hz / 50.0)))
    hop = max(1, int(round(0.0116 * sample_rate_hz)))
    sq = np.concatenate([[0.0], np.cumsum(np.asarray(x, np.float64) ** 2)])
    starts = np.arange(n_frames) * hop
    ends = np.minimum(starts + n, len(x))
    energy = (sq[ends] - sq[np.minimum(starts, len(x))]) / n
    if not (energy > 0).any():
        return np.ones(n_frames, bool)
    return energy >= energy.max() * 1e-5


def descriptor_vector(x: np.ndarray, *, sample_rate_hz: int = YAMNET.sample_rate_hz) -> np.ndarray:
    """The descriptor vector of a mono signal at 16 kHz (shorter than one frame: zero-padded)."""
    if sample_rate_hz != YAMNET.sample_rate_hz:
        raise ValueError("descriptor_vector expects 16 kHz audio")
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if len(x) < YAMNET.frame_length:
        x = np.concatenate([x, np.zeros(YAMNET.frame_length - len(x), np.float32)])
    magnitude = magnitude_frames(x, YAMNET)
    logmel = mel_from_magnitude(magnitude, YAMNET).astype(np.float64)
    loudest = logmel.max(axis=1)
    live = (loudest > YAMNET.silence_value + 0.5) & (loudest >= loudest.max() - GATE_NATS)
    if live.any():
        logmel, magnitude = logmel[live], magnitude[live]
    mfcc = logmel @ _dct(YAMNET.n_mels, N_MFCC)
    power = magnitude.astype(np.float64) ** 2
    # a floor 60 dB under each frame's peak: the contrast of empty bands is not their noise floor
    power = np.maximum(power, CONTRAST_FLOOR * power.max(axis=1, keepdims=True) + 1e-12)
    contrast = spectral_contrast(power, contrast_bands(sample_rate_hz=sample_rate_hz, n_fft=YAMNET.n_fft))
    _, hz, clarity = pitch_track(x, sample_rate_hz=sample_rate_hz)
    clarity = np.nan_to_num(clarity, nan=0.0)
    loud = _pitch_frame_gate(x, len(hz), sample_rate_hz)
    hz, clarity = hz[loud], clarity[loud]
    voiced = (clarity >= MIN_CLARITY) & np.isfinite(hz) & (hz > 0)
    pitch = float(np.median(np.log2(hz[voiced] / 440.0))) if voiced.any() else 0.0
    mfcc_mean = mfcc.mean(axis=0)
    mean_bands = logmel.mean(axis=0)
    level = float(mean_bands.mean())
    parts = [
        (mean_bands - level - _SHAPE[0]) / _SHAPE[1],
        (logmel.std(axis=0) - _LOGMEL_STD[0]) / _LOGMEL_STD[1],
        [(level - _LEVEL[0]) / _LEVEL[1]],
        (mfcc_mean[1:] - _MFCC_MEAN[0]) / _MFCC_MEAN[1],
        (mfcc.std(axis=0) - _MFCC_STD[0]) / _MFCC_STD[1],
        (contrast.mean(axis=0) - _CONTRAST_MEAN[0]) / _CONTRAST_MEAN[1],
        (contrast.std(axis=0) - _CONTRAST_STD[0]) / _CONTRAST_STD[1],
        [2.0 * voiced.mean() - 1.0, pitch / 2.0, 2.0 * float(clarity.mean()) - 1.0],
    ]
    vec = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts])
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


__all__ = ["DESCRIPTOR_DIM", "descriptor_vector"]
