"""DNSMOS P.835 (Reddy et al., ICASSP 2022) on onnxruntime, from the speechmos wheel.

    from audiotrove.models.dnsmos import load_dnsmos
    net = load_dnsmos()                  # once per process; ModelError if not installed
    sig, bak, ovr = net.run(window)      # raw network outputs for one (1, 144160) window
    # calibration to the MOS scale, windows, means: dsp/quality.py

The speechmos wheel (0.0.1.1, installed with --no-deps) ships Microsoft's ONNX model
`speechmos/dnsmos_models/sig_bak_ovr.onnx`; we run it with onnxruntime directly (the wheel's
own wrapper imports librosa, which the core does not depend on). It takes raw 16 kHz audio,
9.01 s per window (144160 samples, input `input_1`), and returns raw SIG, BAK, OVRL values.
Nothing is downloaded: the file is found without importing speechmos, checked against the
sha256 pinned below, and loaded once per process (one thread: processes are the unit of
parallelism).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import ModelError, check_sha256, once_per_process

PACKAGE = "speechmos"
PACKAGE_VERSION = "0.0.1.1"
MODEL_FILE = "dnsmos_models/sig_bak_ovr.onnx"
SHA256 = "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd"
INSTALL_HINT = f"install it with: pip install --no-deps '{PACKAGE}=={PACKAGE_VERSION}'"


def dnsmos_model_path() -> Path:
    """The model file inside the installed speechmos wheel (not checked here)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the speechmos package is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"DNSMOS model not found at {path}; {INSTALL_HINT}")
    return path


class Dnsmos:
    """The DNSMOS session: `run(window)` -> raw (SIG, BAK, OVRL) of one (1, 144160) float32
    window of 16 kHz audio in [-1, 1]."""

    name = "dnsmos"

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime as ort

        path = check_sha256(path or dnsmos_model_path(), SHA256)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def run(self, window: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_1": window})[0][0]


@once_per_process
def load_dnsmos() -> Dnsmos:
    """The process' DNSMOS (loaded on first call). ModelError when not installed or damaged."""
    return Dnsmos()


def available() -> bool:
    """Whether speechmos is installed (its model is checked on load)."""
    try:
        dnsmos_model_path()
    except ModelError:
        return False
    return True


__all__ = ["Dnsmos", "available", "dnsmos_model_path", "load_dnsmos"]
