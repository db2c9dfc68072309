"""Speech quality (DNSMOS P.835: signal, background, overall MOS 1-5) on speech windows.

DNSMOS (Reddy et al., ICASSP 2022) is a neural estimate of the ITU-T P.835 listening-test
scores of noisy or processed speech. The network (Microsoft's ONNX model from the speechmos
wheel) is models/dnsmos.py: functions here take it as `model`, any object whose
`run(window)` gives the raw SIG, BAK, OVRL values of one (1, 144160) window of 16 kHz audio
(9.01 s). Those are mapped to the MOS scale by the cubic calibration polynomials published
with DNSMOS (`dnsmos_local.py`, non-personalised model) — the same mapping speechmos uses.

Cost is about 0.2 s of CPU per window, so a file is scored on a bounded number of windows:
`SpeechWindowReservoir` picks, while the audio streams past, contiguous 9.01 s windows
that are mostly speech (Silero probability), keeps at most `max_windows` of them spread
evenly over the file (every 2^k-th qualifying window), stored as 16-bit PCM (about
0.29 MB per window). Files whose speech never fills a window are scored on their speech
stretch (first to last speech frame, at most 9.01 s) repeated to 9.01 s, as the DNSMOS
reference script does for short clips, if it holds at least `MIN_SPEECH_S` of speech and
is mostly speech.
"""
from __future__ import annotations

import numpy as np

from .vad import VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE_HZ

__all__ = [
    "DNSMOS_WINDOW_SAMPLES",
    "SpeechWindowReservoir",
    "dnsmos_scores",
    "quality_score",
]

DNSMOS_WINDOW_SAMPLES = int(9.01 * VAD_SAMPLE_RATE_HZ)  # 144160
MIN_SPEECH_S = 1.0
# Calibration of the raw network outputs to the P.835 MOS scale (DNSMOS, non-personalised).
_POLY_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_POLY_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_POLY_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


def dnsmos_scores(windows: np.ndarray, *, model) -> np.ndarray:
    """Calibrated (SIG, BAK, OVRL) MOS for each 9.01 s window of 16 kHz mono audio.

    windows: (n, 144160) float array in [-1, 1] (values are clipped to that range).
    model: the DNSMOS network (models.dnsmos.load_dnsmos()).
    Returns (n, 3) float64: columns dnsmos_sig, dnsmos_bak, dnsmos_ovrl, each on 1..5.
    """
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != DNSMOS_WINDOW_SAMPLES:
        raise ValueError(f"windows must have shape (n, {DNSMOS_WINDOW_SAMPLES})")
    out = np.empty((windows.shape[0], 3), dtype=np.float64)
    for i, w in enumerate(windows):  # batching does not help on one thread
        x = np.clip(np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)[None, :]
        sig, bak, ovr = model.run(x)
        out[i] = (_POLY_SIG(sig), _POLY_BAK(bak), _POLY_OVR(ovr))
    return np.clip(out, 1.0, 5.0)


def quality_score(windows: list[np.ndarray] | np.ndarray, *, model=None, reason: str | None = None) -> dict:
    """The `quality_score` group: mean DNSMOS over `windows` (scored by `model`, needed when
    there are windows), or None values with a reason."""
    windows = list(windows)
    if not windows:
        return {
            "dnsmos_ovrl": None,
            "dnsmos_sig": None,
            "dnsmos_bak": None,
            "windows": 0,
            "reason": reason or "no speech to score",
        }
    scores = dnsmos_scores(np.stack(windows), model=model).mean(axis=0)
    return {
        "dnsmos_ovrl": round(float(scores[2]), 3),
        "dnsmos_sig": round(float(scores[0]), 3),
        "dnsmos_bak": round(float(scores[1]), 3),
        "windows": len(windows),
    }


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


