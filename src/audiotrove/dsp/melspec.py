"""Log-mel spectrograms and patches, with YAMNet's front end as the default.

    logmel = log_mel_spectrogram(x16k)            # (frames, 64), 10 ms hop, natural log
    patches = log_mel_patches(logmel)             # (n, 96, 64): 0.96 s patches, 0.48 s hop

YAMNet's front end (models/research/audioset/yamnet/features.py, params.py): 16 kHz mono
waveform; frames of 25 ms (400 samples) every 10 ms (160 samples), periodic Hann window,
512-point FFT magnitude (not power); 64 mel bands from 125 to 7500 Hz with the HTK mel scale
(mel = 1127 ln(1 + f / 700)) and triangular weights as tf.signal.linear_to_mel_weight_matrix
builds them (no area normalisation, the DC bin weighted 0); then ln(mel + 0.001). Frames start at
the first sample and only whole frames are taken (no centring, no padding).

Pure numpy: arrays in, arrays out. Streaming callers cut their signal into chunks that overlap
by `frame_length - hop` samples (see `frame_count`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MelParams:
    """A log-mel front end. The defaults are YAMNet's."""

    sample_rate_hz: int = 16000
    window_s: float = 0.025
    hop_s: float = 0.010
    n_fft: int = 512
    n_mels: int = 64
    fmin_hz: float = 125.0
    fmax_hz: float = 7500.0
    log_offset: float = 0.001
    patch_frames: int = 96
    patch_hop_frames: int = 48

    @property
    def frame_length(self) -> int:
        return int(round(self.window_s * self.sample_rate_hz))

    @property
    def hop(self) -> int:
        return int(round(self.hop_s * self.sample_rate_hz))

    @property
    def silence_value(self) -> float:
        """The log-mel value of digital silence: ln(log_offset)."""
        return float(np.log(self.log_offset))


YAMNET = MelParams()


def htk_hz_to_mel(hz):
    """HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def htk_mel_matrix(*, sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float,
                   fmax_hz: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular weights on the HTK mel scale, as
    tf.signal.linear_to_mel_weight_matrix: band edges evenly spaced in mel between fmin and
    fmax, each triangle peaking at 1, the DC bin weighted 0."""
    n_bins = n_fft // 2 + 1
    freqs = np.linspace(0.0, sample_rate_hz / 2.0, n_bins)[1:]
    mel = htk_hz_to_mel(freqs)[:, None]
    edges = np.linspace(htk_hz_to_mel(fmin_hz), htk_hz_to_mel(fmax_hz), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mel - lower) / (center - lower)
    falling = (upper - mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights = np.vstack([np.zeros((1, n_mels)), weights])
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def periodic_hann(n: int) -> np.ndarray:
    """The periodic Hann window of n samples (tf.signal.hann_window(periodic=True))."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def frame_count(n_samples: int, params: MelParams = YAMNET) -> int:
    """Whole frames in n_samples (frame k covers samples [k * hop, k * hop + frame_length))."""
    if n_samples < params.frame_length:
        return 0
    return 1 + (n_samples - params.frame_length) // params.hop


def magnitude_frames(x: np.ndarray, params: MelParams = YAMNET) -> np.ndarray:
    """|FFT| of the windowed frames of a mono signal: (frames, n_fft // 2 + 1), float32."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = frame_count(len(x), params)
    if n == 0:
        return np.zeros((0, params.n_fft // 2 + 1), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, params.frame_length)[::params.hop][:n]
    window = periodic_hann(params.frame_length).astype(np.float32)
    return np.abs(np.fft.rfft(frames * window, n=params.n_fft, axis=1)).astype(np.float32)


def mel_from_magnitude(magnitude: np.ndarray, params: MelParams = YAMNET) -> np.ndarray:
    """ln(mel + log_offset) of magnitude frames: (frames, n_mels), float32."""
    weights = htk_mel_matrix(sample_rate_hz=params.sample_rate_hz, n_fft=params.n_fft,
                             n_mels=params.n_mels, fmin_hz=params.fmin_hz, fmax_hz=params.fmax_hz)
    mel = magnitude.astype(np.float64) @ weights
    return np.log(mel + params.log_offset).astype(np.float32)


def log_mel_spectrogram(x: np.ndarray, params: MelParams = YAMNET) -> np.ndarray:
    """The log-mel spectrogram of a mono signal at params.sample_rate_hz: (frames, n_mels)."""
    return mel_from_magnitude(magnitude_frames(x, params), params)


def log_mel_patches(logmel: np.ndarray, params: MelParams = YAMNET) -> np.ndarray:
    """Cut a log-mel spectrogram into patches: (n, patch_frames, n_mels), float32.

    Patches start every patch_hop_frames; a last partial stretch gets one more patch aligned
    to the end, so every frame is covered. Fewer frames than one patch: one patch, padded
    with the value of digital silence (as YAMNet pads short waveforms with zeros).
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    size, hop = params.patch_frames, params.patch_hop_frames
    n = len(logmel)
    if n < size:
        bands = logmel.shape[1] if logmel.ndim == 2 else params.n_mels
        pad = np.full((size - n, bands), params.silence_value, np.float32)
        return np.concatenate([logmel.reshape(n, bands), pad])[None]
    starts = list(range(0, n - size + 1, hop))
    if starts[-1] + size < n:
        starts.append(n - size)
    return np.stack([logmel[s:s + size] for s in starts])


__all__ = ["MelParams", "YAMNET", "frame_count", "htk_hz_to_mel", "htk_mel_matrix", "log_mel_patches",
           "log_mel_spectrogram", "magnitude_frames", "mel_from_magnitude", "periodic_hann"]
