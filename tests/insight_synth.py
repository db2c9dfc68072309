"""Collections for the insight tests (query, ls/stats/export, report): real audio files written
with numpy + soundfile, registered in a catalog, with `analyze` results whose media_info comes
from the real probe and whose acoustic measurements are set by the test (so the expected answers
are known exactly, whatever the analyze meters measure)."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiotrove.catalog.db import Catalog
from audiotrove.io.probe import probe


def speech_like(sr: int, seconds: float, *, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Syllable-rate bursts of harmonic tones with pauses (a stand-in for speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = (np.sin(2 * np.pi * 4 * t) > 0.2).astype(float)
    envelope = np.convolve(envelope, np.ones(160) / 160, mode="same")
    noise = rng.normal(0, 0.002, t.size)
    return (level * voice / 2 * envelope + noise).astype(np.float32)


def sine(sr: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _audio(loudness, true_peak, floor, snr, *, clip=None, speech=80.0, silence=10.0, music=5.0,
           hum=None, bandwidth=7000.0, duration=1.0) -> dict:
    clip_sections = clip or []
    return {
        "non_finite_samples": 0,
        "loudness": {"measured": loudness, "range": 5.0, "momentary_max": loudness + 6,
                     "short_term_max": loudness + 3, "sample_peak": true_peak - 0.3,
                     "true_peak": true_peak, "gating_mode": "ebu_r128"},
        "clipping": {"num_sections": len(clip_sections),
                     "percentage": 100.0 * sum(b - a for a, b in clip_sections) / duration,
                     "sections": clip_sections},
        "noise": {"level_average": floor, "snr_average": snr,
                  "hum": {"frequency": hum, "level": 25.0 if hum else None,
                          "harmonics": [1, 2, 3] if hum else []},
                  "clicks_per_minute": 0.5, "dc_offset": 0.0},
        "bandwidth": {"frequency": bandwidth},
        "speech": {"percentage": speech, "num_sections": 2, "sections": [[0.1, 0.5], [0.6, 0.9]]},
        "music": {"percentage": music, "num_sections": 0, "sections": []},
        "silence": {"percentage": silence, "num_sections": 1, "sections": [[0.9, 1.0]]},
        "other": {"percentage": 100.0 - speech - silence - music, "num_sections": 0, "sections": []},
    }


def record_analysis(cat: Catalog, path: Path, audio: dict | None, *, error: str | None = None,
                    elapsed_s: float = 0.05, created_at: float | None = None) -> None:
    """Store an `analyze` result for a registered file: media_info from the real probe."""
    fid = cat.conn.execute("SELECT id FROM files WHERE path=?", (str(path),)).fetchone()[0]
    h = hashlib.sha1(path.read_bytes()).hexdigest()
    st = path.stat()
    if error is None:
        media_info = probe(path)
        info = sf.info(str(path)) if path.suffix in (".wav", ".flac", ".aiff") else None
        if info is not None:
            media_info["container"]["duration"] = info.frames / info.samplerate
        data = {"media_info": media_info, "audio": audio or {}}
        status = "ok"
    else:
        data, status = None, "error"
    cat.record(fid, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=h, step="analyze",
               step_version="test", params_hash="test", params={}, status=status, error=error,
               data=data, elapsed_s=elapsed_s)
    if created_at is not None:
        cat.conn.execute("UPDATE results SET created_at=? WHERE content_hash=? AND step='analyze'",
                         (created_at, h))


# name -> (writer, audio measurements or error): 7 clean-ish 16 kHz mono files and the problems.
def build_collection(root: Path) -> dict:
    """Write the files, register them, record their analysis. Returns {name: Path} plus 'root'."""
    audio_dir = root / "audio"
    audio_dir.mkdir(parents=True)
    sr = 16000
    files: dict[str, tuple[Path, dict | None, str | None]] = {}

    def put(name, data, rate, audio, *, error=None, subtype="PCM_16", fmt=None):
        p = audio_dir / name
        sf.write(p, data, rate, subtype=subtype, format=fmt)
        files[name] = (p, audio, error)

    for k in range(6):
        x = speech_like(sr, 2.0 + 0.5 * k, seed=k)
        put(f"talk{k:02d}.wav", x, sr,
            _audio(-24.0 + k, -6.0 + k * 0.2, -65.0 - k, 40.0 + k, duration=len(x) / sr))
    x = np.clip(sine(sr, 2.0, 440, 1.6), -1, 1)
    put("clipped.wav", x, sr, _audio(-4.0, 0.4, -70.0, 60.0, clip=[[0.2, 0.5], [1.0, 1.3]], duration=2.0))
    x = (np.random.default_rng(5).normal(0, 0.0002, sr * 2)).astype(np.float32)
    put("silent.wav", x, sr, _audio(-72.0, -62.0, -75.0, 3.0, speech=0.0, silence=98.0, music=0.0, duration=2.0))
    x = (speech_like(sr, 2.0, seed=9) + np.random.default_rng(6).normal(0, 0.08, sr * 2)).astype(np.float32)
    put("noisy.wav", x, sr, _audio(-20.0, -2.0, -28.0, 6.5, hum=50, duration=2.0))
    x = np.stack([speech_like(44100, 2.0, seed=11), speech_like(44100, 2.0, seed=12)], axis=1)
    put("offspec.flac", x, 44100, _audio(-23.0, -3.0, -66.0, 45.0, bandwidth=15000.0, duration=2.0))
    x = speech_like(22050, 1.5, seed=13)
    put("legacy.aiff", x, 22050, _audio(-25.0, -5.0, -60.0, 35.0, duration=1.5), fmt="AIFF")
    broken = audio_dir / "broken.wav"
    broken.write_text("this is not audio\n")
    files["broken.wav"] = (broken, None, "not a readable audio/video file: Invalid data found")

    cat = Catalog.create(root)
    cat.add_files([(str(p), "file", str(audio_dir)) for p, _, _ in files.values()])
    now = time.time()
    for k, (name, (p, audio, error)) in enumerate(sorted(files.items())):
        record_analysis(cat, p, audio, error=error, created_at=now + k * 1e-3)
    cat.close()
    out = {name: p for name, (p, _, _) in files.items()}
    out["root"] = root
    return out


# ---------------------------------------------------------------------------------------------
# catalogs without audio files: synthetic analyze results only (queries, ls, stats, export)

CODECS = ["pcm_s16le", "flac", "mp3", "vorbis"]


def synthetic(rng: np.random.Generator, k: int) -> dict:
    """analyze-shaped data with some fields missing, some null."""
    codec = CODECS[k % 4]
    data = {
        "media_info": {
            "container": {"kind": {"pcm_s16le": "wav", "vorbis": "ogg"}.get(codec, codec),
                          "duration": float(np.round(rng.uniform(1, 900), 2)),
                          "bitrate": int(rng.choice([64000, 128000, 256000])), "size": int(rng.integers(1e4, 1e8))},
            "audio": {"codec": codec, "channels": int(rng.choice([1, 2])),
                      "sample_rate": int(rng.choice([16000, 44100, 48000])),
                      "bit_depth": None if codec in ("mp3", "vorbis") else 16},
            "has_audio": True, "has_video": bool(k % 7 == 0),
        },
        "audio": {
            "loudness": {"measured": float(np.round(rng.normal(-24, 8), 1)) if k % 11 else None,
                         "true_peak": float(np.round(rng.uniform(-20, 1), 1))},
            "clipping": {"num_sections": int(k % 5 == 0) * 3, "percentage": float(k % 5 == 0),
                         "sections": [[1.0, 1.5]] if k % 5 == 0 else []},
            "noise": {"level_average": float(np.round(rng.normal(-60, 10), 1)),
                      "snr_average": float(np.round(rng.uniform(0, 60), 1)),
                      "hum": {"frequency": [None, 50, 60][k % 3], "level": None, "harmonics": []}},
        },
    }
    if k % 13 == 0:
        del data["audio"]["noise"]
    return data


def fill(cat: Catalog, n: int, seed: int = 0) -> dict[int, str]:
    rng = np.random.default_rng(seed)
    cat.add_files([(f"/coll/{'box' + str(k % 3)}/file{k:03d}_{'afs04' if k % 10 == 3 else 'x'}.wav",
                    "file", "/coll") for k in range(n)])
    ids = {r[0]: r[1] for r in cat.conn.execute("SELECT id, path FROM files ORDER BY id")}
    for k, (fid, path) in enumerate(ids.items()):
        if k % 17 == 16:
            continue  # pending
        status = "error" if k % 19 == 18 else "ok"
        cat.record(fid, size_bytes=1000 + k, mtime_ns=k, content_hash=f"h{k}", step="analyze",
                   step_version="1", params_hash="p", params={}, status=status,
                   error="decode failed" if status == "error" else None,
                   data=synthetic(rng, k) if status == "ok" else None, elapsed_s=0.01 * (k + 1))
    return ids
