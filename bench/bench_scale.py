"""Scaling out (issue 18): the local pool vs a Dask LocalCluster, and the coordinator's ceiling.

    python bench/bench_scale.py                       # 300 files of 6 s, 1 and 2 workers each way
    python bench/bench_scale.py --files 60 --seconds 3 --items 500   # a quick look

Part 1, the same generated files analyzed four ways (each in a fresh collection):
local pool with 1 and 2 worker processes, Dask LocalCluster with 1 and 2 worker processes
(1 thread each). Dask's workers are started and warmed (audiotrove.steps.analyze imported) before
the clock starts, as a running cluster would be; the local pool's start is inside its time, as a
user gets it. Printed: files/s, x real time, scaling efficiency (time with 1 worker / (2 x time
with 2)), and Dask's overhead per item: the extra wall time per file over the local pool with the
same number of workers, times the workers (so: worker-time lost per item).

Part 2, the coordinator alone:
- commits/s: the runner's own commit path (runner.execute_plan: one SQLite transaction per item,
  current result, summary) fed generated outcomes (a real analyze result per item, distinct
  content hashes, no audio work) by an executor that hands them over at once.
- dispatches/s: items through the executor and back with a no-op task (`len` of the path): the
  local pool, and the DaskExecutor with 2 in flight (one per worker thread: every item waits for
  a round trip through the coordinator), its default (4 per thread + 2: the next items wait in
  the scheduler's queue) and 64.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from audiotrove.catalog.db import Catalog  # noqa: E402
from audiotrove.runner import execute_plan, run_step  # noqa: E402
from audiotrove.runner.executor import LocalPoolExecutor, TaskOutcome  # noqa: E402
from audiotrove.runner.plan import make_plan  # noqa: E402
from audiotrove.runner.worker import Outcome  # noqa: E402
from audiotrove.steps import get_step  # noqa: E402


def make_files(folder: Path, count: int, seconds: float, rate: int = 22050) -> float:
    """`count` WAV files of speech-like bursts, tones and noise; their total seconds of audio."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(18)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    for k in range(count):
        f0 = 110 + 40 * np.sin(2 * np.pi * 0.5 * t) + 7 * k
        voiced = sum(np.sin(2 * np.pi * h * np.cumsum(f0) / rate) / h for h in range(1, 12))
        envelope = (np.sin(2 * np.pi * (3 + k % 4) * t) > 0.2).astype(float)
        x = 0.2 * voiced * envelope + 0.05 * np.sin(2 * np.pi * (300 + 11 * k) * t)
        x = x + 10 ** (-(30 + k % 30) / 20) * rng.standard_normal(n)
        sf.write(folder / f"f{k:04d}.wav", x.astype(np.float32), rate, subtype="PCM_16")
    return count * seconds


def fresh_collection(root: Path, audio: Path) -> Catalog:
    from audiotrove.catalog.sources import expand_sources

    if root.exists():
        shutil.rmtree(root)
    cat = Catalog.create(root)
    cat.add_files(expand_sources([str(audio)]).entries)
    return cat


def analyze_run(root: Path, audio: Path, *, workers: int, executor=None) -> tuple[float, float, int]:
    """(wall seconds, seconds of audio, files ok) of one analyze run in a fresh collection."""
    cat = fresh_collection(root, audio)
    started = time.perf_counter()
    summary = run_step(cat, "analyze", workers=workers, show_progress=False, executor=executor)
    wall = time.perf_counter() - started
    cat.close()
    assert summary.failed == 0, summary.line()
    return wall, summary.audio_s, summary.ok


def dask_cluster(workers: int):
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0)
    client = Client(cluster, set_as_default=False)
    client.run(__import__, "audiotrove.steps.analyze")  # warm: what a running cluster has done
    return cluster, client


