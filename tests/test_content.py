"""dsp/content.py, dsp/sections.py, dsp/quality.py: content sections and speech quality."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import pytest

from audiotrove.dsp.content import CLASSES, FRAME_S, ContentMeter
from audiotrove.dsp.quality import (
    DNSMOS_WINDOW_SAMPLES,
    SpeechWindowReservoir,
    dnsmos_scores,
    quality_score,
)
from audiotrove.dsp.sections import (
    absorb_short_runs,
    centered_mean,
    fill_short_gaps,
    hysteresis,
    mask_sections,
    remove_short_runs,
    runs,
)
from audiotrove.models.dnsmos import load_dnsmos
from audiotrove.models.silero import load_silero

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SR = 44100


# --- signals --------------------------------------------------------------------------------

def melody(seconds: float, *, sr: int = SR, bpm: float = 120.0, seed: int = 0, level_dbfs: float = -20.0) -> np.ndarray:
    """Harmonic notes of a C-major scale on an eighth-note grid, plucked envelopes, plus a
    low thump on every beat: a generated tune with pitch and rhythm. Mono float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    step = 60.0 / bpm / 2
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    t_note = 0.0
    while t_note < seconds:
        dur = step * rng.choice([1, 2, 2, 4])
        f0 = 220.0 * 2 ** (rng.choice(scale) / 12)
        i0 = int(t_note * sr)
        m = min(int(dur * sr), n - i0)
        t = np.arange(m) / sr
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / (0.6 * dur))
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
        out[i0 : i0 + m] += env * note
        t_note += dur
    beat = 60.0 / bpm
    for tb in np.arange(0, seconds, beat):
        i0 = int(tb * sr)
        m = min(int(0.15 * sr), n - i0)
        t = np.arange(m) / sr
        out[i0 : i0 + m] += 0.8 * np.sin(2 * np.pi * 60 * t * (1 - t)) * np.exp(-t / 0.04)
    return _at(out, level_dbfs)


def white(seconds: float, *, sr: int = SR, level_dbfs: float = -25.0, seed: int = 1) -> np.ndarray:
    return _at(np.random.default_rng(seed).standard_normal(int(seconds * sr)), level_dbfs)


def pinkish(seconds: float, *, sr: int = SR, level_dbfs: float = -25.0, seed: int = 2) -> np.ndarray:
    from scipy.signal import lfilter

    x = np.random.default_rng(seed).standard_normal(int(seconds * sr))
    return _at(lfilter([1.0], [1.0, -0.95], x), level_dbfs)


