"""Integrated loudness of audiotrove's LoudnessMeter against FFmpeg's ebur128 filter, speed
against pyloudnorm, checks of ClippingMeter (clean and clipped tones, the real files), and
the one-hour throughput of LoudnessMeter + ClippingMeter.

    python bench/bench_loudness_vs_ffmpeg.py            # everything, prints a report
    python bench/bench_loudness_vs_ffmpeg.py --no-hour  # skip the one-hour noise run
    python bench/bench_loudness_vs_ffmpeg.py --no-clipping  # skip the clipping checks
    python bench/bench_loudness_vs_ffmpeg.py --append   # also append to bench/RESULTS_loudness.md

Files: shared/data/music/* and shared/data/speech/*.{wav,flac,ogg} (beside the checkout).
FFmpeg is needed for the comparison (Debian/Ubuntu: `apt-get update && apt-get install -y
ffmpeg`); without it that part is skipped. pyloudnorm is a benchmark-only dependency
(`pip install pyloudnorm`); without it the speed comparison is skipped.

Everything runs on one core (BLAS threads pinned to 1 before numpy is imported). Speeds
are x real time over decoded arrays (decoding excluded), best of 3 runs, measured in the
same run for every contender.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from audiotrove.dsp.clipping import ClippingMeter
from audiotrove.dsp.loudness import LoudnessMeter
from audiotrove.io.decode import DecodeError, read_all

DATA = REPO.parent / "shared" / "data"
TARGET_LU = 0.1


def bench_files() -> list[Path]:
    music = [
        p
        for p in sorted((DATA / "music").glob("*"))
        if p.suffix.lower() in (".ogg", ".wav", ".flac", ".mp3")
    ]
    speech = [
        p
        for p in sorted((DATA / "speech").glob("*"))
        if p.suffix.lower() in (".wav", ".flac", ".ogg")
    ]
    return music + speech


def ours(audio: np.ndarray, sample_rate: int, *, peaks: bool) -> dict:
    meter = LoudnessMeter(sample_rate, audio.shape[1], peaks=peaks)
    for i in range(0, len(audio), 65536):
        meter.update(audio[i : i + 65536])
    return meter.result()["loudness"]


def ffmpeg_integrated(path: Path) -> float | None:
    """Integrated loudness (LUFS, 3 decimals) from FFmpeg's ebur128 metadata on the last frame."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as tmp:
        cmd = [
            "ffmpeg",
            "-nostats",
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-af",
            f"ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file={tmp.name}",
            "-f",
            "null",
            "-",
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            return None
        values = re.findall(r"lavfi\.r128\.I=(-?[0-9.]+|-inf|nan)", Path(tmp.name).read_text())
    if not values:
        return None
    v = float(values[-1])
    return v if np.isfinite(v) and v > -70 else None


def _fmt(value: float | None) -> str:
    return "None" if value is None else f"{value:.3f}"


def best_of(fn, repeat=3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def compare(lines: list[str]) -> None:
    files = bench_files()
    if not files:
        lines.append(f"no files under {DATA}: comparison skipped")
        return
    have_ffmpeg = shutil.which("ffmpeg") is not None
    try:
        import pyloudnorm
    except ImportError:  # benchmark-only dependency
        pyloudnorm = None
    if not have_ffmpeg:
        lines.append(
            "ffmpeg not found: install it with `apt-get update && apt-get install -y ffmpeg`; "
            "FFmpeg comparison skipped"
        )
    if pyloudnorm is None:
        lines.append(
            "pyloudnorm not installed (`pip install pyloudnorm`): speed comparison skipped"
        )

    lines.append("")
    lines.append("| file | rate Hz | ch | s | audiotrove I LUFS | FFmpeg I LUFS | diff LU |")
    lines.append("|---|---|---|---|---|---|---|")
    diffs = []
    total_s = 0.0
    t_ours = t_ours_tp = t_pyln = 0.0
    for path in files:
        audio, sr = read_all(path)
        seconds = len(audio) / sr
        total_s += seconds
        res = ours(audio, sr, peaks=False)
        mine = res["measured"]
        ref = ffmpeg_integrated(path) if have_ffmpeg else None
        diff = None if (mine is None or ref is None) else mine - ref
        if diff is not None:
            diffs.append(diff)
        lines.append(
            f"| {path.parent.name}/{path.name} | {sr} | {audio.shape[1]} | {seconds:.1f} | "
            f"{_fmt(mine)} | {_fmt(ref)} | {_fmt(diff)} |"
        )
        t_ours += best_of(lambda a=audio, r=sr: ours(a, r, peaks=False))
        t_ours_tp += best_of(lambda a=audio, r=sr: ours(a, r, peaks=True))
        if pyloudnorm is not None and seconds >= 0.4:  # pyloudnorm needs one 400 ms block
            meter = pyloudnorm.Meter(sr)
            data = audio.astype(np.float64)
            data = data if data.shape[1] > 1 else data[:, 0]
            t_pyln += best_of(lambda m=meter, d=data: m.integrated_loudness(d))
    lines.append("")
    if diffs:
        d = np.abs(diffs)
        within = int((d <= TARGET_LU).sum())
        lines.append(
            f"FFmpeg agreement: {len(diffs)} files, max |diff| {d.max():.3f} LU, mean |diff| {d.mean():.3f} LU, "
            f"{within}/{len(diffs)} within {TARGET_LU} LU"
        )
    lines.append(
        f"speed over {total_s:.1f} s of audio: audiotrove LoudnessMeter {total_s / t_ours:.0f}x real time "
        f"(loudness only), {total_s / t_ours_tp:.0f}x (with sample + true peak)"
    )
    if pyloudnorm is not None and t_pyln > 0:
        lines.append(
            f"pyloudnorm {_version('pyloudnorm')} integrated_loudness: {total_s / t_pyln:.0f}x real time; "
            f"ratio audiotrove/pyloudnorm: {t_pyln / t_ours:.2f}x (loudness only), "
            f"{t_pyln / t_ours_tp:.2f}x (audiotrove also doing LRA, max M/S and true peak)"
        )


def one_hour(lines: list[str], seconds: float = 3600.0) -> None:
    """White noise (0.1 RMS), 44.1 kHz stereo, generated block by block; only meters timed."""
    fs, block = 44100, 65536
    rng = np.random.default_rng(1)
    loud = LoudnessMeter(fs, 2)
    clip = ClippingMeter(fs, 2)
    total = int(seconds * fs)
    wall = {"loudness": 0.0, "clipping": 0.0}
    cpu = {"loudness": 0.0, "clipping": 0.0}
    done = 0

    def timed(key, fn, *a):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*a)
        wall[key] += time.perf_counter() - w
        cpu[key] += time.process_time() - c
        return out

    while done < total:
        n = min(block, total - done)
        x = rng.standard_normal((n, 2), dtype=np.float32)
        x *= 0.1
        timed("loudness", loud.update, x)
        timed("clipping", clip.update, x)
        done += n
    res = {**timed("loudness", loud.result), **timed("clipping", clip.result)}
    w_both = wall["loudness"] + wall["clipping"]
    c_both = cpu["loudness"] + cpu["clipping"]
    lines.append(
        f"{seconds / 3600:.2f} h of 44.1 kHz stereo white noise through LoudnessMeter (with true peak) + "
        f"ClippingMeter, one thread: CPU time {cpu['loudness']:.1f} s + {cpu['clipping']:.1f} s = "
        f"{c_both:.1f} s ({seconds / c_both:.0f}x real time); wall clock {w_both:.1f} s "
        f"({seconds / w_both:.0f}x; the 2 cores were shared with other jobs, load average "
        f"{os.getloadavg()[0]:.1f}). Result: I = {res['loudness']['measured']} LUFS, "
        f"LRA {res['loudness']['range']} LU, true peak {res['loudness']['true_peak']} dBTP, "
        f"{res['clipping']['num_sections']} clipped sections."
    )


def _clip_sections(x: np.ndarray, fs: int) -> int:
    meter = ClippingMeter(fs, 1)
    for i in range(0, len(x), 65536):
        meter.update(x[i : i + 65536, None])
    return meter.result()["clipping"]["num_sections"]


def _quantise(x: np.ndarray, bits: int | None) -> np.ndarray:
    """Round to `bits` (codes -(2**(bits-1)) .. 2**(bits-1) - 1) without clipping."""
    if bits is None:
        return x.astype(np.float32)
    scale = 2 ** (bits - 1)
    return (np.round(x * (scale - 1)) / scale).astype(np.float32)


def clipping_checks(lines: list[str]) -> None:
    """False sections on clean tones and real files; detection of clipped-then-scaled tones."""
    rng = np.random.default_rng(0)
    clean = false = 0
    for fs in (8000, 16000, 44100, 48000, 96000, 192000):
        t = np.arange(fs) / fs
        for f in (20, 50, 120, 440, 1000, 3000, 7000):
            if f >= 0.45 * fs:
                continue
            for amp in (0.3, 0.8, 0.98, 0.9999):
                for bits in (None, 16, 8):
                    x = _quantise(amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)), bits)
                    clean += 1
                    false += _clip_sections(x, fs) > 0
    lines.append(
        f"clean tones (1 s; 6 rates x 20 Hz-7 kHz x amplitude 0.3-0.9999 x float/16/8-bit): "
        f"{false} of {clean} with a clipped section"
    )
    found = total = 0
    missed = []
    for fs in (16000, 44100, 48000, 96000):
        t = np.arange(fs) / fs
        for f in (50, 200, 1000, 3000):
            if f >= 0.3 * fs:
                continue
            for over_db in (1.0, 3.0, 6.0):
                ceiling = 10 ** (-over_db / 20)
                for level in (0.5, 0.9, 1.0):
                    for bits in (None, 16):
                        y = np.clip(
                            np.sin(2 * np.pi * f * t + rng.uniform(0, 6)), -ceiling, ceiling
                        )
                        x = _quantise(y / ceiling * level, bits)
                        total += 1
                        if _clip_sections(x, fs):
                            found += 1
                        else:
                            plateau = 2 * np.arccos(ceiling) / (2 * np.pi * f / fs)
                            missed.append(
                                f"{f} Hz at {fs} Hz over {over_db:g} dB "
                                f"(plateaus of {plateau:.1f} samples)"
                            )
    lines.append(
        f"clipped tones (ceiling 1, 3 or 6 dB under the peak, then scaled to 0.5, 0.9 or full "
        f"scale; float and 16-bit): {found} of {total} found"
        + (f"; missed: {', '.join(sorted(set(missed)))}" if missed else "")
    )
    flagged = []
    n_files = 0
    for path in sorted(DATA.rglob("*")):
        if (
            not path.is_file()
            or path.suffix.lower() in (".txt", ".md", ".raw")
            or "corrupt" in path.parts
        ):
            continue
        try:
            audio, sr = read_all(path)
        except DecodeError:  # not audio, or not decodable: the decoder's tests cover that
            continue
        n_files += 1
        meter = ClippingMeter(sr, audio.shape[1])
        for i in range(0, len(audio), 65536):
            meter.update(audio[i : i + 65536])
        res = meter.result()["clipping"]
        if res["num_sections"]:
            flagged.append(
                f"{path.relative_to(DATA)} ({res['num_sections']}: {res['sections'][:3]})"
            )
    lines.append(
        f"real files under shared/data: {len(flagged)} of {n_files} with clipped sections"
        + (f": {'; '.join(flagged)}" if flagged else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--no-hour", action="store_true", help="skip the one-hour throughput run")
    ap.add_argument("--no-clipping", action="store_true", help="skip the clipping checks")
    ap.add_argument(
        "--hours", type=float, default=1.0, help="length of the throughput run (default 1)"
    )
    ap.add_argument(
        "--append", action="store_true", help="append the report to bench/RESULTS_loudness.md"
    )
    args = ap.parse_args()
    lines: list[str] = []
    compare(lines)
    if not args.no_clipping:
        lines.append("")
        clipping_checks(lines)
    if not args.no_hour:
        lines.append("")
        one_hour(lines, seconds=3600.0 * args.hours)
    report = "\n".join(lines)
    print(report)
    if args.append:
        with open(REPO / "bench" / "RESULTS_loudness.md", "a") as fh:
            fh.write(
                f"\n## {datetime.date(2026, 11, 21).isoformat()}: `python bench/bench_loudness_vs_ffmpeg.py"
                f"{' --no-hour' if args.no_hour else ''}`\n\n"
                f"machine: 2-core x86_64, 24 GB ({platform.python_implementation()} {platform.python_version()}, "
                f"numpy {np.__version__}); FFmpeg: {ffmpeg_version()}\n{report}\n"
            )


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def ffmpeg_version() -> str:
    if shutil.which("ffmpeg") is None:
        return "not installed"
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


if __name__ == "__main__":
    main()
