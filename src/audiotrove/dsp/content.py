"""Content sections: speech / music / silence / other, streamed over blocks.

Every 32 ms frame of the file gets exactly one class, so the four percentages add up to
100. How each class is decided:

speech
    Silero VAD (dsp/vad.py, the network given as `vad_model`) on a 16 kHz mono mix (channels averaged, streaming soxr
    resampler). Frame probabilities pass a hysteresis switch (on at `speech_on`, off below
    `speech_off`); pauses shorter than `speech_pause_s` are bridged and runs shorter than
    `speech_min_s` dropped. Speech wins over every other class: speech over music is speech.
silence
    Frame level = RMS over the frame at the original rate, power-averaged over channels,
    in dBFS (a full-scale square wave is 0 dBFS, a full-scale sine -3 dBFS). A frame is
    quiet when its level is below the *silence threshold*:
    - absolute: `silence_threshold_dbfs` (-60 dBFS by default), always applied;
    - relative: when `silence_relative_db` is not None and the file has a real floor under
      louder content (95th minus 10th percentile of frame levels >= 20 dB), frames within
      `silence_relative_db` of the floor (10th percentile) are quiet too, the threshold
      being capped at -40 dBFS: the hiss between the words of an archival tape is its
      silence, but loud steady noise is never silence. Frames holding spectral peaks
      (persistence >= 0.3 over 0.5 s: a soft tonal passage) are not quiet by this rule.
    Quiet runs last at least `silence_min_s` (or make up the whole file) to count.
    The effective threshold is reported as `silence.threshold_dbfs`.
music
    Tonal and rhythmic evidence on frames that are neither speech nor silence, from a
    1024-point STFT (hop 16 ms) of the 16 kHz mix:
    - peak persistence: share of the 94 Hz - 5 kHz energy held in spectral peaks that were
      already peaks 256 ms earlier (held notes; noise peaks do not persist), averaged over 2 s;
    - pitch-class concentration: 1 - normalised entropy of a 12-bin chroma of the spectral
      peaks (interpolated peak frequencies) summed over 2 s (music stays in a key);
    - pulse: the largest normalised autocorrelation of the onset-strength envelope (spectral
      flux in 20 log-spaced bands) at lags 0.25-1.0 s, over 4 s windows.
    music score = persistence + 1.5 * (0.95 - entropy) + 0.5 * max(pulse - 0.2, 0), the
    windows centred on the frame; a frame is music when the score >= `music_threshold`
    (0.35). Weights and threshold were chosen on the clips of bench/bench_content_accuracy.py
    (see bench/RESULTS_content.md); there is no held-out set.
    Peaks that stay put for 8 s (hum, whistles) are left out of both features.
    Gaps shorter than `music_gap_s` between music runs are bridged (unless they are speech
    or silence), then music runs shorter than `music_min_s` are dropped.
other
    The rest: noise, ambience, effects, animal sounds...

Finally runs shorter than a class minimum (speech `speech_min_s`, music `music_min_s`,
other `other_min_s`) are merged into their longer neighbour; silence runs are kept.

Memory: per 32 ms frame the meter keeps 5 bytes (speech probability, level, three music
features, quantised), about 0.56 MB per hour of audio, plus fixed-size history buffers
and at most ~2 s (plus one block) of 16 kHz frames waiting to be analysed in one batch
(and, with `quality=True`, at most `quality_max_windows` 9.01 s windows of 16-bit speech
audio for DNSMOS, dsp/quality.py, the network given as `quality_model`). Results do not
depend on the block size.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .quality import SpeechWindowReservoir, quality_score
from .sections import (
    absorb_short_runs,
    centered_mean,
    fill_short_gaps,
    hysteresis,
    mask_sections,
    remove_short_runs,
)
from .vad import VAD_FRAME_S, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE_HZ, SileroVad

__all__ = ["CLASSES", "FRAME_S", "ContentMeter"]

FRAME_S = VAD_FRAME_S  # 0.032 s: the label resolution
CLASSES = ("speech", "music", "silence", "other")
SILENCE, SPEECH, MUSIC, OTHER = 0, 1, 2, 3
_CLASS_ID = {"silence": SILENCE, "speech": SPEECH, "music": MUSIC, "other": OTHER}

# Relative silence rule (see module docstring).
FLOOR_PERCENTILE = 10.0
ACTIVE_PERCENTILE = 95.0
RELATIVE_MIN_RANGE_DB = 20.0
RELATIVE_CEILING_DBFS = -40.0

# Music features (16 kHz analysis).
_N_FFT = 1024
_HOP = 256  # 16 ms; two feature frames per 32 ms label frame
_BIN_LO = 6  # 94 Hz
_BIN_HI = 320  # 5 kHz
_CHROMA_BIN_LO = 12  # 187 Hz: below, bins are too coarse for pitch classes
_PEAK_RATIO = 4.0  # peak power over the mean of its +-8-bin surroundings (minus +-2 bins)
_PERSIST_LAG = 16  # feature frames: 256 ms
_CHROMA_FRAMES = 125  # 2 s
_PULSE_FRAMES = 250  # 4 s
_PULSE_LAGS = (16, 63)  # 0.256 s .. 1.0 s
_N_ONSET_BANDS = 20
_PULSE_EVERY = 4  # label frames (128 ms) between pulse evaluations
_SMOOTH_FRAMES = round(2.0 / FRAME_S)  # 2 s in label frames
_CHROMA_POWER = 0.5  # chroma weight = peak power ** this
_CHROMA_RANGE_DB = 30.0
_W_KEY = 1.5  # weight of the pitch-class concentration in the music score
PHRASE_PAUSE_S = 3.0  # a quiet stretch shorter than this between speech is a pause in it...
PAUSE_DROP_DB = 10.0  # ... when it stays this far under the speech's median level
PAUSE_EDGE_S = 0.25  # (but for its first and last PAUSE_EDGE_S, next to the speech)
_W_PULSE = 0.5  # weight of the pulse clarity
_TONAL_LOCAL_FRAMES = round(0.5 / FRAME_S)  # relative silence: local tonality window
_STAT_HALF = 250  # STFT frames (4 s) each side: the stationarity window is 8 s
_STAT_SHARE = 0.95
_STAT_MIN_SPAN = 375  # STFT frames (6 s)
_BATCH_FRAMES = 64  # label frames (2 s) analysed per batch


def _ms_to_q(mean_square: np.ndarray) -> np.ndarray:
    """Mean square -> level in dBFS as uint8, 0.5 dB steps (0 = 0 dBFS, 255 = -127.5 dBFS
    or lower; louder than 0 dBFS is stored as 0 dBFS)."""
    level_db = 10.0 * np.log10(np.maximum(mean_square, 1e-30))
    return np.clip(np.round(-2.0 * level_db), 0, 255).astype(np.uint8)


def _unit_to_q(x: np.ndarray) -> np.ndarray:
    """0..1 -> uint8 0..255 (NaN -> 0)."""
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 255.0), 0, 255)
    q[np.isnan(q)] = 0
    return q.astype(np.uint8)


class _ByteTrack:
    """A growable uint8 track (one byte per label frame), compact at any length."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def append(self, values: np.ndarray) -> None:
        self._buf += np.ascontiguousarray(values, dtype=np.uint8).tobytes()

    def array(self, n: int, *, fill: int = 0) -> np.ndarray:
        """The first `n` values (padded with `fill`)."""
        arr = np.frombuffer(bytes(self._buf[:n]), dtype=np.uint8)
        if arr.size < n:
            arr = np.concatenate((arr, np.full(n - arr.size, fill, dtype=np.uint8)))
        return arr