def _at(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    rms = np.sqrt(np.mean(x**2)) or 1.0
    return (x / rms * 10 ** (level_dbfs / 20)).astype(np.float32)


def content_meter(sr: int, channels: int, **kwargs) -> ContentMeter:
    """The meter with the shipped networks, as the analyze step makes it."""
    if kwargs.get("quality"):
        kwargs.setdefault("quality_model", load_dnsmos())
    return ContentMeter(sr, channels, vad_model=load_silero(), **kwargs)


def analyse(x: np.ndarray, sr: int = SR, *, block: int = 65536, **kwargs) -> dict:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    meter = content_meter(sr, x.shape[1], **kwargs)
    for i in range(0, len(x), block):
        meter.update(x[i : i + block])
    return meter.result()


def frame_labels(result: dict, duration_s: float) -> np.ndarray:
    n = int(np.ceil(duration_s / FRAME_S - 1e-9))
    out = np.full(n, -1)
    for ci, name in enumerate(CLASSES):
        for a, b in result[name]["sections"]:
            out[round(a / FRAME_S) : int(np.ceil(b / FRAME_S - 1e-9))] = ci
    return out


def share(result: dict, name: str, t0: float, t1: float, duration_s: float) -> float:
    """Share of the frames in [t0, t1) labelled `name`."""
    lab = frame_labels(result, duration_s)
    i0, i1 = int(t0 / FRAME_S), int(t1 / FRAME_S)
    return float(np.mean(lab[i0:i1] == CLASSES.index(name)))


def check_shape(result: dict) -> None:
    total = 0.0
    for name in CLASSES:
        group = result[name]
        assert set(group) >= {"percentage", "num_sections", "sections"}
        assert group["num_sections"] >= len(group["sections"])
        for a, b in group["sections"]:
            assert 0 <= a < b
        total += group["percentage"]
    assert total == pytest.approx(100.0, abs=1e-6)
    json.dumps(result)  # JSON-ready


def load(*parts: str, sr: int = SR) -> np.ndarray:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    import soxr

    from audiotrove.io.decode import read_all

    audio, rate = read_all(path)
    mono = audio.mean(axis=1).astype(np.float32)
    return soxr.resample(mono, rate, sr).astype(np.float32) if rate != sr else mono


# --- sections helpers ---------------------------------------------------------------------

def test_runs_and_sections():
    s, e, v = runs(np.array([0, 0, 1, 1, 1, 0, 2]))
    assert s.tolist() == [0, 2, 5, 6] and e.tolist() == [2, 5, 6, 7] and v.tolist() == [0, 1, 0, 2]
    count, secs = mask_sections(np.array([1, 1, 0, 1], bool), frame_s=0.5, duration_s=1.8, max_sections=1)
    assert count == 2 and secs == [[0.0, 1.0]]
    count, secs = mask_sections(np.array([0, 1, 0, 1], bool), frame_s=0.5, duration_s=1.8)
    assert secs == [[0.5, 1.0], [1.5, 1.8]]  # the last frame is clipped to the duration


def test_hysteresis_gaps_and_short_runs():
    p = np.array([0.1, 0.6, 0.4, 0.4, 0.3, 0.45, 0.55, 0.2])
    assert hysteresis(p, on=0.5, off=0.35).tolist() == [0, 1, 1, 1, 0, 0, 1, 0]
    m = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1], bool)
    assert fill_short_gaps(m, max_gap_frames=3).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 1, 1]
    assert remove_short_runs(m, min_frames=2).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    # A leading gap is not between two runs: it stays.
    assert fill_short_gaps(np.array([0, 1], bool), max_gap_frames=5).tolist() == [0, 1]
    # A gap holding a barrier frame (speech, silence) is not bridged.
    barrier = np.zeros(10, bool)
    barrier[6] = True
    assert fill_short_gaps(m, max_gap_frames=4, barrier=barrier).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 1, 1]
    assert fill_short_gaps(m, max_gap_frames=9, barrier=barrier).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 1, 1]


def test_absorb_short_runs_merges_into_the_longer_neighbour():
    lab = np.array([3] * 10 + [2] * 2 + [1] * 5 + [2] * 10 + [0] * 1 + [3] * 4)
    out = absorb_short_runs(lab, min_frames=np.array([5, 3, 3, 3]), protected=np.array([True, False, False, False]))
    assert out[10:12].tolist() == [3, 3]  # short music run joins the longer "other" side
    assert out[27] == 0  # protected silence stays even when short
    assert absorb_short_runs(np.array([2, 2]), min_frames=np.array([9, 9, 9, 9])).tolist() == [2, 2]


def test_centered_mean():
    x = np.array([0, 0, 3, 0, 0], float)
    np.testing.assert_allclose(centered_mean(x, width=3), [0, 1, 1, 1, 0])


# --- synthetic content --------------------------------------------------------------------

def test_silence_between_tones_is_found_with_its_boundaries():
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x = np.concatenate([tone, np.zeros(4 * SR, np.float32), tone])
    res = analyse(x)
    check_shape(res)
    assert res["silence"]["num_sections"] == 1
    a, b = res["silence"]["sections"][0]
    assert a == pytest.approx(3.0, abs=0.05) and b == pytest.approx(7.0, abs=0.05)
    assert res["silence"]["percentage"] == pytest.approx(40.0, abs=1.0)
    assert res["speech"]["percentage"] == 0.0


def test_short_quiet_gaps_are_not_silence():
    x = np.concatenate([white(3.0), np.zeros(int(1.0 * SR), np.float32), white(3.0)])
    res = analyse(x)
    assert res["silence"]["percentage"] == 0.0  # 1 s < silence_min_s
    res = analyse(x, silence_min_s=0.5)
    assert res["silence"]["percentage"] == pytest.approx(100 / 7, abs=1.5)


def test_generated_melody_is_music():
    x = melody(14.0)
    res = analyse(np.stack([x, 0.7 * x], axis=1))
    check_shape(res)
    assert res["music"]["percentage"] >= 90.0
    assert res["music"]["num_sections"] == 1


def test_noise_is_other_not_music():
    for x in (white(10.0), pinkish(10.0)):
        res = analyse(x)
        assert res["other"]["percentage"] >= 95.0
        assert res["music"]["percentage"] == 0.0
        assert res["speech"]["percentage"] == 0.0


