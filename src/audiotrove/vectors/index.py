"""The vector index of one (model, level): exact search while small, faiss IVF above a size.

    vs = VectorSet.of("yamnet", "unit")                   # which vectors (model, version, level...)
    index = open_index(catalog, vs)                       # brought up to date with the catalog
    hits = index.search(query_vector, k=10, allowed=mask)  # rows and cosine distances

Where: <collection>/.audiotrove/vectors/index/<model>-<level>-<key>/
    state.json          the shards included, the row count, the chunk files, the ANN's state
    NNNN.npy            float16 unit-length vectors, one chunk per addition
    NNNN.meta.parquet   per row: shard, unit, start, dur
    ivf.faiss           the ANN (faiss IndexIVFScalarQuantizer, 8-bit, inner product), once the
                        index holds ANN_MIN_ROWS vectors or more

Incremental: opening the index compares its shards with the shards of the files' current
results (catalog); new shards are appended as a new chunk (and added to the ANN without
retraining; the IVF file itself is rewritten every ANN_SAVE_ROWS added rows, rows added since
are put into it in memory when the index is opened); rows of shards no current file points to any more (file deleted, changed or
re-embedded) are masked out at search time, and the whole index is rebuilt once they are more
than half of it. Every write goes to a temporary name and is renamed.

Search: cosine distance (1 - cos) on L2-normalized vectors. A filter (`allowed`, a boolean
mask over rows) applies before ranking: when it leaves at most EXACT_MAX_ROWS rows, or when
there is no ANN, the search is exact over exactly those rows; otherwise the ANN searches with
the filter as an ID selector, so k results come back whenever k rows pass the filter; its
5 k best candidates are re-ranked on the stored (float16) vectors.
"""
from __future__ import annotations

import json
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog.db import Catalog
from ..io.write import atomic_path
from .store import read_vectors, vectors_root

INDEX_DIRNAME = "index"
ANN_MIN_ROWS = 50_000  # below: exact search (measured, bench/RESULTS_embed.md)
EXACT_MAX_ROWS = 4096  # a filter leaving at most this many rows: exact search over them
SCATTERED_READ = 100  # rows read are fewer than 1 in this many: through the MADV_RANDOM maps
# (measured: 4 096 rows of 1 000 000 5x faster from a cold cache, 1 in 50 no faster)
IVF_TRAIN_ROWS = 65_536
IVF_NPROBE = 24
RERANK_FACTOR = 5  # the IVF proposes 5 k candidates, re-ranked exactly
REBUILD_DEAD_FRACTION = 0.5
ANN_SAVE_ROWS = 20_000  # the IVF file is rewritten after this many added rows (until then, an
# opened index adds the newer rows to the IVF in memory: at most ~1 s of work)
ANN_RETRAIN_GROWTH = 8  # the IVF is trained again when the index has grown this much since
EMBED_STEP = "embed"


@dataclass(frozen=True)
class VectorSet:
    """Which vectors: a model (name or ONNX path) and version, a level, its window or segmentation."""

    model: str
    model_version: str
    level: str
    window_s: float | None = 1.0

    @classmethod
    def of(cls, model: str, level: str, *, window_s: float = 1.0) -> "VectorSet":
        from ..models.embedders import model_key

        key = model_key(model)
        return cls(key["model"], key["model_version"], level, None if level == "unit" else float(window_s))

    @property
    def dirname(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.model).stem if os.sep in self.model else self.model)
        extra = "" if self.window_s is None else f"-{self.window_s:g}s"
        return f"{stem}-{self.model_version[:12]}-{self.level}{extra}"

    def matches(self, params: dict) -> bool:
        if params.get("model") != self.model or params.get("model_version") != self.model_version:
            return False
        if params.get("level") != self.level:
            return False
        return self.level == "unit" or float(params.get("window_s") or 0) == self.window_s


@dataclass
class Entry:
    """A current file and its vector shard."""

    file_id: int
    path: str
    content_hash: str
    size_bytes: int | None
    mtime_ns: int | None
    shard: str


