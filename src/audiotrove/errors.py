"""One error root for the whole project, in two tiers a user sees differently.

- `ItemError`: one item (a file, a unit) cannot be processed. The message is written for the
  user; the runner stores it with the item as it is and the batch goes on.
- `UsageError`: the command was given something it cannot do (a bad option, a bad query).
  The CLI prints one clean line and exits 2 before any work starts.

Anything else that escapes a step is a bug: the runner stores a one-line message naming the
step, the file and the exception (`bug_message`), keeps the traceback in the collection's
.audiotrove/errors.log (`log_bug`; `audiotrove --debug ...` prints it too) and keeps the batch going.
"""
from __future__ import annotations

import os
import time

LOG_NAME = "errors.log"


class AudiotroveError(Exception):
    """Root of every error audiotrove raises on purpose."""


class ItemError(AudiotroveError):
    """One item failed; the message is for the user and is stored as written."""


class UsageError(AudiotroveError):
    """The command cannot run as asked; the message says why (exit status 2)."""


def bug_message(exc: BaseException, *, step: str | None = None, path: str | None = None,
                where: str | None = None) -> str:
    """One line naming what failed: 'bug in step segment on a.wav: ValueError: bad (traceback
    in .audiotrove/errors.log)'."""
    where = where or " ".join(filter(None, [f"in step {step}" if step else "",
                                            f"on {os.path.basename(path)}" if path else ""]))
    text = " ".join(str(exc).split()) or "(no message)"
    return (f"bug{' ' + where if where else ''}: {type(exc).__name__}: {text} "
            f"(traceback in .audiotrove/{LOG_NAME})")


def log_bug(workdir: str | os.PathLike, header: str, trace: str) -> str:
    """Append a traceback to <workdir>/errors.log (workdir: the collection's .audiotrove folder);
    return the log's path."""
    path = os.path.join(os.fspath(workdir), LOG_NAME)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {header}\n{trace.rstrip()}\n")
    return path


__all__ = ["AudiotroveError", "ItemError", "UsageError", "bug_message", "log_bug", "LOG_NAME"]
