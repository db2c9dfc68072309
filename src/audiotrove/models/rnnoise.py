"""RNNoise (Valin 2018, a recurrent speech-denoising network) from the pyrnnoise wheel.

    from audiotrove.models.rnnoise import load_rnnoise
    lib = load_rnnoise()                 # the C library; ModelError if pyrnnoise is not installed
    # streaming, resampling, delay and mix: dsp/denoise.py RnnoiseStream(lib, ...)

The network's weights are compiled into the C library that pyrnnoise bundles; there is no model
file to check, so nothing is pinned here beyond the package (pyproject.toml). The library's
API, used through ctypes by dsp/denoise.py: `rnnoise_create(None)` -> a state,
`rnnoise_process_frame(state, out, in)` on 480 float32 samples of 48 kHz audio (scaled to
16-bit range) -> the frame's speech probability, `rnnoise_destroy(state)`.
"""
from __future__ import annotations

from . import ModelError

PACKAGE = "pyrnnoise"


def load_rnnoise():
    """The RNNoise C library (loaded once per process by Python's import system)."""
    try:
        # pyrnnoise's package __init__ pulls audiolab (an FFmpeg binding) for file I/O we do not
        # need; its `rnnoise` module only loads the bundled C library with ctypes.
        from pyrnnoise import rnnoise as rn
    except ImportError as exc:
        raise ModelError(f"RNNoise is not available ({exc}): install it with: pip install {PACKAGE}") from None
    return rn.lib


def available() -> bool:
    try:
        load_rnnoise()
    except ModelError:
        return False
    return True


__all__ = ["available", "load_rnnoise"]
