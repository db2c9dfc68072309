"""Speed of the `tag` and `classify predict` steps (issue 15): CPU seconds of one process per
second of audio.

    python bench/bench_tag.py [--minutes 10]

File: the demo recordings (speech, strings, whale, trumpet, noise) looped into one 44.1 kHz
stereo WAV of --minutes. Baseline in the same run: decoding + mixing + resampling to 16 kHz
only (what any tagger pays before the model). Prints x real time per core for hop 0.48 s
(YAMNet's own, the default) and 0.96 s, and with the file's onset units tagged too; then
`classify predict` (steps/classify.classify_file) with a classifier trained on the demo
recordings' 1 s YAMNet windows (one class per recording), file and window level, each of
logreg / svm / hgb.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread per process, as the runner's workers run

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402

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
        from audiotrove.steps.segment import segment_file

        seg = segment_file(str(path), {}, units_dir=tmp)["units"]
        t = cpu()
        tags = tag_file(str(path), {}, units_path=str(Path(tmp) / seg["shard"]), tables_dir=tmp, table_name="u")["tags"]
        used = cpu() - t
        print(f"tag with its {seg['count']} onset units tagged too: {seconds / used:.0f}x real time per core")
        predict_speed(Path(tmp), path, seconds)


def predict_speed(tmp: Path, path: Path, seconds: float) -> None:
    import json

    from audiotrove.models import classifier as clf
    from audiotrove.models.embedders import get_embedder
    from audiotrove.steps.classify import classify_file, item_vectors

    key = get_embedder("yamnet").key
    X, labels = [], []
    for f in sorted((ROOT / "demo" / "recordings").glob("*")):
        if f.suffix in (".wav", ".ogg", ".flac"):
            _, v = item_vectors(str(f), key, level="window")
            X.append(v)
            labels += [f.stem] * len(v)
    X = np.concatenate(X)
    for name in clf.CLASSIFIERS:
        for level in ("file", "window"):
            model = clf.train(X, labels, embedding=key, classifier=name, level=level,
                              window_s=1.0 if level == "window" else None)
            mpath = tmp / f"{name}-{level}.json"
            mpath.write_text(json.dumps(model))
            t = cpu()
            out = classify_file(str(path), {"model_path": str(mpath)}, workdir=str(tmp), file_id=1)["class"]
            used = cpu() - t
            print(f"classify predict, {name}, {level} level: {seconds / used:.0f}x real time per core "
                  f"({used:.1f} s CPU; label {out['label']})")


if __name__ == "__main__":
    main()
