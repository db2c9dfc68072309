"""Run items on a local process pool and hand each outcome to the coordinator as it arrives.

The coordinator (the caller's `on_outcome`) is the only writer of the catalog. At most
2 x workers items are in flight, so memory does not grow with the size of the plan.
A worker that dies (a decoder crash) breaks the pool: the items then in flight are re-run
one at a time in a fresh pool, so the one that crashes is named and the others complete.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

from ..io.hashing import content_hash, placeholder_hash
from ..steps import _STEP_MODULES, Item
from .worker import Outcome, execute, init_worker, stat_facts

# Libraries under numpy/scipy/onnxruntime must not each start a thread per core in every worker.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    for name in _THREAD_ENV:
        os.environ.setdefault(name, "1")
    ctx = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has already imported the steps and their DSP (about
    # 1.4 s of imports), so a new worker starts at once.
    ctx.set_forkserver_preload(["audiotrove.runner.worker", "audiotrove.steps.analyze"])
    # Workers get the coordinator's step registry: steps added with `steps.register` at run
    # time (plugins, tests) are otherwise unknown in a fresh forkserver child.
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker,
                               initargs=(dict(_STEP_MODULES),))


def run_items(step_name: str, items: Iterable[Item], *, workers: int,
              on_outcome: Callable[[Outcome], None]) -> None:
    """Execute every item; call on_outcome in the coordinator for each. Ctrl-C propagates."""
    queue = deque(items)
    pool = _new_pool(workers)
    inflight: dict[Future, Item] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < 2 * workers:
                item = queue.popleft()
                inflight[pool.submit(execute, step_name, item)] = item
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken: list[Item] = []
            for fut in done:
                item = inflight.pop(fut)
                try:
                    on_outcome(fut.result())
                except BrokenProcessPool:
                    broken.append(item)
            if broken:
                broken.extend(inflight.values())
                inflight.clear()
                _shutdown(pool)
                for item in broken:
                    on_outcome(_run_alone(step_name, item))
                pool = _new_pool(workers)
    except BaseException:
        _shutdown(pool)
        raise
    pool.shutdown(wait=True)


def _run_alone(step_name: str, item: Item) -> Outcome:
    """Re-run one item that was in flight when a worker died, in a pool of its own."""
    pool = _new_pool(1)
    try:
        return pool.submit(execute, step_name, item).result()
    except BrokenProcessPool:
        size_bytes, mtime_ns = stat_facts(item.path)
        try:
            digest = content_hash(item.path)
        except OSError:
            digest = placeholder_hash(item.path, size_bytes, mtime_ns)
        return Outcome(item.file_id, size_bytes, mtime_ns, digest, "error",
                       "the worker process crashed while decoding this file (a decoder fault)",
                       None, 0.0, 0.0)
    finally:
        _shutdown(pool)


def _shutdown(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued work and end the worker processes."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)
