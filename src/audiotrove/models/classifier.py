"""Classifiers trained on your own labels: multinomial logistic regression on embeddings.

    model = train(X, labels, embedding={"model": "yamnet", "model_version": "..."})
    report = cross_validate(X, labels, groups, folds=5)     # accuracy, macro F1, per class, confusion
    model = load("model.json")                               # (written by the classify command)
    probs = predict_proba(model, X)                          # (n, n_classes), rows sum to 1

Features are standardized (mean and scale stored with the model), then a softmax regression
with an L2 penalty is fitted by L-BFGS (scipy). The model file is plain JSON (coefficients,
classes, the scaler and the embedding model and version it needs): nothing is unpickled, and a
file made for another embedding is refused with a clear message.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from . import ModelError

FORMAT = "audiotrove-classifier"
FORMAT_VERSION = 1
L2 = 1.0  # penalty on the squared weights (standardized features), per file


def _fit(X: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = L2) -> tuple[np.ndarray, np.ndarray]:
    n, d = X.shape
    Y = np.eye(n_classes)[y]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        W = w[:n_classes * d].reshape(n_classes, d)
        b = w[n_classes * d:]
        z = X @ W.T + b
        lse = logsumexp(z, axis=1)
        value = float((lse - (z * Y).sum(axis=1)).sum()) + 0.5 * l2 * float((W * W).sum())
        g = softmax(z, axis=1) - Y
        grad = np.concatenate([(g.T @ X + l2 * W).ravel(), g.sum(axis=0)])
        return value, grad

    res = minimize(loss, np.zeros(n_classes * (d + 1)), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500})
    return res.x[:n_classes * d].reshape(n_classes, d), res.x[n_classes * d:]


def train(X: np.ndarray, labels: list[str], *, embedding: dict) -> dict:
    """A model dict (JSON-ready) fitted on all of X."""
    X = np.asarray(X, np.float64)
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("at least two classes are needed to train a classifier")
    y = np.array([classes.index(c) for c in labels])
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-12] = 1.0
    W, b = _fit((X - mean) / scale, y, len(classes))
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "classifier": "logreg",
            "embedding": dict(embedding), "classes": classes, "dim": int(X.shape[1]),
            "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
            "coef": W.tolist(), "intercept": b.tolist(), "l2": L2, "trained_on": int(len(y))}


def predict_proba(model: dict, X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, np.float64))
    if X.shape[1] != model["dim"]:
        raise ModelError(f"the classifier expects {model['dim']}-d vectors, got {X.shape[1]}-d")
    Z = (X - np.asarray(model["scaler"]["mean"])) / np.asarray(model["scaler"]["scale"])
    return softmax(Z @ np.asarray(model["coef"]).T + np.asarray(model["intercept"]), axis=1)


def fold_ids(labels: list[str], groups: list, folds: int, *, seed: int = 0) -> np.ndarray:
    """A fold per item: whole groups (source files) go to one fold, each class spread over folds."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list] = {}
    for lab, g in zip(labels, groups):
        if g not in by_class.setdefault(lab, []):
            by_class[lab].append(g)
    fold_of: dict = {}
    k = 0
    for lab in sorted(by_class):
        gs = [g for g in by_class[lab] if g not in fold_of]
        for i in rng.permutation(len(gs)):
            fold_of[gs[i]] = k % folds
            k += 1
    return np.array([fold_of[g] for g in groups])


def evaluate(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict:
    """accuracy, macro F1, per-class precision / recall / F1 / support, confusion (rows: truth)."""
    idx = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[idx[t], idx[p]] += 1
    per = {}
    for c, i in idx.items():
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = {"precision": round(float(prec), 4), "recall": round(float(rec), 4),
                  "f1": round(float(f1), 4), "support": int(cm[i].sum())}
    return {"accuracy": round(float(np.trace(cm) / max(1, cm.sum())), 4),
            "macro_f1": round(float(np.mean([p["f1"] for p in per.values()])), 4),
            "per_class": per, "classes": classes, "confusion": cm.tolist()}


def cross_validate(X: np.ndarray, labels: list[str], groups: list, *, folds: int = 5,
                   embedding: dict | None = None) -> dict:
    """k-fold evaluation grouped by source (a group is never in train and test at once)."""
    X = np.asarray(X, np.float64)
    classes = sorted(set(labels))
    n_groups = min(len({g for g, lab in zip(groups, labels) if lab == c}) for c in classes)
    folds = max(2, min(int(folds), n_groups))
    if n_groups < 2:
        raise ValueError("every class needs at least two files to cross-validate")
    fid = fold_ids(labels, groups, folds)
    pred = [None] * len(labels)
    labels_arr = np.array(labels)
    for k in range(folds):
        test = fid == k
        train_labels = list(labels_arr[~test])
        if len(set(train_labels)) < 2 or not test.any():
            continue
        model = train(X[~test], train_labels, embedding=embedding or {})
        p = predict_proba(model, X[test])
        for i, j in zip(np.flatnonzero(test), p.argmax(axis=1)):
            pred[i] = model["classes"][j]
    done = [i for i, p in enumerate(pred) if p is not None]
    out = evaluate([labels[i] for i in done], [pred[i] for i in done], classes)
    out["folds"] = folds
    out["mistakes"] = [{"item": i, "truth": labels[i], "predicted": pred[i]} for i in done
                       if pred[i] != labels[i]]
    return out


def load(path: str | os.PathLike) -> dict:
    try:
        model = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the classifier {path}: {exc}") from None
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise ModelError(f"{path} is not an audiotrove classifier (made by `audiotrove classify train`)")
    if model.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: classifier format {model.get('format_version')} is not supported here")
    return model


def digest(model: dict) -> str:
    """What a prediction depends on (part of the classify step's key)."""
    keep = {k: model[k] for k in ("embedding", "classes", "scaler", "coef", "intercept")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]
