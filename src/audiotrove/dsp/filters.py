"""Linear-phase filters for restoration: rumble high-pass and mains-hum notches.

The filters are FIR and linear-phase, so their latency is a constant (num_taps - 1) / 2
samples, which the streaming filter removes: its output is sample-aligned with its input
and exactly as long. Narrow notches need long filters (the notch of a few Hz needs about a
second of taps); the convolution is done by FFT on fixed internal chunks, so the cost per
sample stays small and the result does not depend on how the input is cut into blocks.

Which hum to notch comes from the analysis (`audio.noise.hum`, see dsp.hum).
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import signal

from .blocks import AlignedOutput

DEFAULT_HUM_HARMONICS = 8
HIGHPASS_ORDER = 4  # Butterworth-like magnitude slope: 24 dB/octave
MAX_TAPS = 2**18 + 1


def notch_width_hz(frequency_hz: float) -> float:
    """Default notch width (full width at half depth, Hz): 1 Hz, wider (0.4 %) for high
    harmonics, whose frequency moves more with tape or disc speed. Narrow matters: speech
    keeps much of its energy at 100-400 Hz, and 3 Hz wide notches on 8 harmonics of 50 Hz
    take away about 3 % of it (-15 dB of distortion); 1 Hz notches a third of that."""
    return max(1.0, 0.004 * frequency_hz)


def hum_frequencies(*, fundamental_hz: float, sample_rate: int,
                    harmonics: int = DEFAULT_HUM_HARMONICS) -> list[float]:
    """The fundamental and its harmonics (k * f0, k = 1..harmonics) below 0.45 * sample_rate (Hz)."""
    return [k * fundamental_hz for k in range(1, harmonics + 1) if k * fundamental_hz < 0.45 * sample_rate]


def design_fir(*, sample_rate: int, highpass_hz: float | None = None,
               notch_hz: list[float] | tuple[float, ...] = (),
               notch_widths_hz: list[float] | None = None,
               num_taps: int | None = None) -> np.ndarray:
    """Zero-phase-shaped, linear-phase FIR taps (odd length) by frequency sampling.

    highpass_hz: -3 dB corner of a Butterworth-shaped high-pass (24 dB/octave), None for none.
    notch_hz: centre frequencies (Hz) of notches; notch_widths_hz their full widths at half
    depth (Hz), by default `notch_width_hz(f)`.
    num_taps: filter length; by default long enough for the narrowest feature.
    Returns float64 taps whose group delay is (len - 1) / 2 samples.
    """
    if highpass_hz is None and not notch_hz:
        raise ValueError("nothing to design: give highpass_hz and/or notch_hz")
    nyquist = sample_rate / 2.0
    if highpass_hz is not None and not 0 < highpass_hz < 0.45 * sample_rate:
        raise ValueError(f"high-pass corner {highpass_hz} Hz is outside (0, {0.45 * sample_rate:.0f}) Hz")
    notch_hz = [float(f) for f in notch_hz if 0 < f < nyquist]
    widths = list(notch_widths_hz) if notch_widths_hz is not None else [notch_width_hz(f) for f in notch_hz]
    if num_taps is None:
        # Resolution needed: a Gaussian notch of width W rings for ~ +-1.3 / W seconds, which
        # must fit in the flat half of the window (4.5 / W seconds of taps); a high-pass at fc
        # with this slope ~ 3 / fc seconds.
        needs = [4.5 / w for w in widths] + ([3.0 / highpass_hz] if highpass_hz else [])
        num_taps = int(np.ceil(max(needs) * sample_rate))
    num_taps = min(int(num_taps) | 1, MAX_TAPS)  # odd: a whole-sample delay
    n_grid = sfft.next_fast_len(8 * num_taps, real=True)
    freqs = np.fft.rfftfreq(n_grid, 1.0 / sample_rate)
    response = np.ones_like(freqs)
    if highpass_hz is not None:
        with np.errstate(divide="ignore"):
            ratio = np.where(freqs > 0, highpass_hz / np.maximum(freqs, 1e-12), np.inf)
        response *= 1.0 / np.sqrt(1.0 + ratio ** (2 * HIGHPASS_ORDER))
    for f0, width in zip(notch_hz, widths):
        sigma = width / 2.3548  # FWHM -> Gaussian sigma
        response *= 1.0 - np.exp(-0.5 * ((freqs - f0) / sigma) ** 2)
    impulse = np.fft.irfft(response, n_grid)
    half = num_taps // 2
    taps = np.concatenate([impulse[-half:], impulse[: half + 1]])
    # A flat-topped window keeps the notches deep (> 60 dB at the centre); its tapered
    # quarters keep the ripple away from the notches small.
    taps *= signal.windows.tukey(num_taps, 0.5)
    return taps


def frequency_response_db(taps: np.ndarray, *, sample_rate: int, frequencies_hz: np.ndarray) -> np.ndarray:
    """Magnitude response (dB) of FIR `taps` at the given frequencies (Hz)."""
    _, h = signal.freqz(taps, worN=np.asarray(frequencies_hz, float), fs=sample_rate)
    return 20 * np.log10(np.maximum(np.abs(h), 1e-12))


class FirStream:
    """Streaming linear-phase FIR filter with its delay removed.

        f = FirStream(taps, channels=2)
        out = [f.process(block) for block in blocks] + [f.flush()]

    The concatenated output has exactly as many frames as the input, and output frame i is
    the filter centred on input frame i (the signal is taken as zero outside the file).
    """

    def __init__(self, taps: np.ndarray, *, channels: int):
        self.taps = np.asarray(taps, np.float64)
        if self.taps.ndim != 1 or len(self.taps) % 2 == 0:
            raise ValueError("taps must be a 1-D array of odd length")
        self.channels = channels
        self.delay = (len(self.taps) - 1) // 2
        # Convolve in fixed chunks (an absolute grid), so results do not depend on block sizes.
        self.chunk = max(2 * len(self.taps), 65536)
        self._history = np.zeros((len(self.taps) - 1, channels), np.float64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._aligned = AlignedOutput(latency=self.delay, channels=channels)
        fft_n = sfft.next_fast_len(self.chunk + len(self.taps) - 1, real=True)
        self._fft_n = fft_n
        self._taps_f = sfft.rfft(self.taps, fft_n)

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        self._aligned.took(len(block))
        self._pending.append(block.astype(np.float64, copy=False))
        self._pending_n += len(block)
        outs = []
        while self._pending_n >= self.chunk:
            joined = np.concatenate(self._pending)
            outs.append(self._convolve(joined[: self.chunk]))
            rest = joined[self.chunk:]
            self._pending, self._pending_n = ([rest] if len(rest) else []), len(rest)
        return self._aligned.trim(outs)

    def flush(self) -> np.ndarray:
        """Push the remaining input and the delay's worth of zeros; return the last output."""
        outs = []
        pad = np.zeros((self.delay, self.channels))
        joined = np.concatenate(self._pending + [pad]) if self._pending or self.delay else pad
        for start in range(0, len(joined), self.chunk):
            outs.append(self._convolve(joined[start:start + self.chunk]))
        self._pending, self._pending_n = [], 0
        return self._aligned.trim(outs)

    def _convolve(self, x: np.ndarray) -> np.ndarray:
        full = np.concatenate([self._history, x])
        self._history = full[len(full) - (len(self.taps) - 1):]
        spec = sfft.rfft(full, self._fft_n, axis=0) if len(full) <= self._fft_n else None
        if spec is None:  # only in flush with a short chunk larger than planned (not reached)
            raise AssertionError("chunk larger than the FFT plan")
        y = sfft.irfft(spec * self._taps_f[:, None], self._fft_n, axis=0)
        return y[len(self.taps) - 1: len(full)]


def apply_fir(audio: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Filter a whole (frames, channels) or (frames,) array with delay removed (same length)."""
    audio = np.asarray(audio)
    x = audio[:, None] if audio.ndim == 1 else audio
    f = FirStream(taps, channels=x.shape[1])
    y = np.concatenate([f.process(x), f.flush()])
    return y[:, 0] if audio.ndim == 1 else y
