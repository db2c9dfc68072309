"""Streaming framing and long-term spectra shared by the noise, hum and bandwidth meters.

Streaming meters receive blocks of arbitrary length; these helpers cut the stream into frames
on a fixed grid of absolute sample positions, so every result is the same whatever the
block size (a frame never depends on where a block boundary fell).

- `StreamFramer(frame_length, hop)`: 1-D stream -> consecutive (n, frame_length) frames.
- `hann(n)`: periodic Hann window (the right one for spectral averaging).
- `WelchAccumulator(frame_length, hop)`: long-term averaged power spectrum (Welch) of a
  stream, scaled so that a sine of amplitude A sums to A**2 / 2 over its main lobe and white
  noise of variance s**2 sums to s**2 over all bins (a "power per bin" in full-scale units).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["StreamFramer", "WelchAccumulator", "hann", "power_spectrum_scale"]


def hann(n: int, *, dtype=np.float64) -> np.ndarray:
    """Periodic Hann window of `n` samples."""
    if n < 1:
        raise ValueError("window length must be >= 1")
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(dtype)


def power_spectrum_scale(window: np.ndarray) -> float:
    """Factor turning |rfft(frame * window)|**2 into one-sided power per bin (see module doc)."""
    return 2.0 / (len(window) * float(np.sum(np.asarray(window, np.float64) ** 2)))


class StreamFramer:
    """Cut a 1-D stream into frames of `frame_length` samples every `hop` samples.

    Frame i covers absolute samples [i*hop - pad_start, i*hop - pad_start + frame_length),
    where `pad_start` zeros are (virtually) prepended to the stream. `hop` may be larger
    than `frame_length` (frames then skip samples). Only the unconsumed tail is kept between
    calls, so memory is bounded by frame_length + the incoming block.
    """

    def __init__(self, frame_length: int, hop: int, *, dtype=np.float32, pad_start: int = 0):
        if frame_length < 1 or hop < 1:
            raise ValueError("frame_length and hop must be >= 1")
        self.frame_length = int(frame_length)
        self.hop = int(hop)
        self.dtype = np.dtype(dtype)
        self._buf = np.zeros(int(pad_start), self.dtype)  # starts at the next frame's start
        self._parts: list[np.ndarray] = []  # received after _buf, not yet joined
        self._held = len(self._buf)
        self._skip = 0  # incoming samples to drop before the next frame starts (hop > frame)
        self.frames_emitted = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        """Append samples; return the newly completed frames, shape (n, frame_length).

        The returned array may be a read-only view valid until the next call. Small blocks
        are only collected (no copying) until a frame is complete.
        """
        x = np.asarray(x, dtype=self.dtype).reshape(-1)
        if self._skip:
            drop = min(self._skip, len(x))
            x = x[drop:]
            self._skip -= drop
        L, hop = self.frame_length, self.hop
        if self._held + len(x) < L:
            if len(x):
                self._parts.append(x.copy())
                self._held += len(x)
            return np.zeros((0, L), self.dtype)
        if len(self._buf) or self._parts:
            buf = np.concatenate([self._buf, *self._parts, x])
        else:
            buf = x
        self._parts = []
        n = (len(buf) - L) // hop + 1
        if hop == L:
            frames = buf[: n * L].reshape(n, L)
        else:
            buf = np.ascontiguousarray(buf)
            frames = as_strided(buf, shape=(n, L), strides=(hop * buf.itemsize, buf.itemsize),
                                writeable=False)
        nxt = n * hop
        if nxt <= len(buf):
            self._buf = buf[nxt:].copy()
        else:
            self._buf = np.zeros(0, self.dtype)
            self._skip = nxt - len(buf)
        self._held = len(self._buf)
        self.frames_emitted += n
        return frames

    @property
    def pending(self) -> np.ndarray:
        """Samples received after the start of the next (incomplete) frame."""
        if self._parts:
            self._buf = np.concatenate([self._buf, *self._parts])
            self._parts = []
        return self._buf


class WelchAccumulator:
    """Long-term average power spectrum of a 1-D stream (Hann window, fixed frame grid).

    `push(x)` consumes samples; `mean()` returns the average one-sided power per bin
    (length frame_length // 2 + 1) over all complete frames, or None before the first frame.
    Memory: one spectrum, whatever the stream length.
    """

    def __init__(self, frame_length: int, hop: int | None = None):
        self.frame_length = int(frame_length)
        self.hop = int(hop if hop is not None else frame_length // 2)
        self._framer = StreamFramer(self.frame_length, self.hop, dtype=np.float64)
        self._window = hann(self.frame_length)
        self._scale = power_spectrum_scale(self._window)
        self.power_sum = np.zeros(self.frame_length // 2 + 1)
        self.n_frames = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        """Consume samples; return the scaled power spectra of the frames completed now."""
        frames = self._framer.push(x)
        if not len(frames):
            return np.zeros((0, len(self.power_sum)))
        spec = np.fft.rfft(frames * self._window, axis=1)
        power = (spec.real**2 + spec.imag**2) * self._scale
        self.power_sum += power.sum(axis=0)
        self.n_frames += len(frames)
        return power

    def mean(self) -> np.ndarray | None:
        return self.power_sum / self.n_frames if self.n_frames else None
