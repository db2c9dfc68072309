"""Similarity views: the data behind `similar`, `duplicates` and `Collection.vectors()`.

    df = similar(cat, "12:40", k=10)                   # unit 40 of file 12, at unit level
    df = similar(cat, "/x/take.wav@1:05-1:09", level="window", where="duration > 10m")
    df = similar(cat, "outside.flac", level="file", model="descriptors")
    groups = duplicates(cat, level="file", threshold=0.02)
    ids, matrix = collection_vectors(cat, model="yamnet", level="unit", where="...")

A target is a unit of the collection (`FILE_ID:UNIT`), a file of the collection (its path or
id), any audio file outside it, or a stretch of either (`PATH@START-END`, seconds or m:ss).
A collection file's target vector at file level is its stored vector; every other target is
embedded on the spot with the same model (a unit target reuses the unit's stored vector).

Results: rank, distance (cosine distance, 0 = same direction, 2 = opposite), path, file_id,
unit, start, dur (s), and at unit level the unit's descriptors (power, hz, note, octave,
clarity, centroid, flatness). Filters apply before ranking: `where` (files), `units` (the unit
query language, unit level). Files deleted from the catalog, changed since their vectors were
made, or changed on disk since the catalog last saw them are never returned.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog.db import Catalog
from ..errors import UsageError
from .index import Entry, VectorIndex, VectorSet, current_entries, normalize, open_index

_UNIT = re.compile(r"^(\d+):(\d+)$")
_STRETCH = re.compile(r"^(.*)@([0-9:.]+)-([0-9:.]+)$")
UNIT_DESCRIPTORS = ("power", "hz", "note", "octave", "clarity", "centroid", "flatness")


@dataclass
class Target:
    kind: str  # unit | file | stretch
    path: str | None = None
    file_id: int | None = None  # set when the target is in the collection
    unit: int | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def default_level(self) -> str:
        return {"unit": "unit", "stretch": "window", "file": "file"}[self.kind]


def parse_seconds(text: str) -> float:
    """'75', '75.5', '1:15', '1:01:15' -> seconds."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"not a time: {text!r} (seconds, or m:ss)") from None
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def parse_target(catalog: Catalog, text: str) -> Target:
    """Resolve a target string (see the module docstring). UsageError when it names nothing."""
    by_path = {f.path: f for f in catalog.files()}
    m = _UNIT.match(text.strip())
    if m:
        fid = int(m.group(1))
        if not any(f.id == fid for f in by_path.values()):
            raise UsageError(f"no file with id {fid} in the collection")
        return Target("unit", path=next(f.path for f in by_path.values() if f.id == fid), file_id=fid,
                      unit=int(m.group(2)))
    m = _STRETCH.match(text)
    if m and not os.path.exists(text):
        start, end = parse_seconds(m.group(2)), parse_seconds(m.group(3))
        if end <= start:
            raise UsageError(f"{text}: the end must come after the start")
        t = _file_target(catalog, m.group(1), by_path)
        t.kind, t.start_s, t.end_s = "stretch", start, end
        return t
    return _file_target(catalog, text, by_path)


def _file_target(catalog: Catalog, text: str, by_path: dict) -> Target:
    if text.isdigit() and not os.path.exists(text):
        fid = int(text)
        for f in by_path.values():
            if f.id == fid:
                return Target("file", path=f.path, file_id=fid)
        raise UsageError(f"no file with id {fid} in the collection")
    path = os.path.abspath(text)
    if path in by_path:
        return Target("file", path=path, file_id=by_path[path].id)
    if not os.path.isfile(path):
        raise UsageError(f"{text}: no such file, unit (FILE_ID:UNIT) or stretch (PATH@START-END)")
    return Target("file", path=path)


def embed_target_audio(path: str, model: str, *, start_s: float | None = None,
                       end_s: float | None = None, window_s: float = 1.0) -> np.ndarray:
    """The vector of a file or of a stretch of it, pooled like a file's vector."""
    from .embed import embed_file
    from .store import read_vectors

    with tempfile.TemporaryDirectory(prefix="audiotrove-target-") as tmp:
        source = path
        if start_s is not None:
            source = os.path.join(tmp, "stretch.wav")
            _write_stretch(path, source, start_s, end_s)
        result = embed_file(source, {"model": model, "level": "file", "window_s": window_s},
                            shards_dir=tmp)
        _, vecs = read_vectors(os.path.join(tmp, result["embed"]["shard"]))
    return vecs[0]


