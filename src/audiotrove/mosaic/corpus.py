"""The corpus of a mosaic: the collection's unit vectors, through the vector index.

    corpus = CollectionCorpus(catalog, model="yamnet", where="duration > 10", units="power > -40",
                              exclude_file=target.file_id)
    rows, dist = corpus.search(vectors, k=20)          # (T, k) index rows, cosine distances
    table = corpus.describe(rows)                      # one row per index row: path, unit, hz...

Filters are those of `similar` (vectors/search.py Similarity.allowed_rows): a file query
(`--corpus-where`) and a unit query (`--corpus-units`), applied before ranking, so k
candidates come back whenever k units pass. Search is the index's own (exact up to 50 000
rows or for a filter leaving at most 4 096, else faiss IVF). Memory: the index as `similar`
holds it, plus the candidates of the target's units; nothing else grows with the corpus.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..units.schema import UNIT_COLUMNS

DESCRIBED = tuple(c for c in UNIT_COLUMNS if c not in ("unit", "start", "dur", "note", "octave"))


class CollectionCorpus:
    """The allowed unit vectors of one model in a collection (see the module docstring)."""

    def __init__(self, catalog, *, model: str, where: str | None = None, units: str | None = None,
                 exclude_file: int | None = None):
        from ..vectors.search import Similarity, filters

        self.catalog = catalog
        self.model = model
        self.engine = Similarity(catalog, model, "unit")
        self.index = self.engine.index
        if self.index.rows == 0 or not self.engine.entries:
            extra = "" if model == "yamnet" else f" --model {model}"
            raise UsageError(f"no {model} unit vectors in the collection: run `audiotrove segment` and "
                             f"`audiotrove embed --units{extra}` first")
        file_ids, unit_rows = filters(catalog, where=where, units=units)
        self.allowed = self.engine.allowed_rows(file_ids=file_ids, units=unit_rows, exclude_file=exclude_file)
        self.file_ids = file_ids
        self.exclude_file = exclude_file
        mask = self.index.alive_mask() if self.allowed is None else self.index.alive_mask() & self.allowed
        self.size = int(mask.sum())
        if self.size == 0:
            raise UsageError("no corpus unit passes --corpus-where / --corpus-units"
                             + (" (the target's own file is left out)" if exclude_file is not None else ""))

    @property
    def dim(self) -> int:
        return int(self.index.dim)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, k) rows and cosine distances of the k nearest allowed units of each vector;
        -1 and inf where fewer than k pass the filters."""
        vectors = np.asarray(vectors, np.float32)
        rows = np.full((len(vectors), k), -1, np.int64)
        dist = np.full((len(vectors), k), np.inf)
        for i, v in enumerate(vectors):
            r, d = self.index.search(v, k, allowed=self.allowed)
            rows[i, :len(r)] = r
            dist[i, :len(d)] = d
        return rows, dist

    def sample(self, count: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """(count, k) allowed rows drawn at random (each target unit its own draw, no repeats in a row)."""
        mask = self.index.alive_mask() if self.allowed is None else self.index.alive_mask() & self.allowed
        pool = np.flatnonzero(mask)
        kk = min(k, len(pool))
        out = np.full((count, k), -1, np.int64)
        for i in range(count):
            out[i, :kk] = rng.choice(pool, size=kk, replace=False)
        return out

    def describe(self, rows: np.ndarray) -> pd.DataFrame:
        """One row per distinct index row (>= 0), indexed by it: path, file_id, unit, start, dur,
        source (an integer per vector shard: units of one source share it), fresh (the file is
        as the catalog saw it) and the unit descriptors (power, hz, clarity, centroid, flatness,
        rolloff, zcr, mfcc; NaN / None where the unit shard is gone)."""
        from ..units.store import current_shards
        from ..units.store import read_shard
        from ..vectors.search import stat_facts

        wanted = np.unique(rows[rows >= 0])
        meta = self.index.meta().iloc[wanted]
        shard_codes = {}
        recs = []
        for row, shard, unit, start, dur in zip(wanted, meta["shard"], meta["unit"], meta["start"], meta["dur"]):
            entries = [e for e in self.engine.files_of_shard.get(shard, [])
                       if e.file_id != self.exclude_file and (self.file_ids is None or e.file_id in self.file_ids)]
            if not entries:
                continue
            e = entries[0]
            recs.append((int(row), e.path, e.file_id, int(unit), float(start), float(dur),
                         shard_codes.setdefault(shard, len(shard_codes))))
        df = pd.DataFrame(recs, columns=["row", "path", "file_id", "unit", "start", "dur", "source"])
        entry_of = {e.file_id: e for es in self.engine.files_of_shard.values() for e in es}
        fresh = {fid: stat_facts(entry_of[fid].path) == (entry_of[fid].size_bytes, entry_of[fid].mtime_ns)
                 for fid in df["file_id"].unique()}
        df["fresh"] = df["file_id"].map(fresh).astype(bool) if len(df) else pd.Series(dtype=bool)
        # the unit descriptors, from the unit shards of the files that have candidates
        ids = set(int(i) for i in df["file_id"].unique())
        refs, _ = current_shards(self.catalog, ids) if ids else ([], [])
        parts = []
        for ref in refs:
            wanted_units = df.loc[df["file_id"] == ref.file_id, "unit"].unique()
            t = read_shard(ref.shard).select(["unit", *DESCRIBED]).to_pandas()
            t = t[t["unit"].isin(wanted_units)]
            t.insert(0, "file_id", ref.file_id)
            parts.append(t)
        if parts:
            desc = pd.concat(parts, ignore_index=True)
            df = df.merge(desc, on=["file_id", "unit"], how="left")
        else:
            for c in DESCRIBED:
                df[c] = None if c == "mfcc" else math.nan
        return df.set_index("row", drop=False)


__all__ = ["CollectionCorpus", "DESCRIBED"]
