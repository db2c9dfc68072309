"""The Dask executor: the same `run(fn, items, on_outcome)` as the local pool, on a Dask cluster.

    executor = DaskExecutor.connect("tcp://10.0.0.5:8786", path_map=PathMap.parse(["/data=/mnt/data"]))
    executor.run(fn, items, on_outcome)   # on_outcome runs here, on the coordinator
    executor.close()

The plan is made here, on the coordinator; each item becomes one Dask future, with a bounded
number in flight (by default 4 per worker thread of the cluster + 2, read again as workers come
and go); outcomes are handed to `on_outcome` as they complete (distributed.as_completed), and the
coordinator alone writes the catalog. Each future is taken from `as_completed` once and then
dropped, so an item is committed at most once whatever happens on the cluster.

One item per worker thread: the executor sets the scheduler's worker-saturation to 1.0, and
keeps more than twice the cluster's threads in flight, which makes Dask treat the items as
root tasks: the ones not running wait in the scheduler's queue, and a freed thread gets the next
at once, without a round trip to the coordinator. A worker that dies was running only its own
item(s), so the crash is counted against the right file.

Faults, mapped to the outcomes the local pool gives:
- `fn` raising on the worker: an outcome with `error` (kind "raised"), the batch goes on.
- A worker killed in the middle of an item (SIGKILL, the OOM killer, a decoder fault): the
  scheduler runs the item again on another worker. An item that was on `allowed_failures + 1`
  workers when they died is given up by the scheduler (distributed.KilledWorker): an outcome
  with `error` (kind "crashed"). The executor sets the scheduler's allowed-failures to 1 when it
  connects: an item that kills two workers fails, with no endless retries.
- Ctrl-C: the futures in flight are cancelled and KeyboardInterrupt propagates (exit 130); what
  was committed stays, the next run does the rest.
- The scheduler going away: the client cancels every future; the run stops with `ClusterLost`
  (a UsageError) after the outcomes already received are committed.

- An item past its time limit (`TimeLimit`, as for the local pool: by default 60 s + 10 x the
  seconds of audio it has decoded): an outcome with `error` (kind "timed_out"). On the worker the
  item runs in a thread of its own that the task waits for, with the limit; at the limit the task
  returns the failure and the worker goes on with its next item. Python cannot stop a thread: the
  stuck one is left behind (named audiotrove-timed-out) until the worker restarts; a stuck
  decoder holds no more than it held.

Paths: workers open the paths of the plan. When the shared storage is mounted elsewhere on the
workers, `PathMap` rewrites every path-like string of an item (its path, the collection's
folder, a parameter naming an output folder) from the coordinator's prefix to the workers', and
the strings of the result back (an output path, a message naming a file).

Dask is imported only when an executor is made: the core runs without the `dask` extra.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..errors import UsageError
from .executor import TaskOutcome, TimeLimit, describe

INSTALL_HINT = "the Dask executor needs the dask extra: pip install 'audiotrove[dask]'"
KEY_PREFIX = "audiotrove"
THREADS_EVERY_S = 2.0  # how often the cluster's size is asked again (workers come and go)


class ClusterLost(UsageError):
    """The Dask scheduler went away during a run; what finished is committed."""


def import_distributed():
    """The `distributed` module, or UsageError saying what to install."""
    try:
        import distributed
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return distributed


# --- path map --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PathMap:
    """Prefix pairs (coordinator's, workers'): `/data/audio` = `/mnt/audio` means a file the
    coordinator knows as /data/audio/a.wav is /mnt/audio/a.wav on every worker."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> PathMap:
        """From `LOCAL=REMOTE` texts (the --path-map option); UsageError when one is malformed."""
        pairs = []
        for text in texts:
            local, sep, remote = text.partition("=")
            local, remote = local.strip(), remote.strip()
            if not sep or not local or not remote:
                raise UsageError(f"--path-map takes LOCAL=REMOTE (two folder prefixes), not {text!r}")
            if not local.startswith("/") or not remote.startswith("/"):
                raise UsageError(f"--path-map {text!r}: both prefixes must be absolute paths")
            pairs.append((_strip(local), _strip(remote)))
        # the longest prefix first: /data/a=/x wins over /data=/y for /data/a/f.wav
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        return cls(tuple(pairs))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def path_to_remote(self, path: str) -> str:
        return _swap(path, self.pairs)

    def path_to_local(self, path: str) -> str:
        return _swap(path, sorted(((r, l) for l, r in self.pairs), key=lambda p: len(p[0]), reverse=True))

    def to_remote(self, value: Any) -> Any:
        """`value` with every string that is a path under a local prefix rewritten (recursively
        through dataclasses, dicts, lists and tuples); `value` itself when there is no map."""
        return _walk(value, self.path_to_remote) if self.pairs else value

    def to_local(self, value: Any) -> Any:
        """The inverse of `to_remote`, for results; paths named inside a longer text (an error
        message) are rewritten too."""
        if not self.pairs:
            return value
        back = sorted(((r, l) for l, r in self.pairs), key=lambda p: len(p[0]), reverse=True)

        def text(s: str) -> str:
            swapped = _swap(s, back)
            if swapped != s:
                return swapped
            for remote, local in back:
                s = s.replace(remote + "/", local + "/")
            return s
        return _walk(value, text)


