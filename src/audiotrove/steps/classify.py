"""The `classify` step: a classifier you trained (`audiotrove classify train`) applied to a file.

Parameters (part of the result's key): model_path (the model JSON), model_digest (its
coefficients' digest: retraining recomputes), min_confidence (below it the label is null).

The file's vector is its duration-weighted mean of 1 s window embeddings, computed as the
`embed` step does at file level (decoded in blocks: bounded memory), with the embedding model
the classifier was trained on. Stored:
    {"class": {"label", "confidence", "scores": {class: probability}, "model"}}
"""
from __future__ import annotations

import tempfile

import numpy as np

from ..errors import ItemError
from ..models import ModelError
from ..models.classifier import digest, load, predict_proba
from .base import Item, Step

VERSION = "1"
DEFAULTS: dict = {"model_path": None, "model_digest": None, "min_confidence": 0.0}
WINDOW_S = 1.0


def file_vector(path: str, embedding: dict) -> np.ndarray:
    """The file-level embedding of `path` (the `embed` step's, at file level)."""
    from ..vectors.store import read_vectors
    from .embed import embed_file

    with tempfile.TemporaryDirectory(prefix="audiotrove-classify-") as tmp:
        out = embed_file(path, {"model": embedding["model"], "model_version": embedding.get("model_version"),
                                "level": "file", "window_s": WINDOW_S}, shards_dir=tmp)
        _, vecs = read_vectors(f"{tmp}/{out['embed']['shard']}")
    return np.asarray(vecs[0], np.float64)


def classify_file(path: str, params: dict) -> dict:
    params = {**DEFAULTS, **params}
    try:
        model = load(params["model_path"])
    except ModelError as exc:
        raise ItemError(str(exc)) from None
    if params["model_digest"] and digest(model) != params["model_digest"]:
        raise ItemError(f"the classifier {params['model_path']} changed since this run began: run again")
    probs = predict_proba(model, file_vector(path, model["embedding"]))[0]
    best = int(np.argmax(probs))
    confident = float(probs[best]) >= float(params["min_confidence"])
    return {"class": {"label": model["classes"][best] if confident else None,
                      "confidence": round(float(probs[best]), 4),
                      "scores": {c: round(float(p), 4) for c, p in zip(model["classes"], probs)},
                      "model": str(params["model_path"])}}


def _run(item: Item) -> dict:
    return classify_file(item.path, item.params)


STEP = Step(
    name="classify",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    summary="your trained classifier (classify train) applied per file: class.label, class.confidence",
)
