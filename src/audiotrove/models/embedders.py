"""Embedding models behind one interface: a list of mono signals in, one vector each out.

    from audiotrove.models.embedders import get_embedder
    model = get_embedder("yamnet")            # or "descriptors", or "/path/model.onnx"
    vectors = model.embed_many([x1, x2])      # signals at model.sample_rate_hz -> (2, model.dim)
    model.key                                  # {"model": ..., "model_version": ...}: part of a step's key

Built in:
    yamnet       YAMNet (AudioSet) 1024-d, mean over 0.96 s patches (models/yamnet.py)
    descriptors  171 standardized descriptors, no weights (dsp/descriptors.py)
A user model: PATH.onnx with a JSON sidecar beside it (PATH.json, or PATH.onnx.json):

    {"name": "clap-audio",            # shown in listings (default: the file's stem)
     "sample_rate_hz": 48000,         # the rate signals are resampled to
     "input": "waveform",             # or "log_mel"
     "window_s": 10.0,                # the model sees windows of this length (padded with zeros)...
     "hop_s": 10.0,                   # ...every hop_s seconds; default: window_s
     "input_name": "audio",           # default: the graph's first input
     "output": "embedding",           # default: the graph's first output
     "pooling": "mean",               # mean | max: over windows (and over an output time axis)
     "log_mel": {"n_mels": 64, "n_fft": 512, "window_s": 0.025, "hop_s": 0.010,
                 "fmin_hz": 125, "fmax_hz": 7500, "log_offset": 0.001}}

Waveform input is fed as (batch, samples) or (batch, 1, samples), log-mel input as
(batch, frames, n_mels) or (batch, 1, frames, n_mels), whichever rank the graph declares. An
output of rank 3 (batch, time, dim) is pooled over time. The model's version in the step's key
is a digest of the .onnx file and of the sidecar: changing either recomputes its vectors.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dsp.descriptors import DESCRIPTOR_DIM, descriptor_vector
from ..dsp.melspec import MelParams, log_mel_spectrogram
from . import ModelError, sha256_of

BUILTIN = ("yamnet", "descriptors")


class Embedder:
    """The interface. `metric` is how vectors compare: "cosine" (vectors are L2-normalized in
    the index) for every model here."""

    name: str = ""
    version: str = ""
    dim: int = 0
    sample_rate_hz: int = 16000
    metric: str = "cosine"

    @property
    def key(self) -> dict:
        return {"model": self.name, "model_version": self.version}

    def embed_many(self, signals: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class YamnetEmbedder(Embedder):
    def __init__(self):
        from .yamnet import EMBEDDING_DIM, MODEL_VERSION, SAMPLE_RATE_HZ, load_yamnet

        self.name, self.version, self.dim = "yamnet", MODEL_VERSION, EMBEDDING_DIM
        self.sample_rate_hz = SAMPLE_RATE_HZ
        self._net = load_yamnet()

    def embed_many(self, signals):
        return self._net.embed_many(list(signals))


class DescriptorsEmbedder(Embedder):
    name, version, dim, sample_rate_hz = "descriptors", "4", DESCRIPTOR_DIM, 16000

    def embed_many(self, signals):
        if not signals:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([descriptor_vector(x) for x in signals])


@dataclass
class Sidecar:
    name: str
    sample_rate_hz: int
    input: str = "waveform"
    window_s: float = 1.0
    hop_s: float | None = None
    input_name: str | None = None
    output: str | None = None
    pooling: str = "mean"
    log_mel: dict = field(default_factory=dict)


_SIDECAR_KEYS = set(Sidecar.__dataclass_fields__)


def sidecar_path(model_path: Path) -> Path:
    for candidate in (model_path.with_suffix(".json"), Path(str(model_path) + ".json")):
        if candidate.is_file():
            return candidate
    raise ModelError(f"{model_path}: no JSON sidecar ({model_path.with_suffix('.json').name}) saying its "
                     "sample rate, window, input and output: see `audiotrove embed --help`")


def read_sidecar(model_path: Path) -> tuple[Sidecar, bytes]:
    path = sidecar_path(model_path)
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: must hold a JSON object")
    unknown = set(data) - _SIDECAR_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(sorted(_SIDECAR_KEYS))}")
    data.setdefault("name", model_path.stem)
    if "sample_rate_hz" not in data:
        raise ModelError(f"{path}: sample_rate_hz is required")
    try:
        car = Sidecar(**data)
        car.sample_rate_hz = int(car.sample_rate_hz)
        car.window_s = float(car.window_s)
        car.hop_s = float(car.hop_s) if car.hop_s is not None else car.window_s
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: {exc}") from None
    if car.input not in ("waveform", "log_mel"):
        raise ModelError(f"{path}: input must be waveform or log_mel, not {car.input!r}")
    if car.pooling not in ("mean", "max"):
        raise ModelError(f"{path}: pooling must be mean or max, not {car.pooling!r}")
    if not (car.sample_rate_hz >= 1000 and car.window_s > 0 and car.hop_s > 0):
        raise ModelError(f"{path}: sample_rate_hz, window_s and hop_s must be positive")
    return car, raw


class OnnxEmbedder(Embedder):
    """A user's ONNX model described by its JSON sidecar (see the module docstring)."""

    def __init__(self, model_path: str | os.PathLike):
        import onnxruntime as ort

        path = Path(model_path).resolve()
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        self.path = path
        self.car, raw = read_sidecar(path)
        self.name = self.car.name
        self.version = hashlib.sha256((sha256_of(path) + ":").encode() + raw).hexdigest()[:16]
        self.sample_rate_hz = self.car.sample_rate_hz
        self.mel = MelParams(sample_rate_hz=self.sample_rate_hz, **{k: v for k, v in self.car.log_mel.items()
                                                                     if k in MelParams.__dataclass_fields__})
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: onnxruntime cannot load it: {exc}") from None
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        self._input = self.car.input_name or next(iter(inputs))
        if self._input not in inputs:
            raise ModelError(f"{path}: no input {self._input!r} (has {', '.join(inputs)})")
        self._rank = len(inputs[self._input].shape)
        self._output = self.car.output or outputs[0]
        if self._output not in outputs:
            raise ModelError(f"{path}: no output {self._output!r} (has {', '.join(outputs)})")
        self.window = max(1, int(round(self.car.window_s * self.sample_rate_hz)))
        self.hop = max(1, int(round(self.car.hop_s * self.sample_rate_hz)))
        probe = self._run([np.zeros(self.window, np.float32)])
        self.dim = int(probe.shape[1])

    @property
    def key(self) -> dict:
        return {"model": str(self.path), "model_version": self.version}

    def _windows(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x, np.float32).reshape(-1)
        n = max(1, math.ceil(max(len(x) - self.window, 0) / self.hop) + 1)
        out = []
        for i in range(n):
            w = x[i * self.hop:i * self.hop + self.window]
            if len(w) < self.window:
                w = np.concatenate([w, np.zeros(self.window - len(w), np.float32)])
            out.append(w)
        return out

    def _feed(self, windows: list[np.ndarray]) -> np.ndarray:
        if self.car.input == "waveform":
            batch = np.stack(windows)
        else:
            batch = np.stack([log_mel_spectrogram(w, self.mel) for w in windows])
        while batch.ndim < self._rank:
            batch = batch[:, None]
        return batch.astype(np.float32)

    def _run(self, windows: list[np.ndarray]) -> np.ndarray:
        try:
            (out,) = self._session.run([self._output], {self._input: self._feed(windows)})
        except Exception as exc:  # shape or type mismatch: say which model and what it got
            raise ModelError(f"{self.path.name}: running the model failed: {exc}") from None
        out = np.asarray(out, np.float32)
        if out.ndim == 3:
            out = out.mean(axis=1) if self.car.pooling == "mean" else out.max(axis=1)
        return out.reshape(len(windows), -1)

    def embed_many(self, signals):
        signals = list(signals)
        if not signals:
            return np.zeros((0, self.dim), np.float32)
        windows = [self._windows(x) for x in signals]
        flat = [w for ws in windows for w in ws]
        vecs = np.concatenate([self._run(flat[i:i + 32]) for i in range(0, len(flat), 32)])
        bounds = np.cumsum([0] + [len(ws) for ws in windows])
        pool = np.mean if self.car.pooling == "mean" else np.max
        return np.stack([pool(vecs[a:b], axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


_CACHE: dict[str, Embedder] = {}


def get_embedder(model: str) -> Embedder:
    """"yamnet", "descriptors" or a path to an .onnx file (with its sidecar); one per process.
    Raises ModelError when the model is not installed or not usable."""
    key = model if model in BUILTIN else str(Path(model).resolve())
    if key not in _CACHE:
        if model == "yamnet":
            _CACHE[key] = YamnetEmbedder()
        elif model == "descriptors":
            _CACHE[key] = DescriptorsEmbedder()
        elif model.endswith(".onnx") or os.sep in model:
            _CACHE[key] = OnnxEmbedder(model)
        else:
            raise ModelError(f"unknown model {model!r}: use yamnet, descriptors or a path to an .onnx file")
    return _CACHE[key]


def model_key(model: str) -> dict:
    """{"model", "model_version"} of a model name or path: what a step's key records."""
    return dict(get_embedder(model).key)


__all__ = ["BUILTIN", "DescriptorsEmbedder", "Embedder", "OnnxEmbedder", "YamnetEmbedder",
           "get_embedder", "model_key", "read_sidecar"]