def _strip(prefix: str) -> str:
    return prefix.rstrip("/") or "/"


def _swap(path: str, pairs) -> str:
    for old, new in pairs:
        if old == "/":
            return new.rstrip("/") + path if path.startswith("/") else path
        if path == old or path.startswith(old + "/"):
            return new + path[len(old):]
    return path


def _walk(value: Any, fix: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {k: _walk(v, fix) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fix) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_walk(v, fix) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _walk(getattr(value, f.name), fix) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


# --- the executor ----------------------------------------------------------------------------

@dataclass
class DaskExecutor:
    """Tasks on the workers of a Dask cluster, through `client` (a distributed.Client)."""

    client: Any
    path_map: PathMap = field(default_factory=PathMap)
    in_flight: int | None = None  # futures submitted and not yet taken back; None: 4 x threads + 2
    allowed_failures: int | None = 1  # set on the scheduler at the first run (None: leave it)
    time_limit: TimeLimit = field(default_factory=TimeLimit)
    owns_client: bool = False
    _configured: bool = field(default=False, init=False, repr=False)
    _threads: tuple[int, float] | None = field(default=None, init=False, repr=False)  # (threads, when asked)

    @classmethod
    def connect(cls, address: str, *, path_map: PathMap | None = None, timeout_s: float = 30.0,
                **kwargs) -> DaskExecutor:
        """An executor on the scheduler at `address`; UsageError when it cannot be reached."""
        distributed = import_distributed()
        try:
            client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        return cls(client, path_map or PathMap(), owns_client=True, **kwargs)

    def close(self) -> None:
        if self.owns_client:
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def threads(self) -> int:
        """Worker threads of the cluster (0 while no worker is connected), asked of the scheduler
        at most every THREADS_EVERY_S (each ask is a round trip)."""
        now = time.monotonic()
        if self._threads is None or now - self._threads[1] > THREADS_EVERY_S:
            try:
                workers = self.client.scheduler_info(n_workers=-1)["workers"]
            except TypeError:  # older distributed: no n_workers
                workers = self.client.scheduler_info()["workers"]
            self._threads = (sum(int(w.get("nthreads", 1)) for w in workers.values()), now)
        return self._threads[0]

    def _configure(self) -> None:
        """Set the scheduler's allowed-failures and worker-saturation (see the module's doc)."""
        if self._configured:
            return
        limit = self.allowed_failures

        def configure(dask_scheduler=None):  # defined here: sent by value, not by name
            if limit is not None:
                dask_scheduler.allowed_failures = int(limit)
            dask_scheduler.WORKER_SATURATION = 1.0
        self.client.run_on_scheduler(configure)
        self._configured = True

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any],
            on_outcome: Callable[[TaskOutcome], None]) -> None:
        distributed = import_distributed()
        from ..steps import _STEP_MODULES

        registry = dict(_STEP_MODULES)  # steps registered at run time are found on the workers too
        self._configure()
        queue = iter(items)
        tag = f"{KEY_PREFIX}-{getattr(getattr(fn, 'func', fn), '__name__', 'task')}"
        completed = distributed.as_completed(loop=self.client.loop, with_results=True, raise_errors=False)
        pending: dict[str, tuple[Any, float]] = {}  # future key -> (item as given, when submitted)
        exhausted = False

        def top_up() -> None:
            """Submit items until `in_flight` are out (in one batch: Dask sees them together)."""
            nonlocal exhausted
            bound = self.in_flight or 4 * self.threads() + 2
            batch = []
            while not exhausted and len(pending) + len(batch) < bound:
                try:
                    batch.append(next(queue))
                except StopIteration:
                    exhausted = True
            if not batch:
                return
            keys = [f"{tag}-{uuid.uuid4().hex}" for _ in batch]
            n = len(batch)
            futures = self.client.map(_run_task, [fn] * n, [self.path_map.to_remote(i) for i in batch],
                                      [registry] * n, [self.time_limit] * n, key=keys, pure=False,
                                      retries=0)
            now = time.monotonic()
            for key, item, future in zip(keys, batch, futures):
                pending[key] = (item, now)
            completed.update(futures)

        lost = 0
        try:
            top_up()
            for future, result in completed:
                item, sent = pending.pop(future.key)
                outcome = self._outcome(future, result, item, time.monotonic() - sent)
                if outcome is None:  # cancelled: the scheduler connection is gone
                    lost += 1
                    exhausted = True  # submit nothing more
                    continue
                if not lost:
                    top_up()
                on_outcome(outcome)
        except BaseException:
            _cancel(self.client, completed, pending)
            raise
        if lost:
            raise ClusterLost(f"the Dask scheduler at {self.address} went away during the run: "
                              f"{lost} item(s) in flight were not done; what finished is saved, "
                              "run the same command again to resume")

    def _outcome(self, future, result, item, elapsed_s: float) -> TaskOutcome | None:
        status = future.status
        if status == "cancelled" or _is_cancelled(result):
            return None
        if status == "finished":
            kind, value, error = result
            return TaskOutcome(item, self.path_map.to_local(value),
                               self.path_map.to_local(error) if error else None, kind, elapsed_s)
        exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
        if type(exc).__name__ == "KilledWorker":
            tries = getattr(exc, "allowed_failures", 1) + 1
            worker = getattr(getattr(exc, "last_worker", None), "address", "?")
            return TaskOutcome(item, None, f"the worker process died while processing this item, on {tries} "
                                           f"Dask workers in turn (the last: {worker}): a decoder fault, or out of "
                                           "memory", "crashed", elapsed_s)
        message = describe(exc) if isinstance(exc, BaseException) else str(exc)
        return TaskOutcome(item, None, f"the Dask worker could not run this item: {message}", "raised", elapsed_s)


