"""dsp/vad.py + models/silero.py: Silero VAD through onnxruntime, streamed, block-size independent,
gated; the graphs checked and loaded once per process."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from audiotrove.dsp.vad import GATE_RESET_FRAMES, VAD_FRAME_SAMPLES
from audiotrove.dsp.vad import SileroVad as _SileroVad
from audiotrove.models import ModelError
from audiotrove.models.silero import SEQUENCE_MODEL, STREAM_MODEL, load_silero, silero_model_dir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _speech16k(name: str) -> np.ndarray:
    path = DATA / "speech" / name
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    import soxr

    from audiotrove.io.decode import read_all

    audio, sr = read_all(path)
    mono = audio.mean(axis=1).astype(np.float32)
    return soxr.resample(mono, sr, 16000).astype(np.float32) if sr != 16000 else mono


def _white(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * 16000)) * 10 ** (dbfs / 20)).astype(np.float32)


def SileroVad(*, backend: str = "auto", **kwargs) -> _SileroVad:
    return _SileroVad(load_silero(backend), **kwargs)


def _all(vad: _SileroVad, x: np.ndarray, chunks=None) -> np.ndarray:
    if chunks is None:
        out = [vad.probabilities(x)]
    else:
        out, i = [], 0
        for c in chunks:
            out.append(vad.probabilities(x[i : i + c]))
            i += c
        out.append(vad.probabilities(x[i:]))
    out.append(vad.flush())
    return np.concatenate(out)


def test_silero_is_not_imported_and_models_have_the_documented_io():
    import onnxruntime as ort

    SileroVad()
    assert "silero_vad" not in sys.modules  # its __init__ would import torch
    assert "torch" not in sys.modules
    folder = silero_model_dir()
    stream = ort.InferenceSession(str(folder / STREAM_MODEL), providers=["CPUExecutionProvider"])
    assert [i.name for i in stream.get_inputs()] == ["input", "state", "sr"]
    assert stream.get_inputs()[1].shape[0] == 2 and stream.get_inputs()[1].shape[2] == 128
    if (folder / SEQUENCE_MODEL).is_file():
        seq = ort.InferenceSession(str(folder / SEQUENCE_MODEL), providers=["CPUExecutionProvider"])
        assert [i.name for i in seq.get_inputs()] == ["input", "h", "c"]
        assert seq.get_inputs()[0].shape[1] == VAD_FRAME_SAMPLES + 64  # frame + context


def test_one_probability_per_frame_and_flush_scores_the_tail():
    vad = SileroVad()
    x = _white(1.0, -30)  # 16000 samples = 31 frames + 128 samples
    p = vad.probabilities(x)
    assert p.shape == (31,) and p.dtype == np.float32
    tail = vad.flush()
    assert tail.shape == (1,)
    assert vad.flush().shape == (0,)
    assert vad.frames_done == 32
    assert np.all((p >= 0) & (p <= 1))


def test_noise_and_tones_are_not_speech():
    vad = SileroVad()
    t = np.arange(16000 * 4) / 16000
    tones = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)
    x = np.concatenate([_white(4.0, -20), tones])
    p = _all(vad, x)
    assert np.mean(p > 0.5) < 0.02


def test_real_speech_is_detected_and_its_pauses_are_not():
    x = _speech16k("librosa_198-209-0000.ogg")
    quiet = _white(2.0, -65, seed=3)
    p = _all(SileroVad(), np.concatenate([quiet, x, quiet]))
    n_pad = 2 * 16000 // VAD_FRAME_SAMPLES
    inside = p[n_pad + 10 : -n_pad - 10]
    assert np.mean(inside > 0.5) > 0.7
    assert np.mean(p[: n_pad - 2] > 0.5) == 0.0
    assert np.mean(p[-n_pad + 5 :] > 0.5) == 0.0


@pytest.mark.parametrize("backend, atol", [("sequence", 1e-5), ("fast", 1e-4)])
def test_batched_backends_match_the_streaming_model_frame_for_frame(backend, atol):
    if not (silero_model_dir() / SEQUENCE_MODEL).is_file():
        pytest.skip("this silero-vad wheel has no sequence model")
    try:
        x = _speech16k("cmu_arctic_us_aew_a0001.wav")
    except pytest.skip.Exception:
        x = _white(3.0, -25)
    batched = _all(SileroVad(backend=backend, gate_dbfs=None), x)
    shipped = _all(SileroVad(backend="stream", gate_dbfs=None), x)
    assert batched.shape == shipped.shape
    np.testing.assert_allclose(batched, shipped, atol=atol)


@pytest.mark.parametrize("backend", ["fast", "sequence", "stream"])
def test_results_do_not_depend_on_chunk_sizes(backend):
    if backend in ("fast", "sequence") and not (silero_model_dir() / SEQUENCE_MODEL).is_file():
        pytest.skip("no sequence model")
    try:
        x = _speech16k("sense_and_sensibility_01_austen_64kb-0880.wav")
    except pytest.skip.Exception:
        x = _white(3.0, -25)
    x = np.concatenate([x, np.zeros(20000, np.float32), x])  # a gated stretch in the middle
    ref = _all(SileroVad(backend=backend), x)
    rng = np.random.default_rng(1)
    chunks = list(rng.integers(1, 3000, size=40))
    got = _all(SileroVad(backend=backend, max_batch_frames=7), x, chunks)
    np.testing.assert_array_equal(ref, got)


def test_gate_skips_silent_frames_and_resets_the_state():
    x = _white(1.0, -80)  # below the -70 dBFS gate
    vad = SileroVad(gate_dbfs=-70.0)
    calls = {"n": 0}
    net = vad.model

    class Counting:
        def initial_state(self):
            return net.initial_state()

        def run(self, *args, **kwargs):
            calls["n"] += 1
            return net.run(*args, **kwargs)

    vad.model = Counting()
    p = _all(vad, x)
    assert calls["n"] == 0 and np.all(p == 0.0)
    # After a long gated run the recurrent state is back at zeros, as at the start.
    for backend in ("auto", "stream"):
        vad2 = SileroVad(backend=backend, gate_dbfs=-70.0)
        vad2.probabilities(_white(1.0, -20))
        assert sum(np.abs(s).sum() for s in vad2._state) > 0
        vad2.probabilities(np.zeros(VAD_FRAME_SAMPLES * (GATE_RESET_FRAMES + 1), np.float32))
        assert all(np.abs(s).sum() == 0 for s in vad2._state)


def test_speech_after_a_long_digital_silence_is_still_found():
    x = _speech16k("cmu_arctic_us_aew_a0002.wav")
    p = _all(SileroVad(), np.concatenate([np.zeros(16000 * 5, np.float32), x]))
    assert np.mean(p[5 * 16000 // VAD_FRAME_SAMPLES :] > 0.5) > 0.7
    assert np.all(p[: 5 * 16000 // VAD_FRAME_SAMPLES] == 0)


def test_bad_backend_is_rejected():
    with pytest.raises(ValueError):
        load_silero("gpu")


def test_one_session_per_process_and_the_graphs_are_checked(tmp_path, monkeypatch):
    from audiotrove.models import silero

    assert load_silero() is load_silero()
    assert load_silero("stream").session is load_silero("stream").session
    # a damaged graph is refused with a ModelError naming it, not loaded
    damaged = tmp_path / "data"
    damaged.mkdir()
    (damaged / STREAM_MODEL).write_bytes((silero_model_dir() / STREAM_MODEL).read_bytes()[:-1] + b"x")
    monkeypatch.setattr(silero, "silero_model_dir", lambda: damaged)
    monkeypatch.setattr(silero, "_nets", {})
    with pytest.raises(ModelError, match="damaged or not the pinned version"):
        load_silero("stream")
