"""What a step is: a named, versioned function of one item and its parameters.

A step's `run(item)` reads the file at `item.path` (never writes to it), and returns a
JSON-ready dict; it raises an exception with a user-facing message when the item fails.
Results are stored keyed by (content hash, step name, step version, parameter hash):
bump `version` when the algorithm's output changes, and exactly that is recomputed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Item:
    """One unit of work handed to a worker process."""

    file_id: int
    path: str
    params: dict
    # Latest ok results of the steps this step `requires`, by step name (e.g. {"analyze": {...}}).
    inputs: dict = field(default_factory=dict)
    # The collection's .audiotrove folder: where a step keeps files of its own (unit shards).
    # Not a parameter, so moving a collection does not change any result's key.
    workdir: str = ""
    # Headerless PCM: the file's RATE:CHANNELS:FORMAT (io/raw.py); the worker declares it.
    raw_format: str | None = None


@dataclass(frozen=True)
class Step:
    name: str
    version: str
    run: Callable[[Item], dict]
    defaults: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    summary: str = ""

    def params(self, overrides: dict | None = None) -> dict[str, Any]:
        """The full parameter set: defaults updated with the user's non-None overrides."""
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in merged:
                raise ValueError(f"step {self.name!r} has no parameter {key!r}")
            if value is not None:
                merged[key] = value
        return merged
