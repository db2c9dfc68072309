"""Noise reduction by short-time spectral gains, streamed with overlap-add.

Three estimators share one streaming STFT engine (`StftDenoiser`):

- `MmseLsaGain` (the default): the log-spectral amplitude estimator of Ephraim & Malah
  (1985) with the decision-directed a priori SNR, a noise PSD tracked by speech presence
  probability (Gerkmann & Hendriks 2012, an unbiased successor of minimum statistics), a gain
  floor set by AMOUNT, gains weighted by the speech presence probability (OM-LSA, Cohen 2003)
  and, where a time-frequency neighbourhood is noise-like, averaged over it (this and the
  previous frame, +/- 1 bin): the isolated gain peaks heard as musical noise are flattened
  while speech keeps its harmonic detail. Optional speech isolation: given speech sections,
  the noise estimate is learnt between them and everything outside them is brought down
  to a floor.
- `SpectralSubtractionGain` (classic): a noise profile (mean magnitude spectrum of a region)
  subtracted from each frame's magnitude, phase kept, with a spectral floor.
- `RnnoiseStream`: the RNNoise recurrent network (pyrnnoise's bundled library, given by the
  caller: models/rnnoise.py) at 48 kHz, resampled with soxr, its delay compensated.

Every stream has `process(block) -> out` and `flush() -> out`: the concatenated output is
sample-aligned with the input and exactly as long; blocks are float32 (frames, channels).
Frames are processed on a fixed grid in batches of about a second, so results do not depend
on how the input is cut into blocks. Channels are processed with one common gain (computed
from their mean power), which keeps the stereo image.
"""
from __future__ import annotations

import ctypes
import math

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.special import exp1

from .blocks import AlignedOutput

FRAME_S = 0.032  # analysis frame (s)
OVERLAP = 4      # frames per frame length (hop = frame / 4)
MAX_FLOOR_DB = -40.0  # AMOUNT 100 -> gains never below -40 dB


def amount_to_floor_db(amount: float) -> float:
    """Noise-reduction AMOUNT (0-100) -> the gain floor in dB (0 -> 0 dB, 100 -> -40 dB)."""
    if not 0 <= amount <= 100:
        raise ValueError(f"amount must be within 0-100, got {amount}")
    return MAX_FLOOR_DB * amount / 100.0


def stft_size(sample_rate: int, frame_s: float = FRAME_S, overlap: int = OVERLAP) -> int:
    """An FFT-friendly frame length (samples) near `frame_s` seconds, a multiple of `overlap`."""
    n = max(64, int(round(frame_s * sample_rate)))
    while True:
        n = sfft.next_fast_len(n, real=True)
        if n % overlap == 0:
            return n
        n += 1


# --- the streaming STFT engine -----------------------------------------------------------