def test_steady_hum_under_noise_is_not_music():
    """Mains hum (100 Hz and harmonics) is stationary: no evidence of music."""
    t = np.arange(20 * SR) / SR
    hum = sum(np.sin(2 * np.pi * 100 * k * t) / k for k in range(1, 6))
    x = _at(hum, -30) + pinkish(20.0, level_dbfs=-40)
    res = analyse(x)
    assert res["music"]["percentage"] <= 10.0
    assert res["other"]["percentage"] >= 90.0
    # The same hum with a tune on top: the tune is still music.
    y = x + melody(20.0, level_dbfs=-22)
    assert analyse(y)["music"]["percentage"] >= 85.0


def test_music_noise_and_silence_sequence_gets_three_sections():
    x = np.concatenate([melody(10.0), np.zeros(3 * SR, np.float32), pinkish(10.0)])
    dur = len(x) / SR
    res = analyse(x)
    assert share(res, "music", 0.5, 9.5, dur) >= 0.9
    assert share(res, "silence", 10.3, 12.7, dur) == 1.0
    assert share(res, "other", 13.5, 22.5, dur) >= 0.9


def test_relative_silence_on_a_hissy_recording():
    """Tape hiss at -55 dBFS between loud passages: silence by the relative rule only."""
    hiss = pinkish(18.0, level_dbfs=-55, seed=5)
    x = hiss.copy()
    x[: 6 * SR] += melody(6.0, level_dbfs=-18)
    x[12 * SR :] += melody(6.0, level_dbfs=-18, seed=3)
    dur = len(x) / SR
    res = analyse(x)
    assert share(res, "silence", 6.5, 11.5, dur) >= 0.95
    assert res["silence"]["threshold_dbfs"] > -60.0
    off = analyse(x, silence_relative_db=None)
    assert off["silence"]["percentage"] == 0.0
    assert off["silence"]["threshold_dbfs"] == -60.0
    # Steady loud noise alone has no floor under louder content: never silence.
    assert analyse(pinkish(10.0, level_dbfs=-45))["silence"]["percentage"] == 0.0


def test_results_do_not_depend_on_block_size():
    x = np.concatenate([melody(8.0), np.zeros(int(2.5 * SR), np.float32), white(5.0), melody(5.0, seed=4)])
    x = np.stack([x, 0.5 * x], axis=1)
    ref = json.dumps(analyse(x, block=65536), sort_keys=True)
    assert json.dumps(analyse(x, block=4097), sort_keys=True) == ref
    rng = np.random.default_rng(0)
    meter = content_meter(SR, 2)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 30000))
        meter.update(x[i : i + n])
        i += n
    assert json.dumps(meter.result(), sort_keys=True) == ref


def test_sections_are_capped_but_percentages_stay_exact():
    parts = []
    for k in range(6):
        parts += [white(1.5, seed=k), np.zeros(int(2.5 * SR), np.float32)]
    x = np.concatenate(parts)
    full = analyse(x)
    capped = analyse(x, max_sections=2)
    assert full["silence"]["num_sections"] == 6 == capped["silence"]["num_sections"]
    assert len(capped["silence"]["sections"]) == 2
    assert capped["silence"]["sections"] == full["silence"]["sections"][:2]
    for name in CLASSES:
        assert capped[name]["percentage"] == full[name]["percentage"]


# --- robustness ---------------------------------------------------------------------------

@pytest.mark.parametrize("sr, channels", [(8000, 1), (192000, 2), (48000, 8), (16000, 1)])
def test_rates_and_channel_counts(sr, channels):
    x = melody(6.0, sr=sr)
    x = np.stack([x * (1 - 0.1 * c) for c in range(channels)], axis=1)
    x = np.concatenate([x, np.zeros((3 * sr, channels), np.float32)])
    res = analyse(x, sr)
    check_shape(res)
    assert res["silence"]["percentage"] == pytest.approx(100 / 3, abs=2.5)
    assert res["music"]["percentage"] >= 55.0


def test_single_sample_silence_only_and_empty():
    res = analyse(np.zeros((1, 2), np.float32))
    check_shape(res)
    assert res["silence"]["percentage"] == 100.0
    assert res["silence"]["sections"] == [[0.0, round(1 / SR, 6)]]
    res = analyse(np.array([[0.5]], np.float32))
    check_shape(res)
    res = analyse(np.zeros(5 * SR, np.float32))
    assert res["silence"]["percentage"] == 100.0 and res["silence"]["sections"] == [[0.0, 5.0]]
    empty = content_meter(SR, 2).result()
    for name in CLASSES:
        assert empty[name]["percentage"] is None and empty[name]["reason"]


