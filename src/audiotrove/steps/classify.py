"""The `classify` step: a classifier you trained (`audiotrove classify train`) applied to a file.

Parameters (part of the result's key): model_path (the model JSON), model_digest (what its
predictions depend on: retraining recomputes), min_confidence (below it an item's label is
null), units_query (unit level: only the units matching this unit query are classified).

The classifier's level (it was trained on) says what is classified:
    file    the file's vector: the duration-weighted mean of its 1 s window embeddings
    window  every window (the classifier's window_s, default 1 s) of the file
    unit    every unit of the file's current segmentation (`audiotrove segment`)
with the embedding model the classifier was trained on (decoded in blocks: bounded memory).

Stored with the file:
    class.label       the label (file level), or the label covering most of the file's
                      classified time (window / unit level); null when uncertain / none
    class.confidence  0-1, the probability of that label (window / unit: the mean over the
                      items given that label)
    class.scores      {label: 0-1}: probabilities (window / unit: duration-weighted means)
    class.shares      {label: % of the classified duration} (window / unit level; items under
                      min_confidence count as unlabelled, `class.unlabelled` %)
    class.count, class.level, class.model, class.shard (window / unit: the Parquet table of
    each item's unit, start, dur, label, confidence, in <collection>/.audiotrove/classes/)
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ItemError
from ..models import ModelError
from ..models.classifier import check_embedding, digest, load, predict_proba
from ..units.labels import CLASSES_DIRNAME
from .base import Item, Step

VERSION = "2"
DEFAULTS: dict = {"model_path": None, "model_digest": None, "min_confidence": 0.0, "units_query": None}
WINDOW_S = 1.0
LEVELS = ("file", "window", "unit")


def item_vectors(path: str, embedding: dict, *, level: str = "file", window_s: float = WINDOW_S,
                 units_path: str | None = None) -> tuple[list[tuple[int, float, float]], np.ndarray]:
    """([(unit, start_s, dur_s)], vectors (n, dim)) of `path` at `level`, computed as the `embed`
    step does (decoded in blocks). At unit level without `units_path`, the file is segmented
    first with `segment`'s defaults (onset units), in a temporary folder."""
    from ..vectors.embed import embed_file
    from ..vectors.store import read_vectors

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    with tempfile.TemporaryDirectory(prefix="audiotrove-classify-") as tmp:
        if level == "unit" and units_path is None:
            from .segment import segment_file

            seg = segment_file(path, {}, units_dir=tmp)
            if not seg["units"]["count"]:
                return [], np.zeros((0, 0), np.float32)
            units_path = os.path.join(tmp, seg["units"]["shard"])
        out = embed_file(path, {"model": embedding.get("source") or embedding["model"],
                                "model_version": embedding.get("model_version"),
                                "level": level, "window_s": float(window_s or WINDOW_S)},
                         shards_dir=tmp, units_path=units_path)
        table, vecs = read_vectors(f"{tmp}/{out['embed']['shard']}")
    rows = list(zip(table.column("unit").to_pylist(), table.column("start").to_pylist(),
                    table.column("dur").to_pylist()))
    return [(int(u), float(s), float(d)) for u, s, d in rows], np.asarray(vecs, np.float64)


def file_vector(path: str, embedding: dict) -> np.ndarray:
    """The file-level embedding of `path` (the `embed` step's, at file level)."""
    return item_vectors(path, embedding, level="file")[1][0]


def _check_model(model: dict, path) -> None:
    from ..models.embedders import get_embedder

    try:
        emb = model["embedding"]
        check_embedding(model, get_embedder(emb.get("source") or emb["model"]).key, path)
    except ModelError as exc:
        raise ItemError(str(exc)) from None


def _selected_units(path: str, units_path: str, query: str) -> set[int]:
    from ..catalog.query import QueryError
    from ..units.select import select_units
    from ..units.store import ShardRef

    try:
        df = select_units([ShardRef(0, path, Path(units_path), None)], query)
    except QueryError as exc:
        raise ItemError(f"--units: {exc}") from None
    return {int(u) for u in df["unit"]}


def summarize(model: dict, items: list[tuple[int, float, float]], probs: np.ndarray, *,
              min_confidence: float) -> tuple[dict, list[dict]]:
    """The file's "class" dict at window / unit level, and one row per item."""
    classes = model["classes"]
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    labels = [classes[b] if c >= min_confidence else None for b, c in zip(best, conf)]
    durs = np.array([d for _, _, d in items], np.float64)
    total = float(durs.sum())
    shares: dict[str, float] = {}
    for lab, d in zip(labels, durs):
        if lab is not None:
            shares[lab] = shares.get(lab, 0.0) + float(d)
    label = max(shares, key=lambda k: (shares[k], k)) if shares else None
    mean_scores = (durs[:, None] * probs).sum(axis=0) / total if total > 0 else np.zeros(len(classes))
    picked = [c for c, lab in zip(conf, labels) if lab is not None and lab == label]
    out = {"label": label,
           "confidence": round(float(np.mean(picked)), 4) if picked else None,
           "scores": {c: round(float(p), 4) for c, p in zip(classes, mean_scores)},
           "shares": {k: round(100.0 * v / total, 2) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
           "unlabelled": round(100.0 * (total - sum(shares.values())) / total, 2) if total > 0 else None,
           "count": len(items)}
    rows = [{"unit": u, "start": s, "dur": d, "label": lab, "confidence": round(float(c), 4)}
            for (u, s, d), lab, c in zip(items, labels, conf)]
    return out, rows


def write_item_table(directory: str | os.PathLike, name: str, rows: list[dict]) -> str:
    """The per-item predictions as <directory>/<name>.parquet (atomically); the file's name."""
    import pandas as pd

    from ..io.write import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=["unit", "start", "dur", "label", "confidence", "units"])
    final = directory / f"{name}.parquet"
    with atomic_path(final) as tmp:
        df.to_parquet(tmp, index=False)
    return final.name