class SpeechWindowReservoir:
    """Bounded, evenly spread set of 9.01 s, mostly-speech windows of a 16 kHz stream.

    Feed consecutive 16 kHz frames (n, 512) with their speech probabilities via `add`.
    A window is a run of ceil(9.01 s / 32 ms) = 282 frames, starting on a frame boundary,
    in which at least `min_speech_fraction` of the frames have probability >= `threshold`.
    Qualifying windows are taken greedily without overlap; the k-th one is kept while
    k is a multiple of the current stride, and the stride doubles whenever more than
    `max_windows` would be kept. Memory, all int16: a buffer of 2 x 282 frames, at most
    `max_windows` windows and one window for the short-speech fallback (0.29 MB each).
    """

    WINDOW_FRAMES = -(-DNSMOS_WINDOW_SAMPLES // VAD_FRAME_SAMPLES)  # 282

    def __init__(
        self,
        *,
        max_windows: int = 10,
        min_speech_fraction: float = 0.5,
        threshold: float = 0.5,
    ) -> None:
        if max_windows < 1:
            raise ValueError("max_windows must be >= 1")
        self.max_windows = int(max_windows)
        self.min_speech_fraction = float(min_speech_fraction)
        self.threshold = float(threshold)
        wf = self.WINDOW_FRAMES
        # The last frames seen (int16), in a buffer of 2 windows that is compacted when full.
        self._ring = np.zeros((2 * wf, VAD_FRAME_SAMPLES), dtype=np.int16)
        self._ring_speech = np.zeros(2 * wf, dtype=bool)
        self._ring_len = 0
        self._frames_seen = 0
        self._next_allowed = wf  # first frame index (exclusive end) a window may end at
        self._accepted = 0
        self._stride = 1
        self._kept: list[tuple[int, np.ndarray]] = []  # (acceptance index, int16 samples)
        # Fallback for speech too short to fill a window: the first stretch from the first
        # speech frame, up to one window long.
        self._short: list[np.ndarray] = []
        self._short_frames = 0
        self._short_speech = np.zeros(0, dtype=bool)
        self._short_started = False
        self._wf = wf

    @property
    def windows_accepted(self) -> int:
        return self._accepted

    def add(self, frames16k: np.ndarray, probs: np.ndarray) -> None:
        frames = np.asarray(frames16k, dtype=np.float32).reshape(-1, VAD_FRAME_SAMPLES)
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        n = frames.shape[0]
        if n == 0:
            return
        wf = self._wf
        for a in range(0, n, wf):  # pieces of at most one window fit the ring
            self._add(frames[a : a + wf], probs[a : a + wf])

    def _add(self, frames: np.ndarray, probs: np.ndarray) -> None:
        n = frames.shape[0]
        wf = self._wf
        speech = probs >= self.threshold
        pcm = _to_pcm16(frames)
        self._collect_short(pcm, speech)
        if self._ring_len + n > self._ring.shape[0]:  # keep the last wf - 1 frames
            keep = min(self._ring_len, wf - 1)
            self._ring[:keep] = self._ring[self._ring_len - keep : self._ring_len]
            self._ring_speech[:keep] = self._ring_speech[self._ring_len - keep : self._ring_len]
            self._ring_len = keep
        r0 = self._ring_len
        self._ring[r0 : r0 + n] = pcm
        self._ring_speech[r0 : r0 + n] = speech
        self._ring_len = r0 + n
        ring = self._ring[: self._ring_len]
        offset = self._frames_seen - r0  # absolute index of ring[0]
        # Trailing-window speech counts ending at each new frame.
        csum = np.concatenate(([0], np.cumsum(self._ring_speech[: self._ring_len], dtype=np.int64)))
        need = int(np.ceil(self.min_speech_fraction * wf))
        end_local = np.arange(r0 + 1, r0 + n + 1)  # exclusive ends
        valid = end_local >= wf
        counts = np.zeros(n, dtype=np.int64)
        counts[valid] = csum[end_local[valid]] - csum[end_local[valid] - wf]
        for j in np.flatnonzero(valid & (counts >= need)):
            end_abs = offset + int(end_local[j])
            if end_abs < self._next_allowed:
                continue
            e = int(end_local[j])
            self._accept(ring[e - wf : e])
            self._next_allowed = end_abs + wf
        self._frames_seen += n

    def _accept(self, window_frames: np.ndarray) -> None:
        k = self._accepted
        self._accepted += 1
        if k % self._stride:
            return
        self._kept.append((k, window_frames.reshape(-1)[:DNSMOS_WINDOW_SAMPLES].copy()))
        while len(self._kept) > self.max_windows:
            self._stride *= 2
            self._kept = [(i, w) for i, w in self._kept if i % self._stride == 0]

    def _collect_short(self, pcm: np.ndarray, speech: np.ndarray) -> None:
        if self._accepted or self._short_frames >= self._wf:
            return
        if not self._short_started:
            first = np.flatnonzero(speech)
            if first.size == 0:
                return
            pcm, speech = pcm[first[0] :], speech[first[0] :]
            self._short_started = True
        take = min(self._wf - self._short_frames, pcm.shape[0])
        self._short.append(pcm[:take].copy())
        self._short_speech = np.concatenate((self._short_speech, speech[:take]))
        self._short_frames += take

    def windows(self) -> list[np.ndarray]:
        """The kept windows as float32 arrays of 144160 samples (16 kHz), in file order."""
        if self._kept:
            return [w.astype(np.float32) / 32767.0 for _, w in self._kept]
        if not self._short:
            return []
        speech = self._short_speech
        last = np.flatnonzero(speech)
        if last.size == 0:
            return []
        if speech.sum() * VAD_FRAME_SAMPLES < MIN_SPEECH_S * VAD_SAMPLE_RATE_HZ:
            return []
        if speech[: last[-1] + 1].mean() < self.min_speech_fraction:
            return []
        stretch = np.concatenate(self._short)[: (last[-1] + 1)].reshape(-1)
        reps = -(-DNSMOS_WINDOW_SAMPLES // stretch.size)
        tiled = np.tile(stretch, reps)[:DNSMOS_WINDOW_SAMPLES]
        return [tiled.astype(np.float32) / 32767.0]