def _write_stretch(path: str, out: str, start_s: float, end_s: float) -> None:
    from ..io.decode import open_audio
    from ..io.write import write_audio

    reader = open_audio(path)
    lo, hi = int(round(start_s * reader.sample_rate)), int(round(end_s * reader.sample_rate))
    parts, pos = [], 0
    for block in reader.blocks():
        b0, b1 = pos, pos + len(block)
        if b1 > lo and b0 < hi:
            parts.append(block[max(lo, b0) - b0:min(hi, b1) - b0])
        pos = b1
        if pos >= hi:
            break
    if not parts:
        raise UsageError(f"{path} has no audio between {start_s:g} s and {end_s:g} s")
    write_audio(out, np.concatenate(parts), sample_rate=reader.sample_rate)


class Similarity:
    """An open (model, level) index with its current files: the engine behind `similar`."""

    def __init__(self, catalog: Catalog, model: str = "yamnet", level: str = "unit", *,
                 window_s: float = 1.0):
        if level not in ("unit", "window", "file"):
            raise UsageError(f"level must be unit, window or file, not {level!r}")
        self.catalog, self.model, self.level, self.window_s = catalog, model, level, window_s
        self.vs = VectorSet.of(model, level, window_s=window_s)
        self.entries = current_entries(catalog, self.vs)
        self.index: VectorIndex = open_index(catalog, self.vs, self.entries)
        self.files_of_shard: dict[str, list[Entry]] = {}
        for e in self.entries:
            self.files_of_shard.setdefault(e.shard, []).append(e)
        self.shard_of_file = {e.file_id: e.shard for e in self.entries}

    def row_of(self, file_id: int, unit: int) -> int | None:
        shard = self.shard_of_file.get(file_id)
        if shard is None:
            return None
        meta = self.index.meta()
        hit = meta.index[(meta["shard"] == shard) & (meta["unit"] == unit)]
        return int(meta.loc[hit[0], "row"]) if len(hit) else None

    def allowed_rows(self, *, file_ids: set[int] | None, units: pd.DataFrame | None,
                     exclude_file: int | None) -> np.ndarray | None:
        meta = self.index.meta()
        if file_ids is None and units is None and exclude_file is None:
            return None
        keep = {s for s, es in self.files_of_shard.items()
                if any((file_ids is None or e.file_id in file_ids) and e.file_id != exclude_file for e in es)}
        mask = meta["shard"].isin(keep).to_numpy().copy()
        if units is not None:
            pairs = pd.DataFrame({"shard": units["file_id"].map(self.shard_of_file), "unit": units["unit"]})
            pairs = pairs.dropna().astype({"unit": "int64"}).drop_duplicates()
            hit = meta[["row", "shard", "unit"]].astype({"unit": "int64"}).merge(pairs, on=["shard", "unit"])
            unit_mask = np.zeros(len(meta), bool)
            unit_mask[hit["row"].to_numpy()] = True
            mask &= unit_mask
        return mask

    def query(self, vector: np.ndarray, k: int, *, file_ids: set[int] | None = None,
              units: pd.DataFrame | None = None, exclude_file: int | None = None) -> pd.DataFrame:
        """The k nearest current rows as a DataFrame (rank, distance, path, file_id, unit, start, dur)."""
        allowed = self.allowed_rows(file_ids=file_ids, units=units, exclude_file=exclude_file)
        meta = self.index.meta()
        stale: set[str] = set()
        for _ in range(5):
            mask = allowed
            if stale:
                mask = (np.ones(len(meta), bool) if mask is None else mask.copy())
                mask &= ~meta["shard"].isin(stale).to_numpy()
            rows, dist = self.index.search(vector, k + 4, allowed=mask)  # room for shared shards
            out, fresh = [], True
            for row, d in zip(rows, dist):
                shard = meta.at[int(row), "shard"]
                for e in self.files_of_shard.get(shard, []):
                    if e.file_id == exclude_file or (file_ids is not None and e.file_id not in file_ids):
                        continue
                    if stat_facts(e.path) != (e.size_bytes, e.mtime_ns):
                        fresh = False
                        continue
                    out.append((float(d), e.path, e.file_id, int(meta.at[int(row), "unit"]),
                                float(meta.at[int(row), "start"]), float(meta.at[int(row), "dur"])))
            if not fresh:
                changed = {s for s, es in self.files_of_shard.items()
                           if any(stat_facts(e.path) != (e.size_bytes, e.mtime_ns) for e in es)}
                if changed - stale:
                    stale |= changed
                    continue
            break
        df = pd.DataFrame(out[:k], columns=["distance", "path", "file_id", "unit", "start", "dur"])
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        return df

    def target_vector(self, target: Target) -> np.ndarray:
        if target.kind == "unit":
            unit_engine = self if self.level == "unit" else Similarity(self.catalog, self.model, "unit")
            row = unit_engine.row_of(target.file_id, target.unit)
            if row is None:
                raise UsageError(f"unit {target.file_id}:{target.unit} has no {self.model} vector: "
                                 "run `audiotrove segment` and `audiotrove embed --units`")
            return unit_engine.index.vectors(np.array([row]))[0]
        if target.kind == "file" and target.file_id is not None and self.level == "file":
            row = self.row_of(target.file_id, 0)
            if row is not None:
                return self.index.vectors(np.array([row]))[0]
        return normalize(embed_target_audio(target.path, self.model, start_s=target.start_s,
                                            end_s=target.end_s, window_s=self.window_s)[None])[0]