class _FrameLevels:
    """Mean-square level of consecutive 32 ms frames at the source rate, all channels.

    Frame k spans samples [floor(k * sr * 32 / 1000), floor((k + 1) * sr * 32 / 1000)).
    """

    def __init__(self, sample_rate: int) -> None:
        self.sr = int(sample_rate)
        self.n_seen = 0
        self.k = 0  # next frame to complete
        self.carry = 0.0  # sum of per-sample power of the current partial frame
        self.out = _ByteTrack()

    def _bound(self, k: np.ndarray | int):
        return (np.asarray(k, dtype=np.int64) * self.sr * 32) // 1000

    def update(self, x: np.ndarray) -> None:
        n, ch = x.shape
        if n == 0:
            return
        o = self.n_seen
        self.n_seen += n
        # Per-sample power of every channel, summed per frame in float64 (one reduceat over
        # the interleaved samples: frame boundaries are multiplied by the channel count).
        sq = np.square(np.ascontiguousarray(x)).reshape(-1)
        k_last = int(((o + n) * 1000) // (self.sr * 32))  # frames fully ended by o + n
        if k_last <= self.k:
            self.carry += float(np.sum(sq, dtype=np.float64)) / ch
            return
        # Frames are contiguous: the first one to complete started at or before `o` (its
        # earlier part is in `carry`), so the cuts are the ends of the completed frames.
        ks = np.arange(self.k, k_last + 1)
        bounds = self._bound(ks)
        ends = bounds[1:] - o  # in (0, n]
        lens = bounds[1:] - bounds[:-1]
        cuts = np.concatenate(([0], ends[:-1])) * ch
        tail = ends[-1] < n
        if tail:
            cuts = np.append(cuts, ends[-1] * ch)
        sums = np.add.reduceat(sq, cuts, dtype=np.float64) / ch
        sums[0] += self.carry
        if tail:
            self.carry, sums = float(sums[-1]), sums[:-1]
        else:
            self.carry = 0.0
        self.out.append(_ms_to_q(sums / np.maximum(lens, 1)))
        self.k = k_last

    def finish(self, n_frames: int) -> np.ndarray:
        """Levels (dBFS, 0.5 dB steps) of exactly `n_frames` frames (the last one partial)."""
        if self.k < n_frames:
            start = int(self._bound(self.k))
            length = max(self.n_seen - start, 1)
            self.out.append(_ms_to_q(np.array([self.carry / length])))
            self.k += 1
        return -self.out.array(n_frames, fill=255).astype(np.float64) / 2.0


class _Rows:
    """A FIFO of equal-width rows: appended at the end, dropped from the front.

    Appending writes into spare capacity (amortised O(rows appended)); when it runs out the
    live rows move to a fresh array sized for twice what is needed, so the capacity follows
    the live size up and down.
    """

    def __init__(self, width: int, dtype, capacity: int = 1024) -> None:
        self._data = np.zeros((capacity, width), dtype=dtype)
        self._lo = 0
        self._hi = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    def view(self) -> np.ndarray:
        return self._data[self._lo : self._hi]

    def last(self) -> np.ndarray:
        return self._data[self._hi - 1]

    def append(self, rows: np.ndarray) -> None:
        m = rows.shape[0]
        if self._hi + m > self._data.shape[0]:
            live = self._hi - self._lo
            data = np.empty((max(1024, 2 * (live + m)), self._data.shape[1]), self._data.dtype)
            data[:live] = self.view()
            self._data, self._lo, self._hi = data, 0, live
        self._data[self._hi : self._hi + m] = rows
        self._hi += m

    def drop(self, k: int) -> None:
        self._lo += k


class _MusicFeatures:
    """Streaming tonal/rhythmic features on 16 kHz mono, stored per 32 ms label frame.

    Three tracks (uint8, 0..255 for 0..1): peak persistence, chroma entropy over the 2 s
    ending at the frame, pulse clarity over the 4 s ending at the frame (0 until 4 s).

    Stationary peaks -- a bin that is a spectral peak in >= 95 % of the frames of the 8 s
    around a frame (mains hum and its harmonics, a fridge, the whistle of a tape machine)
    -- are no evidence of music: they are left out of the persistence (numerator and
    denominator) and of the chroma. The 8 s window is centred on the frame but shifted to
    stay inside the file near its start and end (the whole file when it is shorter, and
    nothing is stationary in less than 6 s). That needs 8 s of look-ahead: the tonal tracks
    lag the input by 2 * `_STAT_HALF` STFT frames and `finish()` completes them. Buffers
    hold at most ~12 s of 323-bin spectra (about 2.5 MB; at most as much again in spare
    capacity).

    Speed: scipy.fft (several times faster than numpy.fft on float32), peak tests in
    float32 from running sums of 6 bins, FIFO buffers instead of re-concatenation, and
    the chroma entropy only for the frames that are stored (one per label frame). No BLAS
    calls (a multi-threaded BLAS would burn CPU on these small products).
    """

    def __init__(self) -> None:
        self.window = np.hanning(_N_FFT + 1)[:-1].astype(np.float32)
        self.hist = np.zeros(_N_FFT - _HOP, dtype=np.float32)
        self.nb = _BIN_HI + 3
        # STFT frames [buf_start, buf_start + len) are held; frames >= next_t are pending.
        self.buf_start = 0
        self.next_t = 0
        self.near_buf = _Rows(self.nb, bool)
        self.cs_buf = _Rows(self.nb, np.int32)  # one row more than near_buf
        self.cs_buf.append(np.zeros((1, self.nb), dtype=np.int32))
        self.P_buf = _Rows(self.nb, np.float32)
        self.peak_buf = _Rows(self.nb, bool)
        self.chroma_hist = np.zeros((_CHROMA_FRAMES - 1, 12), dtype=np.float64)
        self.onset_hist = np.zeros(_PULSE_FRAMES - 1, dtype=np.float64)
        self.onsets_seen = 0
        self.last_pulse = 0.0
        self.prev_bands: np.ndarray | None = None
        self.band_edges = np.unique(
            np.round(np.geomspace(_BIN_LO, _BIN_HI, _N_ONSET_BANDS + 1)).astype(int)
        )
        lag = np.arange(_PULSE_FRAMES)
        self.acf_norm = _PULSE_FRAMES / (_PULSE_FRAMES - lag)
        self.tracks = {"persist": _ByteTrack(), "ent": _ByteTrack(), "pulse": _ByteTrack()}

    # -- streaming ----------------------------------------------------------------------
    def update(self, frames16k: np.ndarray) -> None:
        """Add (k, 512) frames of 16 kHz audio."""
        k = frames16k.shape[0]
        if k == 0:
            return
        x = np.concatenate((self.hist, frames16k.reshape(-1)))
        self.hist = x[-(_N_FFT - _HOP):].copy()
        stft_frames = np.lib.stride_tricks.sliding_window_view(x, _N_FFT)[::_HOP]
        assert 2 * k == stft_frames.shape[0]
        spec = scipy.fft.rfft(stft_frames * self.window, axis=1)[:, : self.nb]
        P32 = spec.real**2 + spec.imag**2  # float32, (2k, nb)
        P = P32.astype(np.float64)
        self.tracks["pulse"].append(_unit_to_q(self._pulse(P)))
        peaks = self._peaks(P32)
        near = self._dilate(peaks, 1)
        # Running per-bin peak counts (cs[i] = peaks in the frames before buffer row i).
        inc = np.cumsum(near, axis=0, dtype=np.int32)
        inc += self.cs_buf.last()
        self.near_buf.append(near)
        self.cs_buf.append(inc)
        self.P_buf.append(P32)
        self.peak_buf.append(peaks)
        end = self.buf_start + len(self.near_buf)
        self._process(end - 2 * _STAT_HALF, end)

    def finish(self, n_frames: int) -> dict[str, np.ndarray]:
        """Process the look-ahead tail; return the three tracks, `n_frames` long each."""
        end = self.buf_start + len(self.near_buf)
        self._process(end, end)
        return {name: track.array(n_frames) for name, track in self.tracks.items()}

    # -- internals ----------------------------------------------------------------------
    def _process(self, upto: int, end: int) -> None:
        """Compute tonal features for STFT frames [next_t, upto) (frames < end are known)."""
        upto -= (upto - self.next_t) % 2  # whole label frames only
        t0 = self.next_t
        n = upto - t0
        if n <= 0:
            return
        b0 = self.buf_start
        # Stationarity: share of the frames of an 8 s window where the bin is a peak. The
        # window is centred on the frame, shifted to stay inside the file at its edges
        # (hence the 8 s look-ahead), and is the whole file when that is shorter.
        cs = self.cs_buf.view()
        near_all = self.near_buf.view()
        t = np.arange(t0, upto)
        width = 2 * _STAT_HALF + 1
        lo = np.maximum(t - _STAT_HALF, 0)
        hi = lo + width
        over = hi > end
        hi[over] = end
        lo[over] = max(0, end - width)
        lo -= b0
        hi -= b0
        # At least 6 s of evidence: nothing in a short clip counts as stationary. Counts
        # are integers: count >= x exactly when count >= ceil(x).
        span = np.maximum(hi - lo, _STAT_MIN_SPAN).astype(np.float64)
        need = np.ceil(_STAT_SHARE * span).astype(np.int32)
        stationary = (cs[hi] - cs[lo]) >= need[:, None]

        i0 = t0 - b0
        P = self.P_buf.view()[i0 : i0 + n].astype(np.float64)
        peaks = self.peak_buf.view()[i0 : i0 + n]
        # Peaks LAG frames earlier (frames before the buffer start are before the file
        # start: no peaks). The frames are consecutive, so this is one slice.
        lagged = np.zeros_like(peaks)
        s0 = t0 - _PERSIST_LAG - b0
        first = max(0, -s0)
        if first < n:
            lagged[first:] = near_all[s0 + first : s0 + n]
        moving = peaks & ~stationary
        held = self._dilate(moving & lagged, 2)
        keep = ~self._dilate(peaks & stationary, 2)
        band = slice(_BIN_LO, _BIN_HI)
        Pb = P[:, band]
        num = np.where(held[:, band], Pb, 0.0).sum(axis=1)
        den = np.where(keep[:, band], Pb, 0.0).sum(axis=1)
        persist = np.where(den > 0, num / np.maximum(den, 1e-30), 0.0)
        self.tracks["persist"].append(_unit_to_q(persist.reshape(-1, 2).mean(axis=1)))
        self.tracks["ent"].append(_unit_to_q(self._chroma_entropy(P, moving)))

        # Drop what is no longer needed: keep _STAT_HALF frames of history.
        self.next_t = upto
        keep_from = max(b0, upto - max(_STAT_HALF, _PERSIST_LAG))
        cut = keep_from - b0
        self.buf_start = keep_from
        for buf in (self.near_buf, self.cs_buf, self.P_buf, self.peak_buf):
            buf.drop(cut)

    def _peaks(self, P: np.ndarray) -> np.ndarray:
        """Spectral peaks: local maxima over +-2 bins, `_PEAK_RATIO` x above their surroundings.

        The surroundings of bin j are the mean power of bins j-8..j-3 and j+3..j+8 (the
        +-8 bins minus the peak's own +-2-bin main lobe; bins past either end of the
        spectrum count as 0), summed without cancellation from sums of 6 consecutive bins.
        Works in the precision of `P` (float32 from the STFT: sums of 12 positive values
        are exact to ~1e-6, which only matters for a bin within 1e-6 of the threshold).
        Bins outside [_BIN_LO, _BIN_HI) are never peaks.
        """
        nb = self.nb
        n = P.shape[0]
        lo, hi = _BIN_LO, _BIN_HI
        w = hi - lo
        core = P[:, lo:hi]
        # pair[:, i] = max(P[:, lo - 2 + i], P[:, lo - 1 + i]): for bin j = lo + i the two
        # bins below are pair[:, i], the two above pair[:, i + 3] (all inside the spectrum).
        pair = np.maximum(P[:, lo - 2 : hi + 1], P[:, lo - 1 : hi + 2])
        local_max = core >= np.maximum(pair[:, :w], pair[:, 3 : 3 + w])
        # Bin j is column j + 9 of `pad`; w6[:, i] sums pad columns i..i+5.
        pad = np.zeros((n, nb + 18), dtype=P.dtype)
        pad[:, 9 : 9 + nb] = P
        w2 = pad[:, :-1] + pad[:, 1:]
        w4 = w2[:, :-2] + w2[:, 2:]
        w6 = w4[:, :-2] + w2[:, 4:]
        side = w6[:, lo + 1 : hi + 1] + w6[:, lo + 12 : hi + 12]  # bins j-8..j-3, j+3..j+8
        # P > ratio * (side / 12 + 1e-20), the tiny term keeping silence peak-free.
        strong = core * (12.0 / _PEAK_RATIO) > side + 12e-20
        peaks = np.zeros((n, nb), dtype=bool)
        np.logical_and(local_max, strong, out=peaks[:, lo:hi])
        return peaks

    @staticmethod
    def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
        out = mask.copy()
        for d in range(1, r + 1):
            out[:, d:] |= mask[:, :-d]
            out[:, :-d] |= mask[:, d:]
        return out

    def _chroma_entropy(self, P: np.ndarray, peaks: np.ndarray) -> np.ndarray:
        """Normalised entropy (0..1) of the peak chroma summed over the 2 s ending at each
        label frame (at the second of its two STFT frames: odd rows of `P`)."""
        n = P.shape[0]
        # Only peaks within _CHROMA_RANGE_DB of the frame's strongest one: the hiss between
        # the partials of a note must not flatten its chroma.
        peak_p = np.where(peaks, P, 0.0)
        strong = peak_p >= peak_p.max(axis=1, keepdims=True) * 10 ** (-_CHROMA_RANGE_DB / 10)
        fi, bi = np.nonzero((peaks & strong)[:, _CHROMA_BIN_LO:])
        bi = bi + _CHROMA_BIN_LO
        chroma = np.zeros((n, 12))
        if fi.size:
            # Parabolic interpolation of the peak frequency on log power.
            L = np.log(P[fi[:, None], bi[:, None] + np.array([-1, 0, 1])] + 1e-30)
            den = L[:, 0] - 2.0 * L[:, 1] + L[:, 2]
            safe = np.where(den < 0, den, -1.0)
            delta = np.where(den < 0, 0.5 * (L[:, 0] - L[:, 2]) / safe, 0.0)
            freq = (bi + np.clip(delta, -0.5, 0.5)) * VAD_SAMPLE_RATE_HZ / _N_FFT
            pc = np.mod(np.round(12.0 * np.log2(freq / 440.0)), 12).astype(np.int64)
            weights = np.sqrt(P[fi, bi]) if _CHROMA_POWER == 0.5 else P[fi, bi] ** _CHROMA_POWER
            chroma = np.bincount(fi * 12 + pc, weights=weights, minlength=n * 12).reshape(n, 12)
        allc = np.concatenate((self.chroma_hist, chroma))
        self.chroma_hist = allc[-(_CHROMA_FRAMES - 1):].copy()
        # Window sums from a running sum (exactly 0 over a window of zeros: adding 0.0
        # leaves a float unchanged), for the odd rows only.
        csum = np.zeros((allc.shape[0] + 1, 12))
        np.cumsum(allc, axis=0, out=csum[1:])
        win = csum[_CHROMA_FRAMES + 1 :: 2] - csum[1 : n + 1 : 2]
        tot = win.sum(axis=1)
        p = win / np.maximum(tot, 1e-30)[:, None]
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        h = -plogp.sum(axis=1) / np.log(12.0)
        return np.where(tot > 1e-12, h, 1.0)

    def _pulse(self, P: np.ndarray) -> np.ndarray:
        """Pulse clarity per label frame: max normalised onset autocorrelation, 0.25-1 s lags."""
        n = P.shape[0]
        e = self.band_edges
        bands = np.log10(np.add.reduceat(P[:, : e[-1] + 1], e[:-1] + 1, axis=1) + 1e-10)
        prev = bands[:1] if self.prev_bands is None else self.prev_bands[None, :]
        self.prev_bands = bands[-1].copy()
        flux = np.maximum(np.diff(np.concatenate((prev, bands)), axis=0), 0.0).mean(axis=1)
        allo = np.concatenate((self.onset_hist, flux))
        self.onset_hist = allo[-(_PULSE_FRAMES - 1):].copy()
        seen_before = self.onsets_seen
        self.onsets_seen += n
        # One value per label frame (the window ending at its second STFT frame; n is even),
        # computed every _PULSE_EVERY label frames and held in between (a 4 s window
        # hardly moves in 128 ms). A window counts once _PULSE_FRAMES onsets were seen.
        ends = np.arange(1, n, 2)
        label_idx = (seen_before + ends) // 2
        compute = (label_idx % _PULSE_EVERY == 0) & (seen_before + ends + 1 >= _PULSE_FRAMES)
        values = self._acf_peak(allo, ends[compute]) if compute.any() else np.zeros(0)
        # Hold: each frame takes the latest value computed at or before it (index 0 of
        # `held` is the value carried over from the previous call).
        held = np.concatenate(([self.last_pulse], values))
        out = held[np.cumsum(compute)]
        if values.size:
            self.last_pulse = float(values[-1])
        return np.clip(out, 0.0, 1.0)

    def _acf_peak(self, allo: np.ndarray, ends: np.ndarray) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(allo, _PULSE_FRAMES)[ends]
        win = win - win.mean(axis=1, keepdims=True)
        spec = scipy.fft.rfft(win, 2 * _PULSE_FRAMES, axis=1)
        acf = scipy.fft.irfft(spec.real**2 + spec.imag**2, 2 * _PULSE_FRAMES, axis=1)[:, :_PULSE_FRAMES]
        acf = acf * self.acf_norm / np.maximum(acf[:, :1], 1e-30)
        lo, hi = _PULSE_LAGS
        return np.where(win.std(axis=1) > 1e-9, acf[:, lo:hi].max(axis=1), 0.0)


class ContentMeter:
    """Streaming content classifier; see the module docstring for the definitions.

    sample_rate (Hz), channels: of the blocks given to `update` ((frames, channels) float).
    vad_model: the Silero VAD network (models.silero.load_silero(); see dsp/vad.py).
    quality_model: the DNSMOS network (models.dnsmos.load_dnsmos()), needed with `quality`.
    silence_threshold_dbfs: absolute silence level (dBFS, RMS per 32 ms frame).
    silence_min_s: shortest silence section (seconds).
    silence_relative_db: width (dB) of the relative silence band above the file's floor;
        None turns the relative rule off.
    speech_on / speech_off: hysteresis thresholds on the Silero probability.
    speech_min_s / speech_pause_s: shortest speech run kept / longest pause bridged (s).
    music_threshold / music_min_s: music score threshold / shortest music section (s).
    music_gap_s: non-music stretches (neither speech nor silence) shorter than this between
        two music runs are music (rests, soft passages).
    other_min_s: shortest "other" section (s); shorter runs join a neighbour.
    max_sections: sections listed per class (counts and percentages stay exact).
    quality: also estimate speech quality (DNSMOS) into `quality_score`.
    quality_max_windows: at most this many 9.01 s windows are scored (~0.2 s CPU each).
    vad_gate_dbfs: frames below this level skip the VAD model (None: never skip).
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        vad_model,
        quality_model=None,
        silence_threshold_dbfs: float = -60.0,
        silence_min_s: float = 2.0,
        silence_relative_db: float | None = 6.0,
        speech_on: float = 0.5,
        speech_off: float = 0.35,
        speech_min_s: float = 0.25,
        speech_pause_s: float = 0.5,
        music_threshold: float = 0.35,
        music_min_s: float = 1.0,
        music_gap_s: float = 2.0,
        other_min_s: float = 0.5,
        max_sections: int = 1000,
        quality: bool = False,
        quality_max_windows: int = 10,
        vad_gate_dbfs: float | None = -70.0,
    ) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        if quality and quality_model is None:
            raise ValueError("quality=True needs the DNSMOS network (quality_model)")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.silence_threshold_dbfs = float(silence_threshold_dbfs)
        self.silence_min_s = float(silence_min_s)
        self.silence_relative_db = None if silence_relative_db is None else float(silence_relative_db)
        self.speech_on = float(speech_on)
        self.speech_off = float(speech_off)
        self.speech_min_s = float(speech_min_s)
        self.speech_pause_s = float(speech_pause_s)
        self.music_threshold = float(music_threshold)
        self.music_min_s = float(music_min_s)
        self.music_gap_s = float(music_gap_s)
        self.other_min_s = float(other_min_s)
        self.max_sections = int(max_sections)
        self.quality = bool(quality)
        self.quality_model = quality_model

        self._n_in = 0
        self._levels = _FrameLevels(self.sample_rate)
        self._resampler = None
        if self.sample_rate != VAD_SAMPLE_RATE_HZ:
            import soxr

            self._resampler = soxr.ResampleStream(
                self.sample_rate, VAD_SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ"
            )
        self._pending16 = np.zeros(0, dtype=np.float32)
        self._n16 = 0  # 16 kHz samples framed so far
        self._batch: list[np.ndarray] = []  # 16 kHz frames waiting for analysis
        self._batch_frames = 0
        self._vad = SileroVad(vad_model, gate_dbfs=vad_gate_dbfs)
        self._music = _MusicFeatures()
        self._reservoir = SpeechWindowReservoir(max_windows=quality_max_windows) if quality else None
        self._probs = _ByteTrack()
        self._result: dict | None = None

    # -- streaming --------------------------------------------------------------------
    def update(self, block: np.ndarray) -> None:
        if self._result is not None:
            raise RuntimeError("ContentMeter.update() called after result()")
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[0] == 0:
            return
        if not np.isfinite(x).all():  # NaN / inf samples count as 0
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        self._n_in += x.shape[0]
        self._levels.update(x)
        if x.shape[1] > 1:
            mono = x @ np.full(x.shape[1], 1.0 / x.shape[1], dtype=np.float32)
        else:
            mono = x[:, 0]
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono))
        self._push16(mono)

    def _push16(self, y: np.ndarray, limit: int | None = None) -> None:
        buf = np.concatenate((self._pending16, y.astype(np.float32, copy=False)))
        if limit is not None:
            buf = buf[: max(0, limit - self._n16)]
        k = buf.size // VAD_FRAME_SAMPLES
        if k:
            frames = buf[: k * VAD_FRAME_SAMPLES].reshape(k, VAD_FRAME_SAMPLES)
            self._frames(frames)
            self._n16 += k * VAD_FRAME_SAMPLES
        self._pending16 = buf[k * VAD_FRAME_SAMPLES :].copy()

    def _frames(self, frames: np.ndarray) -> None:
        # Frames are analysed in batches of at least _BATCH_FRAMES (2 s): fewer, larger
        # calls into the VAD and the music features. Results do not depend on it.
        self._batch.append(frames)
        self._batch_frames += frames.shape[0]
        if self._batch_frames >= _BATCH_FRAMES:
            self._flush_frames()

    def _flush_frames(self) -> None:
        if not self._batch:
            return
        frames = np.concatenate(self._batch) if len(self._batch) > 1 else self._batch[0]
        self._batch = []
        self._batch_frames = 0
        probs = self._vad.probabilities(frames.reshape(-1))
        self._music.update(frames)
        self._probs.append(_unit_to_q(probs))
        if self._reservoir is not None:
            self._reservoir.add(frames, probs)

    def _finish_stream(self) -> int:
        """Flush the resampler and frame the tail; return the number of label frames."""
        n_frames = -(-self._n_in * 1000 // (32 * self.sample_rate)) if self._n_in else 0
        target16 = n_frames * VAD_FRAME_SAMPLES
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._push16(tail, limit=target16)
        missing = target16 - self._n16 - self._pending16.size
        if missing > 0:
            self._push16(np.zeros(missing, dtype=np.float32), limit=target16)
        self._flush_frames()
        return n_frames

    # -- result -----------------------------------------------------------------------
    def result(self) -> dict:
        if self._result is None:
            self._result = self._compute()
        return self._result

    def _compute(self) -> dict:
        n = self._finish_stream()
        duration_s = self._n_in / self.sample_rate
        if n == 0:
            out = {
                name: {
                    "percentage": None,
                    "num_sections": 0,
                    "sections": [],
                    "reason": "no audio samples",
                }
                for name in CLASSES
            }
            if self.quality:
                out["quality_score"] = quality_score([], reason="no audio samples")
            return out
        get = self._music.finish(n)
        prob = self._probs.array(n).astype(np.float64) / 255.0
        level_db = self._levels.finish(n)

        labels, threshold_db = self._label(prob, level_db, get)
        frame_len = np.full(n, FRAME_S)
        frame_len[-1] = duration_s - (n - 1) * FRAME_S
        frame_len = np.maximum(frame_len, 0.0)
        totals = np.bincount(labels, weights=frame_len, minlength=4)
        pct = self._percentages(totals, duration_s)
        out = {}
        for name in CLASSES:
            cid = _CLASS_ID[name]
            count, sections = mask_sections(
                labels == cid, frame_s=FRAME_S, duration_s=duration_s, max_sections=self.max_sections
            )
            out[name] = {"percentage": pct[cid], "num_sections": count, "sections": sections}
        out["silence"]["threshold_dbfs"] = round(float(threshold_db), 2)
        if self.quality:
            windows = self._reservoir.windows()
            if windows:
                out["quality_score"] = quality_score(windows, model=self.quality_model)
            else:
                out["quality_score"] = quality_score(
                    [], reason="no speech stretch long enough (>= 1 s) to score"
                )
        return out

    @staticmethod
    def _percentages(totals: np.ndarray, duration_s: float) -> list[float]:
        if duration_s <= 0:
            return [0.0] * 4
        raw = totals / totals.sum() * 100.0
        pct = np.round(raw, 2)
        # Make the rounded values add up to exactly 100.00.
        diff = round(100.0 - float(pct.sum()), 2)
        if diff:
            pct[int(np.argmax(raw))] += diff
        return [round(float(v), 2) for v in pct]

    def _frames_for(self, seconds: float) -> int:
        return max(1, round(seconds / FRAME_S))

    def _label(self, prob: np.ndarray, level_db: np.ndarray, feats: dict) -> tuple[np.ndarray, float]:
        n = prob.size
        # Speech.
        speech = hysteresis(prob, on=self.speech_on, off=self.speech_off)
        speech = fill_short_gaps(speech, max_gap_frames=self._frames_for(self.speech_pause_s))
        speech = remove_short_runs(speech, min_frames=self._frames_for(self.speech_min_s))
        # Pauses between phrases: a stretch shorter than PHRASE_PAUSE_S between two speech
        # runs and PAUSE_DROP_DB or more under the speech's median level all along is part of
        # the speech (room tone, hum, breath between phrases), not music or other.
        if speech.any():
            loud = level_db > float(np.median(level_db[speech])) - PAUSE_DROP_DB
            # the last syllable's decay, where the VAD has already let go, does not count
            edge = self._frames_for(PAUSE_EDGE_S)
            # ("full", then the centre n: "same" returns the kernel's length when the file is shorter)
            near = np.convolve(speech.astype(np.int32), np.ones(2 * edge + 1, np.int32), "full")[edge:edge + n] > 0
            speech = fill_short_gaps(speech, max_gap_frames=self._frames_for(PHRASE_PAUSE_S),
                                     barrier=loud & ~near)

        # Music evidence (windows centred on each frame).
        persist = centered_mean(feats["persist"] / 255.0, width=_SMOOTH_FRAMES)
        idx = np.arange(n)
        ent = (feats["ent"] / 255.0)[np.minimum(idx + _SMOOTH_FRAMES // 2, n - 1)]
        pulse_shift = round(_PULSE_FRAMES * _HOP / VAD_SAMPLE_RATE_HZ / FRAME_S / 2)
        pulse = (feats["pulse"] / 255.0)[np.minimum(idx + pulse_shift, n - 1)]
        score = persist + _W_KEY * (0.95 - ent) + _W_PULSE * np.maximum(pulse - 0.2, 0.0)
        musical = score >= self.music_threshold

        # Silence.
        threshold_db = self.silence_threshold_dbfs
        quiet_abs = level_db < self.silence_threshold_dbfs
        quiet = quiet_abs
        if self.silence_relative_db is not None and n > 1:
            floor = float(np.percentile(level_db, FLOOR_PERCENTILE))
            active = float(np.percentile(level_db, ACTIVE_PERCENTILE))
            if active - floor >= RELATIVE_MIN_RANGE_DB:
                rel = min(floor + self.silence_relative_db, RELATIVE_CEILING_DBFS)
                if rel > threshold_db:
                    threshold_db = rel
                    # Soft tonal passages are not floor: held spectral peaks over 0.5 s.
                    held = centered_mean(feats["persist"] / 255.0, width=_TONAL_LOCAL_FRAMES)
                    tonal = held >= 0.3
                    quiet = quiet_abs | ((level_db < rel) & ~tonal)
        min_sil = self._frames_for(self.silence_min_s)
        silence = remove_short_runs(quiet, min_frames=min_sil)
        if quiet.all():
            silence = quiet.copy()
        silence &= ~speech

        # Music on what is left.
        rest = ~speech & ~silence
        music_min = self._frames_for(self.music_min_s)
        music = musical & rest
        music = fill_short_gaps(
            music, max_gap_frames=self._frames_for(self.music_gap_s), barrier=~rest
        )
        music = remove_short_runs(music, min_frames=music_min)

        labels = np.full(n, OTHER, dtype=np.int8)
        labels[music] = MUSIC
        labels[silence] = SILENCE
        labels[speech] = SPEECH
        min_frames = np.zeros(4, dtype=np.int64)
        min_frames[SPEECH] = self._frames_for(self.speech_min_s)
        min_frames[MUSIC] = music_min
        min_frames[OTHER] = self._frames_for(self.other_min_s)
        protected = np.zeros(4, dtype=bool)
        protected[SILENCE] = True
        labels = absorb_short_runs(labels, min_frames=min_frames, protected=protected)
        return labels, threshold_db