def classify_file(path: str, params: dict, *, workdir: str | None = None, file_id: int | None = None,
                  units_path: str | None = None) -> dict:
    params = {**DEFAULTS, **params}
    try:
        model = load(params["model_path"])
    except ModelError as exc:
        raise ItemError(str(exc)) from None
    if params["model_digest"] and digest(model) != params["model_digest"]:
        raise ItemError(f"the classifier {params['model_path']} changed since this run began: run again")
    _check_model(model, params["model_path"])
    level = model.get("level") or "file"
    min_conf = float(params["min_confidence"])
    base = {"model": str(params["model_path"]), "level": level}
    if level == "file":
        probs = predict_proba(model, file_vector(path, model["embedding"]))[0]
        best = int(np.argmax(probs))
        return {"class": {"label": model["classes"][best] if float(probs[best]) >= min_conf else None,
                          "confidence": round(float(probs[best]), 4),
                          "scores": {c: round(float(p), 4) for c, p in zip(model["classes"], probs)},
                          **base}}
    if level == "unit" and units_path is None:
        raise ItemError("no units for this file: run `audiotrove segment` first")
    items, vecs = item_vectors(path, model["embedding"], level=level, window_s=model.get("window_s") or WINDOW_S,
                               units_path=units_path)
    if level == "unit" and params["units_query"] and items:
        keep = _selected_units(path, units_path, params["units_query"])
        mask = np.array([u in keep for u, _, _ in items], bool)
        items, vecs = [it for it, k in zip(items, mask) if k], vecs[mask]
    probs = predict_proba(model, vecs) if len(items) else np.zeros((0, len(model["classes"])))
    out, rows = summarize(model, items, probs, min_confidence=min_conf)
    for r in rows:  # which segmentation the units are of (units/labels.py joins on it)
        r["units"] = Path(units_path).name if level == "unit" else None
    if workdir:
        key = json.dumps([params["model_digest"] or digest(model), min_conf, params["units_query"]])
        name = f"{file_id}-{level}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
        out["shard"] = write_item_table(Path(workdir) / CLASSES_DIRNAME, name, rows)
    return {"class": {**out, **base}}


def _run(item: Item) -> dict:
    units_path = None
    if item.workdir:
        from ..units.store import UNITS_DIRNAME
        from .embed import read_unit_map

        name = read_unit_map(item.workdir).get(str(item.file_id))
        if name:
            units_path = os.path.join(item.workdir, UNITS_DIRNAME, name)
            if not os.path.exists(units_path):
                raise ItemError(f"its unit shard {name} is missing: run `audiotrove segment` again")
    return classify_file(item.path, item.params, workdir=item.workdir, file_id=item.file_id,
                         units_path=units_path)


def read_item_table(workdir: str | os.PathLike, name: str):
    """The per-item predictions a window / unit level run stored (a DataFrame)."""
    import pandas as pd

    return pd.read_parquet(Path(workdir) / CLASSES_DIRNAME / name)


def write_unit_map(catalog, file_ids: set[int] | None = None, problems: list[str] | None = None) -> set[int]:
    """Write the file -> unit shard map the unit-level steps read (embed's, the same file) and
    return the chosen files that have a current segmentation."""
    from ..units.store import current_shards
    from ..vectors.store import vectors_root, write_text_atomic
    from .embed import UNIT_MAP_NAME

    refs, issues = current_shards(catalog)
    if problems is not None:
        problems.extend(issues)
    root = vectors_root(catalog.root)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / UNIT_MAP_NAME, json.dumps({str(r.file_id): r.shard.name for r in refs}))
    return {r.file_id for r in refs if file_ids is None or r.file_id in file_ids}


def predictions_frame(catalog, file_ids: set[int] | None = None):
    """The current predictions: per file (file level) or per window / unit, as a DataFrame."""
    import pandas as pd

    from ..catalog.db import CATALOG_DIR

    workdir = Path(catalog.root) / CATALOG_DIR
    files, items = [], []
    for f, results in catalog.iter_current(STEP.name):
        res = results.get(STEP.name)
        if (file_ids is not None and f.id not in file_ids) or res is None or res.status != "ok" or not res.data:
            continue
        c = res.data.get("class") or {}
        if c.get("shard"):
            try:
                df = read_item_table(workdir, c["shard"])
            except OSError:
                continue
            df.insert(0, "file_id", f.id)
            df.insert(0, "path", f.path)
            items.append(df)
        else:
            files.append({"path": f.path, "file_id": f.id, "label": c.get("label"),
                          "confidence": c.get("confidence"), "scores": c.get("scores")})
    if items:
        return pd.concat(items, ignore_index=True)
    return pd.DataFrame(files, columns=["path", "file_id", "label", "confidence", "scores"])


STEP = Step(
    name="classify",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    summary="your trained classifier (classify train) per file, window or unit: class.label, class.shares",
)

__all__ = ["STEP", "classify_file", "file_vector", "item_vectors", "predictions_frame", "read_item_table",
           "summarize", "write_unit_map"]
