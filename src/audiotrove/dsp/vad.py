"""Streaming speech probabilities from Silero VAD: framing, context, gating, state hand-over.

The network itself (its ONNX graphs, sessions, checksums) is models/silero.py; this module takes
any object with its `run(inputs, state)` / `initial_state()` (models.silero.SileroNet) and does
the signal side:
- frames of 512 samples at 16 kHz (32 ms). Each frame is fed with the last 64 samples of
  the previous frame in front of it ("context"; zeros before the first frame), so one model
  step sees 576 samples.
- frames whose RMS level is below `gate_dbfs` ("clearly silent") are not sent to the model:
  their probability is 0 and, after a gated run of `GATE_RESET_FRAMES` frames, the recurrent
  state is reset to zeros, as at the start of a file.
Everything is a function of the frame sequence alone, so results do not depend on how the
caller chunks the audio.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["VAD_FRAME_SAMPLES", "VAD_SAMPLE_RATE_HZ", "SileroVad"]

VAD_SAMPLE_RATE_HZ = 16000
VAD_FRAME_SAMPLES = 512  # 32 ms at 16 kHz
VAD_CONTEXT_SAMPLES = 64
VAD_FRAME_S = VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE_HZ
# A gated (silent) run this long resets the model state (0.512 s).
GATE_RESET_FRAMES = 16


class SileroVad:
    """Streaming Silero VAD on 16 kHz mono float32 audio.

    `probabilities(chunk)` accepts any number of samples and returns one speech probability
    (0..1) per 512-sample frame completed by this chunk; leftover samples wait for the next
    call. `flush()` zero-pads and scores a final partial frame.

    model: the network, an object with `run(inputs (n, 576), state, max_batch_frames=)` ->
        (probabilities (n,), state) and `initial_state()` (models.silero.load_silero()).
    gate_dbfs: frames with RMS below this level (dBFS, full-scale square = 0 dBFS) skip the
        model and get probability 0; None runs the model on every frame.
    max_batch_frames: at most this many frames per model call where the model takes several
        (bounds transient memory).
    """

    def __init__(self, model, *, gate_dbfs: float | None = -70.0, max_batch_frames: int = 512) -> None:
        self.model = model
        self.gate_power = None if gate_dbfs is None else 10.0 ** (gate_dbfs / 10.0)
        self.max_batch_frames = max(1, int(max_batch_frames))
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT_SAMPLES, dtype=np.float32)
        self._state = self.model.initial_state()
        self._gated_run = 0
        self.frames_done = 0

    # -- public streaming API -------------------------------------------------------------
    def probabilities(self, chunk16k: np.ndarray) -> np.ndarray:
        """Speech probability for each 512-sample frame completed by `chunk16k` (float32)."""
        chunk = np.asarray(chunk16k, dtype=np.float32).reshape(-1)
        if self._pending.size:
            chunk = np.concatenate((self._pending, chunk))
        n_frames = chunk.size // VAD_FRAME_SAMPLES
        used = n_frames * VAD_FRAME_SAMPLES
        self._pending = chunk[used:].copy()
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        return self._frames(chunk[:used].reshape(n_frames, VAD_FRAME_SAMPLES))

    def flush(self) -> np.ndarray:
        """Score the final partial frame (zero-padded); empty when nothing is pending."""
        if self._pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        frame = np.zeros((1, VAD_FRAME_SAMPLES), dtype=np.float32)
        frame[0, : self._pending.size] = self._pending
        self._pending = np.zeros(0, dtype=np.float32)
        return self._frames(frame)

    # -- internals ------------------------------------------------------------------------
    def _frames(self, frames: np.ndarray) -> np.ndarray:
        n = frames.shape[0]
        ctx = np.empty((n, VAD_CONTEXT_SAMPLES), dtype=np.float32)
        ctx[0] = self._context
        ctx[1:] = frames[:-1, -VAD_CONTEXT_SAMPLES:]
        self._context = frames[-1, -VAD_CONTEXT_SAMPLES:].copy()
        inputs = np.concatenate((ctx, frames), axis=1)  # (n, 576)
        probs = np.zeros(n, dtype=np.float32)
        if self.gate_power is None:
            self._run_span(inputs, probs, 0, n)
        else:
            power = np.mean(np.square(frames, dtype=np.float64), axis=1)
            active = power >= self.gate_power
            self._run_gated(inputs, probs, active)
        self.frames_done += n
        return probs

    def _run_gated(self, inputs: np.ndarray, probs: np.ndarray, active: np.ndarray) -> None:
        n = active.size
        # Runs of active / gated frames (a handful per chunk).
        change = np.flatnonzero(active[1:] != active[:-1]) + 1
        bounds = np.concatenate(([0], change, [n]))
        for s, e in itertools.pairwise(bounds):
            if active[s]:
                self._run_span(inputs, probs, int(s), int(e))
                self._gated_run = 0
            else:
                before = self._gated_run
                self._gated_run += int(e - s)
                if before < GATE_RESET_FRAMES <= self._gated_run:
                    self._reset_state()

    def _reset_state(self) -> None:
        self._state = self.model.initial_state()

    def _run_span(self, inputs: np.ndarray, probs: np.ndarray, s: int, e: int) -> None:
        probs[s:e], self._state = self.model.run(inputs[s:e], self._state, max_batch_frames=self.max_batch_frames)
