"""Silero VAD speech probabilities, streamed, with onnxruntime only (no torch).

The silero-vad wheel ships its ONNX models in `silero_vad/data/`. We locate that folder
through `importlib.util.find_spec` and never import the `silero_vad` package itself (its
`__init__` imports torch).

Model contract (read from the ONNX graphs, checked by tests/test_vad.py):
- frames of 512 samples at 16 kHz (32 ms). Each frame is fed with the last 64 samples of
  the previous frame in front of it ("context"; zeros before the first frame), so one model
  step sees 576 samples.
- `silero_vad.onnx` (streaming): inputs `input` (batch, 576) float32, `state` (2, batch, 128)
  float32, `sr` int64 scalar; outputs `output` (batch, 1) speech probability and `stateN`.
  One call per frame: the recurrent state must pass from frame to frame.
- `silero_vad_16k_sequence.onnx` (recent wheels): the same network unrolled over a sequence:
  inputs `input` (frames, 576), `h`, `c` (1, 1, 128); outputs `speech_probs` (frames,),
  `hn`, `cn`. Its probabilities are identical to the streaming model's, frame for frame,
  but a whole run of frames costs one call: about 2.3x less CPU per frame on one core
  (the per-call overhead of the streaming model dominates at 512 samples).

`SileroVad` prefers the sequence model and falls back to the streaming one when the wheel
does not ship it. Frames whose RMS level is below `gate_dbfs` ("clearly silent") are not
sent to the model: their probability is 0 and, after a gated run of `GATE_RESET_FRAMES`
frames, the recurrent state is reset to zeros, as at the start of a file. Everything is a
function of the frame sequence alone, so results do not depend on how the caller chunks
the audio.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import threading
from pathlib import Path

import numpy as np

__all__ = ["VAD_FRAME_SAMPLES", "VAD_SAMPLE_RATE_HZ", "SileroVad", "silero_model_dir"]

VAD_SAMPLE_RATE_HZ = 16000
VAD_FRAME_SAMPLES = 512  # 32 ms at 16 kHz
VAD_CONTEXT_SAMPLES = 64
VAD_FRAME_S = VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE_HZ
# A gated (silent) run this long resets the model state (0.512 s).
GATE_RESET_FRAMES = 16
STREAM_MODEL = "silero_vad.onnx"
SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"

_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def silero_model_dir() -> Path:
    """Folder holding Silero's ONNX files inside the installed silero-vad wheel."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the silero-vad package is not installed (pip install silero-vad --no-deps)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / STREAM_MODEL).is_file():
        raise RuntimeError(f"Silero VAD model not found in {folder}")
    return folder


def _session(path: Path):
    """One onnxruntime CPU session per model file and process, single-threaded."""
    key = os.fspath(path)
    with _sessions_lock:
        sess = _sessions.get(key)
        if sess is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # the sequence graph carries unused initialisers
            sess = ort.InferenceSession(key, sess_options=opts, providers=["CPUExecutionProvider"])
            _sessions[key] = sess
    return sess


class SileroVad:
    """Streaming Silero VAD on 16 kHz mono float32 audio.

    `probabilities(chunk)` accepts any number of samples and returns one speech probability
    (0..1) per 512-sample frame completed by this chunk; leftover samples wait for the next
    call. `flush()` zero-pads and scores a final partial frame.

    backend: "auto" (sequence model if the wheel has it), "sequence" or "stream".
    gate_dbfs: frames with RMS below this level (dBFS, full-scale square = 0 dBFS) skip the
        model and get probability 0; None runs the model on every frame.
    max_batch_frames: frames per sequence-model call (bounds transient memory).
    """

    def __init__(
        self,
        *,
        backend: str = "auto",
        gate_dbfs: float | None = -70.0,
        max_batch_frames: int = 512,
    ) -> None:
        folder = silero_model_dir()
        if backend == "auto":
            backend = "sequence" if (folder / SEQUENCE_MODEL).is_file() else "stream"
        if backend not in ("sequence", "stream"):
            raise ValueError(f"unknown VAD backend {backend!r}")
        self.backend = backend
        self._session = _session(folder / (SEQUENCE_MODEL if backend == "sequence" else STREAM_MODEL))
        self.gate_power = None if gate_dbfs is None else 10.0 ** (gate_dbfs / 10.0)
        self.max_batch_frames = max(1, int(max_batch_frames))
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT_SAMPLES, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
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
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._state[:] = 0.0

    def _run_span(self, inputs: np.ndarray, probs: np.ndarray, s: int, e: int) -> None:
        if self.backend == "sequence":
            for a in range(s, e, self.max_batch_frames):
                b = min(e, a + self.max_batch_frames)
                out, self._h, self._c = self._session.run(
                    ["speech_probs", "hn", "cn"],
                    {"input": inputs[a:b], "h": self._h, "c": self._c},
                )
                probs[a:b] = np.asarray(out).reshape(-1)
        else:
            sr = np.array(VAD_SAMPLE_RATE_HZ, dtype=np.int64)
            state = self._state
            for i in range(s, e):  # the streaming graph takes one frame per call
                out, state = self._session.run(
                    None, {"input": inputs[i : i + 1], "state": state, "sr": sr}
                )
                probs[i] = out[0, 0]
            self._state = state