class StftDenoiser:
    """Streaming STFT -> gain model -> inverse STFT with overlap-add, latency removed.

    gain_model: an object with `setup(sample_rate=, n_fft=, hop=, first_frame_time_s=)` and
    `gains(power, start_frame) -> gains`, power and gains of shape (frames, bins); power is
    the per-bin power averaged over channels. It is called with consecutive batches.
    """

    def __init__(self, gain_model, *, sample_rate: int, channels: int, frame_s: float = FRAME_S,
                 overlap: int = OVERLAP, batch_s: float = 1.0):
        self.sample_rate = sample_rate
        self.channels = channels
        self.n_fft = stft_size(sample_rate, frame_s, overlap)
        self.hop = self.n_fft // overlap
        self.overlap = overlap
        self.batch = max(8, int(round(batch_s * sample_rate / self.hop)))
        # sqrt-Hann analysis and synthesis windows: their product sums to overlap / 2.
        self.window = np.sqrt(signal.windows.hann(self.n_fft, sym=False))
        self._synth = self.window * (2.0 / overlap)
        self.model = gain_model
        pad = self.n_fft - self.hop  # samples before the signal so the first sample sees every frame
        self.model.setup(sample_rate=sample_rate, n_fft=self.n_fft, hop=self.hop,
                         first_frame_time_s=(self.n_fft / 2 - pad) / sample_rate)
        # The signal is continued beyond both ends of the file (odd extension, see
        # `odd_extension`), not padded with zeros: a file that stops at a non-zero value would
        # otherwise hold a step in its first or last frames, whose high-frequency part passes
        # where the noise is quiet while the rest is attenuated, leaving a click at the edge.
        # The start is held back until `pad` + 1 samples are in (or until flush).
        self._pad = pad
        self._started = False
        self._x = np.zeros((0, channels), np.float64)
        self._recent = np.zeros((0, channels), np.float64)  # the last n_fft + 1 input frames
        self._tail = np.zeros((self.n_fft - self.hop, channels), np.float64)
        self._aligned = AlignedOutput(latency=pad, channels=channels)
        self._frame = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float64)
        self._aligned.took(len(block))
        self._x = np.concatenate([self._x, block])
        self._recent = np.concatenate([self._recent, block[-(self.n_fft + 1):]])[-(self.n_fft + 1):]
        if not self._started:
            if len(self._x) <= self._pad:
                return np.zeros((0, self.channels), np.float32)
            self._start()
        available = (len(self._x) - self.n_fft) // self.hop + 1 if len(self._x) >= self.n_fft else 0
        n = (available // self.batch) * self.batch
        outs = [self._run(self.batch) for _ in range(n // self.batch)]
        return self._aligned.trim(outs)

    def _start(self) -> None:
        head = odd_extension(self._x[::-1], self._pad)[::-1]
        self._x = np.concatenate([head, self._x])
        self._started = True

    def flush(self) -> np.ndarray:
        if not self._started:
            self._start()
        self._x = np.concatenate([self._x, odd_extension(self._recent, self.n_fft)])
        available = (len(self._x) - self.n_fft) // self.hop + 1
        outs = []
        while available > 0:
            take = min(self.batch, available)
            outs.append(self._run(take))
            available -= take
        outs.append(self._tail.copy())
        out = self._aligned.trim(outs)
        return out

    def _run(self, n_frames: int) -> np.ndarray:
        n, hop = self.n_fft, self.hop
        span = (n_frames - 1) * hop + n
        x = self._x[:span]
        frames = np.lib.stride_tricks.sliding_window_view(x, n, axis=0)[::hop][:n_frames]  # (F, ch, n)
        spec = sfft.rfft(frames * self.window, axis=-1)  # (F, ch, bins)
        power = (spec.real ** 2 + spec.imag ** 2).mean(axis=1)
        gains = self.model.gains(power, self._frame)
        self._frame += n_frames
        out = sfft.irfft(spec * gains[:, None, :], n, axis=-1) * self._synth  # (F, ch, n)
        y = np.zeros((n_frames * hop + n - hop, self.channels))
        for r in range(self.overlap):
            seg = out[:, :, r * hop:(r + 1) * hop].transpose(0, 2, 1).reshape(-1, self.channels)
            y[r * hop: r * hop + n_frames * hop] += seg
        y[: n - hop] += self._tail
        self._tail = y[n_frames * hop:].copy()
        self._x = self._x[n_frames * hop:]
        return y[: n_frames * hop]


def odd_extension(x: np.ndarray, n: int) -> np.ndarray:
    """`n` frames continuing the (frames, channels) signal `x` past its last frame by odd
    (point) symmetry about it: e[k] = 2 x[-1] - x[-1 - k]. Value and slope stay continuous, so
    the continuation adds no step; beyond len(x) - 1 frames the last value is held. Zeros
    when `x` is empty."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return np.zeros((n, x.shape[1] if x.ndim == 2 else 1))
    m = min(n, len(x) - 1)
    ext = 2.0 * x[-1] - x[len(x) - 1 - m: len(x) - 1][::-1]
    if m < n:
        hold = ext[-1:] if m else x[-1:]
        ext = np.concatenate([ext, np.repeat(hold, n - m, axis=0)])
    return ext


# --- gain models ---------------------------------------------------------------------------

_LSA_SQRTV_MAX, _LSA_STEPS = 10.0, 16384   # beyond v = 100 the factor is 1 (to 1e-45)
_LSA_V_MIN = 1e-5


def _lsa_table() -> np.ndarray:
    """exp(E1(v) / 2) on a uniform grid of sqrt(v) (cheap to index: no logarithm), for a fast
    MMSE-LSA gain: scipy's exp1 costs ~0.2 us per value, this lookup ~20x less."""
    s = np.linspace(0.0, _LSA_SQRTV_MAX, _LSA_STEPS + 1)
    values = np.exp(0.5 * exp1(np.maximum(s * s, _LSA_V_MIN)))
    return np.concatenate([values, [1.0]])  # one guard entry for the last interval


_LSA_VALUES = _lsa_table()
_LSA_SLOPES = np.diff(_LSA_VALUES)  # per interval: linear interpolation is value + fraction * slope
_LSA_SCALE = _LSA_STEPS / _LSA_SQRTV_MAX


def lsa_gain(xi: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """MMSE log-spectral amplitude gain from a priori SNR `xi` and a posteriori SNR `gamma`:
    xi / (1 + xi) * exp(E1(v) / 2), v = xi * gamma / (1 + xi), capped at 1."""
    xi = np.asarray(xi, np.float64)
    return _lsa_gain_into(xi, gamma, np.empty_like(xi), np.empty_like(xi))


def _lsa_gain_into(xi: np.ndarray, gamma: np.ndarray, out: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`lsa_gain(xi, gamma)` written into `out` (w: a scratch array of the same shape; no
    temporaries: the decision-directed loop calls it once per frame)."""
    np.add(xi, 1.0, out=w)
    np.divide(xi, w, out=w)
    np.multiply(w, gamma, out=out)
    np.maximum(out, _LSA_V_MIN, out=out)
    np.sqrt(out, out=out)
    out *= _LSA_SCALE
    np.minimum(out, _LSA_STEPS, out=out)
    i = out.astype(np.intp)
    out -= i
    out *= _LSA_SLOPES[i]
    out += _LSA_VALUES[i]
    out *= w
    # The estimator exceeds 1 where the observed power falls far below the expected one;
    # a restoration gain never amplifies.
    return np.minimum(out, 1.0, out=out)


def _per_hop(value_at_ref: float, ref_hop_s: float, hop_s: float) -> float:
    """Rescale a per-frame smoothing constant given for a reference hop to another hop."""
    return value_at_ref ** (hop_s / ref_hop_s)


def section_mask(times_s: np.ndarray, sections: list, *, pad_s: float = 0.0) -> np.ndarray:
    """True where a time (s) lies within any [start_s, end_s] section widened by pad_s."""
    mask = np.zeros(len(times_s), bool)
    for start, end in sections or ():
        mask |= (times_s >= float(start) - pad_s) & (times_s <= float(end) + pad_s)
    return mask


class MmseLsaGain:
    """Decision-directed MMSE-LSA with SPP noise tracking and OM-LSA floor (see module doc).

    amount: 0-100, sets the gain floor (`amount_to_floor_db`); above 60 the noise estimate is
    also scaled up (x3 at 100). In steady white noise the noise comes down by about 8, 13, 16,
    23 and 29 dB at amounts 20, 40, 60, 80 and 100.
    speech_sections: [[start_s, end_s], ...] to isolate speech: the noise is learnt outside
    them and the signal outside them is brought down to the floor of `isolate_amount`.
    noise_psd: an initial noise power spectrum (bins,) in this engine's scale, e.g. from a
    profile of the quiet stretches; by default it is estimated from the first second.
    """

    # Tuned with bench/bench_enhance.py (the published values are 15 dB, 0.8 and 0.98):
    XI_H1_DB = 12.0          # fixed a priori SNR of the speech-present hypothesis (SPP tracker)
    NOISE_SMOOTH = 0.9       # noise PSD recursion per 16 ms hop (Gerkmann & Hendriks: 0.8)
    SPP_SMOOTH = 0.9         # stagnation guard smoothing per 16 ms hop
    DD_ALPHA = 0.95          # decision-directed weight per 8 ms hop
    XI_MIN_DB = -25.0        # a priori SNR floor (lower when the gain floor is lower)
    Q_ABSENCE = 0.3          # a priori speech absence probability for the OM-LSA weighting
    NOISE_LIKE = 6.0         # neighbourhood gain below NOISE_LIKE x floor: smoothed

    def _smooth_noise_regions(self, g: np.ndarray) -> np.ndarray:
        """Average the gains over a time-frequency neighbourhood (this and the previous
        frame, +/- `freq_smoothing` bins) where that average is near the floor: isolated
        gain peaks in noise-only regions are what is heard as musical noise, while speech
        (a large neighbourhood average) keeps its own gains and harmonic detail."""
        prev = self._g_prev if self._g_prev is not None else g[:1]
        both = np.concatenate([prev, g])
        avg = _smooth_bins(0.5 * (both[1:] + both[:-1]), max(1, self.freq_smoothing))
        self._g_prev = g[-1:].copy()
        return np.where(avg < self.NOISE_LIKE * self.floor, avg, g)

    def __init__(self, *, amount: float = 60.0, speech_sections: list | None = None,
                 isolate_amount: float | None = None, noise_psd: np.ndarray | None = None,
                 freq_smoothing: int = 1):
        self.floor = 10 ** (amount_to_floor_db(amount) / 20.0)
        # Above the default amount the noise estimate is also scaled up (x3 = +4.8 dB at 100):
        # the decision-directed estimator alone keeps about -20 dB in noise-only regions.
        self.oversub_amount = 1.0 + max(0.0, amount - 60.0) / 20.0
        self.sections = speech_sections
        self.isolate_floor = (10 ** (amount_to_floor_db(isolate_amount) / 20.0)
                              if isolate_amount is not None else None)
        self.noise = None if noise_psd is None else np.asarray(noise_psd, np.float64).copy()
        self.freq_smoothing = freq_smoothing
        self.a2_prev = None
        self.p_bar = None
        self._g_prev = None

    def setup(self, *, sample_rate: int, n_fft: int, hop: int, first_frame_time_s: float) -> None:
        hop_s = hop / sample_rate
        self.hop_s = hop_s
        self.t0 = first_frame_time_s
        self.a_noise = _per_hop(self.NOISE_SMOOTH, 0.016, hop_s)
        self.a_spp = _per_hop(self.SPP_SMOOTH, 0.016, hop_s)
        self.a_dd = _per_hop(self.DD_ALPHA, 0.008, hop_s)
        # the a priori SNR floor bounds the LSA gain from below; below -25 dB it follows the floor
        self.xi_min = min(10 ** (self.XI_MIN_DB / 10), self.floor ** 2)
        # isolation envelope smoothing: ~40 ms raised-cosine ramps
        ramp = max(1, int(round(0.04 / hop_s)))
        kernel = np.hanning(2 * ramp + 1)
        self._ramp, self._kernel = ramp, kernel / kernel.sum()

    def _initial_noise(self, power: np.ndarray) -> np.ndarray:
        # 20th percentile of a 5-frame moving average, unbiased for noise-only frames
        # (a mean of 5 exponential variables: its 20th percentile is 0.62 of the mean).
        k = min(5, len(power))
        smooth = signal.lfilter(np.ones(k) / k, [1.0], power, axis=0)[k - 1:]
        return np.maximum(np.percentile(smooth, 20, axis=0) / 0.62, 1e-12)

    def gains(self, power: np.ndarray, start_frame: int) -> np.ndarray:
        n_frames, bins = power.shape
        isolating = self.sections is not None
        if isolating:
            times = self.t0 + (start_frame + np.arange(-self._ramp, n_frames + self._ramp)) * self.hop_s
            speech = section_mask(times, self.sections, pad_s=0.05)
            learn = ~speech[self._ramp: self._ramp + n_frames]
        if self.noise is None:
            if isolating and learn.sum() >= 4:
                self.noise = np.maximum(power[learn].mean(axis=0), 1e-12)
            else:
                self.noise = self._initial_noise(power)
        if self.a2_prev is None:
            self.a2_prev = np.minimum(power[0], self.noise)
            self.p_bar = np.zeros(bins)
        xi_h1 = 10 ** (self.XI_H1_DB / 10)
        spp_c1 = 1.0 + xi_h1
        a_n, a_p, a_dd, xi_min = self.a_noise, self.a_spp, self.a_dd, self.xi_min
        noise, a2_prev, p_bar = self.noise.copy(), self.a2_prev.copy(), self.p_bar.copy()
        track = np.empty_like(power)
        neg_scaled = power * -(xi_h1 / (1.0 + xi_h1))
        # The recursions run frame by frame (each frame needs the previous estimate); every
        # operation inside is vectorised over the frequency bins.
        # 1) noise PSD by speech presence probability (Gerkmann & Hendriks 2012)
        c_n, c_p = 1.0 - a_n, 1.0 - a_p
        t = np.empty(bins)
        u = np.empty(bins)
        stuck = np.empty(bins, bool)
        for i in range(n_frames):
            np.divide(neg_scaled[i], noise, out=t)
            np.exp(t, out=t)
            t *= spp_c1
            t += 1.0
            p1 = np.reciprocal(t, out=t)                  # P(speech | frame), prior 0.5
            p_bar *= a_p
            np.multiply(p1, c_p, out=u)
            p_bar += u
            np.greater(p_bar, 0.99, out=stuck)
            np.minimum(p1, 0.99, out=p1, where=stuck)     # stagnation guard
            if isolating and learn[i]:
                p1[:] = 0.0
            np.subtract(1.0, p1, out=p1)                  # now P(noise): noise learns from it
            p1 *= c_n
            np.subtract(power[i], noise, out=u)
            p1 *= u
            noise += p1
            np.maximum(noise, 1e-12, out=noise)
            track[i] = noise
        lam = track * self.oversub_amount
        gamma_out = power / lam
        ml = (1.0 - a_dd) * np.maximum(gamma_out - 1.0, 0.0)
        carry = a_dd / lam
        xi_out = np.empty_like(power)
        g_lsa = np.empty_like(power)
        # 2) decision-directed a priori SNR (Ephraim & Malah 1984) and the LSA gain
        w = np.empty(bins)
        for i in range(n_frames):
            xi = xi_out[i]
            np.multiply(a2_prev, carry[i], out=xi)
            xi += ml[i]
            np.maximum(xi, xi_min, out=xi)
            g = _lsa_gain_into(xi, gamma_out[i], g_lsa[i], w)
            np.multiply(g, g, out=a2_prev)
            a2_prev *= power[i]
        self.noise, self.a2_prev, self.p_bar = noise, a2_prev, p_bar
        self.noise_track = track  # the noise PSD tracked at each of these frames
        # OM-LSA: weight the LSA gain by the speech presence probability, down to the floor.
        if self.Q_ABSENCE > 0:
            v = xi_out * gamma_out / (1.0 + xi_out)
            q = self.Q_ABSENCE
            presence = 1.0 / (1.0 + q / (1.0 - q) * (1.0 + xi_out) * np.exp(-np.minimum(v, 500.0)))
            g_lsa = g_lsa ** presence * self.floor ** (1.0 - presence)
        g = self._smooth_noise_regions(np.maximum(g_lsa, self.floor))
        if isolating:
            env = np.convolve(speech.astype(float), self._kernel, mode="same")[self._ramp: self._ramp + n_frames]
            g = g * (self.isolate_floor + (1.0 - self.isolate_floor) * env)[:, None]
        return g


def _smooth_bins(x: np.ndarray, radius: int) -> np.ndarray:
    """Moving average over +/- radius frequency bins (edges use the available bins)."""
    k = 2 * radius + 1
    padded = np.pad(x, ((0, 0), (radius, radius)), mode="edge")
    c = np.cumsum(padded, axis=1)
    c = np.concatenate([np.zeros((x.shape[0], 1)), c], axis=1)
    return (c[:, k:] - c[:, :-k]) / k


class SpectralSubtractionGain:
    """Classic magnitude spectral subtraction: |X| = max(|Y| - N, floor * |Y|), phase kept.

    profile: the noise's mean magnitude spectrum (bins,) in this engine's scale, from
    `NoiseProfileMeter`; amount (0-100) sets the spectral floor.
    """

    def __init__(self, *, profile: np.ndarray, amount: float = 60.0):
        self.profile = np.asarray(profile, np.float64)
        self.floor = 10 ** (amount_to_floor_db(amount) / 20.0)

    def setup(self, **_) -> None:
        pass

    def gains(self, power: np.ndarray, start_frame: int) -> np.ndarray:
        mag = np.sqrt(power)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = 1.0 - self.profile / np.maximum(mag, 1e-20)
        return np.maximum(g, self.floor)


# --- noise profile ------------------------------------------------------------------------

class NoiseProfileMeter:
    """Streaming meter: the mean magnitude spectrum of the noise, in StftDenoiser's scale.

    Either from given regions (`sections=[[start_s, end_s], ...]`, e.g. `--noise-profile 0:0.5`
    or the analysis' quiet stretches) or, without sections, from the quietest `quantile` of
    frames (digital silence below -100 dBFS is ignored). Frames use the denoiser's window and
    size; a frame counts for a region when it lies wholly inside it.
    result() -> {"magnitude": (bins,) array or None, "seconds": seconds of audio used}.
    """

    DB_MIN, DB_MAX, DB_STEP = -100.0, 10.0, 0.5

    def __init__(self, *, sample_rate: int, channels: int, sections: list | None = None,
                 quantile: float = 0.1, frame_s: float = FRAME_S, overlap: int = OVERLAP):
        self.sample_rate = sample_rate
        self.n_fft = stft_size(sample_rate, frame_s, overlap)
        self.hop = self.n_fft // 2
        self.window = np.sqrt(signal.windows.hann(self.n_fft, sym=False))
        self.sections = sections
        self.quantile = quantile
        bins = self.n_fft // 2 + 1
        n_levels = int((self.DB_MAX - self.DB_MIN) / self.DB_STEP) + 1
        self._sum = np.zeros((1 if sections is not None else n_levels, bins))
        self._count = np.zeros(len(self._sum), np.int64)
        self._x = np.zeros((0, channels), np.float64)
        self._offset = 0  # sample index of self._x[0]

    def update(self, block: np.ndarray) -> None:
        self._x = np.concatenate([self._x, np.asarray(block, np.float64)])
        n = (len(self._x) - self.n_fft) // self.hop + 1 if len(self._x) >= self.n_fft else 0
        if n <= 0:
            return
        frames = np.lib.stride_tricks.sliding_window_view(self._x, self.n_fft, axis=0)[:: self.hop][:n]
        mag = np.sqrt((np.abs(sfft.rfft(frames * self.window, axis=-1)) ** 2).mean(axis=1))
        starts = self._offset + np.arange(n) * self.hop
        if self.sections is not None:
            t0, t1 = starts / self.sample_rate, (starts + self.n_fft) / self.sample_rate
            keep = np.zeros(n, bool)
            for s, e in self.sections:
                keep |= (t0 >= float(s)) & (t1 <= float(e))
            self._sum[0] += mag[keep].sum(axis=0)
            self._count[0] += int(keep.sum())
        else:
            energy = (frames ** 2).mean(axis=(1, 2))
            db = 10 * np.log10(np.maximum(energy, 1e-30))
            ok = db >= self.DB_MIN
            idx = np.clip(((db[ok] - self.DB_MIN) / self.DB_STEP).astype(int), 0, len(self._sum) - 1)
            np.add.at(self._sum, idx, mag[ok])
            np.add.at(self._count, idx, 1)
        self._x = self._x[n * self.hop:]
        self._offset += n * self.hop

    def result(self) -> dict:
        if self.sections is not None:
            used = int(self._count[0])
            total = self._sum[0]
        else:
            target = max(1, int(math.ceil(self.quantile * self._count.sum())))
            cum = np.cumsum(self._count)
            if cum[-1] == 0:
                return {"magnitude": None, "seconds": 0.0}
            last = int(np.searchsorted(cum, target))
            used = int(cum[last])
            total = self._sum[: last + 1].sum(axis=0)
        if used == 0:
            return {"magnitude": None, "seconds": 0.0}
        seconds = (used - 1) * self.hop / self.sample_rate + self.n_fft / self.sample_rate
        return {"magnitude": total / used, "seconds": seconds}


# --- RNNoise ----------------------------------------------------------------------------

RNNOISE_RATE_HZ = 48000
RNNOISE_FRAME = 480
RNNOISE_DELAY = 960  # measured: the network's output lags its input by 20 ms (2 frames)


class RnnoiseStream:
    """RNNoise (bundled weights, 48 kHz) on any rate: soxr in, the network, soxr out.

    lib: the RNNoise C library (models.rnnoise.load_rnnoise()).
    amount (0-100): how much of the denoised signal replaces the input (100 = all of it).
    The network's delay of 960 samples (20 ms at 48 kHz) is removed and soxr's
    streams are delay-compensated, so the output is sample-aligned and as long as the input.
    """

    def __init__(self, lib, *, sample_rate: int, channels: int, amount: float = 100.0):
        import soxr

        if not 0 <= amount <= 100:
            raise ValueError(f"amount must be within 0-100, got {amount}")
        self.lib = lib
        self.sample_rate = sample_rate
        self.channels = channels
        self.wet = amount / 100.0
        self.states = [self.lib.rnnoise_create(None) for _ in range(channels)]
        resample = sample_rate != RNNOISE_RATE_HZ
        self._up = soxr.ResampleStream(sample_rate, RNNOISE_RATE_HZ, channels, dtype="float32",
                                       quality="HQ") if resample else None
        self._down = soxr.ResampleStream(RNNOISE_RATE_HZ, sample_rate, channels, dtype="float32",
                                         quality="HQ") if resample else None
        self._in48 = np.zeros((0, channels), np.float32)
        self._to_skip = RNNOISE_DELAY  # samples at 48 kHz
        self._dry: list[np.ndarray] = []  # input not yet matched by output (for the mix)
        self._dry_n = 0
        self._seen = 0
        self._emitted = 0
        self._frame_in = np.zeros(RNNOISE_FRAME, np.float32)
        self._frame_out = np.zeros(RNNOISE_FRAME, np.float32)
        self.speech_probability: list[float] = []

    def __del__(self):
        for state in getattr(self, "states", []):
            self.lib.rnnoise_destroy(state)
        self.states = []

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, np.float32)
        self._seen += len(block)
        self._dry.append(block)
        self._dry_n += len(block)
        x48 = self._up.resample_chunk(block, last=False) if self._up is not None else block
        return self._emit(self._down_out(self._network(x48, last=False), last=False))

    def flush(self) -> np.ndarray:
        empty = np.zeros((0, self.channels), np.float32)
        x48 = self._up.resample_chunk(empty, last=True) if self._up is not None else empty
        y48 = self._network(x48, last=True)
        y = self._down_out(y48, last=True)
        out = self._emit(y)
        missing = self._seen - self._emitted
        if missing > 0:  # resampler rounding: pad with the last dry samples' zeros
            out = np.concatenate([out, self._emit(np.zeros((missing, self.channels), np.float32), pad=True)])
        return out

    def _network(self, x48: np.ndarray, *, last: bool) -> np.ndarray:
        buf = np.concatenate([self._in48, x48])
        if last:  # push the delay and a partial frame through
            need = RNNOISE_DELAY + (-len(buf)) % RNNOISE_FRAME
            buf = np.concatenate([buf, np.zeros((need, self.channels), np.float32)])
        n = len(buf) // RNNOISE_FRAME
        out = np.empty((n * RNNOISE_FRAME, self.channels), np.float32)
        fin, fout = self._frame_in, self._frame_out
        pin = fin.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        pout = fout.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for f in range(n):  # one C call per 10 ms frame and channel
            seg = slice(f * RNNOISE_FRAME, (f + 1) * RNNOISE_FRAME)
            probs = 0.0
            for c, state in enumerate(self.states):
                fin[:] = buf[seg, c] * 32768.0
                probs += self.lib.rnnoise_process_frame(state, pout, pin)
                out[seg, c] = fout / 32768.0
            self.speech_probability.append(probs / self.channels)
        self._in48 = buf[n * RNNOISE_FRAME:]
        if self._to_skip:
            cut = min(self._to_skip, len(out))
            out = out[cut:]
            self._to_skip -= cut
        return out

    def _down_out(self, y48: np.ndarray, *, last: bool) -> np.ndarray:
        if self._down is None:
            return y48
        return self._down.resample_chunk(np.ascontiguousarray(y48), last=last)

    def _emit(self, wet: np.ndarray, pad: bool = False) -> np.ndarray:
        wet = wet[: max(0, self._seen - self._emitted)]
        n = len(wet)
        if n == 0:
            return np.zeros((0, self.channels), np.float32)
        dry = np.concatenate(self._dry) if len(self._dry) > 1 else self._dry[0]
        out = self.wet * wet + (1.0 - self.wet) * dry[:n] if not pad else (1.0 - self.wet) * dry[:n]
        rest = dry[n:]
        self._dry, self._dry_n = ([rest] if len(rest) else []), len(rest)
        self._emitted += n
        return out.astype(np.float32)


# --- whole-array conveniences ----------------------------------------------------------------

def run_stream(stream, audio: np.ndarray, *, block_frames: int = 65536) -> np.ndarray:
    """Push a whole (frames, channels) or (frames,) array through a stream; same shape out."""
    audio = np.asarray(audio, np.float32)
    x = audio[:, None] if audio.ndim == 1 else audio
    parts = [stream.process(x[i:i + block_frames]) for i in range(0, len(x), block_frames)]
    parts.append(stream.flush())
    y = np.concatenate(parts)
    return y[:, 0] if audio.ndim == 1 else y


def denoise(audio: np.ndarray, *, sample_rate: int, amount: float = 60.0, method: str = "lsa",
            profile_sections: list | None = None, speech_sections: list | None = None,
            isolate_amount: float | None = None, rnnoise=None) -> np.ndarray:
    """Denoise a whole array (frames, channels) or (frames,); same shape and alignment out.

    method: "lsa" (default), "classic" (needs a profile: `profile_sections` [[start_s, end_s]]
    or None for the quietest 10 % of frames) or "rnnoise" (needs `rnnoise`, the library:
    models.rnnoise.load_rnnoise()).
    """
    x = np.asarray(audio, np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    if method == "rnnoise":
        if rnnoise is None:
            raise ValueError("method rnnoise needs the RNNoise library (rnnoise=)")
        return run_stream(RnnoiseStream(rnnoise, sample_rate=sample_rate, channels=channels, amount=amount), x)
    if method == "classic":
        meter = NoiseProfileMeter(sample_rate=sample_rate, channels=channels, sections=profile_sections)
        meter.update(x[:, None] if x.ndim == 1 else x)
        profile = meter.result()["magnitude"]
        if profile is None:
            raise ValueError("no frame lies inside the noise-profile region")
        model = SpectralSubtractionGain(profile=profile, amount=amount)
    elif method == "lsa":
        model = MmseLsaGain(amount=amount, speech_sections=speech_sections, isolate_amount=isolate_amount)
    else:
        raise ValueError(f"unknown denoise method {method!r}: use lsa, classic or rnnoise")
    return run_stream(StftDenoiser(model, sample_rate=sample_rate, channels=channels), x)
