"""Scaling out: the executor options of the step commands, and `audiotrove cluster local`.

Every command that runs a step (analyze, segment, embed, enhance, tag, transcribe, classify
predict) takes, before or after its name:

    --executor local|dask    where the items run (default: local, or dask when a scheduler is given)
    --scheduler ADDRESS      the Dask scheduler (default: $AUDIOTROVE_SCHEDULER; setting it selects dask)
    --path-map LOCAL=REMOTE  the workers see the folder LOCAL of this machine as REMOTE (repeatable)

`audiotrove cluster local --workers N` starts a Dask LocalCluster on this machine and prints
its address, for trying the Dask executor without a cluster.
"""
from __future__ import annotations

import functools
import inspect
import os
from contextlib import contextmanager
from typing import Iterator, List, Optional

import typer

from ..errors import UsageError
from .common import State, err

SCHEDULER_ENV = "AUDIOTROVE_SCHEDULER"
EXECUTORS = ("local", "dask")
# The commands that run a step through runner.run_step (by their name on the command line).
STEP_COMMANDS = ("analyze", "enhance", "segment", "embed", "tag", "transcribe", "predict")


def register(app: typer.Typer) -> None:
    cluster = typer.Typer(help="A Dask cluster for `--executor dask`: `cluster local` starts one on this machine.",
                          no_args_is_help=True)
    cluster.command("local")(local_cmd)
    app.add_typer(cluster, name="cluster")


# --- the options ------------------------------------------------------------------------------

def _options() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("executor_name", kw, annotation=Optional[str], default=typer.Option(
            None, "--executor", metavar="local|dask", help="Where the items run: local (worker processes of this "
            "machine, the default) or dask (the workers of a Dask cluster; see --scheduler).")),
        inspect.Parameter("scheduler", kw, annotation=Optional[str], default=typer.Option(
            None, "--scheduler", metavar="ADDRESS", help=f"Dask scheduler address, e.g. tcp://10.0.0.5:8786 "
            f"(default ${SCHEDULER_ENV}; giving one selects --executor dask).")),
        inspect.Parameter("path_map", kw, annotation=List[str], default=typer.Option(
            [], "--path-map", metavar="LOCAL=REMOTE", help="Dask workers see this machine's folder LOCAL as "
            "REMOTE (another mount point of the same storage); repeatable.")),
    ]


def add_executor_options(app: typer.Typer, names: tuple[str, ...] = STEP_COMMANDS) -> None:
    """Give the step commands of `app` (and of its groups) the executor options."""
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.removesuffix("_cmd").replace("_", "-")
        if name in names:
            info.callback = _with_options(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_executor_options(group.typer_instance, names)


def _with_options(func):
    """A wrapper of `func` whose signature adds the executor options; given ones go to State."""
    signature = inspect.signature(func, eval_str=True)
    extra = [p for p in _options() if p.name not in signature.parameters]

    @functools.wraps(func)
    def run(*args, executor_name=None, scheduler=None, path_map=(), **kwargs):
        if executor_name is not None:
            State.executor = executor_name
        if scheduler is not None:
            State.scheduler = scheduler
        if path_map:
            State.path_map = list(State.path_map) + list(path_map)
        return func(*args, **kwargs)

    params = list(signature.parameters.values())
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    run.__signature__ = signature.replace(parameters=params + extra + var_kw)
    run.__annotations__ = {**{p.name: p.annotation for p in params}, **{p.name: p.annotation for p in extra}}
    del run.__wrapped__  # Typer reads the signature above, not the wrapped function's
    return run


@contextmanager
def chosen_executor(*, workers: int | None = None, item_timeout_s: float | None = None) -> Iterator:
    """The executor the options choose: None for the local pool, or a connected DaskExecutor
    (closed on exit). UsageError for a contradiction or a scheduler that cannot be reached."""
    name = State.executor
    address = State.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if name is not None and name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}: use {' or '.join(EXECUTORS)}")
    if name is None:
        name = "dask" if address else "local"
    if name == "local":
        if State.path_map:
            raise UsageError("--path-map applies to --executor dask (the local pool reads this machine's paths)")
        yield None
        return
    if not address:
        raise UsageError(f"--executor dask needs a scheduler: --scheduler tcp://HOST:8786 or ${SCHEDULER_ENV} "
                         "(`audiotrove cluster local` starts one on this machine)")
    from ..runner.dask_executor import DaskExecutor, PathMap
    from ..runner.executor import TimeLimit

    path_map = PathMap.parse(State.path_map)
    executor = DaskExecutor.connect(address, path_map=path_map, in_flight=workers,
                                    time_limit=TimeLimit(fixed_s=item_timeout_s))
    try:
        yield executor
    finally:
        executor.close()


# --- cluster local -----------------------------------------------------------------------------

def local_cmd(
    workers: int = typer.Option(2, "--workers", "-n", min=1, help="Worker processes."),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads per worker process (1: the steps "
                                "are CPU-bound and hold the GIL in parts)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: reachable from "
                             "other machines, which may then join with `dask worker ADDRESS`)."),
    port: int = typer.Option(8786, "--port", min=0, max=65535, help="Scheduler port (0: any free port)."),
    memory_limit: str = typer.Option("auto", "--memory-limit", help="Per worker: 'auto' (this machine's "
                                     "memory / workers), '4GiB', or 0 for no limit."),
):
    """Start a Dask cluster on this machine (LocalCluster), print its address, run until Ctrl-C.

    In another shell: `audiotrove -C coll analyze --scheduler ADDRESS` (or set
    AUDIOTROVE_SCHEDULER=ADDRESS). An item that kills two workers is marked failed.
    """
    from ..runner.dask_executor import import_distributed

    distributed = import_distributed()
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        try:
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads, processes=True, host=host,
                scheduler_port=port, dashboard_address=None, memory_limit=memory_limit or 0,
            )
        except OSError as exc:
            raise UsageError(f"cannot start the cluster on {host}:{port}: {exc.strerror or exc}") from None
    try:
        print(cluster.scheduler_address, flush=True)
        err.print(f"Dask cluster: {workers} worker(s) x {threads} thread(s) at {cluster.scheduler_address}; "
                  f"use it with --scheduler {cluster.scheduler_address} or {SCHEDULER_ENV}. Ctrl-C stops it.")
        _wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    err.print("cluster stopped")


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (both end the cluster cleanly). SIGINT is handled even when
    the shell started this in the background with it ignored."""
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    threading.Event().wait()


__all__ = ["add_executor_options", "chosen_executor", "register",
           "SCHEDULER_ENV", "STEP_COMMANDS"]