class GeneratedOutcomes:
    """An executor that runs nothing: each item's outcome is a copy of a real analyze result."""

    def __init__(self, data: dict):
        self.data = data

    def run(self, fn, items, on_outcome):
        for item in items:
            on_outcome(TaskOutcome(item, Outcome(item.file_id, 1000, 1, f"gen-{item.file_id:09d}", "ok",
                                                 None, self.data, 0.1, 6.0)))


def commit_rate(work: Path, count: int, data: dict) -> float:
    root = work / "commits"
    if root.exists():
        shutil.rmtree(root)
    cat = Catalog.create(root)
    cat.add_files([(f"/nonexistent/gen/{k:07d}.wav", "file", None) for k in range(count)])
    step = get_step("analyze")
    plan = make_plan(cat, step, step.params())
    started = time.perf_counter()
    summary = execute_plan(cat, plan, workers=1, show_progress=False, executor=GeneratedOutcomes(data))
    elapsed = time.perf_counter() - started
    assert summary.ok == count, summary.line()
    cat.close()
    return count / elapsed


def dispatch_rate(executor, count: int) -> float:
    items = [f"/nonexistent/{k:07d}.wav" for k in range(count)]
    got = []
    started = time.perf_counter()
    executor.run(len, items, got.append)
    elapsed = time.perf_counter() - started
    assert len(got) == count and all(o.error is None for o in got)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each generated file")
    parser.add_argument("--items", type=int, default=3000, help="items for the coordinator's ceiling")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    from audiotrove.runner.dask_executor import DaskExecutor

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    audio = work / "audio"
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    total_s = make_files(audio, args.files, args.seconds) if not audio.exists() else args.files * args.seconds
    print(f"{args.files} files x {args.seconds:g} s = {total_s / 60:.1f} min of 22.05 kHz mono WAV\n")

    results = {}
    for workers in (1, 2):
        wall, audio_s, ok = analyze_run(work / f"local{workers}", audio, workers=workers)
        results[("local", workers)] = wall
        print(f"local pool  {workers} worker(s): {wall:7.1f} s  {ok / wall:6.1f} files/s  "
              f"{audio_s / wall:6.0f}x real time", flush=True)
    for workers in (1, 2):
        cluster, client = dask_cluster(workers)
        try:
            wall, audio_s, ok = analyze_run(work / f"dask{workers}", audio, workers=workers,
                                            executor=DaskExecutor(client))
        finally:
            client.close()
            cluster.close()
        results[("dask", workers)] = wall
        print(f"Dask        {workers} worker(s): {wall:7.1f} s  {ok / wall:6.1f} files/s  "
              f"{audio_s / wall:6.0f}x real time", flush=True)
    for kind in ("local", "dask"):
        eff = results[(kind, 1)] / (2 * results[(kind, 2)])
        print(f"scaling efficiency 1 -> 2 workers, {kind}: {eff:.0%}")
    for workers in (1, 2):
        extra_ms = (results[("dask", workers)] - results[("local", workers)]) / args.files * workers * 1000
        print(f"Dask overhead per item, {workers} worker(s): {extra_ms:+.1f} ms of worker time "
              f"({extra_ms / (results[('local', workers)] / args.files * workers * 1000):+.1%} of an item)")

    print(f"\ncoordinator ceiling ({args.items} items, no audio work):")
    cat = Catalog.open(work / "local1")
    data = next(iter(cat.current_pointers("analyze").values())).data
    cat.close()
    print(f"  commits/s (runner.execute_plan, one transaction per item): {commit_rate(work, args.items, data):8.0f}")
    local = LocalPoolExecutor(2)
    print(f"  dispatches/s, local pool 2 workers:                        {dispatch_rate(local, args.items):8.0f}")
    cluster, client = dask_cluster(2)
    try:
        for bound in (2, None, 64):
            rate = dispatch_rate(DaskExecutor(client, in_flight=bound), args.items)
            what = "default (4 per thread + 2)" if bound is None else f"{bound} in flight"
            print(f"  dispatches/s, Dask 2 workers, {what:<28}: {rate:8.0f}")
    finally:
        client.close()
        cluster.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
