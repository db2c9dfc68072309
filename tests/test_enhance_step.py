"""The enhance step and command: options, chain, outputs, before/after, video, CLI."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiotrove.steps import get_step
from audiotrove.steps.enhance import (
    DEFAULT_PRESET,
    DEFAULTS,
    EnhanceError,
    enhance_array,
    enhance_file,
    output_path,
    parse_noise_profile,
    resolve_options,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_denoise import add_clicks, lag_of, speech_like

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def degraded(sr: int, seconds: float = 6.0, seed: int = 0):
    """(clean, degraded) mono: speech-like + hiss + 50 Hz hum with harmonics + clicks."""
    rng = np.random.default_rng(seed)
    clean = speech_like(sr, seconds, seed=seed)
    t = np.arange(len(clean)) / sr
    hum = sum(a * np.sin(2 * np.pi * 50 * k * t) for k, a in ((1, 0.02), (2, 0.01), (3, 0.015)))
    hiss = 0.01 * rng.standard_normal(len(clean))
    clicks, _ = add_clicks(clean, sr, rng, 30)
    return clean, (clean + hum + hiss + clicks).astype(np.float32)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    sr = 22050
    clean, noisy = degraded(sr)
    sf.write(folder / "tape.wav", np.stack([noisy, 0.8 * noisy], axis=1), sr, subtype="PCM_24")
    return folder, clean, noisy, sr


def params(out_dir, **kw):
    return {**DEFAULTS, "out_dir": str(out_dir), **kw}


# --- options -----------------------------------------------------------------------------------

def test_resolve_options_presets_and_overrides():
    default = resolve_options(DEFAULTS)
    assert default["preset"] == DEFAULT_PRESET and default["denoise"] is not None and default["dehum"] == "auto"
    only = resolve_options({**DEFAULTS, "highpass": 100})
    assert only["preset"] is None and only["denoise"] is None and only["highpass"] == 100 and not only["declick"]
    mixed = resolve_options({**DEFAULTS, "preset": "speech", "denoise": 30, "declick": True})
    assert mixed["denoise"] == 30 and mixed["declick"] and mixed["highpass"] == 80
    classic = resolve_options({**DEFAULTS, "noise_profile": "0:0.5"})
    assert classic["denoise_method"] == "classic" and classic["noise_profile"] == [[0.0, 0.5]]
    assert resolve_options({**DEFAULTS, "dehum": "60Hz"})["dehum"] == "60"
    assert resolve_options({**DEFAULTS, "dehum": "off", "highpass": 50})["dehum"] is None
    for bad in ({"denoise": 150}, {"preset": "podcast"}, {"dehum": "55"}, {"denoise_method": "magic"},
                {"noise_profile": "2:1"}, {"noise_profile": "0.5", "denoise_method": "lsa"}, {"loudness": 5}):
        with pytest.raises(EnhanceError):
            resolve_options({**DEFAULTS, **bad})


def test_parse_noise_profile():
    assert parse_noise_profile("auto") == "auto"
    assert parse_noise_profile("1.5:2") == [[1.5, 2.0]]
    assert parse_noise_profile("1:00:1:30") == [[60.0, 90.0]]
    with pytest.raises(EnhanceError):
        parse_noise_profile("abc")


def test_step_is_registered_and_requires_analyze():
    step = get_step("enhance")
    assert step.requires == ("analyze",)
    assert set(step.params({"out_dir": "/x"})) == set(DEFAULTS)


# --- the chain on arrays --------------------------------------------------------------------------

def test_default_chain_restores_and_keeps_alignment():
    sr = 16000
    clean, noisy = degraded(sr, seed=1)
    out = enhance_array(noisy, sample_rate=sr)  # no analysis: hum found by the pre-pass
    assert out.shape == noisy.shape
    assert lag_of(clean, out) == 0
    err_in = np.sum((noisy - clean) ** 2)
    err_out = np.sum((out - clean) ** 2)
    assert 10 * np.log10(err_in / err_out) > 6  # hum, hiss and clicks mostly gone


@pytest.mark.parametrize("seconds", [6.0, 6.0031])
def test_default_chain_adds_no_clicks_at_the_file_ends(seconds):
    # Speech-like + 50 Hz hum with harmonics + band-limited noise, the file cut mid-signal (as
    # demo/hummy_speech.flac): the denoiser once padded the file with zeros, so its last frames
    # held a step whose high-frequency part passed where the noise is quiet -> a 2 ms click in
    # the last samples (clicks/min 0 -> 8.4 on the demo).
    from scipy import signal

    from audiotrove.dsp.clicks import detect_clicks

    sr = 16000
    n = int(seconds * sr)
    speech = speech_like(sr, 5.0, seed=0)
    t = np.arange(n) / sr
    hum = sum(0.02 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5))
    noise = signal.sosfilt(signal.butter(6, 2000, fs=sr, output="sos"), np.random.default_rng(0).standard_normal(n))
    x = (np.pad(speech, (0, n - len(speech))) + hum + 0.002 * noise / noise.std()).astype(np.float32)
    for data in (x, -x[::-1]):  # the end, then the same edge at the start
        out = enhance_array(data, sample_rate=sr, analysis={"noise": {"hum": {"frequency": 50.0, "harmonics": [1, 2, 3]}}})
        before = detect_clicks(data, sample_rate=sr)
        after = detect_clicks(out, sample_rate=sr)
        assert len(before) == 0
        assert len(after) == 0, f"clicks added at {after.positions / sr} s"


# --- files ----------------------------------------------------------------------------------

def test_enhance_file_writes_aligned_output_and_before_after(archive, tmp_path):
    folder, clean, noisy, sr = archive
    src = folder / "tape.wav"
    data = enhance_file(str(src), params(tmp_path, preview=True))
    e = data["enhance"]
    out = Path(e["output"])
    assert out == tmp_path / "tape.enhanced.wav" and out.is_file()
    y, sr2 = sf.read(out, dtype="float32")
    x, _ = sf.read(src, dtype="float32")
    assert sr2 == sr and y.shape == x.shape
    assert lag_of(clean, y[:, 0]) == 0
    assert e["preset"] == DEFAULT_PRESET and e["hum_frequency"] == pytest.approx(50.0, abs=0.2)
    assert e["clicks_repaired"] >= 20
    assert e["change"]["noise_floor_dbfs"] < -6
    assert e["after"]["hum_level_db"] is None or e["after"]["hum_level_db"] < e["before"]["hum_level_db"]
    assert set(e["before"]) == set(e["after"]) == set(e["change"])
    assert Path(e["preview"]).is_file() and Path(e["preview"]).stat().st_size > 10000
    assert data["media_info"]["container"]["duration"] == pytest.approx(len(x) / sr)
    assert json.loads(json.dumps(data)) == data  # JSON-ready


def test_loudness_two_pass_and_formats(archive, tmp_path):
    from audiotrove.dsp.loudness import integrated_loudness

    folder, _, _, sr = archive
    src = folder / "tape.wav"
    data = enhance_file(str(src), params(tmp_path, denoise=40, loudness=-20.0, format="flac"))
    e = data["enhance"]
    y, _ = sf.read(e["output"], dtype="float32")
    assert e["output"].endswith(".flac")
    assert integrated_loudness(y, sample_rate=sr) == pytest.approx(-20.0, abs=0.1)
    assert e["after"]["loudness_lufs"] == pytest.approx(-20.0, abs=0.1)
    assert e["limited_by_true_peak"] is False
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temporaries removed


def test_isolate_speech_uses_the_analysis_sections(archive, tmp_path):
    folder, _, noisy, sr = archive
    src = folder / "tape.wav"
    analysis = {"media_info": {"has_video": False, "container": {"duration": len(noisy) / sr}},
                "audio": {"speech": {"num_sections": 1, "sections": [[2.0, 3.0]]}}}
    data = enhance_file(str(src), params(tmp_path, isolate_speech=90), analysis)
    y, _ = sf.read(data["enhance"]["output"], dtype="float32")
    x, _ = sf.read(src, dtype="float32")
    out_db = 10 * np.log10(np.mean(y[: sr] ** 2) / np.mean(x[: sr] ** 2))
    in_db = 10 * np.log10(np.mean(y[int(2.2 * sr):int(2.8 * sr)] ** 2) / np.mean(x[int(2.2 * sr):int(2.8 * sr)] ** 2))
    assert out_db < -30 and in_db > -6
    assert "isolate speech 90 (1 sections, at most 36 dB down)" in data["enhance"]["chain"]


def test_never_writes_over_the_input(archive, tmp_path):
    folder, *_ = archive
    src = folder / "tape.wav"
    before = src.read_bytes()
    trap = tmp_path / "tape.enhanced.wav"
    trap.symlink_to(src)  # the output name points at the input
    data = enhance_file(str(src), params(tmp_path, denoise=50))
    assert src.read_bytes() == before and trap.is_symlink()
    out = Path(data["enhance"]["output"])
    assert out.parent == tmp_path and out.name.startswith("tape.enhanced-") and out.is_file()


def test_output_path_tree_and_video():
    p = {"out_dir": "/out", "format": "flac", "tree": "/coll"}
    assert output_path("/coll/a/b/x.wav", p, video=False) == Path("/out/a/b/x.enhanced.flac")
    assert output_path("/coll/v.MP4", {"out_dir": "/out"}, video=True) == Path("/out/v.enhanced.mp4")
    assert output_path("/coll/v.flv", {"out_dir": "/out"}, video=True) == Path("/out/v.enhanced.mkv")


def test_video_input_gives_video_output(tmp_path):
    from test_remux import make_video, video_checksums

    src = tmp_path / "talk.mp4"
    make_video(src, seconds=1.5)
    data = enhance_file(str(src), params(tmp_path / "out", preset="speech"))
    out = Path(data["enhance"]["output"])
    assert data["enhance"]["video"] and out.suffix == ".mp4"
    assert video_checksums(out) == video_checksums(src)


def test_real_archival_recording(tmp_path):
    src = DATA / "archival" / "jfk.flac"
    if not src.exists():
        pytest.skip("shared data not available")
    x, _ = sf.read(src, dtype="float32")
    data = enhance_file(str(src), params(tmp_path / "lsa", denoise_method="lsa", preset="archival"))
    e = data["enhance"]
    assert e["hum_frequency"] == pytest.approx(60.0, abs=0.5)  # the analysis finds 60 Hz hum
    # SNR under the speech (the gaps between words against the words), not against the pauses
    assert e["change"]["noise_floor_dbfs"] < -10 and e["change"]["snr_db"] > 6 and e["snr_measured_on"] == "speech"
    assert abs(e["change"]["loudness_lufs"]) < 1.0  # the speech itself is kept
    y, _ = sf.read(e["output"], dtype="float32")
    assert y.shape == x.shape and lag_of(x[:, 0], y[:, 0]) == 0
    # The default (method auto -> the speech network on this speech): more noise gone; the
    # network also takes out part of the PA echo under the words, so the output is about
    # 3 LU quieter (measured -3.3; RNNoise and MMSE-LSA keep the level within 0.3 dB).
    data = enhance_file(str(src), params(tmp_path / "default"))
    d = data["enhance"]
    assert "denoise deepfilter 60" in d["chain"]
    assert d["change"]["noise_floor_dbfs"] < e["change"]["noise_floor_dbfs"] - 5
    assert d["change"]["snr_db"] > e["change"]["snr_db"]
    assert -4.5 < d["change"]["loudness_lufs"] < 0
    y, _ = sf.read(d["output"], dtype="float32")
    assert y.shape == x.shape and lag_of(x[:, 0], y[:, 0]) == 0


# --- CLI ------------------------------------------------------------------------------------------

def test_cli_enhance_collection_resume_and_where(archive, tmp_path, monkeypatch):
    from audiotrove.cli import app

    folder, *_ = archive
    runner = CliRunner()
    coll = tmp_path / "coll"
    assert runner.invoke(app, ["init", str(coll)]).exit_code == 0
    assert runner.invoke(app, ["-C", str(coll), "add", str(folder)]).exit_code == 0
    out = tmp_path / "restored"
    r = runner.invoke(app, ["-C", str(coll), "enhance", "-o", str(out), "--denoise", "50", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert (out / "tape.enhanced.wav").is_file()
    assert "tape.wav" in r.stdout and "→" in r.stdout  # the before/after table
    r = runner.invoke(app, ["-C", str(coll), "enhance", "-o", str(out), "--denoise", "50", "-j", "1"])
    assert r.exit_code == 0 and "1 already up to date" in r.output
    (out / "tape.enhanced.wav").unlink()
    r = runner.invoke(app, ["-C", str(coll), "enhance", "-o", str(out), "--denoise", "50", "-j", "1"])
    assert r.exit_code == 0 and (out / "tape.enhanced.wav").is_file() and "made again" in r.output
    r = runner.invoke(app, ["-C", str(coll), "enhance", "-o", str(out), "--where", "audio.noise.snr_average > 200"])
    assert r.exit_code == 0 and "nothing to enhance" in r.output
    r = runner.invoke(app, ["-C", str(coll), "enhance", "-o", str(out), "--denoise", "500"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["-C", str(coll), "ls", "--format", "jsonl", "--fields", "path,enhance.output"])
    assert r.exit_code == 0 and "tape.enhanced.wav" in r.stdout


def test_cli_one_off_without_collection(archive, tmp_path, monkeypatch):
    from audiotrove.cli import app

    folder, *_ = archive
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["enhance", str(folder / "tape.wav"), "-o", "out", "--highpass", "100", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "tape.enhanced.wav").is_file()
    assert not (tmp_path / ".audiotrove").exists()


def test_memory_does_not_grow_with_duration():
    """The chain streams: peak memory for 80 s is that of 20 s (no whole-file buffers)."""
    import tracemalloc

    from audiotrove.steps.enhance import build_chain, resolve_options, run_chain

    sr = 16000
    base = degraded(sr, seconds=4.0, seed=3)[1][:, None]
    analysis = {"noise": {"hum": {"frequency": 50.0, "frequency_measured": 50.0, "harmonics": [1, 2, 3]}}}

    def peak(seconds: float) -> int:
        def blocks():
            for _ in range(int(seconds * sr) // 65536):
                yield np.resize(base, (65536, 1))
        opts = resolve_options({**DEFAULTS})
        plan = build_chain(opts, sample_rate=sr, channels=1, analysis_audio=analysis, prepass={})
        tracemalloc.start()
        total = [0]
        run_chain(blocks(), plan.stages, lambda y: total.__setitem__(0, total[0] + len(y)))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total[0] == int(seconds * sr) // 65536 * 65536
        return top

    short, long = peak(20), peak(80)
    assert long < 1.3 * short, (short, long)
    assert long < 64 * 2**20


def test_video_stem_beside_the_video_and_format_is_never_ignored(tmp_path):
    from test_remux import make_video

    src = tmp_path / "clip.mp4"
    make_video(src, seconds=1.5)
    from audiotrove.io.decode import read_all

    x, rate = read_all(src)
    data = enhance_file(str(src), params(tmp_path / "out", preset="speech", stem="flac"))
    e = data["enhance"]
    stem = Path(e["stem"])
    assert stem == tmp_path / "out" / "clip.enhanced.stem.flac" and Path(e["output"]).suffix == ".mp4"
    y, sr = sf.read(stem, dtype="float32")
    assert sr == rate and y.shape == x.shape  # exactly as long as the source's audio
    assert lag_of(x[:, 0], y[:, 0]) == 0       # and sample-aligned with it
    # the stem is the audio of the video's new track (before AAC): the same sound
    track, _ = read_all(e["output"])
    assert np.corrcoef(track[2000:-2000, 0], y[2000:-2000, 0])[0, 1] > 0.98
    # --format with a video: the stem's format, or a clear error; never silently ignored
    data = enhance_file(str(src), params(tmp_path / "out2", preset="speech", format="wav"))
    assert data["enhance"]["stem"].endswith("clip.enhanced.stem.wav") and Path(data["enhance"]["stem"]).is_file()
    with pytest.raises(EnhanceError, match="--format mp3 does not apply to a video"):
        enhance_file(str(src), params(tmp_path / "out3", preset="speech", format="mp3"))
    with pytest.raises(EnhanceError, match="--stem takes wav or flac"):
        enhance_file(str(src), params(tmp_path / "out3", preset="speech", stem="mp3"))


def test_cli_stem_option(tmp_path):
    from test_remux import make_video

    from audiotrove.cli import app

    src = tmp_path / "clip.mp4"
    make_video(src, seconds=1.0)
    r = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "--stem", "wav",
                                 "--highpass", "80", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "clip.enhanced.mp4").is_file()
    assert (tmp_path / "out" / "clip.enhanced.stem.wav").is_file()
    r = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "--stem", "mp3"])
    assert r.exit_code == 2 and "--stem takes wav or flac" in r.output
