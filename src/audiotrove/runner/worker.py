"""What a worker process does with one item: stat, check, hash, run the step, report.

Runs in a pool process; returns a plain Outcome (picklable) and never raises for a bad item.
A path that is not a regular file (a FIFO, a device: reading it would never end) fails at
once, before anything opens it.
"""
from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass

from ..errors import ItemError, bug_message
from ..io.hashing import content_hash, placeholder_hash
from ..io.raw import declare as declare_raw
from ..steps import Item, get_step, register


@dataclass
class Outcome:
    file_id: int
    size_bytes: int | None
    mtime_ns: int | None
    content_hash: str
    status: str  # "ok" | "error"
    error: str | None
    data: dict | None
    elapsed_s: float
    audio_s: float  # seconds of audio processed (for throughput), 0 when unknown
    traceback: str | None = None  # a bug's traceback, for the coordinator to log (errors.log_bug)


def stat_facts(path: str) -> tuple[int | None, int | None]:
    """(size in bytes, mtime in ns), or (None, None) when the path cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def init_worker(step_modules: dict[str, str] | None = None) -> None:
    """Pool initializer: Ctrl-C is the coordinator's business, not the workers'.

    `step_modules` is the coordinator's step registry (name -> module), so that steps
    registered at run time are found here too.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name, module in (step_modules or {}).items():
        register(name, module)


def execute_item(step_name: str, item: Item) -> Outcome:
    started = time.perf_counter()
    size_bytes, mtime_ns = stat_facts(item.path)
    problem = not_a_regular_file(item.path)
    if problem:
        return Outcome(item.file_id, size_bytes, mtime_ns,
                       placeholder_hash(item.path, size_bytes, mtime_ns), "error", problem, None,
                       time.perf_counter() - started, 0.0)
    try:
        digest = content_hash(item.path)
    except (OSError, ValueError):
        digest = placeholder_hash(item.path, size_bytes, mtime_ns)
    if item.raw_format:  # the same bytes read as another format are other audio
        digest += f"+raw:{item.raw_format}"
    trace = None
    declare_raw(item.path, item.raw_format)  # headerless PCM is read as its stated format
    try:
        data = get_step(step_name).run(item)
        status, error = "ok", None
    except ItemError as exc:  # a user-facing message, stored as written
        data, status, error = None, "error", str(exc)
    except MemoryError:
        data, status, error = None, "error", "out of memory while processing this file"
    except Exception as exc:  # a bug: keep the batch going, name it, keep the traceback
        data, status, error = None, "error", bug_message(exc, step=step_name, path=item.path)
        trace = "".join(traceback.format_exception(exc))
    return Outcome(
        file_id=item.file_id, size_bytes=size_bytes, mtime_ns=mtime_ns, content_hash=digest,
        status=status, error=error, data=data, elapsed_s=time.perf_counter() - started,
        audio_s=_audio_seconds(data) or _audio_seconds(item.inputs.get("analyze")),
        traceback=trace,
    )


def not_a_regular_file(path: str) -> str | None:
    """Why `path` must not be read (a FIFO, a device, a socket), or None."""
    from ..io.decode import DecodeError, check_regular_file

    try:
        check_regular_file(path)
    except DecodeError as exc:
        if "not a regular file" in str(exc):
            return str(exc)
    return None


def failed_outcome(item: Item, message: str) -> Outcome:
    """The outcome of an item whose worker gave none (it crashed, or ran out of time): the
    message, keyed by the file's content when it is a regular file (else by name and stat)."""
    size_bytes, mtime_ns = stat_facts(item.path)
    digest = None
    if "crashed" in message and not_a_regular_file(item.path) is None:
        try:
            digest = content_hash(item.path)
        except OSError:
            pass
    return Outcome(item.file_id, size_bytes, mtime_ns,
                   digest or placeholder_hash(item.path, size_bytes, mtime_ns), "error", message,
                   None, 0.0, 0.0)


def _describe(exc: Exception) -> str:
    from .executor import describe

    return describe(exc)


def _audio_seconds(data: dict | None) -> float:
    try:
        return float(data["media_info"]["container"]["duration"] or 0.0)
    except (TypeError, KeyError):
        return 0.0
