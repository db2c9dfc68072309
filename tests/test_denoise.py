"""Restoration DSP: denoise (MMSE-LSA, classic, RNNoise), filters, declick, gain, atomic writing.

Signals are generated with numpy (harmonic speech-like bursts, noise, hum, clicks); the real
speech of ../shared/data is used where the test says so and skipped when it is absent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotrove.dsp import denoise as dn
from audiotrove.models.rnnoise import load_rnnoise
from audiotrove.dsp.declick import Declicker, declick
from audiotrove.dsp.filters import (
    FirStream,
    apply_fir,
    design_fir,
    frequency_response_db,
    hum_frequencies,
)
from audiotrove.dsp.gain import normalization_gain, normalize_loudness
from audiotrove.io.write import WriteError, open_writer, write_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --- signals ------------------------------------------------------------------------------

def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced bursts (harmonics of a gliding 110-220 Hz pitch, formant-like envelope) with
    pauses, as in speech: about 60 % active."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros(n)
    for k in range(1, 30):
        fk = k * f0
        amp = np.exp(-((fk - 700) / 500) ** 2) + 0.5 * np.exp(-((fk - 1800) / 700) ** 2) + 0.05
        x += np.where(fk < sr / 2 - 200, amp / k ** 0.3, 0) * np.sin(k * phase)
    # syllables of 150-400 ms separated by 100-500 ms pauses
    env = np.zeros(n)
    pos = int(0.3 * sr)
    while pos < n:
        length = int(rng.uniform(0.15, 0.4) * sr)
        env[pos:pos + length] = np.hanning(min(length, n - pos) + 2)[1:-1][: n - pos]
        pos += length + int(rng.uniform(0.1, 0.5) * sr)
    x *= env
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref = ref - ref.mean()
    est = est - est.mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target ** 2) / np.sum((est - target) ** 2)))


def lag_of(ref: np.ndarray, est: np.ndarray, max_lag: int = 400) -> int:
    n = len(ref)
    spec = np.fft.rfft(est, 2 * n) * np.conj(np.fft.rfft(ref, 2 * n))
    c = np.fft.irfft(spec)
    c = np.concatenate([c[-max_lag:], c[: max_lag + 1]])
    return int(np.argmax(c)) - max_lag


def blocks_of(x: np.ndarray, size: int):
    return [x[i:i + size] for i in range(0, len(x), size)]


def stream(st, x: np.ndarray, size: int) -> np.ndarray:
    parts = [st.process(b) for b in blocks_of(x, size)]
    parts.append(st.flush())
    return np.concatenate(parts)


class Unity:
    def setup(self, **_):
        pass

    def gains(self, power, start):
        return np.ones_like(power)


# --- STFT engine -----------------------------------------------------------------------------

@pytest.mark.parametrize("sr,channels", [(8000, 1), (44100, 2), (48000, 6)])
def test_stft_engine_reconstructs_exactly_any_rate_and_channels(sr, channels):
    x = np.random.default_rng(1).standard_normal((int(sr * 1.3) + 17, channels)).astype(np.float32) * 0.1
    y = stream(dn.StftDenoiser(Unity(), sample_rate=sr, channels=channels), x, 4097)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=2e-6)


def test_lsa_does_not_depend_on_block_size():
    sr = 16000
    clean = speech_like(sr, 4.0)
    noisy = (clean + 0.03 * np.random.default_rng(2).standard_normal(len(clean)))[:, None].astype(np.float32)
    outs = [stream(dn.StftDenoiser(dn.MmseLsaGain(amount=60), sample_rate=sr, channels=1), noisy, size)
            for size in (333, 4096, 100000)]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-6)


def test_lsa_improves_si_sdr_and_keeps_alignment():
    sr = 16000
    clean = speech_like(sr, 6.0, seed=3)
    noise = np.random.default_rng(4).standard_normal(len(clean)).astype(np.float32)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (5 / 10))  # 5 dB SNR
    noisy = clean + noise
    out = dn.denoise(noisy, sample_rate=sr, amount=60)
    assert out.shape == noisy.shape
    assert lag_of(clean, out) == 0
    gain_db = si_sdr(clean, out) - si_sdr(clean, noisy)
    assert gain_db > 5.0, gain_db
    # In the pauses (noise only) the noise comes down by more than 15 dB.
    quiet = np.abs(clean) < 1e-6
    quiet[: int(0.5 * sr)] = False  # the estimator's first half second
    residual_db = 10 * np.log10(np.mean(out[quiet] ** 2) / np.mean(noisy[quiet] ** 2))
    assert residual_db < -15.0, residual_db


def test_amount_sets_the_floor():
    sr = 16000
    noise = np.random.default_rng(5).standard_normal(sr * 3).astype(np.float32) * 0.05
    levels = []
    for amount in (20, 60, 100):
        out = dn.denoise(noise, sample_rate=sr, amount=amount)
        levels.append(10 * np.log10(np.mean(out[sr:] ** 2) / np.mean(noise[sr:] ** 2)))
    # noise only: the output comes down with AMOUNT (near the floor at low amounts)
    assert levels[0] > levels[1] > levels[2]
    assert abs(levels[0] - dn.amount_to_floor_db(20)) < 3.0
    assert levels[2] < -25 and levels[1] < -12


def test_linked_channels_keep_the_image():
    sr = 16000
    clean = speech_like(sr, 3.0, seed=6)
    noise = np.random.default_rng(7).standard_normal(len(clean)).astype(np.float32) * 0.02
    x = (clean + noise)[:, None] * np.array([1.0, 0.5, 0.25], np.float32)
    y = dn.denoise(x, sample_rate=sr, amount=60)
    # the same gain on every channel: the channel ratios of the input are kept
    np.testing.assert_allclose(y[:, 1], 0.5 * y[:, 0], atol=1e-5)
    np.testing.assert_allclose(y[:, 2], 0.25 * y[:, 0], atol=1e-5)


def test_isolate_speech_suppresses_outside_sections():
    sr = 16000
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(sr * 4) * 0.02).astype(np.float32)
    speech = np.zeros_like(x)
    speech[sr:2 * sr] = speech_like(sr, 1.0, seed=9)
    x += speech
    y = dn.denoise(x, sample_rate=sr, amount=30, speech_sections=[[1.0, 2.0]], isolate_amount=80)
    outside = np.r_[0:int(0.8 * sr), int(2.2 * sr):4 * sr]
    inside = np.r_[int(1.1 * sr):int(1.9 * sr)]
    drop_out = 10 * np.log10(np.mean(y[outside] ** 2) / np.mean(x[outside] ** 2))
    assert drop_out < -30
    # inside, the speech is kept (the noise under it reduced): closer to the speech than x is
    assert si_sdr(speech[inside], y[inside]) > si_sdr(speech[inside], x[inside]) + 3


# --- classic subtraction ----------------------------------------------------------------------

def test_classic_with_leading_profile():
    sr = 22050
    rng = np.random.default_rng(10)
    clean = np.concatenate([np.zeros(sr // 2, np.float32), speech_like(sr, 3.0, seed=11)])
    noisy = clean + (rng.standard_normal(len(clean)) * 0.02).astype(np.float32)
    out = dn.denoise(noisy, sample_rate=sr, amount=60, method="classic", profile_sections=[[0.0, 0.4]])
    assert out.shape == noisy.shape and lag_of(clean, out) == 0
    assert si_sdr(clean, out) - si_sdr(clean, noisy) > 3.0
    with pytest.raises(ValueError, match="noise-profile"):
        dn.denoise(noisy, sample_rate=sr, method="classic", profile_sections=[[0.0, 0.01]])


def test_noise_profile_auto_finds_the_quiet_frames():
    sr = 16000
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(sr * 5) * 0.01).astype(np.float32)
    x[sr:4 * sr] += speech_like(sr, 3.0, seed=13) * 3  # loud content in the middle
    auto = dn.NoiseProfileMeter(sample_rate=sr, channels=1)
    region = dn.NoiseProfileMeter(sample_rate=sr, channels=1, sections=[[0.0, 0.9]])
    for b in blocks_of(x[:, None], 7000):
        auto.update(b)
        region.update(b)
    a, r = auto.result(), region.result()
    assert 0.4 < a["seconds"] < 2.1  # the quietest frames: within the 2 s of noise alone
    # both estimate the white noise's flat spectrum, at the same level
    ratio = np.median(a["magnitude"][10:-10]) / np.median(r["magnitude"][10:-10])
    assert 0.8 < ratio < 1.25


# --- RNNoise --------------------------------------------------------------------------------

@pytest.mark.parametrize("sr", [16000, 48000])
def test_rnnoise_is_aligned_and_exact_length(sr):
    rng = np.random.default_rng(14)
    clean = speech_like(sr, 2.0, seed=15)
    noisy = (clean + 0.01 * rng.standard_normal(len(clean))).astype(np.float32)
    out = stream(dn.RnnoiseStream(load_rnnoise(), sample_rate=sr, channels=1, amount=100), noisy[:, None], 5000)[:, 0]
    assert len(out) == len(noisy)
    assert abs(lag_of(clean, out)) <= 1  # the network's own phase: within one sample
    noise_only = dn.denoise((0.02 * rng.standard_normal(sr * 2)).astype(np.float32), sample_rate=sr,
                            method="rnnoise", amount=100, rnnoise=load_rnnoise())
    assert 10 * np.log10(np.mean(noise_only[sr:] ** 2) / 0.02 ** 2) < -10


def test_rnnoise_on_real_speech():
    path = DATA / "speech" / "librispeech-1995-1837-0001.wav"
    if not path.exists():
        pytest.skip("shared data not available")
    clean, sr = sf.read(path, dtype="float32")
    noisy = clean + (0.02 * np.random.default_rng(16).standard_normal(len(clean))).astype(np.float32)
    out = dn.denoise(noisy, sample_rate=sr, method="rnnoise", amount=100, rnnoise=load_rnnoise())
    assert lag_of(clean, out) == 0
    assert si_sdr(clean, out) - si_sdr(clean, noisy) > 2.0


def test_lsa_on_real_speech_and_noise():
    speech, noise = DATA / "speech" / "librispeech-1995-1837-0001.wav", DATA / "noise" / "doing_the_dishes.wav"
    if not (speech.exists() and noise.exists()):
        pytest.skip("shared data not available")
    clean, sr = sf.read(speech, dtype="float32")
    n, _ = sf.read(noise, dtype="float32", frames=len(clean), start=sr * 10)
    n *= np.sqrt(np.mean(clean ** 2) / np.mean(n ** 2))  # 0 dB SNR
    noisy = clean + n
    out = dn.denoise(noisy, sample_rate=sr, amount=60)
    assert lag_of(clean, out) == 0
    assert si_sdr(clean, out) - si_sdr(clean, noisy) > 2.0


# --- filters ----------------------------------------------------------------------------------

def test_fir_notches_and_highpass():
    sr = 16000
    taps = design_fir(sample_rate=sr, highpass_hz=80, notch_hz=hum_frequencies(fundamental_hz=50, sample_rate=sr))
    resp = frequency_response_db(taps, sample_rate=sr, frequencies_hz=np.array([100, 150, 250, 400, 1000, 3000, 80, 20]))
    assert np.all(resp[:4] < -40)               # harmonics notched deep
    assert np.all(np.abs(resp[4:6]) < 0.1)      # speech band untouched
    assert -4.0 < resp[6] < -2.0                # -3 dB at the corner
    assert resp[7] < -40                        # 24 dB/octave: rumble gone


def test_fir_stream_is_aligned_exact_and_block_independent():
    sr = 44100
    taps = design_fir(sample_rate=sr, notch_hz=[60.0, 120.0])
    rng = np.random.default_rng(17)
    x = rng.standard_normal((sr * 3 + 5, 2)).astype(np.float32) * 0.1
    x[sr, 0] = 1.0  # an impulse: it must stay where it is
    a = stream(FirStream(taps, channels=2), x, 1000)
    b = apply_fir(x, taps)
    assert a.shape == x.shape
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert int(np.argmax(np.abs(a[:, 0]))) == sr
    # hum removed from a real-like mixture
    t = np.arange(len(x)) / sr
    hum = 0.2 * np.sin(2 * np.pi * 60 * t)
    y = apply_fir((x[:, 0] * 0 + hum).astype(np.float32), taps)
    assert np.std(y[sr:2 * sr]) < 0.01 * np.std(hum)


# --- declick ----------------------------------------------------------------------------------

def add_clicks(x: np.ndarray, sr: int, rng, count: int, amp=(0.1, 0.5)):
    """Isolated clicks of 1-3 samples, at least 15 ms apart (random times)."""
    c = np.zeros_like(x)
    gaps = rng.uniform(0.015, 2 * (len(x) / sr - 0.2) / count - 0.015, count) * sr
    pos = (sr // 10 + np.cumsum(gaps)).astype(int)
    pos = pos[pos < len(x) - 10]
    for p in pos:
        length = int(rng.integers(1, 4))
        c[p:p + length] = rng.choice([-1, 1]) * rng.uniform(*amp) * np.hanning(length + 2)[1:-1]
    return c, pos


def test_declick_repairs_clicks_and_spares_clean_audio():
    sr = 44100
    rng = np.random.default_rng(18)
    x = speech_like(sr, 3.0, seed=19) + (0.003 * rng.standard_normal(sr * 3)).astype(np.float32)
    y0, n0 = declick(x, sample_rate=sr)
    change_db = 10 * np.log10(np.sum((y0 - x) ** 2) / np.sum(x ** 2) + 1e-30)
    assert change_db < -40, change_db  # clean audio essentially untouched
    c, pos = add_clicks(x, sr, rng, 40)
    y, n = declick(x + c, sample_rate=sr)
    assert y.shape == x.shape
    err_in = 10 * np.log10(np.sum(c ** 2) / np.sum(x ** 2))
    err_out = 10 * np.log10(np.sum((y - x) ** 2) / np.sum(x ** 2))
    assert err_out < err_in - 10, (err_in, err_out)
    assert n >= 30


def test_declick_block_independent_and_stereo():
    sr = 16000
    rng = np.random.default_rng(20)
    x = np.stack([speech_like(sr, 2.0, seed=21), speech_like(sr, 2.0, seed=22)], axis=1)
    c, _ = add_clicks(x[:, 0], sr, rng, 10)
    x[:, 0] += c
    outs = []
    for size in (777, 65536):
        d = Declicker(sample_rate=sr, channels=2)
        outs.append(stream(d, x, size))
    assert outs[0].shape == x.shape
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-7)
    assert d.clicks >= 8



def test_declick_screen_keeps_every_frame_the_detector_would_repair():
    """The batched screen may only skip frames where detect_clicks finds no click starting in
    the frame part; its Levinson-Durbin fit is scipy's Toeplitz solution."""
    from audiotrove.dsp.declick import ar_coefficients, autocorrelation, detect_clicks, levinson, screen_frames

    sr, order, frame, context = 16000, 32, 640, 264
    rng = np.random.default_rng(23)
    x = speech_like(sr, 4.0, seed=24) + (0.003 * rng.standard_normal(sr * 4)).astype(np.float32)
    c, _ = add_clicks(x, sr, rng, 30, amp=(0.01, 0.3))  # small and large clicks
    x = (x + c).astype(np.float64)
    starts = np.arange(0, len(x) - frame - 2 * context, frame)
    segs = np.stack([x[s:s + frame + 2 * context] for s in starts])
    r = autocorrelation(segs, order)
    r[:, 0] *= 1.0 + 1e-9
    for k in (0, len(segs) // 2, len(segs) - 1):
        np.testing.assert_allclose(levinson(r[k:k + 1], order)[0], ar_coefficients(segs[k], order), rtol=1e-6, atol=1e-9)
    maybe = screen_frames(segs, order=order, threshold=8.0, first=context, last=context + frame)
    needed = np.array([any(context <= a < context + frame for a, _ in
                           detect_clicks(seg, order=order, max_len=64, periodic_gap=(40, 200))) for seg in segs])
    assert needed.sum() >= 10                  # the clicks are there to be found
    assert not (needed & ~maybe).any()         # none of them is screened out
    assert maybe.sum() < len(segs)             # and the screen does skip frames


# --- gain -------------------------------------------------------------------------------------

def test_normalization_gain_respects_true_peak_ceiling():
    free = normalization_gain(measured_lufs=-30.0, true_peak_dbtp=-20.0, target_lufs=-16.0, true_peak_max_dbtp=-1.0)
    assert free["gain_db"] == pytest.approx(14.0) and not free["limited_by_true_peak"]
    capped = normalization_gain(measured_lufs=-30.0, true_peak_dbtp=-6.0, target_lufs=-16.0, true_peak_max_dbtp=-1.0)
    assert capped["gain_db"] == pytest.approx(5.0) and capped["limited_by_true_peak"]
    assert capped["expected_lufs"] == pytest.approx(-25.0) and "no compression" in capped["reason"]
    silent = normalization_gain(measured_lufs=None, true_peak_dbtp=None, target_lufs=-16.0)
    assert silent["gain_db"] == 0.0 and "reason" in silent


def test_normalize_loudness_reaches_target():
    from audiotrove.dsp.loudness import integrated_loudness
    from audiotrove.dsp.peaks import true_peak_dbtp

    sr = 48000
    x = speech_like(sr, 5.0, seed=23) * 0.1
    y, info = normalize_loudness(x, sample_rate=sr, target_lufs=-23.0)
    assert integrated_loudness(y, sample_rate=sr) == pytest.approx(-23.0, abs=0.05)
    y2, info2 = normalize_loudness(x, sample_rate=sr, target_lufs=-5.0, true_peak_max_dbtp=-1.0)
    assert info2["limited_by_true_peak"]
    assert true_peak_dbtp(y2, sample_rate=sr) <= -1.0 + 0.01
    loud = np.abs(x) > 0.01
    np.testing.assert_allclose(y2[loud] / x[loud], 10 ** (info2["gain_db"] / 20), rtol=1e-5)  # one linear gain


# --- writing ----------------------------------------------------------------------------------

def test_writer_is_atomic_and_protects_inputs(tmp_path):
    sr = 16000
    x = speech_like(sr, 1.0)
    src = tmp_path / "in.wav"
    write_audio(src, x, sample_rate=sr)
    with pytest.raises(WriteError, match="over an input"):
        open_writer(tmp_path / "in.wav", sample_rate=sr, channels=1, protect=[src])
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / "out.flac", sample_rate=sr, channels=1) as w:
            w.write(x[:1000])
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]  # nothing left behind
    for fmt in ("wav", "flac", "mp3", "ogg"):
        out = write_audio(tmp_path / f"o.{fmt}", x, sample_rate=sr)
        y, sr2 = sf.read(out, dtype="float32")
        assert sr2 == sr
        if fmt in ("wav", "flac"):
            np.testing.assert_allclose(y, x, atol=2 ** -22)
        else:
            assert abs(len(y) - len(x)) < 0.05 * sr
    with pytest.raises(WriteError, match="mp3 cannot store"):
        open_writer(tmp_path / "x.mp3", sample_rate=96000, channels=1)


def test_long_ogg_written_in_blocks(tmp_path):
    sr = 8000
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(sr * 30) / sr)).astype(np.float32)
    with open_writer(tmp_path / "long.ogg", sample_rate=sr, channels=1) as w:
        w.write(x)  # one big block: the writer feeds libsndfile small pieces
    info = sf.info(tmp_path / "long.ogg")
    assert abs(info.frames - len(x)) < sr // 10
