"""Content hashes: results are keyed by what a file holds, not by its name."""
from __future__ import annotations

import hashlib
import os

CHUNK_BYTES = 1 << 20


def content_hash(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of the file's bytes, as 'b2:<hex>'. Raises OSError if unreadable."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return "b2:" + digest.hexdigest()


def placeholder_hash(path: str, size_bytes: int | None, mtime_ns: int | None) -> str:
    """Key for an item whose bytes cannot be read: its name and stat, so a change retries it."""
    text = f"{path}\0{size_bytes}\0{mtime_ns}"
    return "unreadable:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def params_hash(params: dict) -> str:
    """Stable hash of a step's parameters (canonical JSON)."""
    import json

    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
