"""One run of a step at a time per collection: a lock file per step, held while the step runs.

Two runs of the same step on one collection would each do all the work (and race to commit the
same results). The second run therefore stops at once with exit status 2 and says who holds the
lock (process id, host, start time, command); a step that only *requires* the locked one (enhance
needs analyze) waits for it instead, since it needs those results anyway. Requirements form a
graph without cycles, so this cannot deadlock.

The lock is `fcntl.flock` on `<collection>/.audiotrove/locks/<step>.lock`: the kernel releases it
when its process ends, however it ends (SIGKILL, OOM killer), so a stale lock cannot block the
next run. The file keeps a line about its holder, for the message.
"""
from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UsageError


class RunLocked(UsageError):
    """Another run of the same step holds the collection's lock for it."""


@contextmanager
def step_lock(workdir: str | os.PathLike, step: str, *, wait: bool = False,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of `step` in this collection's `workdir` (.audiotrove) for the block.

    Busy: RunLocked, or with `wait` block until it is free (`on_wait(holder)` is called first)."""
    folder = Path(workdir) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{step}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise RunLocked(f"another run of {step} is working on this collection ({holder}): "
                                "wait for it to finish, or stop it, then run again") from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        command = " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:300]
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"process {os.getpid()} on {socket.gethostname()}, started "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    text = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip()
    return text or "a process that is just starting"


__all__ = ["RunLocked", "step_lock"]
