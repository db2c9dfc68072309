"""Does madvise(MADV_RANDOM) on the float16 chunks of a vector index speed up its random reads?

    python bench/bench_index_madvise.py [--rows 1000000] [--dim 1024] [--repeat 3] [--keep DIR]

Builds a VectorIndex folder of --rows unit-length float16 vectors (random, in chunks of 65 536
rows, as vectors/index.py writes them: 2 GB at 1 000 000 x 1024) and measures the real
VectorIndex code three ways: "readahead" (the baseline: every read through plain maps, the
kernel's default readahead), "MADV_RANDOM everywhere" (every chunk map advised so) and "as
shipped" (VectorIndex.vectors reads fewer than 1 row in SCATTERED_READ through a second set of
maps advised MADV_RANDOM, everything else through the plain ones). Each from a cold page cache
(the chunk files' pages dropped with posix_fadvise(DONTNEED) before every run, so nothing else on
the machine is touched) and warm:
  filtered exact search   `_exact` over EXACT_MAX_ROWS (4 096) random rows: the most a filter
                          leaves for the index to search them exactly (gathered row by row)
  re-rank gather          `vectors(rows)` of 120 random rows (what the IVF's 5 k candidates of a
                          k=24 query cost)
  full exact scan         `_exact` over every row (sequential reads)
Wall time (the reads are I/O), median of --repeat runs. The machine is shared: see the load.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc
import json
import mmap
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiotrove.vectors import index as vindex  # noqa: E402
from audiotrove.vectors.index import EXACT_MAX_ROWS, VectorIndex  # noqa: E402

CHUNK = 65_536


def build(folder: Path, rows: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    chunks = []
    for k, lo in enumerate(range(0, rows, CHUNK)):
        v = rng.standard_normal((min(CHUNK, rows - lo), dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        np.save(folder / f"{k:05d}.npy", v.astype(np.float16))
        chunks.append(f"{k:05d}")
    (folder / "state.json").write_text(json.dumps({"dim": dim, "rows": rows, "chunks": chunks, "shards": {},
                                                   "ann_rows": 0, "next_chunk": len(chunks)}))


def drop_cache(folder: Path) -> None:
    """Drop the page cache of the chunk files (their maps must be closed)."""
    for path in folder.glob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


MODES = ("readahead", "MADV_RANDOM everywhere", "as shipped")


def open_index(folder: Path, mode: str) -> VectorIndex:
    index = VectorIndex(folder)
    if mode == "MADV_RANDOM everywhere":
        for chunk in index.chunks():
            chunk._mmap.madvise(mmap.MADV_RANDOM)
    return index


def measure(folder: Path, what, *, mode: str, cold: bool, repeat: int) -> float:
    shipped = vindex.SCATTERED_READ
    if mode != "as shipped":
        vindex.SCATTERED_READ = float("inf")  # never the scattered maps
    try:
        times = []
        index = open_index(folder, mode)
        what(index)  # warm: a first run fills the cache
        for _ in range(repeat):
            if cold:
                del index
                gc.collect()
                drop_cache(folder)
                index = open_index(folder, mode)
            t = time.perf_counter()
            what(index)
            times.append(1000 * (time.perf_counter() - t))
        return statistics.median(times)
    finally:
        vindex.SCATTERED_READ = shipped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build in (or reuse) this folder and keep it")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-madvise-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "state.json").exists():
        t = time.perf_counter()
        build(folder, args.rows, args.dim)
        print(f"built {args.rows} x {args.dim} float16 in {time.perf_counter() - t:.0f} s at {folder}", flush=True)
    rng = np.random.default_rng(1)
    q = rng.standard_normal(args.dim).astype(np.float32)
    q /= np.linalg.norm(q)
    filtered = np.zeros(args.rows, bool)
    filtered[rng.choice(args.rows, EXACT_MAX_ROWS, replace=False)] = True
    every = np.ones(args.rows, bool)
    rerank = np.sort(rng.choice(args.rows, 120, replace=False))
    cases = [(f"filtered exact search ({EXACT_MAX_ROWS} random rows)", lambda ix: ix._exact(q, 10, filtered)),
             ("re-rank gather (120 random rows)", lambda ix: ix.vectors(rerank)),
             ("full exact scan", lambda ix: ix._exact(q, 10, every))]
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\n| what | cache | " + " | ".join(f"{m} ms" for m in MODES) + " | as shipped / readahead |")
    print("|---|---|" + "---|" * (len(MODES) + 1))
    try:
        for label, what in cases:
            for cold in (True, False):
                ms = [measure(folder, what, mode=m, cold=cold, repeat=args.repeat) for m in MODES]
                print(f"| {label} | {'cold' if cold else 'warm'} | " + " | ".join(f"{v:.1f}" for v in ms)
                      + f" | {ms[2] / ms[0]:.2f} |", flush=True)
    finally:
        print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        if args.keep is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
