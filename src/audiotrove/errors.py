"""One error root for the whole project, in two tiers a user sees differently.

- `ItemError`: one item (a file, a unit) cannot be processed. The message is written for the
  user; the runner stores it with the item as it is and the batch goes on.
- `UsageError`: the command was given something it cannot do (a bad option, a bad query).
  The CLI prints one clean line and exits 2 before any work starts.

Anything else that escapes a step is a bug: the runner stores a one-line message naming the
exception and where it happened, and keeps the batch going.
"""
from __future__ import annotations


class AudiotroveError(Exception):
    """Root of every error audiotrove raises on purpose."""


class ItemError(AudiotroveError):
    """One item failed; the message is for the user and is stored as written."""


class UsageError(AudiotroveError):
    """The command cannot run as asked; the message says why (exit status 2)."""


__all__ = ["AudiotroveError", "ItemError", "UsageError"]
