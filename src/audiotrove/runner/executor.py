"""The executor: every parallel job of the project goes through this one interface.

    executor.run(fn, items, on_outcome)

runs `fn(item)` for every item and calls `on_outcome(TaskOutcome)` in the caller's process (the
coordinator, the only writer of the catalog) as each one finishes, in the order they finish.
`fn` is a module-level function (or a functools.partial of one), so that it can be sent to
another process by name. A task never stops the batch: an exception in `fn`, a worker process
that dies (a decoder fault, the OOM killer) or a task past its time limit becomes an outcome
with `error` set, and the other tasks go on. Ctrl-C propagates after the workers are stopped.

`LocalPoolExecutor` runs the tasks on worker processes of this machine. A Dask executor is meant
to sit behind the same interface. Why not concurrent.futures.ProcessPoolExecutor: it cannot
tell which task a dead worker was running (every task in flight fails with BrokenProcessPool),
cannot stop one task that hangs, and its workers outlive a coordinator that is SIGKILLed.
Here each worker runs one task at a time on its own pipe, so the coordinator knows who runs
what; a task past its limit is ended by killing its worker; and every worker watches a
lifeline pipe whose other end only the coordinator holds: when the coordinator dies (whatever
kills it), the pipe reads end-of-file and the worker exits.

Time limit (`TimeLimit`): a fixed number of seconds per task, or by default 60 s plus 10 x the
seconds of audio the task has decoded so far (workers report decoding progress through
io.decode's progress hook), so a slow but moving task goes on and a stuck one (a FIFO, a device,
a decoder loop) fails after about a minute.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Protocol

# Libraries under numpy/scipy/onnxruntime must not each start a thread per core in every worker.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PROGRESS_EVERY_S = 0.5  # how often a worker reports decoding progress
_POLL_S = 0.5  # how often the coordinator looks at time limits when nothing arrives
STARTUP_GRACE_S = 60.0  # a task's clock starts when its worker begins it; until then, this more


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class TaskOutcome:
    item: Any
    value: Any = None
    error: str | None = None  # why there is no value: fn raised, the worker died, time ran out
    kind: str = "ok"  # ok | raised | crashed | timed_out
    elapsed_s: float = 0.0
    decoded_s: float = 0.0  # seconds of audio the task decoded (as reported by its worker)


class Executor(Protocol):
    def run(self, fn: Callable[[Any], Any], items: Iterable[Any],
            on_outcome: Callable[[TaskOutcome], None]) -> None:
        """Run fn(item) for every item; on_outcome(outcome) in this process as each finishes."""


@dataclass(frozen=True)
class TimeLimit:
    """How long one task may run: `fixed_s` when given, else `base_s` + `per_audio` x the
    seconds of audio the task has decoded so far."""

    fixed_s: float | None = None
    base_s: float = 60.0
    per_audio: float = 10.0

    def seconds(self, decoded_s: float) -> float:
        return self.fixed_s if self.fixed_s is not None else self.base_s + self.per_audio * decoded_s

    def describe(self, decoded_s: float) -> str:
        if self.fixed_s is not None:
            return f"--item-timeout {self.fixed_s:g} s"
        return (f"{self.base_s:g} s + {self.per_audio:g} x the {decoded_s:.1f} s of audio decoded; "
                "--item-timeout sets another")


@dataclass
class _Worker:
    process: Any
    conn: Connection  # tasks out, progress and results in
    lifeline: Connection  # never written: closing it (dying) tells the worker to exit
    task: tuple | None = None  # (task id, item) being run
    started: float = 0.0  # when the task was sent, then when the worker began it
    begun: bool = False
    decoded_s: float = 0.0


@dataclass
class LocalPoolExecutor:
    """Tasks on `workers` processes of this machine (forkserver: a worker starts at once from a
    server that has already imported `preload`). `initializer(*initargs)` runs in each worker."""

    workers: int = field(default_factory=default_workers)
    time_limit: TimeLimit = field(default_factory=TimeLimit)
    initializer: Callable | None = None
    initargs: tuple = ()
    preload: tuple[str, ...] = ()
    on_progress: Callable[[Any, float], None] | None = None  # (item, seconds decoded so far)

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any],
            on_outcome: Callable[[TaskOutcome], None]) -> None:
        queue = iter(items)
        for name in _THREAD_ENV:
            os.environ.setdefault(name, "1")
        ctx = multiprocessing.get_context("forkserver")
        if self.preload:
            ctx.set_forkserver_preload(list(self.preload))
        pool: list[_Worker] = []
        ids = iter(range(1, 1 << 62))

        def start_worker() -> _Worker:
            ours, theirs = ctx.Pipe(duplex=True)
            life_r, life_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, args=(theirs, life_r, self.initializer, self.initargs),
                               daemon=True, name="audiotrove-worker")
            proc.start()
            theirs.close()
            life_r.close()
            return _Worker(proc, ours, life_w)

        def give_next(w: _Worker | None) -> None:
            """Hand the next item to `w` (a new worker when None); nothing when none is left."""
            try:
                item = next(queue)
            except StopIteration:
                return
            if w is None:
                w = start_worker()
                pool.append(w)
            w.task, w.started, w.begun, w.decoded_s = (next(ids), item), time.monotonic(), False, 0.0
            w.conn.send((w.task[0], fn, item))

        def end_task(w: _Worker, error: str, kind: str, now: float) -> None:
            """The task of `w` fails (its worker crashed or ran out of time): replace the worker."""
            outcome = TaskOutcome(w.task[1], None, error, kind, now - w.started, w.decoded_s)
            w.task = None
            _stop(w, now=True)
            pool.remove(w)
            give_next(None)
            on_outcome(outcome)

        try:
            for _ in range(max(1, self.workers)):
                give_next(None)
            while pool and any(w.task is not None for w in pool):
                busy = [w for w in pool if w.task is not None]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                 timeout=_POLL_S))
                now = time.monotonic()
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        self._receive(w, on_outcome, now, give_next)
                        if w.task is not None and not w.process.is_alive():
                            end_task(w, _died(w.process.exitcode), "crashed", now)
                    elif now - w.started > self.time_limit.seconds(w.decoded_s) + (0 if w.begun else STARTUP_GRACE_S):
                        end_task(w, f"timed out after {now - w.started:.0f} s (limit: "
                                    f"{self.time_limit.describe(w.decoded_s)})", "timed_out", now)
        except BaseException:
            for w in pool:
                _stop(w, now=True)
            raise
        for w in pool:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in pool:
            _stop(w)

    def _receive(self, w: _Worker, on_outcome, now: float, give_next) -> None:
        """Read what `w` sent: progress reports, then at most one result."""
        try:
            while w.task is not None and w.conn.poll():
                message = w.conn.recv()
                if message[0] == "begin":  # a worker that was still starting up begins the task
                    w.started, w.begun = time.monotonic(), True
                    continue
                if message[0] == "progress":
                    w.decoded_s = message[2]
                    if self.on_progress is not None:
                        self.on_progress(w.task[1], w.decoded_s)
                    continue
                _, _, value, error = message
                outcome = TaskOutcome(w.task[1], value, error, "raised" if error else "ok",
                                      now - w.started, w.decoded_s)
                w.task = None
                give_next(w)
                on_outcome(outcome)
                return
        except (EOFError, OSError):
            pass  # the worker died: the caller sees it


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit status {code}"
    return f"the worker process crashed while processing this item ({how}: a decoder fault, or out of memory)"


def _stop(w: _Worker, *, now: bool = False) -> None:
    """End a worker: at once (`now`), or after a moment for a clean exit (after None was sent)."""
    if now and w.process.is_alive():
        w.process.kill()
    w.process.join(timeout=5)
    if w.process.is_alive():
        w.process.kill()
        w.process.join(timeout=5)
    for c in (w.conn, w.lifeline):
        try:
            c.close()
        except OSError:
            pass


# --- in the worker process -------------------------------------------------------------------

def _worker_main(conn: Connection, lifeline: Connection, initializer, initargs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's business
    _exit_with(lifeline)
    if initializer is not None:
        initializer(*initargs)
    from ..io import decode

    current: list = [None, 0.0, 0.0]  # task id, seconds decoded, last report time

    def progress(seconds: float) -> None:
        current[1] += seconds
        now = time.monotonic()
        if now - current[2] >= PROGRESS_EVERY_S:
            current[2] = now
            conn.send(("progress", current[0], current[1]))

    decode.set_progress_hook(progress)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        if message is None:
            return
        task_id, fn, item = message
        current[:] = [task_id, 0.0, time.monotonic()]
        conn.send(("begin", task_id))
        try:
            reply = ("done", task_id, fn(item), None)
        except MemoryError:
            reply = ("done", task_id, None, "out of memory")
        except BaseException as exc:  # the caller's outcome says what went wrong; the batch goes on
            reply = ("done", task_id, None, describe(exc))
        try:
            conn.send(reply)
        except (EOFError, OSError):
            os._exit(0)
        except Exception as exc:  # a value that cannot be sent back
            conn.send(("done", task_id, None, describe(exc)))


def _exit_with(lifeline: Connection) -> None:
    """Exit as soon as the coordinator is gone, whatever the worker is doing.

    A thread waits on the lifeline pipe, whose write end only the coordinator holds; its death
    closes it. On Linux the kernel also kills the worker when its parent (the forkserver, which
    itself exits with the coordinator) dies, in case the thread cannot run (a C call holding
    the GIL)."""
    def watch() -> None:
        try:
            lifeline.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the lifeline alone


def describe(exc: BaseException) -> str:
    """`Type: message (at file.py:line)`: a one-line account of an unexpected exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


__all__ = ["Executor", "LocalPoolExecutor", "TaskOutcome", "TimeLimit", "default_workers", "describe"]
