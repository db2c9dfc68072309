"""Decode throughput per format: audiotrove's block decoder vs a plain FFmpeg decode.

For each format (wav, flac, mp3, ogg/vorbis, m4a/aac, opus) the same files are decoded
  - by `audiotrove.io.decode.open_audio(path).blocks()` (float32 blocks, in this process), and
  - by `ffmpeg -threads 1 -i FILE -f null -` (the baseline, measured in the same run),
and the script prints seconds of audio decoded per wall-clock second (x real time) and the
ratio ours / ffmpeg (> 1: we are faster). The ffmpeg figure includes its process start-up,
which is why the files are long (several minutes of audio per format).

The test signal is generated with numpy (speech-like bursts over a chord and pink-ish noise,
stereo, 44.1 kHz) and encoded once with ffmpeg. Needs the `ffmpeg` command: without it the
script says so and exits 0 (install: apt-get install -y ffmpeg).

    python bench/bench_decode.py [--seconds 180] [--files 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# name: (file suffix, ffmpeg encoder arguments)
FORMATS = {
    "wav": (".wav", ["-c:a", "pcm_s16le"]),
    "flac": (".flac", ["-c:a", "flac"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    "ogg": (".ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "160k"]),
    "opus": (".opus", ["-c:a", "libopus", "-b:a", "96k", "-ar", "48000"]),
}


def test_signal(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """Stereo music-and-speech-like material, float32 (frames, 2), peak about -3 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    chord = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 277.2, 329.6, 440.0))
    syllables = (np.sin(2 * np.pi * 4.0 * t) > 0.3) * np.sin(2 * np.pi * 150 * t * (1 + 0.1 * np.sin(t)))
    white = rng.standard_normal((n, 2))
    pinkish = np.cumsum(white, axis=0)
    pinkish -= np.linspace(pinkish[0], pinkish[-1], n)  # remove the random walk's drift
    pinkish /= np.max(np.abs(pinkish))
    mono = 0.25 * chord / 4 + 0.3 * syllables
    out = np.stack([mono, np.roll(mono, 441)], axis=1) + 0.15 * pinkish + 0.02 * white
    return (0.7 * out / np.max(np.abs(out))).astype(np.float32)


def make_files(folder: Path, *, seconds: float, files: int) -> dict[str, list[Path]]:
    import soundfile as sf

    sources = []
    for i in range(files):
        src = folder / f"source{i}.wav"
        sf.write(src, test_signal(seconds, 44100, seed=i), 44100, subtype="PCM_16")
        sources.append(src)
    out: dict[str, list[Path]] = {}
    for name, (suffix, args) in FORMATS.items():
        out[name] = []
        for i, src in enumerate(sources):
            dst = folder / f"{name}{i}{suffix}"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)],
                           check=True)
            out[name].append(dst)
    return out


def decode_ours(paths: list[Path]) -> tuple[float, float, str]:
    """(seconds of audio, wall seconds, backend) for decoding every file in blocks."""
    from audiotrove.io.decode import open_audio

    audio_s = 0.0
    backends = set()
    start = time.perf_counter()
    for path in paths:
        reader = open_audio(path)
        frames = 0
        for block in reader.blocks():
            frames += len(block)
        audio_s += frames / reader.sample_rate
        backends.add(reader.backend)
    return audio_s, time.perf_counter() - start, "+".join(sorted(backends))


def decode_ffmpeg(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path),
                        "-f", "null", "-"], check=True)
    return time.perf_counter() - start


def ffmpeg_startup_s(folder: Path, suffix: str, args: list[str], runs: int = 5) -> float:
    """Wall time of `ffmpeg -f null` on a 0.1 s file of the format: its start-up cost."""
    import soundfile as sf

    src = folder / "tiny_source.wav"
    sf.write(src, np.zeros((4410, 2), np.float32), 44100)
    tiny = folder / f"tiny{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(tiny)],
                   check=True)
    return min(decode_ffmpeg([tiny]) for _ in range(runs))  # the least: a conservative estimate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each file (s)")
    parser.add_argument("--files", type=int, default=2, help="files per format")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("bench_decode: skipped, the `ffmpeg` command is not installed "
              "(apt-get install -y ffmpeg)")
        return 0
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                             check=False).stdout.split("\n")[0]
    import av

    print(f"# decode throughput: {args.files} x {args.seconds:.0f} s stereo 44.1 kHz per format, "
          f"best of {args.repeat}")
    print(f"# baseline: {version} (`-threads 1 -f null`, process start included); "
          f"ours: PyAV {av.__version__} / soundfile, in process")
    print(f"# python {platform.python_version()}, {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        files = make_files(Path(tmp), seconds=args.seconds, files=args.files)
        print()
        print("| format | our backend | ours (x real time) | ffmpeg -f null (x real time) "
              "| ffmpeg without start-up | ours / ffmpeg | ours / ffmpeg without start-up |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, paths in files.items():
            suffix, enc_args = FORMATS[name]
            startup = ffmpeg_startup_s(Path(tmp), suffix, enc_args)
            decode_ours(paths[:1])  # warm-up: imports, page cache
            decode_ffmpeg(paths[:1])
            ours_best, ffmpeg_best, audio_s, backend = float("inf"), float("inf"), 0.0, ""
            for _ in range(args.repeat):
                audio_s, wall, backend = decode_ours(paths)
                ours_best = min(ours_best, wall)
                ffmpeg_best = min(ffmpeg_best, decode_ffmpeg(paths))
            ours_x, ffmpeg_x = audio_s / ours_best, audio_s / ffmpeg_best
            net_s = ffmpeg_best - startup * len(paths)
            if net_s > 0.2 * ffmpeg_best:
                net_x = audio_s / net_s
                net = f"{net_x:.0f} | {ours_x / ffmpeg_x:.2f} | {ours_x / net_x:.2f}"
            else:  # start-up is most of the time: files too short (--seconds) to tell
                net = f"n/a | {ours_x / ffmpeg_x:.2f} | n/a"
            print(f"| {name} | {backend} | {ours_x:.0f} | {ffmpeg_x:.0f} | {net} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