def test_nan_and_inf_count_as_zero():
    x = melody(8.0)
    bad = x.copy()
    bad[::97] = np.nan
    bad[5::101] = np.inf
    bad[7::103] = -np.inf
    clean = x.copy()
    clean[::97] = 0
    clean[5::101] = 0
    clean[7::103] = 0
    assert analyse(bad) == analyse(clean)
    res = analyse(np.full(3 * SR, np.nan, np.float32))
    assert res["silence"]["percentage"] == 100.0


def test_memory_stays_bounded_on_long_input():
    import tracemalloc

    block = (np.random.default_rng(3).standard_normal((65536, 2)) * 0.05).astype(np.float32)
    meter = content_meter(SR, 2, quality=True)
    tracemalloc.start()
    try:
        for _ in range(40):  # ~1 min
            meter.update(block)
        after_1min = tracemalloc.get_traced_memory()[0]
        for _ in range(120):  # ~3 more minutes
            meter.update(block)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30e6
    # Growth per frame is a few bytes: 3 minutes more may add well under 0.3 MB.
    assert current - after_1min < 0.3e6
    assert meter.result()["other"]["percentage"] > 90


def test_quality_needs_the_dnsmos_network():
    with pytest.raises(ValueError, match="quality_model"):
        ContentMeter(SR, 1, vad_model=load_silero(), quality=True)


def test_update_after_result_is_an_error():
    meter = content_meter(SR, 1)
    meter.update(white(1.0)[:, None])
    meter.result()
    assert meter.result() is meter.result()
    with pytest.raises(RuntimeError):
        meter.update(white(1.0)[:, None])


# --- real recordings (skipped without ../shared/data) --------------------------------------

def test_real_speech_music_silence_noise_mixture():
    speech = _at(np.concatenate([load("speech", "librosa_198-209-0000.ogg"), load("speech", "LJ050-0131.wav")]), -22)
    music = _at(load("music", "Kevin_MacLeod_-_Vibe_Ace.ogg")[20 * SR : 32 * SR], -20)
    noise = _at(load("noise", "doing_the_dishes.wav")[10 * SR : 20 * SR], -30)
    gap = np.zeros(3 * SR, np.float32)
    x = np.concatenate([speech, gap, music, noise])
    dur = len(x) / SR
    t1 = len(speech) / SR
    t2 = t1 + 3.0
    t3 = t2 + 12.0
    res = analyse(np.stack([x, x], axis=1))
    check_shape(res)
    assert share(res, "speech", 0.5, t1 - 0.5, dur) >= 0.9
    assert share(res, "silence", t1 + 0.3, t2 - 0.3, dur) >= 0.95
    assert share(res, "music", t2 + 0.5, t3 - 0.5, dur) >= 0.85
    assert share(res, "other", t3 + 0.5, dur - 0.5, dur) >= 0.9


def test_speech_over_music_is_speech():
    speech = _at(load("speech", "librosa_5703-47212-0000.ogg"), -20)
    bed = _at(load("music", "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg")[: len(speech)], -32)
    res = analyse(speech + bed)
    assert res["speech"]["percentage"] >= 80.0


def test_pauses_between_phrases_are_speech_not_music():
    # issue 11: the 1961 broadcast's pauses (hum and hiss, 20 dB under the voice) read as music
    res = analyse(load("archival", "jfk.flac"))
    assert res["music"]["percentage"] < 2.0
    assert res["speech"]["percentage"] + res["silence"]["percentage"] >= 95.0
    # a 1.2 s pause of 60 Hz hum and hiss between two utterances; a 2.5 s music excerpt
    # at the voice's level between the next two stays music
    a = _at(load("speech", "cmu_arctic_us_aew_a0001.wav"), -22)
    b = _at(load("speech", "cmu_arctic_us_aew_a0002.wav"), -22)
    t = np.arange(int(1.2 * SR)) / SR
    rng = np.random.default_rng(0)
    pause = (0.01 * np.sin(2 * np.pi * 60 * t) + 0.003 * rng.standard_normal(len(t))).astype(np.float32)
    music = _at(load("music", "Kevin_MacLeod_-_Vibe_Ace.ogg")[20 * SR:int(22.5 * SR)], -22)
    x = np.concatenate([a, pause, b, music, a])
    dur = len(x) / SR
    t0 = len(a) / SR
    t2 = (len(a) + len(pause) + len(b)) / SR
    res = analyse(x)
    assert share(res, "music", t0 + 0.2, t0 + 1.0, dur) == 0.0
    assert share(res, "music", t2 + 0.4, t2 + 2.1, dur) >= 0.8


