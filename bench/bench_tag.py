"""Speed of the `tag` step (issue 15): CPU seconds of one process per second of audio.

    python bench/bench_tag.py [--minutes 10]

File: the demo recordings (speech, strings, whale, trumpet, noise) looped into one 44.1 kHz
stereo WAV of --minutes. Baseline in the same run: decoding + mixing + resampling to 16 kHz
only (what any tagger pays before the model). Prints x real time per core for hop 0.48 s
(YAMNet's own, the default) and 0.96 s, peak memory growth of the process, and the top tags.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from audiotrove.io.decode import open_audio, read_all  # noqa: E402
from audiotrove.models.yamnet import load_yamnet  # noqa: E402
from audiotrove.steps.tag import tag_file  # noqa: E402


def build(path: Path, minutes: float) -> float:
    parts = []
    for f in sorted((ROOT / "demo" / "recordings").glob("*")):
        if f.suffix in (".wav", ".ogg", ".flac"):
            x, sr = read_all(f)
            x = soxr.resample(x if x.shape[1] == 2 else np.repeat(x, 2, axis=1), sr, 44100)
            parts.append(x.astype(np.float32))
    one = np.concatenate(parts)
    n = int(minutes * 60 * 44100)
    sf.write(path, np.resize(one, (n, 2)) if len(one) < n else one[:n], 44100, subtype="PCM_16")
    return n / 44100


def cpu() -> float:
    return time.process_time()


def baseline(path: Path) -> None:
    reader = open_audio(path)
    rs = soxr.ResampleStream(reader.sample_rate, 16000, 1, dtype="float32", quality="HQ")
    for block in reader.blocks():
        rs.resample_chunk(block.mean(axis=1, dtype=np.float32))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    load_yamnet()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        seconds = build(path, args.minutes)
        t = cpu()
        baseline(path)
        base = cpu() - t
        print(f"audio: {seconds / 60:.1f} min")
        print(f"decode + resample only: {seconds / base:.0f}x real time")
        for hop in (0.48, 0.96):
            t = cpu()
            tags = tag_file(str(path), {"hop_s": hop})["tags"]
            used = cpu() - t
            print(f"tag, hop {hop} s: {seconds / used:.0f}x real time per core "
                  f"({used:.1f} s CPU; {seconds / used / (seconds / base) * 100:.0f}% of the baseline's speed); "
                  f"windows {tags['windows']}; top: {tags['top']}")


if __name__ == "__main__":
    main()
