"""Classifiers trained on your own labels, stored as plain JSON and evaluated here with numpy.

    model = train(X, labels, embedding={"model": "yamnet", "model_version": "..."}, classifier="svm")
    report = cross_validate(X, labels, groups, folds=5, classifier="auto")  # picks by grouped CV
    model = load("model.json")                               # (written by `classify train`)
    probs = predict_proba(model, X)                          # (n, n_classes), rows sum to 1

Features are standardized (mean and scale stored with the model), then one of:
    logreg  softmax regression with an L2 penalty, fitted by L-BFGS (scipy)
    svm     support vector machine, RBF kernel (scikit-learn's SVC, C=10, gamma "scale");
            stored: the support vectors, dual coefficients, intercepts and gamma; its one-vs-one
            decisions are turned into votes + confidences (scikit-learn's "ovr" shape) and those
            into probabilities by a softmax whose temperature is fitted on held-out decisions
            (an inner 3-fold split grouped by source)
    hgb     histogram gradient boosting (scikit-learn's HistGradientBoostingClassifier, 100
            iterations of 15-leaf trees, 64 bins, a fifth of the features per split); stored: every tree as arrays (feature, threshold,
            missing-goes-left, children, leaf value) and the baseline; raw scores summed here,
            softmax (sigmoid for two classes)
scikit-learn fits; nothing of it is stored. The model file is JSON (no pickle, no code): loading
checks its format, shapes and kinds of every array, and a file made for another embedding is
refused by the caller (`check_embedding`) with a clear message.

Evaluation (`cross_validate`): k folds grouped by source (the windows or units of one file are
never in train and test at once; a CSV's own folds may be given instead), accuracy, macro F1,
per-class precision / recall / F1, the confusion matrix (rows: truth) and every held-out
prediction with its confidence (for the worst mistakes).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, logsumexp, softmax

from . import ModelError

FORMAT = "audiotrove-classifier"
FORMAT_VERSION = 2
CLASSIFIERS = ("logreg", "svm", "hgb")  # `auto` tries them in this order; ties keep the first
L2 = 1.0  # logreg: penalty on the squared weights (standardized features)
SVM_C = 10.0
HGB_ITERATIONS = 100
HGB_LEAVES = 15
HGB_FEATURES = 0.2  # share of the features each split considers (1024-d embeddings: 5x faster)
HGB_BINS = 64
# what a prediction depends on (the classify step's key); the rest is bookkeeping
_PREDICTIVE = ("classifier", "embedding", "level", "window_s", "classes", "dim", "scaler", "params")


# --- logistic regression -------------------------------------------------------------------------

def _fit_logreg(X: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = L2) -> dict:
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
    return {"coef": res.x[:n_classes * d].reshape(n_classes, d).tolist(),
            "intercept": res.x[n_classes * d:].tolist(), "l2": l2}


def _logreg_proba(p: dict, Z: np.ndarray) -> np.ndarray:
    return softmax(Z @ np.asarray(p["coef"], np.float64).T + np.asarray(p["intercept"], np.float64), axis=1)


# --- support vector machine ----------------------------------------------------------------------

def _svm_votes(p: dict, Z: np.ndarray) -> np.ndarray:
    """(n, k) votes + confidences from the one-vs-one decisions (scikit-learn's ovr shape)."""
    sv = np.asarray(p["support_vectors"], np.float64)
    coef = np.asarray(p["dual_coef"], np.float64)
    n_support = np.asarray(p["n_support"], np.int64)
    k = len(n_support)
    sq = (Z * Z).sum(axis=1)[:, None] + (sv * sv).sum(axis=1)[None, :] - 2.0 * Z @ sv.T
    kern = np.exp(-float(p["gamma"]) * np.maximum(sq, 0.0))
    starts = np.concatenate([[0], np.cumsum(n_support)])
    votes = np.zeros((len(Z), k))
    conf = np.zeros((len(Z), k))
    pair = 0
    for i in range(k):
        si = slice(starts[i], starts[i + 1])
        for j in range(i + 1, k):
            sj = slice(starts[j], starts[j + 1])
            dec = kern[:, si] @ coef[j - 1, si] + kern[:, sj] @ coef[i, sj] + p["intercept"][pair]
            if k == 2:
                dec = -dec  # two classes: scikit-learn's sign favours the second class
            votes[:, i] += dec > 0
            votes[:, j] += dec <= 0
            conf[:, i] += dec
            conf[:, j] -= dec
            pair += 1
    return votes + conf / (3.0 * (np.abs(conf) + 1.0))


def _svm_proba(p: dict, Z: np.ndarray) -> np.ndarray:
    return softmax(float(p["temperature"]) * _svm_votes(p, Z), axis=1)


def _fit_svm_core(X: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.svm import SVC

    svc = SVC(kernel="rbf", C=SVM_C, gamma="scale").fit(X, y)
    return {"support_vectors": svc.support_vectors_.tolist(), "dual_coef": svc.dual_coef_.tolist(),
            "intercept": svc.intercept_.tolist(), "n_support": svc.n_support_.tolist(),
            "gamma": float(svc._gamma), "C": SVM_C, "temperature": 1.0}


def _fit_svm(X: np.ndarray, y: np.ndarray, n_classes: int, groups=None) -> dict:
    p = _fit_svm_core(X, y)
    # the softmax temperature: fitted on decisions for items held out of an inner split
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    fid = fold_ids([str(v) for v in y], list(groups), 3, seed=1)
    held_scores, held_y = [], []
    for f in range(3):
        test = fid == f
        if not test.any() or len(set(y[~test])) < n_classes:
            continue
        inner = _fit_svm_core(X[~test], y[~test])
        held_scores.append(_svm_votes(inner, X[test]))
        held_y.append(y[test])
    if held_scores:
        S, Y = np.concatenate(held_scores), np.concatenate(held_y)

        def nll(log_t: float) -> float:
            z = np.exp(log_t) * S
            return float((logsumexp(z, axis=1) - z[np.arange(len(Y)), Y]).sum())

        p["temperature"] = float(np.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))
    return p


# --- gradient boosting ---------------------------------------------------------------------------

def _fit_hgb(X: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier

    h = HistGradientBoostingClassifier(max_iter=HGB_ITERATIONS, max_leaf_nodes=HGB_LEAVES,
                                       max_features=HGB_FEATURES, max_bins=HGB_BINS,
                                       early_stopping=False, random_state=0).fit(X, y)
    trees = []
    for iteration in h._predictors:  # the fitted trees; copied out as plain arrays
        for tree in iteration:
            nd = tree.nodes
            if nd["is_categorical"].any():
                raise ModelError("a categorical split cannot be stored")  # never with numeric inputs
            trees.append({"feature": nd["feature_idx"].tolist(), "threshold": nd["num_threshold"].tolist(),
                          "missing_left": nd["missing_go_to_left"].astype(bool).tolist(),
                          "left": nd["left"].tolist(), "right": nd["right"].tolist(),
                          "leaf": nd["is_leaf"].astype(bool).tolist(), "value": nd["value"].tolist()})
    return {"baseline": np.asarray(h._baseline_prediction, np.float64).ravel().tolist(),
            "trees_per_iteration": int(h.n_trees_per_iteration_), "trees": trees,
            "max_iter": HGB_ITERATIONS, "max_leaf_nodes": HGB_LEAVES}


def _tree_values(t: dict, Z: np.ndarray) -> np.ndarray:
    feature = np.asarray(t["feature"], np.int64)
    threshold = np.asarray(t["threshold"], np.float64)
    missing_left = np.asarray(t["missing_left"], bool)
    left = np.asarray(t["left"], np.int64)
    right = np.asarray(t["right"], np.int64)
    leaf = np.asarray(t["leaf"], bool)
    node = np.zeros(len(Z), np.int64)
    rows = np.arange(len(Z))
    for _ in range(len(leaf)):  # a path visits each node at most once
        active = ~leaf[node]
        if not active.any():
            break
        x = Z[rows, feature[node]]
        go_left = np.where(np.isnan(x), missing_left[node], x <= threshold[node])
        node = np.where(active, np.where(go_left, left[node], right[node]), node)
    return np.asarray(t["value"], np.float64)[node]


def _hgb_proba(p: dict, Z: np.ndarray) -> np.ndarray:
    k = int(p["trees_per_iteration"])
    raw = np.tile(np.asarray(p["baseline"], np.float64), (len(Z), 1))
    for i, t in enumerate(p["trees"]):
        raw[:, i % k] += _tree_values(t, Z)
    if k == 1:
        pos = expit(raw[:, 0])
        return np.stack([1.0 - pos, pos], axis=1)
    return softmax(raw, axis=1)


# --- the model -----------------------------------------------------------------------------------

def train(X: np.ndarray, labels: list[str], *, embedding: dict, classifier: str = "logreg",
          groups: list | None = None, level: str = "file", window_s: float | None = None) -> dict:
    """A model dict (JSON-ready) fitted on all of X; `groups` (source of each row) keep the
    svm's calibration split honest."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, not {classifier!r}")
    X = np.asarray(X, np.float64)
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("at least two classes are needed to train a classifier")
    y = np.array([classes.index(c) for c in labels])
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-12] = 1.0
    Z = (X - mean) / scale
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):  # processes are the unit of parallelism
        warnings.simplefilter("ignore", FutureWarning)
        if classifier == "logreg":
            params = _fit_logreg(Z, y, len(classes))
        elif classifier == "svm":
            params = _fit_svm(Z, y, len(classes), groups)
        else:
            params = _fit_hgb(Z, y, len(classes))
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "classifier": classifier,
            "embedding": dict(embedding), "level": level, "window_s": window_s, "classes": classes,
            "dim": int(X.shape[1]), "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
            "params": params, "trained_on": int(len(y))}


_PROBA = {"logreg": _logreg_proba, "svm": _svm_proba, "hgb": _hgb_proba}


def predict_proba(model: dict, X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, np.float64))
    if X.shape[1] != model["dim"]:
        raise ModelError(f"the classifier expects {model['dim']}-d vectors, got {X.shape[1]}-d")
    Z = (X - np.asarray(model["scaler"]["mean"])) / np.asarray(model["scaler"]["scale"])
    return _PROBA[model["classifier"]](model["params"], Z)


def fold_ids(labels: list[str], groups: list, folds: int, *, seed: int = 0) -> np.ndarray:
    """A fold per item: whole groups (source files) go to one fold, each class spread over folds."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list] = {}
    seen: dict[str, set] = {}
    for lab, g in zip(labels, groups):
        if g not in seen.setdefault(lab, set()):
            seen[lab].add(g)
            by_class.setdefault(lab, []).append(g)
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


def _held_out(X, labels, fid, classifier, groups, embedding) -> tuple[list, list]:
    """Predicted label and confidence per item, each from the model of the folds without it."""
    pred: list = [None] * len(labels)
    conf: list = [None] * len(labels)
    labels_arr = np.array(labels)
    groups_arr = np.array([str(g) for g in groups])
    for k in sorted(set(fid.tolist())):
        test = fid == k
        if len(set(labels_arr[~test].tolist())) < 2 or not test.any():
            continue
        model = train(X[~test], list(labels_arr[~test]), embedding=embedding or {}, classifier=classifier,
                      groups=list(groups_arr[~test]))
        p = predict_proba(model, X[test])
        for i, row in zip(np.flatnonzero(test), p):
            pred[i] = model["classes"][int(row.argmax())]
            conf[i] = round(float(row.max()), 4)
    return pred, conf


def cross_validate(X: np.ndarray, labels: list[str], groups: list, *, folds: int = 5,
                   classifier: str = "logreg", embedding: dict | None = None,
                   given_folds: list | None = None) -> dict:
    """k-fold evaluation grouped by source (a group is never in train and test at once), or over
    `given_folds` (one fold name per item, as a CSV gives them). classifier "auto" evaluates
    each of CLASSIFIERS on the same folds and reports the best macro F1 (all in "candidates")."""
    X = np.asarray(X, np.float64)
    classes = sorted(set(labels))
    if given_folds is not None:
        names = sorted(set(given_folds))
        fid = np.array([names.index(f) for f in given_folds])
        n_folds = len(names)
        if n_folds < 2:
            raise ValueError("the fold column names a single fold: nothing to test on")
    else:
        n_groups = min(len({g for g, lab in zip(groups, labels) if lab == c}) for c in classes)
        if n_groups < 2:
            raise ValueError("every class needs at least two source files to cross-validate")
        n_folds = max(2, min(int(folds), n_groups))
        fid = fold_ids(labels, groups, n_folds)
    candidates = CLASSIFIERS if classifier == "auto" else (classifier,)
    best = None
    scores = {}
    for name in candidates:
        pred, conf = _held_out(X, labels, fid, name, groups, embedding)
        done = [i for i, p in enumerate(pred) if p is not None]
        out = evaluate([labels[i] for i in done], [pred[i] for i in done], classes)
        out.update({"classifier": name, "folds": n_folds, "predicted": pred, "confidence": conf,
                    "fold": fid.tolist()})
        scores[name] = {"accuracy": out["accuracy"], "macro_f1": out["macro_f1"]}
        if best is None or out["macro_f1"] > best["macro_f1"]:
            best = out
    best["candidates"] = scores
    best["mistakes"] = sorted(
        ({"item": i, "truth": labels[i], "predicted": best["predicted"][i], "confidence": best["confidence"][i]}
         for i in range(len(labels)) if best["predicted"][i] is not None and best["predicted"][i] != labels[i]),
        key=lambda m: -m["confidence"])
    return best


# --- the file ------------------------------------------------------------------------------------

def _check(cond: bool, path, what: str) -> None:
    if not cond:
        raise ModelError(f"{path}: not a valid audiotrove classifier ({what})")


def _is_matrix(v, rows: int | None = None, cols: int | None = None) -> bool:
    try:
        a = np.asarray(v, np.float64)
    except (TypeError, ValueError):
        return False
    return a.ndim == 2 and (rows is None or a.shape[0] == rows) and (cols is None or a.shape[1] == cols)


def _is_vector(v, n: int | None = None) -> bool:
    try:
        a = np.asarray(v, np.float64)
    except (TypeError, ValueError):
        return False
    return a.ndim == 1 and (n is None or len(a) == n)


def validate(model: dict, path="the classifier") -> dict:
    """Check every field a prediction reads: kinds and shapes (ModelError when wrong)."""
    _check(model.get("classifier") in CLASSIFIERS, path, f"classifier {model.get('classifier')!r}")
    classes, dim = model.get("classes"), model.get("dim")
    _check(isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes),
           path, "classes")
    _check(isinstance(dim, int) and dim > 0, path, "dim")
    emb = model.get("embedding")
    _check(isinstance(emb, dict) and isinstance(emb.get("model"), str), path, "embedding")
    sc = model.get("scaler") or {}
    _check(_is_vector(sc.get("mean"), dim) and _is_vector(sc.get("scale"), dim), path, "scaler")
    p, k = model.get("params"), len(classes)
    _check(isinstance(p, dict), path, "params")
    if model["classifier"] == "logreg":
        _check(_is_matrix(p.get("coef"), k, dim) and _is_vector(p.get("intercept"), k), path, "coefficients")
    elif model["classifier"] == "svm":
        ns = p.get("n_support")
        _check(_is_vector(ns, k), path, "n_support")
        n_sv = int(np.sum(ns))
        _check(_is_matrix(p.get("support_vectors"), n_sv, dim) and _is_matrix(p.get("dual_coef"), k - 1, n_sv)
               and _is_vector(p.get("intercept"), k * (k - 1) // 2), path, "support vectors")
        _check(all(isinstance(p.get(x), (int, float)) for x in ("gamma", "temperature")), path, "gamma")
    else:
        per = p.get("trees_per_iteration")
        _check(per in (1, k) and (per == 1) == (k == 2), path, "trees_per_iteration")
        _check(_is_vector(p.get("baseline"), per) and isinstance(p.get("trees"), list), path, "trees")
        for t in p["trees"]:
            n = len(t.get("value", []))
            _check(n > 0 and all(_is_vector(t.get(x), n) for x in
                                 ("feature", "threshold", "missing_left", "left", "right", "leaf")), path, "a tree")
            for x in ("feature", "left", "right"):
                a = np.asarray(t[x])
                _check(bool(((a >= 0) & (a < (dim if x == "feature" else n))).all()), path, "a tree's indices")
    return model


def load(path: str | os.PathLike) -> dict:
    try:
        model = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the classifier {path}: {exc}") from None
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise ModelError(f"{path} is not an audiotrove classifier (made by `audiotrove classify train`)")
    if model.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: classifier format {model.get('format_version')} is not supported here "
                         f"(this version reads format {FORMAT_VERSION}): train it again")
    return validate(model, path)


def check_embedding(model: dict, embedder_key: dict, path="the classifier") -> None:
    """ModelError when the embedding here is not the one the classifier was trained on."""
    want = model["embedding"]
    if want.get("model") != embedder_key.get("model") or want.get("model_version") != embedder_key.get("model_version"):
        raise ModelError(
            f"{path} was trained on {want.get('model')} version {want.get('model_version')}, but the "
            f"{embedder_key.get('model')} here is version {embedder_key.get('model_version')}: its vectors "
            "would not mean the same; train the classifier again with this model")


def digest(model: dict) -> str:
    """What a prediction depends on (part of the classify step's key)."""
    keep = {k: model.get(k) for k in _PREDICTIVE}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]
