"""Models whose weights ship inside registry packages (or are given by path): find, check, cache.

Nothing here downloads anything. A model file that ships in a package is checked against a
pinned sha256 before it is used; a model that must be unpacked or joined is written once into
the user's cache folder (`AUDIOTROVE_CACHE`, default ~/.cache/audiotrove), never into
site-packages, and checked again there.
"""
from __future__ import annotations

import functools
import hashlib
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import AudiotroveError


class ModelError(AudiotroveError):
    """A model is missing, damaged or unusable; the message says what to install or fix."""


def cache_dir() -> Path:
    """The folder where unpacked models are kept (created on demand)."""
    root = os.environ.get("AUDIOTROVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "audiotrove")
    path = Path(root) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike, expected: str) -> Path:
    """Return `path` when its sha256 is `expected`; raise ModelError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelError(f"model file {path} is damaged or not the pinned version "
                         f"(sha256 {actual[:12]}..., expected {expected[:12]}...): reinstall it")
    return path


T = TypeVar("T")


def once_per_process(make: Callable[[], T]) -> Callable[[], T]:
    """Decorate a loader: the first call makes the model, later calls return that same one (a
    lock keeps two threads from loading it twice; a failed load is tried again next time)."""
    lock = threading.Lock()
    loaded: list[T] = []

    @functools.wraps(make)
    def load() -> T:
        with lock:
            if not loaded:
                loaded.append(make())
            return loaded[0]

    return load


__all__ = ["ModelError", "cache_dir", "check_sha256", "once_per_process", "sha256_of"]