def _is_cancelled(result) -> bool:
    from asyncio import CancelledError

    return isinstance(result, CancelledError) or type(result).__name__.endswith("CancelledError")


def _cancel(client, completed, pending: dict) -> None:
    """Cancel what is still in flight (Ctrl-C, an error in on_outcome), without waiting long."""
    futures = list(completed.futures) if hasattr(completed, "futures") else []
    try:
        completed.clear()
    except Exception:  # noqa: BLE001 - best effort while stopping
        pass
    if futures:
        try:
            client.cancel(futures, force=True)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass
    pending.clear()


# --- on the worker ------------------------------------------------------------------------------

_decoded: dict[int, float] = {}  # thread id -> seconds of audio decoded by the item it runs
POLL_S = 0.5


def _count_decoded(seconds: float) -> None:
    ident = threading.get_ident()
    if ident in _decoded:
        _decoded[ident] += seconds


def _run_task(fn: Callable[[Any], Any], item: Any, registry: dict[str, str], limit: TimeLimit) -> tuple:
    """Run one task on a Dask worker: (kind, value, error), never raising for a failing `fn`
    (a failure is the item's: Dask must not retry it, nor count it against the worker).
    `fn` runs in a thread of its own, so that the task can give up at the time limit."""
    from ..io import decode
    from ..steps import _STEP_MODULES, register

    for name, module in registry.items():
        if _STEP_MODULES.get(name) != module:
            register(name, module)
    decode.set_progress_hook(_count_decoded)  # this process's readers report to the item's thread
    reply: list = []

    def work() -> None:
        _decoded[threading.get_ident()] = 0.0
        try:
            reply.append(("ok", fn(item), None))
        except MemoryError:
            reply.append(("raised", None, "out of memory"))
        except Exception as exc:  # the outcome says what went wrong; the batch goes on
            reply.append(("raised", None, describe(exc)))
        finally:
            _decoded.pop(threading.get_ident(), None)

    thread = threading.Thread(target=work, name="audiotrove-item", daemon=True)
    started = time.monotonic()
    thread.start()
    while True:
        thread.join(POLL_S)
        if not thread.is_alive():
            return reply[0] if reply else ("raised", None, "the item's thread ended without a result")
        decoded_s = _decoded.get(thread.ident, 0.0)
        elapsed = time.monotonic() - started
        if elapsed > limit.seconds(decoded_s):
            thread.name = "audiotrove-timed-out"
            return ("timed_out", None, f"timed out after {elapsed:.0f} s (limit: {limit.describe(decoded_s)})")


__all__ = ["ClusterLost", "DaskExecutor", "INSTALL_HINT", "PathMap", "import_distributed"]
