"""Silero VAD (a speech probability per 32 ms frame of 16 kHz audio) on onnxruntime, from the
silero-vad wheel (no torch).

    from audiotrove.models.silero import load_silero
    net = load_silero()                       # "auto": the fast graph, else sequence, else stream
    probs, state = net.run(inputs, net.initial_state())   # inputs (n, 576): frames with context
    # streaming, gating and framing: dsp/vad.py SileroVad(net)

The silero-vad wheel (6.2.3, installed with --no-deps) ships its ONNX models in
`silero_vad/data/`. We locate that folder through `importlib.util.find_spec` and never import the
`silero_vad` package itself (its `__init__` imports torch). Nothing is downloaded; each graph
file is checked against the sha256 pinned below before its session is made, and each session is
made once per process (single-threaded: processes are the unit of parallelism).

Model contract (read from the ONNX graphs, checked by tests/test_vad.py):
- frames of 512 samples at 16 kHz (32 ms). Each frame is fed with the last 64 samples of
  the previous frame in front of it ("context"; zeros before the first frame), so one model
  step sees 576 samples.
- `silero_vad.onnx` (streaming, backend "stream"): inputs `input` (batch, 576) float32, `state`
  (2, batch, 128) float32, `sr` int64 scalar; outputs `output` (batch, 1) speech probability and
  `stateN`. One call per frame: the recurrent state must pass from frame to frame.
- `silero_vad_16k_sequence.onnx` (recent wheels, backend "sequence"): the same network unrolled
  over a sequence: inputs `input` (frames, 576), `h`, `c` (1, 1, 128); outputs `speech_probs`
  (frames,), `hn`, `cn`. Its probabilities are identical to the streaming model's, frame for
  frame, but a whole run of frames costs one call: about 2.3x less CPU per frame on one core
  (the per-call overhead of the streaming model dominates at 512 samples).
- "fast" (built here, see `_fast_sequence_model`): the sequence network rebuilt from the
  sequence model's own weights with its convolutions laid out as one image for all frames,
  so that onnxruntime runs one large matrix product per layer instead of one small one per
  frame: about 2.5x less CPU than the shipped sequence graph, probabilities equal to it
  within ~3e-6. It is used only after it reproduced the shipped graph on a test signal in
  this process; otherwise the shipped graph is used.

`load_silero("auto")` prefers the fast graph, then the sequence model, and falls back to the
streaming one when the wheel does not ship the sequence model. Every backend gives the same
probabilities whatever the number of frames per call (the fast graph always runs fixed-size
batches for that reason).
"""
from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from ..dsp.vad import VAD_CONTEXT_SAMPLES, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE_HZ
from . import ModelError, check_sha256

PACKAGE = "silero-vad"
MODULE = "silero_vad"
PACKAGE_VERSION = "6.2.3"
STREAM_MODEL = "silero_vad.onnx"
SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"
SHA256 = {  # the graphs of silero-vad 6.2.3
    STREAM_MODEL: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    SEQUENCE_MODEL: "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85",
}
BACKENDS = ("auto", "fast", "sequence", "stream")
STATE_SIZE = 128
INSTALL_HINT = f"install it with: pip install --no-deps '{PACKAGE}=={PACKAGE_VERSION}' (its __init__ wants torch)"

