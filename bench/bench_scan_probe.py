"""Scan + analyze throughput on many small files, against baselines measured in the same run.

Generates N small WAV files (default 10 000; 0.25 s, 16 kHz mono, each different) in a temp
folder of 100 sub-folders, then times, through the real CLI:
  add       `audiotrove -C coll add FOLDER`           vs  a bare os.walk + extension filter
  analyze   `audiotrove -C coll analyze --workers W`  vs  soundfile.info() on every file (one
            process) and `ffprobe` per file (W at a time, on a sample of the files)
and prints files per second and the ratios. `analyze` does more than either baseline: it
hashes each file, probes it, decodes it fully, runs every meter the analyze step has at the
time on those blocks, and commits one transaction per file. The io layer alone (probe() plus
a full block decode, in this process) is timed too, against the same soundfile.info baseline.

    python bench/bench_scan_probe.py [--files 10000] [--workers 2] [--ffprobe-sample 500]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def audiotrove_command() -> list[str]:
    exe = shutil.which("audiotrove", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "audiotrove.cli"]


def make_files(root: Path, count: int) -> list[Path]:
    """16-bit PCM WAVs written directly (one header for all; each file's samples differ)."""
    sr, n = 16000, 4000
    header = (b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVEfmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16) + b"data" + struct.pack("<I", 2 * n))
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        folder = root / f"box{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        x = 0.3 * np.sin(2 * np.pi * (100 + i % 2000) * t) + 0.05 * rng.standard_normal(n)
        path = folder / f"take{i:05d}.wav"
        path.write_bytes(header + (x * 32767).astype("<i2").tobytes())
        paths.append(path)
    return paths


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def walk_media(root: Path) -> int:
    from audiotrove.catalog.sources import is_media_name

    return sum(1 for _, _, names in os.walk(root) for name in names if is_media_name(name))


def soundfile_info_all(paths: list[Path]) -> int:
    import soundfile as sf

    return sum(sf.info(str(p)).frames > 0 for p in paths)


def probe_decode_all(paths: list[Path]) -> int:
    """Our io layer alone, in this process: probe() and a full block decode of every file."""
    from audiotrove.io.decode import open_audio
    from audiotrove.io.probe import probe

    done = 0
    for path in paths:
        info = probe(path)
        frames = sum(len(block) for block in open_audio(path).blocks())
        done += bool(info["has_audio"] and frames)
    return done


def ffprobe_all(paths: list[Path], workers: int) -> int:
    def one(path: Path) -> bool:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                              str(path)], capture_output=True, check=False)
        return out.returncode == 0

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, paths))


def run_cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="300")
    done = subprocess.run([*audiotrove_command(), *map(str, args)], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"audiotrove {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else os.cpu_count())
    parser.add_argument("--ffprobe-sample", type=int, default=500,
                        help="files probed by the ffprobe baseline (one process each)")
    args = parser.parse_args()
    n = args.files
    print(f"# scan + analyze: {n} WAV files of 0.25 s (16 kHz mono, 8 kB), --workers {args.workers}")
    print(f"# python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        tmp_path = Path(tmp)
        gen_s, paths = timed(make_files, tmp_path / "media", n)
        print(f"# generated in {gen_s:.1f} s")
        rows = []

        walk_s, found = timed(walk_media, tmp_path / "media")
        assert found == n, found
        run_cli("init", tmp_path / "coll")
        add_s, done = timed(run_cli, "-C", tmp_path / "coll", "add", tmp_path / "media")
        assert done.stdout.strip() == f"added {n}, already present 0, skipped 0", done.stdout
        rows.append(("add (scan + register)", n / add_s, "os.walk + extension filter", n / walk_s))
        readd_s, done = timed(run_cli, "-C", tmp_path / "coll", "add", tmp_path / "media")
        assert f"already present {n}" in done.stdout
        rows.append(("add again (all present)", n / readd_s, "os.walk + extension filter", n / walk_s))

        info_s, ok = timed(soundfile_info_all, paths)
        assert ok == n
        io_s, ok = timed(probe_decode_all, paths)
        assert ok == n
        rows.append(("probe + decode only (io layer, 1 process)", n / io_s,
                     "soundfile.info, 1 process", n / info_s))
        analyze_s, done = timed(run_cli, "-C", tmp_path / "coll", "analyze", "--workers", args.workers)
        summary = re.search(r"analyze: (\d+) ok, (\d+) failed", done.stderr)
        assert summary and int(summary[1]) == n, done.stderr
        rows.append(("analyze (hash, probe, decode, meters, commit)", n / analyze_s,
                     "soundfile.info, 1 process", n / info_s))
        if shutil.which("ffprobe"):
            sample = paths[:: max(1, n // args.ffprobe_sample)][: args.ffprobe_sample]
            probe_s, ok = timed(ffprobe_all, sample, args.workers)
            assert ok == len(sample)
            rows.append(("analyze (hash, probe, decode, meters, commit)", n / analyze_s,
                         f"ffprobe per file, {args.workers} at a time", len(sample) / probe_s))
        else:
            print("# ffprobe not installed: that baseline is skipped (apt-get install -y ffmpeg)")
        rerun_s, done = timed(run_cli, "-C", tmp_path / "coll", "analyze", "--workers", args.workers)
        assert f"{n} already up to date" in done.stderr, done.stderr
        rows.append(("analyze again (all up to date)", n / rerun_s, "soundfile.info, 1 process",
                     n / info_s))

        print()
        print("| stage | ours (files/s) | baseline | baseline (files/s) | ours / baseline |")
        print("|---|---:|---|---:|---:|")
        for stage, ours, base, base_rate in rows:
            print(f"| {stage} | {ours:.0f} | {base} | {base_rate:.0f} | {ours / base_rate:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
