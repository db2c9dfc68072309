"""The vector index: exact search, the faiss IVF above a size, filters, additions, dead rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiotrove.vectors import index as vindex
from audiotrove.vectors.index import VectorIndex, normalize
from audiotrove.vectors.store import ShardWriter


def clustered(n, dim=32, clusters=50, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    labels = rng.integers(0, clusters, n)
    return normalize(centers[labels] + 0.35 * rng.standard_normal((n, dim))).astype(np.float32)


def add(index, vecs, shard):
    meta = pd.DataFrame({"shard": shard, "unit": np.arange(len(vecs), dtype=np.int32),
                         "start": np.arange(len(vecs), dtype=float), "dur": 1.0})
    index.add_arrays(vecs, meta, {shard: len(vecs)})


def brute(vecs, q, k, mask=None):
    sims = vecs @ normalize(q[None])[0]
    if mask is not None:
        sims = np.where(mask, sims, -np.inf)
    return np.argsort(-sims, kind="stable")[:k]


def test_exact_search_and_filters(tmp_path):
    vecs = clustered(3000)
    index = VectorIndex(tmp_path / "ix")
    add(index, vecs[:2000], "a")
    add(index, vecs[2000:], "b")
    index.alive_shards = {"a", "b"}
    assert index.rows == 3000 and not index.has_ann
    q = vecs[17] + 0.01
    rows, dist = index.search(q, 10)
    assert list(rows) == list(brute(vecs, q, 10))
    assert np.all(np.diff(dist) >= -1e-6) and dist[0] < 0.01
    # a filter applies before ranking: k results from exactly the allowed rows
    allowed = np.zeros(3000, bool)
    allowed[np.arange(5, 3000, 97)] = True
    rows, _ = index.search(q, 10, allowed=allowed)
    assert len(rows) == 10 and allowed[rows].all()
    assert list(rows) == list(brute(vecs, q, 10, allowed))
    # a shard no current file points to is never returned
    index.alive_shards = {"b"}
    rows, _ = index.search(q, 10)
    assert (rows >= 2000).all()
    # reopening reads the same index from disk
    again = VectorIndex(tmp_path / "ix")
    again.alive_shards = {"a", "b"}
    assert list(again.search(q, 5)[0]) == list(brute(vecs, q, 5))


def test_a_few_scattered_rows_are_read_through_the_random_access_maps(tmp_path):
    """Fewer than 1 row in SCATTERED_READ comes through a second set of maps, advised
    MADV_RANDOM (no readahead); a scan through the plain ones; the same values either way."""
    import mmap

    vecs = clustered(3000)
    index = VectorIndex(tmp_path / "ix")
    add(index, vecs[:2000], "a")
    add(index, vecs[2000:], "b")
    every = index.vectors()
    few = np.array([2999, 3, 1500, 2001, 3])  # unsorted, repeated, across both chunks
    assert len(few) * vindex.SCATTERED_READ < index.rows
    assert np.array_equal(index.vectors(few), every[few])
    assert index._scattered is not None and index._scattered[0] is not index.chunks()[0]
    many = np.arange(0, 3000, 2)
    assert np.array_equal(index.vectors(many), every[many])
    assert np.allclose(every, vecs, atol=1e-3)  # float16 on disk
    if hasattr(mmap, "MADV_RANDOM"):  # the maps take the advice (raises on a closed map)
        index._scattered[1]._mmap.madvise(mmap.MADV_RANDOM)
    add(index, vecs[:10], "c")  # an addition opens the maps anew
    assert index._scattered is None and len(index.vectors(np.array([3005]))) == 1


def test_ann_above_the_threshold_recall_filters_and_additions(tmp_path, monkeypatch):
    monkeypatch.setattr(vindex, "ANN_MIN_ROWS", 4000)
    monkeypatch.setattr(vindex, "EXACT_MAX_ROWS", 200)
    vecs = clustered(9000, seed=1)
    index = VectorIndex(tmp_path / "ix")
    add(index, vecs[:3000], "a")
    assert not index.has_ann
    add(index, vecs[3000:6000], "b")  # crosses the threshold: the IVF is trained and filled
    assert index.has_ann and index.ann().ntotal == 6000
    trained = index.state["ann_trained_rows"]
    add(index, vecs[6000:], "c")  # added to the IVF without training again
    assert index.ann().ntotal == 9000 and index.state["ann_trained_rows"] == trained
    # the IVF file is rewritten every ANN_SAVE_ROWS rows; reopened, the index adds the newer rows
    reopened = VectorIndex(tmp_path / "ix")
    assert reopened.state["ann_rows"] < 9000 and reopened.ann().ntotal == 9000
    index.save_ann()
    assert VectorIndex(tmp_path / "ix").state["ann_rows"] == 9000
    index.alive_shards = {"a", "b", "c"}
    rng = np.random.default_rng(5)
    queries = vecs[rng.choice(9000, 50, replace=False)] + 0.02 * rng.standard_normal((50, 32))
    recall = np.mean([len(set(index.search(q, 10)[0]) & set(brute(vecs, q, 10))) / 10 for q in queries])
    assert recall >= 0.9
    # a filter leaving many rows goes through the IVF with an ID selector and still gives k
    allowed = np.zeros(9000, bool)
    allowed[::7] = True  # 1286 rows > EXACT_MAX_ROWS
    for q in queries[:10]:
        rows, _ = index.search(q, 10, allowed=allowed)
        assert len(rows) == 10 and allowed[rows].all()
    # a filter leaving few rows is exact
    few = np.zeros(9000, bool)
    few[[3, 4000, 8999]] = True
    assert sorted(index.search(queries[0], 10, allowed=few)[0]) == [3, 4000, 8999]


def _shard(folder, name, vecs):
    w = ShardWriter(folder, vecs.shape[1])
    w.write(np.arange(len(vecs)), np.arange(len(vecs), dtype=float), np.ones(len(vecs)), vecs)
    return w.commit(name)


def test_sync_adds_new_shards_masks_gone_ones_and_rebuilds(tmp_path):
    shards = tmp_path / "shards"
    vecs = clustered(400, seed=2)
    paths = {f"s{i}.parquet": _shard(shards, f"s{i}.parquet", vecs[i * 100:(i + 1) * 100]) for i in range(4)}
    index = VectorIndex(tmp_path / "ix")
    assert index.sync({k: paths[k] for k in ("s0.parquet", "s1.parquet")})["added"] == 200
    assert index.sync(paths)["added"] == 200 and index.rows == 400  # only the new ones read
    # s0 gone (file deleted or changed): masked, not returned
    counts = index.sync({k: v for k, v in paths.items() if k != "s0.parquet"})
    assert counts == {"added": 0, "dead": 100, "rebuilt": False}
    rows, _ = index.search(vecs[5], 20)
    assert (rows >= 100).all()
    # more than half dead: rebuilt from the live shards only
    counts = index.sync({"s3.parquet": paths["s3.parquet"]})
    assert counts["rebuilt"] and index.rows == 100
    rows, dist = index.search(vecs[350], 1)
    assert dist[0] < 0.01  # float16 storage


def test_the_current_embed_result_is_the_one_searched(tmp_path):
    # two embed results of one vector set for the same content (they differ in a parameter the
    # set does not name): the file's current result (the catalog's pointer) is searched, not
    # the newest one; an older run made current again is searched again
    from audiotrove.catalog.db import Catalog
    from audiotrove.vectors.embed import VERSION
    from audiotrove.vectors.index import VectorSet, current_entries, open_index
    from audiotrove.vectors.store import SHARDS_DIRNAME, vectors_root

    cat = Catalog.create(tmp_path)
    cat.add_files([("/c/a.wav", "file", "/c")])
    fid = cat.files()[0].id
    vs = VectorSet("m", "1", "file", 1.0)
    rng = np.random.default_rng(3)
    vecs = {"old": normalize(rng.standard_normal((1, 16))), "new": normalize(rng.standard_normal((1, 16)))}
    base = vectors_root(tmp_path) / SHARDS_DIRNAME
    for k, name in enumerate(("old", "new")):
        w = ShardWriter(base, 16)
        w.write([0], [0.0], [3.0], vecs[name])
        w.commit(f"{name}.parquet")
        params = {"model": "m", "model_version": "1", "level": "file", "window_s": 1.0,
                  "units": None if name == "old" else "x"}
        cat.record(fid, size_bytes=1, mtime_ns=1, content_hash="h", step="embed", step_version=VERSION,
                   params_hash=name, params=params, status="ok", error=None,
                   data={"embed": {"shard": f"{name}.parquet"}}, elapsed_s=0.1)
    assert [e.shard for e in current_entries(cat, vs)] == ["new.parquet"]
    assert cat.make_current("embed", VERSION, "old", [fid]) == 1
    assert [e.shard for e in current_entries(cat, vs)] == ["old.parquet"]
    index = open_index(cat, vs)
    rows, dist = index.search(vecs["new"][0], 5)
    assert len(rows) == 1 and index.meta().at[int(rows[0]), "shard"] == "old.parquet"
    assert dist[0] == pytest.approx(1 - float(vecs["old"][0] @ vecs["new"][0]), abs=2e-3)
    # a pointer to another set (the last run was another level) leaves this set searchable
    cat.record(fid, size_bytes=1, mtime_ns=1, content_hash="h", step="embed", step_version=VERSION,
               params_hash="win", params={"model": "m", "model_version": "1", "level": "window",
                                          "window_s": 1.0, "units": None},
               status="ok", error=None, data={"embed": {"shard": "win.parquet"}}, elapsed_s=0.1)
    assert [e.shard for e in current_entries(cat, vs)] == ["new.parquet"]
    cat.close()