_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def silero_model_dir() -> Path:
    """Folder holding Silero's ONNX files inside the installed silero-vad wheel."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the silero-vad package is not installed: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / STREAM_MODEL).is_file():
        raise ModelError(f"Silero VAD model not found in {folder}; {INSTALL_HINT}")
    return folder


def _session(path: Path):
    """One onnxruntime CPU session per model file and process, single-threaded; the file is
    checked against its pinned sha256 first."""
    key = os.fspath(path)
    with _sessions_lock:
        sess = _sessions.get(key)
        if sess is None:
            import onnxruntime as ort

            if path.name in SHA256:
                check_sha256(path, SHA256[path.name])
            sess = ort.InferenceSession(
                key, sess_options=_session_options(ort), providers=["CPUExecutionProvider"]
            )
            _sessions[key] = sess
    return sess


def _session_options(ort):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the sequence graph carries unused initialisers
    return opts


class SileroNet:
    """One Silero graph ("fast", "sequence" or "stream") behind one call: `run(inputs, state)`
    -> (speech probability per frame (n,) float32, the state after). `inputs` (n, 576) float32
    are 512-sample frames with their 64 samples of context; `state` comes from
    `initial_state()` (zeros: the start of a file) or the previous call."""

    name = "silero-vad"

    def __init__(self, backend: str, session) -> None:
        self.backend = backend
        self.session = session

    def initial_state(self) -> tuple[np.ndarray, ...]:
        if self.backend == "stream":
            return (np.zeros((2, 1, STATE_SIZE), dtype=np.float32),)
        return (np.zeros((1, 1, STATE_SIZE), dtype=np.float32), np.zeros((1, 1, STATE_SIZE), dtype=np.float32))

    def run(self, inputs: np.ndarray, state: tuple[np.ndarray, ...], *,
            max_batch_frames: int = 512) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """max_batch_frames: frames per call of the sequence graph (bounds transient memory);
        the fast graph always takes `_FAST_BATCH_FRAMES` frames per call, the streaming one 1."""
        n = inputs.shape[0]
        if self.backend == "fast":
            probs, h, c = _run_fast(self.session, inputs, *state)
            return probs, (h, c)
        probs = np.zeros(n, dtype=np.float32)
        if self.backend == "sequence":
            h, c = state
            for a in range(0, n, max_batch_frames):
                b = min(n, a + max_batch_frames)
                out, h, c = self.session.run(["speech_probs", "hn", "cn"], {"input": inputs[a:b], "h": h, "c": c})
                probs[a:b] = np.asarray(out).reshape(-1)
            return probs, (h, c)
        sr = np.array(VAD_SAMPLE_RATE_HZ, dtype=np.int64)
        (st,) = state
        for i in range(n):  # the streaming graph takes one frame per call
            out, st = self.session.run(None, {"input": inputs[i : i + 1], "state": st, "sr": sr})
            probs[i] = out[0, 0]
        return probs, (st,)


_nets: dict[str, SileroNet] = {}


def load_silero(backend: str = "auto") -> SileroNet:
    """The process' Silero graph of this backend (see the module docstring). ModelError when
    silero-vad is not installed or its files are not the pinned ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown VAD backend {backend!r}")
    net = _nets.get(backend)
    if net is not None:
        return net
    folder = silero_model_dir()
    has_sequence = (folder / SEQUENCE_MODEL).is_file()
    fast = _fast_session(folder) if has_sequence and backend in ("auto", "fast") else None
    if backend == "fast" and fast is None:
        raise ModelError("the fast Silero graph is not available with this silero-vad wheel")
    chosen = backend
    if backend == "auto":
        chosen = "fast" if fast is not None else "sequence" if has_sequence else "stream"
    if chosen == "fast":
        session = fast
    else:
        session = _session(folder / (SEQUENCE_MODEL if chosen == "sequence" else STREAM_MODEL))
    net = _nets[backend] = SileroNet(chosen, session)
    return net


def available() -> bool:
    """Whether silero-vad is installed (its files are checked on load)."""
    try:
        silero_model_dir()
    except ModelError:
        return False
    return True


# -- a faster graph for the same network ------------------------------------------------------
#
# The shipped sequence graph runs its 1-D convolutions with the frames as the batch axis:
# onnxruntime then does one small matrix product per frame and convolution (4 time steps of
# 129 bins at the first layers), which costs most of its time. `_fast_sequence_model` builds
# the same network with the frames laid out along the height of a single image and the
# convolutions as (1, k) 2-D convolutions: one large matrix product per layer for the whole
# run of frames. Same weights (read from the shipped file), same operations; its speech
# probabilities agree with the shipped graph's to ~3e-6 (float32 summation order), and it is
# only used after checking that on a test signal (`_fast_session`). About 2.5x less CPU.

