"""Benchmark: the features time series, speed and agreement with librosa, before vs after.

    python bench/bench_features.py [--base 76d02aa] [--seconds 60] [--repeat 3] [--no-write]

The baseline is the source tree of commit --base (extracted with `git archive` into a
temporary folder and imported as a second package), measured in the same run as this tree.

Speed: FeatureSeries with every feature (pitch and tempo included) and without pitch, 0.1 s
rows, on real music decoded up front; CPU time on one core (BLAS/OpenMP limited to one thread),
as x real time (seconds of audio per CPU second), best of --repeat runs, the two versions
taking turns.

Agreement: frame-level series (hop_s = the frame hop, so each row is one frame) against
librosa 0.11 with the same n_fft and hop: the Pearson correlation over frames per column
(the lowest over the 13 MFCC, the 7 contrast bands and the 12 chroma). MFCC are compared with
librosa's default (top_db=80 over the whole file) and with top_db=None (our definition).
Results are appended to bench/RESULTS_features.md (unless --no-write).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"

from audiotrove.dsp import features as NEW  # noqa: E402

MUSIC = ["music/Kevin_MacLeod_-_Vibe_Ace.ogg", "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
         "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
         "music/sms_cello-phrase.wav", "music/sms_singing-female.wav", "music/sms_orchestra.wav"]
NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def load_base(commit: str, tmp: Path):
    """The features module of `commit`, imported as package 'base_audiotrove'."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src/audiotrove"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    pkg = tmp / "src" / "audiotrove"
    spec = importlib.util.spec_from_file_location("base_audiotrove", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["base_audiotrove"] = mod
    spec.loader.exec_module(mod)
    import importlib as il
    return il.import_module("base_audiotrove.dsp.features")


def series(F, y, sr, *, hop_s, features):
    s = F.FeatureSeries(sample_rate_hz=sr, hop_s=hop_s, features=features)
    parts = [s.update(y[i:i + 65536]) for i in range(0, len(y), 65536)] + [s.finish()]
    return {c: np.concatenate([p[c] for p in parts]) for c in s.columns}


def speeds(versions, clips, features, repeat: int = 3) -> list[float]:
    """x real time of each version, best of `repeat`, the versions taking turns (a load that
    comes and goes on a shared machine falls on both)."""
    total = sum(len(y) / sr for y, sr in clips)
    best = [float("inf")] * len(versions)
    for _ in range(repeat):
        for k, F in enumerate(versions):
            t = time.process_time()
            for y, sr in clips:
                series(F, y, sr, hop_s=0.1, features=features)
            best[k] = min(best[k], time.process_time() - t)
    return [total / b for b in best]


def librosa_reference(y, sr, n_fft, hop, chroma_n_fft):
    import librosa

    kw = dict(n_fft=n_fft, hop_length=hop)
    ref = {"rms": 20 * np.log10(np.maximum(librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0], 1e-6)),
           "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0],
           "centroid": librosa.feature.spectral_centroid(y=y, sr=sr, **kw)[0],
           "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, **kw)[0],
           "flatness": librosa.feature.spectral_flatness(y=y, **kw)[0],
           "contrast": librosa.feature.spectral_contrast(y=y, sr=sr, **kw),
           "chroma": librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0, n_fft=chroma_n_fft, hop_length=hop),
           "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, **kw)}
    mel = librosa.feature.melspectrogram(y=y, sr=sr, **kw)
    ref["mfcc (top_db=None)"] = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13)
    return ref