def stat_facts(path: str) -> tuple[int | None, int | None]:
    """(size in bytes, mtime in ns) as the catalog records them; (None, None) when gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def filters(catalog: Catalog, *, where: str | None, units: str | None) -> tuple[set[int] | None, pd.DataFrame | None]:
    """A file query and a unit query as the index's filters: (file ids, (file_id, unit) rows);
    None where not given."""
    file_ids = None
    if where and where.strip():
        from ..catalog.index import select_file_ids

        file_ids = set(select_file_ids(catalog, where))
    unit_rows = None
    if units and units.strip():
        from ..units.select import list_units

        unit_rows = list_units(catalog, units, where=where)[["file_id", "unit"]]
    return file_ids, unit_rows


def similar(catalog: Catalog, target: str | Target, *, k: int = 10, model: str = "yamnet",
            level: str | None = None, where: str | None = None, units: str | None = None,
            exclude_same_file: bool | None = None, window_s: float = 1.0) -> pd.DataFrame:
    """The k nearest neighbours of `target` (see the module docstring) as a DataFrame."""
    if k < 1:
        raise UsageError("k must be at least 1")
    t = parse_target(catalog, target) if isinstance(target, str) else target
    level = level or t.default_level
    if units and level != "unit":
        raise UsageError("--units filters units: use it with --level unit")
    engine = Similarity(catalog, model, level, window_s=window_s)
    if engine.index.rows == 0:
        raise UsageError(f"no {model} vectors at {level} level yet: run `audiotrove embed "
                         f"--level {level}{'' if model == 'yamnet' else ' --model ' + model}` first")
    vector = engine.target_vector(t)
    file_ids, unit_rows = filters(catalog, where=where, units=units)
    if exclude_same_file is None:
        exclude_same_file = level != "file" or t.kind == "file"
    exclude = t.file_id if exclude_same_file else None
    df = engine.query(vector, k, file_ids=file_ids, units=unit_rows, exclude_file=exclude)
    if level == "unit" and len(df):
        df = _with_unit_descriptors(catalog, df)
    return df


def _with_unit_descriptors(catalog: Catalog, df: pd.DataFrame) -> pd.DataFrame:
    from ..units.select import list_units

    ids = sorted(set(int(i) for i in df["file_id"]))
    units = list_units(catalog, f"file_id in ({', '.join(map(str, ids))})")
    cols = ["file_id", "unit", *UNIT_DESCRIPTORS]
    merged = df.merge(units[cols], on=["file_id", "unit"], how="left")
    return merged.sort_values("rank").reset_index(drop=True)


def duplicates(catalog: Catalog, *, model: str = "yamnet", level: str = "file",
               threshold: float = 0.01, where: str | None = None, neighbours: int = 10,
               window_s: float = 1.0) -> list[dict]:
    """Groups of near-identical files (or units/windows): members within `threshold` cosine
    distance of another member (single linkage over each row's nearest neighbours). Files with
    identical audio share one vector and always group. Largest groups first.

    Each group: {"size", "max_distance", "members": [{"path", "file_id", "unit", "start", "dur"}]}.
    """
    engine = Similarity(catalog, model, level, window_s=window_s)
    index, meta = engine.index, engine.index.meta()
    file_ids = None
    if where and where.strip():
        from ..catalog.index import select_file_ids

        file_ids = set(select_file_ids(catalog, where))
    mask = index.alive_mask()
    if file_ids is not None:
        allowed = engine.allowed_rows(file_ids=file_ids, units=None, exclude_file=None)
        mask = mask & allowed
    rows = np.flatnonzero(mask)
    parent = {int(r): int(r) for r in rows}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    edge_distance: dict[int, float] = {}

    def link(r: int, hits, dist) -> None:
        for h, d in zip(hits, dist):
            if int(h) != r and d <= threshold:
                a, b = find(r), find(int(h))
                if a != b:
                    parent[a] = b
                edge_distance[r] = max(edge_distance.get(r, 0.0), float(d))

    dense = index.dense()
    for lo in range(0, len(rows), 1024):
        block = rows[lo:lo + 1024]
        if dense is not None:  # small: all pairs of the block at once
            sims = dense[block] @ dense[rows].T
            for i, r in enumerate(block):
                near = np.flatnonzero(sims[i] >= 1.0 - threshold)
                link(int(r), rows[near], 1.0 - sims[i, near])
        else:
            for r, v in zip(block, index.vectors(block)):
                hits, dist = index.search(v, neighbours + 1, allowed=mask)
                link(int(r), hits, dist)
    groups: dict[int, list[int]] = {}
    for r in rows:
        groups.setdefault(find(int(r)), []).append(int(r))
    out = []
    for members in groups.values():
        listed = []
        for r in members:
            for e in engine.files_of_shard.get(meta.at[r, "shard"], []):
                if file_ids is None or e.file_id in file_ids:
                    listed.append({"path": e.path, "file_id": e.file_id, "unit": int(meta.at[r, "unit"]),
                                   "start": float(meta.at[r, "start"]), "dur": float(meta.at[r, "dur"])})
        if len(listed) >= 2:
            out.append({"size": len(listed),
                        "max_distance": round(max((edge_distance.get(r, 0.0) for r in members), default=0.0), 6),
                        "members": sorted(listed, key=lambda m: (m["path"], m["start"]))})
    out.sort(key=lambda g: (-g["size"], g["members"][0]["path"]))
    return out


def collection_vectors(catalog: Catalog, *, model: str = "yamnet", level: str = "file",
                       where: str | None = None, window_s: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """(ids, matrix): one row per current vector of the chosen files — ids has path, file_id,
    unit, start, dur; matrix the unit-length float32 vectors in the same order."""
    engine = Similarity(catalog, model, level, window_s=window_s)
    file_ids = None
    if where and where.strip():
        from ..catalog.index import select_file_ids

        file_ids = set(select_file_ids(catalog, where))
    meta = engine.index.meta()[engine.index.alive_mask()]
    files = pd.DataFrame([(e.shard, e.path, e.file_id) for e in engine.entries
                          if file_ids is None or e.file_id in file_ids],
                         columns=["shard", "path", "file_id"])
    joined = meta.merge(files, on="shard").sort_values(["path", "start", "unit"], kind="stable")
    ids = joined[["path", "file_id", "unit", "start", "dur"]].reset_index(drop=True)
    rows = joined["row"].to_numpy(np.int64)
    matrix = engine.index.vectors(rows) if len(rows) else np.zeros((0, engine.index.dim or 0), np.float32)
    return ids, matrix


__all__ = ["Similarity", "Target", "collection_vectors", "duplicates", "embed_target_audio",
           "parse_seconds", "parse_target", "similar"]
