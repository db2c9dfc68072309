"""Benchmark: `ls` and `stats` over a generated catalog of 100 000 files must take < 1 s.

Builds a collection whose catalog holds 100 000 files with synthetic `analyze` results shaped
like the real JSON (media_info + audio.loudness/clipping/noise/bandwidth/speech/music/silence/
other/quality_score, sections lists included), then times, end to end through the CLI (a fresh
`audiotrove` process each time, as a user runs it):

    ls QUERY (table), ls QUERY --format jsonl, ls --sort ... --limit, ls (everything, csv),
    stats (default fields), stats FIELD --where Q --bins, select_file_ids

and, in process, the index's first build, a no-op sync and an incremental sync after a batch of
new results. The baseline, measured in the same run, is the way `ls` worked before the index:
`iter_current()` + `file_record()` + `flatten()` and a Python filter / numpy statistics over the
records. Ratios = baseline time / indexed time.

    python bench/bench_query.py                 # 100 000 files (about 1 min to generate)
    python bench/bench_query.py --files 20000 --results bench/RESULTS_query.md
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import FieldIndex, select_file_ids
from audiotrove.catalog.records import file_record, flatten

CODECS = [("pcm_s16le", "wav", 16), ("flac", "flac", 16), ("mp3", "mp3", None),
          ("vorbis", "ogg", None), ("pcm_s24le", "wav", 24), ("aac", "m4a", None)]
CODEC_P = [0.55, 0.2, 0.12, 0.06, 0.05, 0.02]
RATES = [16000, 22050, 44100, 48000]
RATE_P = [0.7, 0.05, 0.15, 0.1]


def _sections(rng, duration: float, n: int) -> list:
    if n == 0:
        return []
    cuts = np.sort(rng.uniform(0, duration, 2 * n))
    return [[round(float(a), 2), round(float(b), 2)] for a, b in cuts.reshape(-1, 2)]


def synthetic_analysis(rng: np.random.Generator, i: int) -> dict:
    """One file's analyze result, shaped like the real step's JSON."""
    k = rng.choice(len(CODECS), p=CODEC_P)
    codec, kind, bits = CODECS[k]
    sr = int(rng.choice(RATES, p=RATE_P))
    ch = 1 if rng.random() < 0.8 else 2
    duration = float(np.round(rng.lognormal(4.0, 1.2), 3))  # a minute or so, long tail
    bitrate = sr * ch * bits if bits else int(rng.choice([64000, 128000, 192000]))
    size = int(duration * bitrate / 8)
    loud = float(np.round(rng.normal(-24, 6), 2))
    peak = float(np.round(min(0.0, loud + rng.uniform(8, 22)), 2))
    clipped = rng.random() < 0.03
    floor = float(np.round(rng.normal(-62, 9), 2))
    shares = rng.dirichlet([4, 1, 1, 0.5]) * 100
    hum = rng.random() < 0.05
    speech_n = int(rng.integers(0, 12))
    return {
        "media_info": {
            "container": {"kind": kind, "duration": duration, "bitrate": bitrate, "size": size},
            "audio": {"codec": codec, "channels": ch, "sample_rate": sr, "bit_depth": bits},
            "has_audio": True, "has_video": bool(rng.random() < 0.01),
        },
        "audio": {
            "non_finite_samples": 0,
            "loudness": {"measured": loud, "range": float(np.round(rng.gamma(3, 2), 2)),
                         "momentary_max": float(np.round(loud + rng.uniform(2, 10), 2)),
                         "short_term_max": float(np.round(loud + rng.uniform(1, 6), 2)),
                         "sample_peak": peak,
                         "true_peak": float(np.round(peak + rng.uniform(0, 1.5), 2)),
                         "gating_mode": "ebu_r128"},
            "clipping": {"num_sections": int(rng.integers(1, 40)) if clipped else 0,
                         "percentage": float(np.round(rng.uniform(0.01, 3), 3)) if clipped else 0.0,
                         "sections": _sections(rng, duration, 3) if clipped else []},
            "noise": {"level_average": floor, "snr_average": float(np.round(loud - floor + 10, 2)),
                      "hum": {"frequency": int(rng.choice([50, 60])) if hum else None,
                              "level": float(np.round(rng.uniform(6, 30), 1)) if hum else None,
                              "harmonics": [1, 2, 3] if hum else []},
                      "clicks_per_minute": float(np.round(rng.exponential(2), 2)),
                      "dc_offset": float(np.round(rng.normal(0, 0.001), 5))},
            "bandwidth": {"frequency": float(min(sr / 2, np.round(rng.uniform(3500, sr / 2), 0)))},
            "speech": {"percentage": float(np.round(shares[0], 2)), "num_sections": speech_n,
                       "sections": _sections(rng, duration, speech_n)},
            "music": {"percentage": float(np.round(shares[1], 2)), "num_sections": 1,
                      "sections": _sections(rng, duration, 1)},
            "silence": {"percentage": float(np.round(shares[2], 2)), "num_sections": 1,
                        "sections": _sections(rng, duration, 1)},
            "other": {"percentage": float(np.round(shares[3], 2)), "num_sections": 0, "sections": []},
            "quality_score": {"dnsmos_ovrl": float(np.round(rng.uniform(1.5, 4.2), 2)),
                              "dnsmos_sig": float(np.round(rng.uniform(2, 4.5), 2)),
                              "dnsmos_bak": float(np.round(rng.uniform(1.5, 4.5), 2)),
                              "windows": int(rng.integers(1, 20))},
        },
    }


def make_catalog(root: Path, n: int, *, seed: int = 0, failed_share: float = 0.01,
                 pending_share: float = 0.01) -> Catalog:
    """A collection with n files: most analyzed ok, some failed, some pending (bulk inserts)."""
    rng = np.random.default_rng(seed)
    cat = Catalog.create(root)
    now = time.time()
    files, results = [], []
    for i in range(n):
        path = f"/archive/box{i // 1000:03d}/tape{i:06d}_{'afs04' if i % 97 == 0 else 'std'}.wav"
        h = hashlib.sha1(path.encode()).hexdigest()
        r = rng.random()
        if r < pending_share:
            files.append((path, "file", "/archive", None, None, None, now))
            continue
        data = synthetic_analysis(rng, i)
        size = data["media_info"]["container"]["size"]
        files.append((path, "file", "/archive", size, 0, h, now))
        if r < pending_share + failed_share:
            results.append((h, "analyze", "1", "p", "{}", "error",
                            "not a readable audio/video file: Invalid data found", None, 0.01, now + i * 1e-6))
        else:
            elapsed = data["media_info"]["container"]["duration"] / float(rng.uniform(80, 160))
            results.append((h, "analyze", "1", "p", "{}", "ok", None, json.dumps(data), elapsed,
                            now + i * 1e-6))
    with cat.transaction() as conn:
        conn.executemany("INSERT INTO files(path, kind, source, size_bytes, mtime_ns, content_hash, "
                         "added_at) VALUES (?,?,?,?,?,?,?)", files)
        conn.executemany("INSERT INTO results(content_hash, step, step_version, params_hash, params, "
                         "status, error, data, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         results)
        # each file's result is its current one (what the runner records as it commits)
        conn.execute("INSERT INTO current_results(file_id, step, result_id) SELECT f.id, r.step, r.id "
                     "FROM files f JOIN results r ON r.content_hash = f.content_hash")
    return cat


# ------------------------------------------------------------------------------------------
# baseline: what `ls` did before the index


def baseline_records(cat: Catalog) -> list[dict]:
    return [flatten(file_record(f, res)) for f, res in cat.iter_current()]


def baseline_ls(cat: Catalog) -> int:
    out = 0
    for rec in baseline_records(cat):
        v = rec.get("audio.noise.level_average")
        sr = rec.get("media_info.audio.sample_rate")
        if v is not None and v > -50 and sr is not None and sr != 16000:
            out += 1
            json.dumps(rec)
    return out


def baseline_stats(cat: Catalog) -> dict:
    recs = baseline_records(cat)
    out = {}
    for name in ("media_info.audio.codec", "media_info.audio.sample_rate", "media_info.audio.channels",
                 "media_info.audio.bit_depth", "media_info.container.kind", "media_info.container.bitrate"):
        counts: dict = {}
        for r in recs:
            counts[r.get(name)] = counts.get(r.get(name), 0) + 1
        out[name] = counts
    for name in ("media_info.container.duration", "audio.loudness.measured", "audio.loudness.true_peak",
                 "audio.noise.level_average", "audio.noise.snr_average", "audio.bandwidth.frequency",
                 "audio.speech.percentage", "audio.music.percentage", "audio.silence.percentage"):
        v = np.array([r[name] for r in recs if r.get(name) is not None], dtype=float)
        out[name] = (v.mean(), v.std(), np.percentile(v, [0, 25, 50, 75, 100]), np.histogram(v, 10))
    return out


# ------------------------------------------------------------------------------------------


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def cli(root: Path, *args: str) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) of a fresh `audiotrove` process, best of 3."""
    exe = shutil.which("audiotrove") or str(Path(sys.executable).with_name("audiotrove"))
    best = (float("inf"), 0.0)
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([exe, "-C", str(root), *args], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (wall, cpu))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="build the collection here and keep it")
    ap.add_argument("--results", type=Path, help="append a Markdown table to this file")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="audiotrove-bench-"))
    rows: list[tuple[str, float, float | None]] = []
    try:
        t = time.perf_counter()
        cat = make_catalog(root, args.files)
        gen_s = time.perf_counter() - t
        print(f"generated {args.files} files in {gen_s:.1f} s ({root})")
        db_mb = os.path.getsize(cat.db_path) / 1e6

        t = time.perf_counter()
        FieldIndex.open(cat)
        build_s = time.perf_counter() - t
        noop_s, _ = timed(lambda: FieldIndex.open(cat))
        # incremental: 1000 files get a newer analyze result (as a run commits them)
        rng = np.random.default_rng(1)
        some = cat.conn.execute("SELECT id, content_hash FROM files WHERE content_hash IS NOT NULL "
                                "LIMIT 1000").fetchall()
        for fid, h in some:
            cat.record(fid, size_bytes=1, mtime_ns=1, content_hash=h, step="analyze", step_version="2",
                       params_hash="p", params={}, status="ok", error=None,
                       data=synthetic_analysis(rng, fid), elapsed_s=0.1)
        t = time.perf_counter()
        n_incr = FieldIndex(cat).sync()
        incr_s = time.perf_counter() - t
        print(f"index: first build {build_s:.2f} s, no-op sync {noop_s * 1000:.1f} ms, "
              f"incremental {n_incr} files {incr_s:.3f} s; catalog {db_mb:.0f} MB before index, "
              f"{os.path.getsize(cat.db_path) / 1e6:.0f} MB after")

        base_ls_s, n_base = timed(lambda: baseline_ls(cat), repeat=1)
        base_stats_s, _ = timed(lambda: baseline_stats(cat), repeat=1)
        q = "audio.noise.level_average > -50 and media_info.audio.sample_rate != 16000"
        n_sel = len(select_file_ids(cat, q))
        sel_s, _ = timed(lambda: select_file_ids(cat, q))
        print(f"query selects {n_sel} files (baseline filter found {n_base})")
        cat.close()

        cases = [
            ("ls QUERY (table)", ("ls", q), base_ls_s),
            ("ls QUERY --format jsonl", ("ls", q, "--format", "jsonl"), base_ls_s),
            ("ls path ~ afs04 --sort loudness:desc", ("ls", "path ~ afs04", "--sort", "loudness:desc"), None),
            ("ls --sort true_peak:desc --limit 50", ("ls", "--sort", "true_peak:desc", "--limit", "50"), None),
            ("ls (all 100k rows, table)", ("ls",), None),
            ("ls --fields duration,loudness --format csv (all)",
             ("ls", "--fields", "duration,loudness", "--format", "csv"), None),
            ("stats (defaults, all files)", ("stats",), base_stats_s),
            ("stats --where Q", ("stats", "--where", q), None),
            ("stats loudness --bins -70,-40,-30,-20,-10,0", ("stats", "loudness", "--bins", "-70,-40,-30,-20,-10,0"), None),
            ("stats --format json", ("stats", "--format", "json"), None),
        ]
        print(f"\n{'command (fresh process, best of 3)':<52} {'wall':>8} {'cpu':>7} {'baseline':>9} {'ratio':>7}")
        for label, argv, base in cases:
            wall, cpu = cli(root, *argv)
            rows.append((label, wall, cpu, base))
            ratio = f"{base / wall:.1f}x" if base else ""
            print(f"{label:<52} {wall:>7.3f}s {cpu:>6.3f}s {base if base else 0:>8.2f}s {ratio:>7}"
                  + ("" if wall < 1 else "  OVER 1 s"))
        rows.append(("select_file_ids(Q) in process", sel_s, None, base_ls_s))
        print(f"{'select_file_ids(Q) in process':<52} {sel_s:>7.3f}s {'':>7} {base_ls_s:>8.2f}s "
              f"{base_ls_s / sel_s:>6.1f}x")
        startup, startup_cpu = cli(root, "--help")
        print(f"{'(process start-up: audiotrove --help)':<52} {startup:>7.3f}s {startup_cpu:>6.3f}s")
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")

        if args.results:
            with open(args.results, "a") as fh:
                fh.write(f"\n### `python bench/bench_query.py --files {args.files}`\n\n")
                fh.write(f"Machine: 2-core x86_64, 24 GB; date 2026-11-21; load average {load:.1f} "
                         f"(other jobs were running: wall times include waiting for a core, CPU "
                         f"times do not).\n\n")
                fh.write(f"Index: first build {build_s:.1f} s for {args.files} files, no-op sync "
                         f"{noop_s * 1000:.1f} ms, incremental sync of {n_incr} changed files "
                         f"{incr_s:.3f} s. Process start-up (`--help`) {startup:.3f} s wall, "
                         f"{startup_cpu:.3f} s CPU.\n\n")
                fh.write("| command | wall (s) | CPU (s) | baseline (s) | ratio (wall) |\n"
                         "|---|---:|---:|---:|---:|\n")
                for label, wall, cpu, base in rows:
                    fh.write(f"| `{label}` | {wall:.3f} | {'' if cpu is None else f'{cpu:.3f}'} | "
                             f"{'' if not base else f'{base:.2f}'} | {'' if not base else f'{base / wall:.1f}x'} |\n")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
