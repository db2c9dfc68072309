"""Speed and memory of `analyze` (the full per-file report), against baselines measured in the same run.

    .venv/bin/python bench/bench_analyze.py [--minutes 10] [--long-hours 2]

1. Builds a 44.1 kHz stereo 16-bit WAV of real speech and music (../shared/data, or generated
   tones and noise when absent), `--minutes` long.
2. Times, on one core, on that file:
   - pure decode (soundfile, blocks): the floor;
   - audiotrove's analyze of one file (every measurement, one pass);
   - the tutorial way: librosa.load + pyloudnorm integrated loudness + librosa RMS, spectral
     centroid/rolloff/bandwidth, zero-crossing rate and onset strength (comparable measures).
3. Writes a `--long-hours` file and measures the peak RSS of one worker process analyzing it.
Prints x-real-time and ratios; targets: >= 200x real time, >= 3x faster than librosa+pyloudnorm,
peak RSS < 500 MB on a 2-hour file.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before numpy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RATE = 44100


def source_material() -> np.ndarray:
    """Real speech and music at 44.1 kHz mono, or generated material when ../shared is absent."""
    import soxr

    clips = []
    if SHARED.exists():
        for pattern in ("speech/*.wav", "speech/*.flac", "music/*.ogg", "music/*.wav"):
            for path in sorted(SHARED.glob(pattern)):
                audio, sr = sf.read(path, dtype="float32", always_2d=True)
                clips.append(soxr.resample(audio.mean(axis=1), sr, RATE))
    if not clips:
        rng = np.random.default_rng(0)
        t = np.arange(RATE * 30) / RATE
        clips = [0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)),
                 0.05 * rng.standard_normal(RATE * 30)]
    return np.concatenate(clips).astype(np.float32)


def write_test_file(path: Path, seconds: float, material: np.ndarray) -> None:
    frames = int(seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as f:
        done = 0
        while done < frames:
            n = min(len(material), frames - done)
            chunk = material[:n]
            f.write(np.stack([chunk, 0.8 * chunk], axis=1))
            done += n


def time_it(fn) -> float:
    """CPU seconds of this process (one core; not skewed by other load on the machine)."""
    started = time.process_time()
    fn()
    return time.process_time() - started


def pure_decode(path: Path) -> None:
    from audiotrove.io.decode import open_audio

    for _ in open_audio(path).blocks():
        pass


def audiotrove_analyze(path: Path) -> dict:
    from audiotrove.steps.analyze import analyze_file

    return analyze_file(str(path))


def librosa_way(path: Path) -> None:
    import librosa
    import pyloudnorm

    y, sr = librosa.load(path, sr=None, mono=False)
    pyloudnorm.Meter(sr).integrated_loudness(y.T)
    mono = librosa.to_mono(y)
    librosa.feature.rms(y=mono)
    librosa.feature.spectral_centroid(y=mono, sr=sr)
    librosa.feature.spectral_rolloff(y=mono, sr=sr)
    librosa.feature.spectral_bandwidth(y=mono, sr=sr)
    librosa.feature.zero_crossing_rate(mono)
    librosa.onset.onset_strength(y=mono, sr=sr)


def per_meter_seconds(path: Path) -> dict[str, float]:
    """CPU seconds of each meter of `analyze` on the same decoded blocks."""
    from audiotrove.io.decode import open_audio
    from audiotrove.steps.analyze import DEFAULTS, build_meters

    reader = open_audio(path)
    blocks = list(reader.blocks())
    out = {}
    for meter in build_meters(reader.sample_rate, reader.channels, DEFAULTS):
        out[type(meter).__name__] = time_it(lambda: ([meter.update(b) for b in blocks], meter.result()))
    return out


def peak_rss_mb(path: Path) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of a fresh process analyzing `path`.

    VmHWM of /proc/self/status, not ru_maxrss: Linux carries ru_maxrss over exec from the
    forking parent, VmHWM belongs to the new process alone.
    """
    code = (
        "import sys, time; from audiotrove.steps.analyze import analyze_file; "
        "t = time.process_time(); analyze_file(sys.argv[1]); t = time.process_time() - t; "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print(int(hwm) / 1024, t)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--long-hours", type=float, default=2.0)
    args = parser.parse_args()
    material = source_material()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech_music_44k_stereo.wav"
        write_test_file(path, args.minutes * 60, material)
        seconds = args.minutes * 60
        audiotrove_analyze(path)  # warm-up: imports, model load
        t_decode = time_it(lambda: pure_decode(path))
        t_ours = time_it(lambda: audiotrove_analyze(path))
        try:
            t_librosa = time_it(lambda: librosa_way(path))
        except ImportError:
            t_librosa = float("nan")
        print(f"file: {args.minutes:g} min of 44.1 kHz stereo speech+music, one core")
        print(f"pure decode           {t_decode:7.2f} s  {seconds / t_decode:8.0f}x real time")
        print(f"audiotrove analyze    {t_ours:7.2f} s  {seconds / t_ours:8.0f}x real time"
              f"  ({t_ours / t_decode:.1f}x the decode floor)")
        print(f"librosa + pyloudnorm  {t_librosa:7.2f} s  {seconds / t_librosa:8.0f}x real time"
              f"  (audiotrove is {t_librosa / t_ours:.1f}x faster)")
        for name, secs in per_meter_seconds(path).items():
            print(f"  {name:<16} {secs:6.2f} s  {seconds / secs:8.0f}x real time")
        if args.long_hours > 0:
            long_path = Path(tmp) / "long.wav"
            write_test_file(long_path, args.long_hours * 3600, material)
            rss, secs = peak_rss_mb(long_path)
            print(f"{args.long_hours:g} h file: peak RSS of one worker {rss:.0f} MB, "
                  f"{args.long_hours * 3600 / secs:.0f}x real time")


if __name__ == "__main__":
    main()
