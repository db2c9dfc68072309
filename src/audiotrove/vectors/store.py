"""Vector shards: one Parquet file per (audio, embedding configuration) under
<collection>/.audiotrove/vectors/shards/, beside the unit shards and keyed like them.

A shard holds the vectors of one file's audio for one model, level and window (or
segmentation): columns `unit` (index of the unit or window; 0 for the file), `start`, `dur`
(s) and `vector` (float16, fixed length). Its name is a digest of the decoded audio and of the
configuration, so identical audio shares one shard. Written block by block to a temporary name
and renamed: memory holds one batch of rows, and a crash never leaves half a shard.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog.db import CATALOG_DIR
from ..io.write import temp_path, write_text_atomic

VECTORS_DIRNAME = "vectors"
SHARDS_DIRNAME = "shards"


def vectors_root(collection_root: str | os.PathLike) -> Path:
    """<collection>/.audiotrove/vectors (not created)."""
    return Path(collection_root) / CATALOG_DIR / VECTORS_DIRNAME


def shards_dir_of_workdir(workdir: str | os.PathLike) -> Path:
    """The shard folder from a step's workdir (<collection>/.audiotrove)."""
    return Path(workdir) / VECTORS_DIRNAME / SHARDS_DIRNAME


def schema(dim: int) -> pa.Schema:
    return pa.schema([
        pa.field("unit", pa.int32(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("dur", pa.float64(), nullable=False),
        pa.field("vector", pa.list_(pa.float16(), dim), nullable=False),
    ])


def config_key(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def shard_name(audio_digest: str, config: dict) -> str:
    return f"{audio_digest}-{config_key(config)}.parquet"


class ShardWriter:
    """Append batches of rows; `commit(name)` renames the finished shard into place."""

    def __init__(self, directory: str | os.PathLike, dim: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.rows = 0
        self._tmp = str(temp_path(self.directory / "shard.parquet"))
        self._writer = pq.ParquetWriter(self._tmp, schema(dim), compression="zstd")

    def write(self, units, starts, durs, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float16).reshape(-1, self.dim)
        if len(vectors) == 0:
            return
        flat = pa.array(vectors.reshape(-1), type=pa.float16())
        table = pa.table({
            "unit": pa.array(np.asarray(units, np.int32)),
            "start": pa.array(np.asarray(starts, np.float64)),
            "dur": pa.array(np.asarray(durs, np.float64)),
            "vector": pa.FixedSizeListArray.from_arrays(flat, self.dim),
        }, schema=schema(self.dim))
        self._writer.write_table(table)
        self.rows += len(vectors)

    def commit(self, name: str) -> Path:
        self._writer.close()
        final = self.directory / name
        os.replace(self._tmp, final)
        return final

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)




def read_vectors(path: str | os.PathLike) -> tuple[pa.Table, np.ndarray]:
    """(the unit/start/dur columns, the vectors as float32 (n, dim)) of one shard."""
    table = pq.read_table(path)
    return table.drop(["vector"]), _as_float32(table.column("vector").combine_chunks())


def iter_vectors(path: str | os.PathLike, *, batch_rows: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(unit indices, float32 (n, dim) vectors) of one shard, batch_rows at a time, in its row
    order: memory holds one batch, whatever the shard's length."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=["unit", "vector"]):
        yield batch.column("unit").to_numpy(), _as_float32(batch.column("vector"))


def _as_float32(col) -> np.ndarray:
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)  # flatten: a batch may be a slice
    return values.reshape(-1, col.type.list_size)


__all__ = ["ShardWriter", "config_key", "iter_vectors", "read_vectors", "schema", "shard_name", "shards_dir_of_workdir",
           "vectors_root", "write_text_atomic"]