def current_entries(catalog: Catalog, vs: VectorSet) -> list[Entry]:
    """The files whose current content has vectors of this set, with their shard.

    Which result: the file's current `embed` result (the catalog's current_results pointer: the
    one the runner last committed or made current) when it is of this set. The catalog keeps
    one pointer per file and step, and `embed` keeps several sets side by side (a run per level
    and model), so a file whose pointer names another set uses its result of this set, the
    newest when it has several (they then differ only in parameters the set does not name).
    Unit vectors count only when made from the file's current segmentation (the `units` key of
    the embed parameters equals the config key of the file's latest segment shard).
    """
    from .embed import VERSION

    current_units: dict[int, str] = {}
    if vs.level == "unit":
        from ..units.store import current_shards

        refs, _ = current_shards(catalog)
        current_units = {r.file_id: r.shard.stem.rsplit("-", 1)[-1] for r in refs}
    pointed = {fid: r.id for fid, r in catalog.current_pointers(EMBED_STEP).items()}
    newest: dict[tuple[str, str | None], tuple[float, int, str]] = {}
    by_id: dict[int, tuple[str, str | None, str]] = {}  # result id -> (content, units key, shard)
    for rid, content_hash, params, data, created in catalog.conn.execute(
            "SELECT id, content_hash, params, data, created_at FROM results "
            "WHERE step = ? AND step_version = ? AND status = 'ok'", (EMBED_STEP, VERSION)):
        try:
            p = json.loads(params)
            shard = (json.loads(data).get("embed") or {}).get("shard")
        except (TypeError, ValueError, AttributeError):
            continue
        if not shard or not vs.matches(p):
            continue
        key = (content_hash, p.get("units") if vs.level == "unit" else None)
        by_id[rid] = (*key, shard)
        if key not in newest or (created, rid) > newest[key][:2]:
            newest[key] = (created, rid, shard)
    entries = []
    for f in catalog.files():
        if f.content_hash is None or f.kind != "file":
            continue
        units_key = current_units.get(f.id) if vs.level == "unit" else None
        if vs.level == "unit" and units_key is None:
            continue
        current = by_id.get(pointed.get(f.id, -1))
        if current is not None and current[:2] == (f.content_hash, units_key):
            shard = current[2]
        else:
            hit = newest.get((f.content_hash, units_key))
            shard = hit[2] if hit else None
        if shard:
            entries.append(Entry(f.id, f.path, f.content_hash, f.size_bytes, f.mtime_ns, shard))
    return entries


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(str(tmp))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class VectorIndex:
    """The vectors of one VectorSet, on disk, with row metadata; see the module docstring."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self._read_state()
        self._chunks: list[np.ndarray] | None = None
        self._scattered: list[np.ndarray] | None = None  # the same, advised MADV_RANDOM (chunks())
        self._meta: pd.DataFrame | None = None
        self._ann = None
        self._alive_mask: np.ndarray | None = None
        self._dense: np.ndarray | None = None
        self.alive_shards = set(self.state["shards"])

    @property
    def alive_shards(self) -> set[str]:
        """The shards current files point to (set by sync); rows of other shards are never returned."""
        return self._alive_shards

    @alive_shards.setter
    def alive_shards(self, shards) -> None:
        self._alive_shards = set(shards)
        self._alive_mask = None

    # --- state ----------------------------------------------------------------------------------
    def _read_state(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return {"dim": None, "rows": 0, "chunks": [], "shards": {}, "ann_rows": 0, "next_chunk": 0}

    def _write_state(self) -> None:
        text = json.dumps(self.state)
        _atomic_write(self.dir / "state.json", lambda tmp: Path(tmp).write_text(text))

    @property
    def rows(self) -> int:
        return int(self.state["rows"])

    @property
    def dim(self) -> int | None:
        return self.state["dim"]

    @property
    def has_ann(self) -> bool:
        return self.state.get("ann_rows", 0) > 0 and (self.dir / "ivf.faiss").exists()

    # --- data -----------------------------------------------------------------------------------
    def chunks(self, *, scattered: bool = False) -> list[np.ndarray]:
        """The float16 chunks, memory-mapped. scattered: a second set of maps of the same files
        (the same page cache) advised MADV_RANDOM, for reading a few rows spread over the index:
        the kernel then reads just the pages asked for, where its readahead, right for a scan,
        reads ~128 KB around each (a re-rank's 120 rows of 1 000 000 x 1024 from a cold cache:
        893 -> 18 ms; bench/RESULTS_embed.md)."""
        if self._chunks is None:
            self._chunks = [np.load(self.dir / f"{c}.npy", mmap_mode="r") for c in self.state["chunks"]]
        if not scattered:
            return self._chunks
        if self._scattered is None:
            self._scattered = [np.load(self.dir / f"{c}.npy", mmap_mode="r") for c in self.state["chunks"]]
            for chunk in self._scattered:
                _advise_random(chunk)
        return self._scattered

    def meta(self) -> pd.DataFrame:
        """One row per vector: row, shard, unit, start, dur."""
        if self._meta is None:
            parts = [pd.read_parquet(self.dir / f"{c}.meta.parquet") for c in self.state["chunks"]]
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
                {"shard": pd.Series(dtype=object), "unit": pd.Series(dtype="int32"),
                 "start": pd.Series(dtype=float), "dur": pd.Series(dtype=float)})
            df.insert(0, "row", np.arange(len(df), dtype=np.int64))
            self._meta = df
        return self._meta

    def vectors(self, rows: np.ndarray | None = None) -> np.ndarray:
        """float32 unit-length vectors of the given rows (all by default)."""
        if not self.chunks():
            return np.zeros((0, self.dim or 0), np.float32)
        if rows is None:
            return np.concatenate([np.asarray(c, np.float32) for c in self.chunks()])
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows), self.dim), np.float32)
        chunks = self.chunks(scattered=len(rows) * SCATTERED_READ < self.rows)
        bounds = np.cumsum([0] + [len(c) for c in chunks])
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        for i, chunk in enumerate(chunks):
            lo, hi = np.searchsorted(sorted_rows, [bounds[i], bounds[i + 1]])
            if hi > lo:
                out[order[lo:hi]] = chunk[sorted_rows[lo:hi] - bounds[i]]
        return out

    def alive_mask(self) -> np.ndarray:
        """Rows whose shard belongs to a current file."""
        if self._alive_mask is None:
            meta = self.meta()
            self._alive_mask = meta["shard"].isin(self.alive_shards).to_numpy().copy() if len(meta) \
                else np.zeros(0, bool)
        return self._alive_mask

    # --- updates --------------------------------------------------------------------------------
    def sync(self, shard_paths: dict[str, Path]) -> dict:
        """Bring the index to exactly these shards (name -> path): add new ones, mask gone ones,
        rebuild when more than half the rows are dead. Returns counts {added, dead, rebuilt}."""
        known = set(self.state["shards"])
        wanted = set(shard_paths)
        dead_rows = sum(self.state["shards"][s] for s in known - wanted)
        rebuilt = False
        if self.rows and dead_rows > REBUILD_DEAD_FRACTION * self.rows:
            self._clear()
            known = set()
            rebuilt = True
        new = sorted(wanted - known)
        added = self.add_shards({s: shard_paths[s] for s in new}) if new else 0
        self.alive_shards = wanted & set(self.state["shards"])
        return {"added": added, "dead": 0 if rebuilt else dead_rows, "rebuilt": rebuilt}

    def _clear(self) -> None:
        for p in self.dir.iterdir():
            if p.is_file():
                p.unlink()
        self.state = self._read_state()
        self._chunks, self._meta, self._ann, self._alive_mask, self._dense = None, None, None, None, None
        self._scattered = None

    def add_shards(self, shard_paths: dict[str, Path]) -> int:
        """Append the vectors of these shards as chunks (~65 536 rows each); returns rows added."""
        vecs, metas, names, count = [], [], {}, 0
        for name, path in shard_paths.items():
            table, v = read_vectors(path)
            if not len(v):
                names[name] = 0
                continue
            meta = table.to_pandas()
            meta.insert(0, "shard", name)
            vecs.append(normalize(v))
            metas.append(meta)
            names[name] = len(v)
            count += len(v)
            if sum(len(x) for x in vecs) >= 65_536:
                self.add_arrays(np.concatenate(vecs), pd.concat(metas, ignore_index=True), names)
                vecs, metas, names = [], [], {}
        if vecs or names:
            self.add_arrays(np.concatenate(vecs) if vecs else None,
                            pd.concat(metas, ignore_index=True) if metas else None, names)
        return count

    def add_arrays(self, vectors: np.ndarray | None, meta: pd.DataFrame | None,
                   shards: dict[str, int]) -> None:
        """Append unit-length vectors with their metadata (shard, unit, start, dur) as one chunk."""
        if vectors is not None and len(vectors):
            dim = vectors.shape[1]
            if self.dim is not None and dim != self.dim:
                raise ValueError(f"vectors of dimension {dim} cannot join an index of dimension {self.dim}")
            self.state["dim"] = dim
            ann = self.ann() if self.has_ann else None  # caught up with the rows so far
            chunk = f"{self.state['next_chunk']:05d}"
            self.state["next_chunk"] += 1
            _atomic_write(self.dir / f"{chunk}.npy", lambda tmp: np.save(open(tmp, "wb"), vectors.astype(np.float16)))
            meta = meta[["shard", "unit", "start", "dur"]].reset_index(drop=True)
            _atomic_write(self.dir / f"{chunk}.meta.parquet", lambda tmp: meta.to_parquet(tmp, index=False))
            self.state["chunks"].append(chunk)
            self.state["rows"] += len(vectors)
            if ann is not None:
                ann.add(np.ascontiguousarray(vectors, np.float32))
                if ann.ntotal - self.state["ann_rows"] >= ANN_SAVE_ROWS:
                    self._write_ann(ann)
                    self.state["ann_rows"] = int(ann.ntotal)
        self.state["shards"].update(shards)
        self._chunks, self._meta, self._alive_mask, self._dense = None, None, None, None
        self._scattered = None
        trained = self.state.get("ann_trained_rows", 0)
        if self.rows >= ANN_MIN_ROWS and (not self.has_ann or self.rows >= ANN_RETRAIN_GROWTH * trained):
            self.build_ann()
        self._write_state()

    # --- ANN ------------------------------------------------------------------------------------
    def ann(self):
        """The IVF in memory: the saved file, plus the rows added since it was saved."""
        if self._ann is None and self.has_ann:
            import faiss

            ann = faiss.read_index(str(self.dir / "ivf.faiss"))
            bounds = np.cumsum([0] + [len(c) for c in self.chunks()])
            for i, chunk in enumerate(self.chunks()):
                lo = max(int(ann.ntotal) - int(bounds[i]), 0)
                if lo < len(chunk):
                    ann.add(np.ascontiguousarray(chunk[lo:], np.float32))
            self._ann = ann
        return self._ann

    def save_ann(self) -> None:
        """Write the IVF with every row (done by itself every ANN_SAVE_ROWS added rows)."""
        if self.has_ann and self.ann().ntotal > self.state["ann_rows"]:
            self._write_ann(self.ann())
            self.state["ann_rows"] = int(self.ann().ntotal)
            self._write_state()

    def _write_ann(self, ann) -> None:
        import faiss

        _atomic_write(self.dir / "ivf.faiss", lambda tmp: faiss.write_index(ann, tmp))

    def build_ann(self, *, nlist: int | None = None, train_rows: int = IVF_TRAIN_ROWS, seed: int = 0) -> None:
        """Train an IVF (8-bit scalar quantizer, inner product) on a sample and add every row."""
        import faiss

        n, dim = self.rows, self.dim
        nlist = nlist or int(min(1024, max(64, 2 * np.sqrt(n))))
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, max(train_rows, 39 * nlist)), replace=False))
        quantizer = faiss.IndexFlatIP(dim)
        ann = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        ann.train(self.vectors(sample))
        for chunk in self.chunks():
            for i in range(0, len(chunk), 65_536):
                ann.add(np.ascontiguousarray(chunk[i:i + 65_536], np.float32))
        ann.nprobe = IVF_NPROBE
        self._write_ann(ann)
        self._ann = ann
        self.state["ann_rows"] = int(ann.ntotal)
        self.state["ann_trained_rows"] = int(n)
        self._write_state()

    # --- search ---------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
               exact: bool = False, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine distances) of the k nearest alive rows passing `allowed` (a boolean
        mask over rows), nearest first; fewer when fewer rows pass."""
        q = normalize(np.asarray(query, np.float32).reshape(1, -1))[0]
        mask = self.alive_mask()
        if allowed is not None:
            mask = mask & np.asarray(allowed, bool)
        candidates = int(mask.sum())
        if candidates == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if exact or not self.has_ann or candidates <= EXACT_MAX_ROWS:
            return self._exact(q, k, mask)
        return self._approximate(q, k, mask, nprobe or IVF_NPROBE)

    def dense(self) -> np.ndarray | None:
        """All vectors as one float32 matrix in memory, for an index small enough to be searched
        exactly (at most ANN_MIN_ROWS rows); None above. Loaded once per open index."""
        if self.rows > ANN_MIN_ROWS:
            return None
        if self._dense is None or len(self._dense) != self.rows:
            self._dense = self.vectors()
        return self._dense

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(mask)
        dense = self.dense()
        if dense is not None:
            sims = dense[rows] @ q if len(rows) < len(mask) else dense @ q
        elif len(rows) == len(mask):
            sims = np.concatenate([np.asarray(c, np.float32) @ q for c in self.chunks()])
        else:
            sims = np.empty(len(rows), np.float32)
            for i in range(0, len(rows), 65_536):
                sims[i:i + 65_536] = self.vectors(rows[i:i + 65_536]) @ q
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return rows[top], (1.0 - sims[top]).astype(np.float32)

    def _approximate(self, q, k, mask, nprobe) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        ann = self.ann()
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if not mask.all():
            params.sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
        _, rows = ann.search(q[None], max(RERANK_FACTOR * k, 50), params=params)
        rows = rows[0][rows[0] >= 0].astype(np.int64)
        if len(rows) < min(k, int(mask.sum())):  # too few in the probed lists: search exactly
            return self._exact(q, k, mask)
        # re-rank the candidates on the stored vectors: the 8-bit codes only choose them
        sims = self.vectors(rows) @ q
        top = np.argsort(-sims, kind="stable")[:k]
        return rows[top], (1.0 - sims[top]).astype(np.float32)


def _advise_random(chunk: np.ndarray) -> None:
    """madvise(MADV_RANDOM) on a chunk's map, where the platform has it (not Windows)."""
    advise = getattr(getattr(chunk, "_mmap", None), "madvise", None)
    if advise is not None and hasattr(mmap, "MADV_RANDOM"):
        advise(mmap.MADV_RANDOM)


def index_dir(catalog: Catalog, vs: VectorSet) -> Path:
    return vectors_root(catalog.root) / INDEX_DIRNAME / vs.dirname


def open_index(catalog: Catalog, vs: VectorSet, entries: list[Entry] | None = None) -> VectorIndex:
    """The index of `vs`, synchronised with the catalog's current vector shards."""
    from .store import SHARDS_DIRNAME

    entries = current_entries(catalog, vs) if entries is None else entries
    base = vectors_root(catalog.root) / SHARDS_DIRNAME
    shards = {e.shard: base / e.shard for e in entries if (base / e.shard).exists()}
    index = VectorIndex(index_dir(catalog, vs))
    index.sync(shards)
    return index


__all__ = ["ANN_MIN_ROWS", "EXACT_MAX_ROWS", "Entry", "VectorIndex", "VectorSet", "current_entries",
           "index_dir", "normalize", "open_index"]
