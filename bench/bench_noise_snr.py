"""Benchmark: noise level and SNR of speech in white and pink noise, before vs after.

    python bench/bench_noise_snr.py [--base 76d02aa] [--no-write]

Speech: six read-speech files of ../shared/data/speech (LibriSpeech, CMU ARCTIC, LibriVox,
AISHELL), their own background removed by a gate (20 ms frames more than 40 dB under the
file's 95th-percentile frame are set to zero, with 20 ms ramps) so the added noise is the only
noise. Noise: white, and pink from 20 Hz (generated). True SNR: the mean power of the clean
speech over its frames within 30 dB of its 95th-percentile frame, over the noise power.
Mixed at 0, 5, 10, 20 and 30 dB; also noise alone (10 s) for the level. The baseline is the
noise meter of commit --base, imported from a `git archive` in the same run.

Results are appended to bench/RESULTS_noise.md (unless --no-write).
"""
from __future__ import annotations

import argparse
import importlib
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

from audiotrove.dsp import noise as NEW  # noqa: E402

SPEECH = ["speech/2412-153948-0000.flac", "speech/librispeech-1995-1837-0001.wav",
          "speech/cmu_arctic_us_aew_a0001.wav", "speech/cmu_arctic_us_axb_a0004.wav",
          "speech/sense_and_sensibility_01_austen_64kb-0870.wav", "speech/aishell-BAC009S0724W0121.wav"]
SNRS = (0, 5, 10, 20, 30)


def load_base(commit: str, tmp: Path, module: str):
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src/audiotrove"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    pkg = tmp / "src" / "audiotrove"
    spec = importlib.util.spec_from_file_location("base_audiotrove", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["base_audiotrove"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module(f"base_audiotrove.{module}")


def frame_power(x: np.ndarray, sr: int) -> np.ndarray:
    n = int(0.02 * sr)
    m = len(x) // n
    f = x[: m * n].reshape(m, n).astype(np.float64)
    f = f - f.mean(axis=1, keepdims=True)
    return (f * f).mean(axis=1)


def gate(s: np.ndarray, sr: int) -> np.ndarray:
    n = int(0.02 * sr)
    p = frame_power(s, sr)
    lv = 10 * np.log10(p + 1e-20)
    keep = np.repeat((lv > np.percentile(lv, 95) - 40).astype(float), n)
    keep = np.convolve(keep, np.ones(n) / n, "same")
    out = np.zeros_like(s)
    out[: len(keep)] = s[: len(keep)] * keep
    return out


def active_power(s: np.ndarray, sr: int) -> float:
    p = frame_power(s, sr)
    lv = 10 * np.log10(p + 1e-20)
    return float(p[lv > np.percentile(lv, 95) - 30].mean())


def pink(n: int, sr: int, rng) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec = np.where(f >= 20, spec / np.sqrt(np.maximum(f, 20)), 0)
    y = np.fft.irfft(spec, n)
    return y / y.std()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="76d02aa")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        BASE = load_base(args.base, Path(tmp), "dsp.noise")
        meters = (("before", BASE), ("after", NEW))
        err = {(v, k, s): [] for v, _ in meters for k in ("white", "pink") for s in SNRS}
        ferr = {(v, k, s): [] for v, _ in meters for k in ("white", "pink") for s in SNRS}
        for rel in SPEECH:
            s, sr = sf.read(DATA / rel, dtype="float64")
            s = gate(s / np.abs(s).max() * 0.3, sr)
            ps = active_power(s, sr)
            for kind in ("white", "pink"):
                nz = rng.standard_normal(len(s)) if kind == "white" else pink(len(s), sr, rng)
                for snr in SNRS:
                    n_pow = ps / 10 ** (snr / 10)
                    x = (s + nz * np.sqrt(n_pow)).astype(np.float32)
                    for v, M in meters:
                        r = M.measure_noise(x, sample_rate=sr)["noise"]
                        est = r["snr_average"]
                        err[(v, kind, snr)].append(np.nan if est is None else est - snr)
                        ferr[(v, kind, snr)].append(r["level_average"] - 10 * np.log10(n_pow))
        lines += [f"Speech: {len(SPEECH)} files, each mixed at each SNR. Error = measured - true, dB: "
                  "mean over files / largest absolute.", "",
                  "| noise | version | " + " | ".join(f"SNR {s} dB" for s in SNRS) + " | level error (all SNRs) |",
                  "|---|---|" + "---|" * (len(SNRS) + 1)]
        for kind in ("white", "pink"):
            for v, _ in meters:
                cells = [f"{np.nanmean(err[(v, kind, s)]):+.1f} / {np.nanmax(np.abs(err[(v, kind, s)])):.1f}"
                         for s in SNRS]
                fe = np.concatenate([ferr[(v, kind, s)] for s in SNRS])
                lines.append(f"| {kind} | {v} | " + " | ".join(cells) + f" | {fe.mean():+.1f} / {np.abs(fe).max():.1f} |")
                print(lines[-1], flush=True)
        lines += ["", "Noise alone, 10 s, level error (measured - true, dB), mean / largest over 5 seeds:", "",
                  "| noise | sample rate | before | after |", "|---|---|---|---|"]
        for kind in ("white", "pink"):
            for sr in (16000, 44100):
                row = {}
                for v, M in meters:
                    e = []
                    for seed in range(5):
                        r2 = np.random.default_rng(100 + seed)
                        nz = r2.standard_normal(10 * sr) if kind == "white" else pink(10 * sr, sr, r2)
                        nz = (0.01 * nz).astype(np.float32)
                        e.append(M.measure_noise(nz, sample_rate=sr)["noise"]["level_average"] - 10 * np.log10(np.mean(nz.astype(np.float64) ** 2)))
                    row[v] = f"{np.mean(e):+.2f} / {np.max(np.abs(e)):.2f}"
                lines.append(f"| {kind} | {sr} | {row['before']} | {row['after']} |")
                print(lines[-1], flush=True)
    lines += ["", "At 30 dB the residue of each file's own background (above the gate) still adds to the "
              "added noise: both versions read the SNR low there."]
    if not args.no_write:
        out = ROOT / "bench" / "RESULTS_noise.md"
        head = "" if out.exists() else "# Noise level and SNR against the truth (issue 11)\n"
        with out.open("a", encoding="utf-8") as f:
            f.write(head + f"\n## {time.strftime('%Y-%m-%d %H:%M')} `python bench/bench_noise_snr.py --base {args.base}`\n\n"
                    "Machine: 2-core x86_64, 24 GB.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
