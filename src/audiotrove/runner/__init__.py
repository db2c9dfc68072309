"""The runner: plan which files need a step, run them in parallel, commit each result as it arrives."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..catalog.db import CATALOG_DIR, Catalog
from ..errors import UsageError, log_bug
from ..steps import _STEP_MODULES, get_step
from .executor import Executor, LocalPoolExecutor, TaskOutcome, TimeLimit, default_workers
from .lock import RunLocked, step_lock
from .plan import Plan, make_plan, requirement_groups
from .progress import RunProgress
from .worker import Outcome, execute_item, failed_outcome, init_worker


@dataclass
class RunSummary:
    step: str
    planned: int = 0
    ok: int = 0
    failed: int = 0
    up_to_date: int = 0
    failed_before: int = 0  # skipped as up to date, but failed in an earlier run
    urls_pending: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def not_started(self) -> int:
        return self.planned - self.ok - self.failed

    def line(self) -> str:
        text = (f"{self.step}: {self.ok} ok, {self.failed} failed, {self.up_to_date} already up to date")
        if self.failed_before:
            text += f" ({self.failed_before} of them failed before: --retry-failed runs them again)"
        if self.urls_pending:
            text += f", {self.urls_pending} URLs not fetched yet (`audiotrove fetch` downloads them)"
        if self.ok + self.failed:
            text += f"; {self.audio_s / 3600:.2f} h of audio in {self.elapsed_s:.1f} s"
            if self.elapsed_s > 0 and self.audio_s > 0:
                text += f" ({self.audio_s / self.elapsed_s:.0f}x real time)"
        if self.interrupted:
            text += f"; interrupted, {self.not_started} not done: run again to resume"
        return text


def run_step(catalog: Catalog, step_name: str, overrides: dict | None = None, *,
             workers: int | None = None, file_ids: set[int] | None = None,
             retry_failed: bool = False, show_progress: bool = True,
             item_timeout_s: float | None = None, wait_for_lock: bool = False,
             executor: Executor | None = None,
             on_commit: Callable[[int], None] | None = None) -> RunSummary:
    """Bring `step_name` up to date for the chosen files (all by default).

    A step it requires is met by each file's current result of that step, whatever its
    parameters; only files with none get it computed first (see plan.requirement_groups).
    One run of a step at a time per collection (runner/lock.py): RunLocked (a UsageError) when
    another run holds it; a required step's lock is waited for. `item_timeout_s`: the time
    limit of one item (default: 60 s + 10 x the seconds of audio it has decoded).
    Raises KeyboardInterrupt after committing what finished if the user presses Ctrl-C;
    the returned summary's `interrupted` is then set on the exception as `.summary`.
    `on_commit(file_id)` is called after each of this step's outcomes is committed (not for the
    steps it requires), so a caller can show results as they come. `executor`: where the items run (a DaskExecutor...); by default the local process pool of
    `workers` processes. A cluster that goes away (ClusterLost) carries `.summary` the same way.
    """
    step = get_step(step_name)
    workdir = catalog.root / CATALOG_DIR
    with step_lock(workdir, step.name, wait=wait_for_lock, on_wait=_say_waiting(step.name, show_progress)):
        _sweep(workdir)
        for required in step.requires:
            for params, ids in requirement_groups(catalog, get_step(required), file_ids=file_ids):
                run_step(catalog, required, params, workers=workers, file_ids=ids,
                         show_progress=show_progress, item_timeout_s=item_timeout_s, wait_for_lock=True,
                         executor=executor)
        plan = make_plan(catalog, step, step.params(overrides), file_ids=file_ids,
                         retry_failed=retry_failed)
        catalog.make_current(step.name, step.version, plan.params_hash, plan.up_to_date_ids)
        return execute_plan(catalog, plan, workers=workers or default_workers(),
                            show_progress=show_progress, item_timeout_s=item_timeout_s, executor=executor,
                            on_commit=on_commit)


def _say_waiting(step: str, show: bool):
    def on_wait(holder: str) -> None:
        if show:
            import sys

            print(f"waiting for another run of {step} to finish ({holder})", file=sys.stderr)
    return on_wait


def _sweep(workdir) -> None:
    """Temporary files of killed runs (unit shards half written...) go before a run starts."""
    from ..io.write import sweep_temps

    sweep_temps(workdir, recursive=True)


def step_executor(workers: int, *, item_timeout_s: float | None = None,
                  on_progress=None) -> Executor:
    """The executor a step runs on: the local process pool (workers get the step registry)."""
    return LocalPoolExecutor(workers, TimeLimit(fixed_s=item_timeout_s), initializer=init_worker,
                             initargs=(dict(_STEP_MODULES),),
                             preload=("audiotrove.runner.worker", "audiotrove.steps.analyze"),
                             on_progress=on_progress)


def execute_plan(catalog: Catalog, plan: Plan, *, workers: int, show_progress: bool,
                 item_timeout_s: float | None = None, executor: Executor | None = None,
                 on_commit: Callable[[int], None] | None = None) -> RunSummary:
    summary = RunSummary(plan.step.name, planned=len(plan.items), up_to_date=plan.up_to_date,
                         failed_before=plan.failed_before, urls_pending=plan.urls_pending)
    started = time.perf_counter()

    def commit(done: TaskOutcome) -> None:
        outcome: Outcome = done.value if done.error is None else failed_outcome(done.item, done.error)
        catalog.record(
            outcome.file_id, size_bytes=outcome.size_bytes, mtime_ns=outcome.mtime_ns,
            content_hash=outcome.content_hash, step=plan.step.name, step_version=plan.step.version,
            params_hash=plan.params_hash, params=plan.params, status=outcome.status,
            error=outcome.error, data=outcome.data, elapsed_s=outcome.elapsed_s,
        )
        if outcome.traceback:
            log_bug(catalog.root / CATALOG_DIR, outcome.error or "", outcome.traceback)
        if outcome.status == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
        summary.audio_s += outcome.audio_s
        progress.advance(outcome)
        if on_commit is not None:
            on_commit(outcome.file_id)

    with RunProgress(plan.step.name, len(plan.items), enabled=show_progress) as progress:
        try:
            if plan.items:
                runner = executor or step_executor(min(workers, len(plan.items)), item_timeout_s=item_timeout_s,
                                                   on_progress=progress.decoding)
                runner.run(partial(execute_item, plan.step.name), plan.items, commit)
        except (KeyboardInterrupt, UsageError) as exc:  # Ctrl-C; a cluster gone (ClusterLost)
            summary.interrupted = True
            summary.elapsed_s = time.perf_counter() - started
            exc.summary = summary  # type: ignore[attr-defined]
            raise
    summary.elapsed_s = time.perf_counter() - started
    return summary


__all__ = ["RunSummary", "RunLocked", "run_step", "execute_plan", "default_workers", "step_executor"]