def test_a_word_shorter_than_the_pause_edge_is_speech():
    # audiomnist's 0.44 s digits crashed analyze: np.convolve(..., "same") returned the kernel's
    # length when the file was shorter than it (operands (14,) (17,))
    import soxr
    x, sr = sf.read(Path(__file__).resolve().parents[1] / "demo" / "recordings" / "sms_speech-female.wav",
                    dtype="float32")
    x = soxr.resample(x if x.ndim == 1 else x.mean(axis=1), sr, SR)
    for seconds in (0.3, 0.45):
        res = analyse(x[SR:SR + int(seconds * SR)])
        assert res["speech"]["percentage"] == 100.0


# --- speech quality -----------------------------------------------------------------------

def test_reservoir_is_bounded_and_spread_over_the_stream():
    res = SpeechWindowReservoir(max_windows=4)
    rng = np.random.default_rng(0)
    wf = SpeechWindowReservoir.WINDOW_FRAMES
    total = 0
    for _ in range(40):  # 40 windows of all-speech frames, fed in odd-sized pieces
        n = int(rng.integers(50, 400))
        frames = (rng.standard_normal((n, 512)) * 0.05).astype(np.float32)
        res.add(frames, np.ones(n, np.float32))
        total += n
    wins = res.windows()
    assert 1 <= len(wins) <= 4
    assert all(w.shape == (DNSMOS_WINDOW_SAMPLES,) and w.dtype == np.float32 for w in wins)
    assert res.windows_accepted == total // wf
    kept = [k for k, _ in res._kept]
    assert kept[0] == 0 and kept[-1] >= res.windows_accepted // 2  # spread, not the first few
    assert len(set(np.diff(kept))) == 1  # evenly spaced


def test_reservoir_skips_windows_without_enough_speech():
    res = SpeechWindowReservoir(max_windows=5, min_speech_fraction=0.5)
    n = 3 * SpeechWindowReservoir.WINDOW_FRAMES
    frames = np.zeros((n, 512), np.float32)
    probs = np.zeros(n, np.float32)
    probs[::3] = 0.9  # a third of the frames: not enough
    res.add(frames, probs)
    assert res.windows_accepted == 0 and res.windows() == []


def test_no_speech_gives_none_with_a_reason():
    res = analyse(np.concatenate([melody(6.0), white(6.0)]), quality=True)
    q = res["quality_score"]
    assert q["dnsmos_ovrl"] is None and q["dnsmos_sig"] is None and q["windows"] == 0 and q["reason"]
    assert quality_score([])["reason"]


def test_dnsmos_on_real_speech_and_noisy_speech():
    clean = load("speech", "librosa_3436-172162-0000.ogg")  # 16.7 s
    res = analyse(_at(clean, -22), quality=True)
    q = res["quality_score"]
    assert q["windows"] >= 1
    for key in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"):
        assert 1.0 <= q[key] <= 5.0
    assert q["dnsmos_bak"] >= 3.5
    noisy = _at(clean, -22) + white(len(clean) / SR, level_dbfs=-32, seed=9)[: len(clean)]
    qn = analyse(noisy, quality=True)["quality_score"]
    assert qn["dnsmos_bak"] < q["dnsmos_bak"] - 1.0
    assert qn["dnsmos_ovrl"] < q["dnsmos_ovrl"]


def test_short_speech_is_scored_on_a_repeated_stretch():
    x = _at(load("speech", "cmu_arctic_us_aew_a0001.wav"), -22)  # 3.9 s < 9.01 s
    q = analyse(np.concatenate([x, np.zeros(SR, np.float32)]), quality=True)["quality_score"]
    assert q["windows"] == 1 and 1.0 <= q["dnsmos_ovrl"] <= 5.0


def test_dnsmos_matches_the_reference_implementation():
    x = load("speech", "librosa_198-209-0000.ogg", sr=16000)[:DNSMOS_WINDOW_SAMPLES]
    ours = dnsmos_scores(x[None, :], model=load_dnsmos())[0]
    try:
        from speechmos import dnsmos  # imports librosa: reference only
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"speechmos reference not importable: {exc}")
    ref = dnsmos.run(x, 16000)
    np.testing.assert_allclose(ours, [ref["sig_mos"], ref["bak_mos"], ref["ovrl_mos"]], atol=1e-3)