_FAST_CHECK_TOLERANCE = 1e-4  # probabilities
_FAST_BATCH_FRAMES = 32  # frames per call of the fast graph (the last batch zero-padded)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _fast_sequence_model(folder: Path) -> bytes:
    """The sequence network as a serialized ONNX model with image-layout convolutions.

    Inputs and outputs are those of the shipped sequence model: `input` (frames, 576),
    `h`, `c` (1, 1, 128) -> `speech_probs` (frames,), `hn`, `cn`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shipped = onnx.load(check_sha256(folder / SEQUENCE_MODEL, SHA256[SEQUENCE_MODEL]))
    weights = {
        t.name: numpy_helper.to_array(t)
        for t in shipped.graph.initializer
        if t.data_type == TensorProto.FLOAT
    }
    lstm = next(node.input for node in shipped.graph.node if node.op_type == "LSTM")
    w = {
        "stft": weights["stft.forward_basis_buffer"],
        "lstm_w": weights[lstm[1]],
        "lstm_r": weights[lstm[2]],
        "lstm_b": weights[lstm[3]],
        "out_w": weights["output.weight"],
        "out_b": weights["output.bias"],
    }
    for k in range(4):
        w[f"enc{k}_w"] = weights[f"encoder.{k}.weight"]
        w[f"enc{k}_b"] = weights[f"encoder.{k}.bias"]
    expected = {
        "stft": (258, 1, 256), "enc0_w": (128, 129, 3), "enc1_w": (64, 128, 3),
        "enc2_w": (64, 64, 3), "enc3_w": (128, 64, 3), "out_w": (1, 128, 1),
        "lstm_w": (1, 512, 128), "lstm_r": (1, 512, 128), "lstm_b": (1, 1024),
    }
    for key, shape in expected.items():
        if w[key].shape != shape:
            raise ValueError(f"unexpected Silero weight shape {key}: {w[key].shape}")
    init = {
        "pads": _i64(0, 0, 0, VAD_CONTEXT_SAMPLES),  # reflect 64 samples after each frame
        "image_shape": _i64(1, 1, -1, VAD_FRAME_SAMPLES + 2 * VAD_CONTEXT_SAMPLES),
        "stft_w": w["stft"].reshape(258, 1, 1, 256),
        "re_start": _i64(0), "re_end": _i64(129), "im_start": _i64(129), "im_end": _i64(258),
        "axis1": _i64(1),
        "seq_shape": _i64(1, 128, -1),
        "lstm_w": w["lstm_w"], "lstm_r": w["lstm_r"], "lstm_b": w["lstm_b"],
        "rows_shape": _i64(-1, 128),
        "out_w": w["out_w"].reshape(1, 128).T.copy(),
        "out_b": w["out_b"],
        "flat": _i64(-1),
    }
    for k in range(4):
        init[f"enc{k}_w"] = w[f"enc{k}_w"][:, :, None, :]
        init[f"enc{k}_b"] = w[f"enc{k}_b"]
    node = helper.make_node
    layers = [
        node("Pad", ["input", "pads"], ["padded"], mode="reflect"),
        node("Reshape", ["padded", "image_shape"], ["image"]),
        node("Conv", ["image", "stft_w"], ["spec"], kernel_shape=[1, 256], strides=[1, 128], pads=[0, 0, 0, 0]),
        node("Slice", ["spec", "re_start", "re_end", "axis1"], ["re"]),
        node("Slice", ["spec", "im_start", "im_end", "axis1"], ["im"]),
        node("Mul", ["re", "re"], ["re2"]),
        node("Mul", ["im", "im"], ["im2"]),
        node("Add", ["re2", "im2"], ["power"]),
        node("Sqrt", ["power"], ["enc_in0"]),
    ]
    for k, stride in enumerate((1, 2, 2, 1)):
        layers += [
            node("Conv", [f"enc_in{k}", f"enc{k}_w", f"enc{k}_b"], [f"enc_conv{k}"],
                 kernel_shape=[1, 3], strides=[1, stride], pads=[0, 1, 0, 1]),
            node("Relu", [f"enc_conv{k}"], [f"enc_in{k + 1}"]),
        ]
    layers += [
        node("Reshape", ["enc_in4", "seq_shape"], ["features"]),  # (1, 128, frames)
        node("Transpose", ["features"], ["sequence"], perm=[2, 0, 1]),  # (frames, 1, 128)
        node("LSTM", ["sequence", "lstm_w", "lstm_r", "lstm_b", "frames_used", "h", "c"],
             ["lstm_y", "hn", "cn"], hidden_size=128),
        node("Reshape", ["lstm_y", "rows_shape"], ["lstm_rows"]),
        node("Relu", ["lstm_rows"], ["decoder_in"]),
        node("MatMul", ["decoder_in", "out_w"], ["logit0"]),
        node("Add", ["logit0", "out_b"], ["logit"]),
        node("Sigmoid", ["logit"], ["prob"]),
        node("Reshape", ["prob", "flat"], ["speech_probs"]),
    ]
    frame_in = VAD_FRAME_SAMPLES + VAD_CONTEXT_SAMPLES
    value = helper.make_tensor_value_info
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        layers,
        "silero_vad_image_layout",
        inputs=[
            value("input", f32, ["frames", frame_in]),
            value("h", f32, [1, 1, 128]),
            value("c", f32, [1, 1, 128]),
            value("frames_used", TensorProto.INT32, [1]),
        ],
        outputs=[
            value("speech_probs", f32, ["frames"]),
            value("hn", f32, [1, 1, 128]),
            value("cn", f32, [1, 1, 128]),
        ],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(a), name) for name, a in init.items()],
    )
    model = helper.make_model(
        graph, producer_name="audiotrove", ir_version=8, opset_imports=[helper.make_opsetid("", 17)]
    )
    return model.SerializeToString()


def _run_fast(session, inputs: np.ndarray, h: np.ndarray, c: np.ndarray):
    """Speech probabilities of `inputs` (n, 576) through the fast graph, and the state after.

    Frames go in fixed batches of `_FAST_BATCH_FRAMES` (the last one zero-padded; the LSTM
    stops at the real frames, `frames_used`), so every call has the same shapes and a
    frame's probability does not depend on how the stream was cut.
    """
    n = inputs.shape[0]
    probs = np.empty(n, dtype=np.float32)
    size = _FAST_BATCH_FRAMES
    for a in range(0, n, size):
        part = inputs[a : a + size]
        m = part.shape[0]
        if m < size:
            part = np.concatenate((part, np.zeros((size - m, part.shape[1]), dtype=np.float32)))
        out, h, c = session.run(
            ["speech_probs", "hn", "cn"],
            {"input": part, "h": h, "c": c, "frames_used": np.array([m], dtype=np.int32)},
        )
        probs[a : a + m] = np.asarray(out).reshape(-1)[:m]
    return probs, h, c


def _check_signal(frames: int = 96) -> np.ndarray:
    """Deterministic test input (frames, 576): noise, a gliding harmonic tone with a
    syllable-rate envelope, a click train and near-silence, with each frame's context."""
    n = frames * VAD_FRAME_SAMPLES
    t = np.arange(n) / VAD_SAMPLE_RATE_HZ
    rng = np.random.default_rng(12345)
    f0 = 120.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / VAD_SAMPLE_RATE_HZ
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    x = 0.1 * voice + 0.02 * rng.standard_normal(n)
    x[n // 3 : n // 2] = 0.3 * rng.standard_normal(n // 2 - n // 3)
    x[n // 2 : 2 * n // 3 : 400] += 0.8
    x[5 * n // 6 :] *= 1e-4
    frames_ = x.astype(np.float32).reshape(frames, VAD_FRAME_SAMPLES)
    ctx = np.zeros((frames, VAD_CONTEXT_SAMPLES), dtype=np.float32)
    ctx[1:] = frames_[:-1, -VAD_CONTEXT_SAMPLES:]
    return np.concatenate((ctx, frames_), axis=1)


def _fast_session(folder: Path):
    """Session of `_fast_sequence_model`, or None when it cannot be built or does not
    reproduce the shipped sequence model on `_check_signal` (also run in two calls, to
    check the state hand-over). Cached per process."""
    key = os.fspath(folder / SEQUENCE_MODEL) + "#image-layout"
    with _sessions_lock:
        if key in _sessions:
            return _sessions[key]
    try:
        import onnxruntime as ort

        fast = ort.InferenceSession(
            _fast_sequence_model(folder), sess_options=_session_options(ort),
            providers=["CPUExecutionProvider"],
        )
        ref = _session(folder / SEQUENCE_MODEL)
        x = _check_signal()
        zeros = np.zeros((1, 1, 128), dtype=np.float32)
        want, _, _ = ref.run(["speech_probs", "hn", "cn"], {"input": x, "h": zeros, "c": zeros})
        want = np.asarray(want).reshape(-1)
        half = x.shape[0] // 2 + 5  # not a whole number of batches
        p1, h, c = _run_fast(fast, x[:half], zeros, zeros)
        p2, _, _ = _run_fast(fast, x[half:], h, c)
        got = np.concatenate((p1, p2))
        ok = got.shape == want.shape and bool(np.all(np.abs(got - want) <= _FAST_CHECK_TOLERANCE))
        session = fast if ok else None
    except Exception:  # noqa: BLE001 - any failure: use the shipped graph
        session = None
    with _sessions_lock:
        _sessions[key] = session
    return session


__all__ = ["BACKENDS", "SEQUENCE_MODEL", "STREAM_MODEL", "SileroNet", "available", "load_silero",
           "silero_model_dir"]