def agreement(F, y, sr) -> dict[str, float]:
    n_fft, hop = F.analysis_frame(sr)
    t = series(F, y, sr, hop_s=hop / sr, features=("rms", "zcr", "centroid", "rolloff", "flatness",
                                                    "contrast", "chroma", "mfcc"))
    # chroma on frames CHROMA_FRAME_FACTOR times as long, where the version has them
    ref = librosa_reference(y, sr, n_fft, hop, getattr(F, "CHROMA_FRAME_FACTOR", 1) * n_fft)
    out = {}

    def corr(a, b):
        n = min(len(a), len(b))
        a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
        ok = np.isfinite(a) & np.isfinite(b)
        return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 and np.std(b[ok]) > 0 else float("nan")

    for name in ("rms", "zcr", "centroid", "rolloff", "flatness"):
        out[name] = corr(t[name], ref[name])
    out["contrast"] = min(corr(t[f"contrast_{i + 1}"], ref["contrast"][i]) for i in range(7))
    out["chroma"] = np.nanmin([corr(t[f"chroma_{n}"], ref["chroma"][i]) for i, n in enumerate(NOTES)])
    out["mfcc"] = min(corr(t[f"mfcc_{i + 1}"], ref["mfcc"][i]) for i in range(13))
    out["mfcc (top_db=None)"] = min(corr(t[f"mfcc_{i + 1}"], ref["mfcc (top_db=None)"][i]) for i in range(13))
    out["mfcc-top-db 80"] = float("nan")
    if hasattr(F, "mfcc_top_level_db"):  # the option `features --mfcc-top-db 80`
        top = F.mfcc_top_level_db([y], sample_rate_hz=sr, hop_s=hop / sr)
        s = F.FeatureSeries(sample_rate_hz=sr, hop_s=hop / sr, features=("mfcc",), mfcc_floor_db=top - 80)
        parts = [s.update(y), s.finish()]
        m = {c: np.concatenate([p[c] for p in parts]) for c in s.columns}
        out["mfcc-top-db 80"] = min(corr(m[f"mfcc_{i + 1}"], ref["mfcc"][i]) for i in range(13))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="76d02aa")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs of each version, in turns")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    clips = []
    for rel in MUSIC:
        path = DATA / rel
        if path.exists():
            y, sr = sf.read(path, dtype="float32", always_2d=True)
            clips.append((y.mean(axis=1)[: int(args.seconds * sr)].copy(), sr))
    if not clips:
        sys.exit(f"no music under {DATA}")
    lines = [f"Music: {len(clips)} files of ../shared/data/music, first {args.seconds:g} s each "
             f"({sum(len(y) / sr for y, sr in clips):.0f} s in all).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        BASE = load_base(args.base, Path(tmp))
        every = NEW.ALL_FEATURES
        no_pitch = tuple(f for f in every if f != "pitch")
        lines += ["| speed, x real time (one core) | before | after | after / before |", "|---|---|---|---|"]
        for label, feats in (("all features", every), ("all but pitch", no_pitch)):
            b, a = speeds([BASE, NEW], clips, feats, args.repeat)
            lines.append(f"| {label} | {b:.0f} | {a:.0f} | {a / b:.2f} |")
            print(lines[-1], flush=True)
        try:
            import librosa  # noqa: F401
        except ImportError:
            lines.append("\n(librosa not installed: no agreement table)")
        else:
            names = ["rms", "zcr", "centroid", "rolloff", "flatness", "contrast", "chroma", "mfcc", "mfcc (top_db=None)",
                     "mfcc-top-db 80"]
            lines += ["", "Correlation with librosa over frames (lowest of the bands for contrast, chroma, mfcc; "
                      "chroma against chroma_stft(n_fft=2 n_fft) where the version uses such frames; mfcc and "
                      "mfcc-top-db 80 against librosa's default mfcc, mfcc (top_db=None) against its unclipped one):", "",
                      "| file | version | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
            for (y, sr), rel in zip(clips, [m for m in MUSIC if (DATA / m).exists()]):
                for label, F in (("before", BASE), ("after", NEW)):
                    c = agreement(F, y, sr)
                    lines.append(f"| {Path(rel).stem[:28]} | {label} | " + " | ".join(f"{c[n]:.3f}" for n in names) + " |")
                    print(lines[-1], flush=True)
    if not args.no_write:
        out = ROOT / "bench" / "RESULTS_features.md"
        head = "" if out.exists() else "# Features: speed and agreement with librosa (issue 11)\n"
        with out.open("a", encoding="utf-8") as f:
            f.write(head + f"\n## {time.strftime('%Y-%m-%d %H:%M')} `python bench/bench_features.py --base {args.base} "
                    f"--seconds {args.seconds:g} --repeat {args.repeat}`\n\nMachine: 2-core x86_64, 24 GB, CPython "
                    f"{sys.version.split()[0]}; CPU time of one process.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
