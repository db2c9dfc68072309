"""Clusters of embedding vectors: k-means (scikit-learn, k-means++ seeded), K given or chosen
by the silhouette score (`auto`, K from 2 to 12, chosen on at most 10 000 rows, each K scored on
2 000). Each cluster's
medoid is the member nearest its centroid.

k-means rather than HDBSCAN: it gives every item a cluster (a map has no "noise" points to
explain), its result is fixed by the seed, and its cost stays linear in the number of items.
"""
from __future__ import annotations

import numpy as np

AUTO_MAX_K = 12
SILHOUETTE_SAMPLE = 2000
AUTO_SAMPLE = 10_000  # auto: K chosen on this many rows at most, then k-means on all


def kmeans(matrix: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    x = np.asarray(matrix, np.float64)
    distinct = len(np.unique(x, axis=0)) if len(x) <= AUTO_SAMPLE else len(x)
    k = max(1, min(int(k), distinct))
    if k == 1:
        return np.zeros(len(x), np.int64)
    return KMeans(n_clusters=k, n_init=4 if len(x) <= 50_000 else 1,
                  random_state=seed).fit_predict(x).astype(np.int64)


def choose_k(matrix: np.ndarray, *, seed: int = 0, max_k: int = AUTO_MAX_K) -> tuple[int, np.ndarray]:
    """(K, labels) with the best silhouette score for K in 2..max_k."""
    from sklearn.metrics import silhouette_score

    x = np.asarray(matrix, np.float64)
    distinct = len(np.unique(x, axis=0))
    best = (1, np.zeros(len(x), np.int64), -2.0)
    for k in range(2, min(max_k, distinct - 1) + 1):
        labels = kmeans(x, k, seed=seed)
        if len(set(labels.tolist())) < 2:
            continue
        score = silhouette_score(x, labels, sample_size=min(SILHOUETTE_SAMPLE, len(x)), random_state=seed)
        if score > best[2] + 1e-9:
            best = (k, labels, score)
    return best[0], best[1]


def clusters(matrix: np.ndarray, k: int | str, *, seed: int = 0) -> np.ndarray:
    """Labels 0..K-1 (K given, or "auto": chosen on at most AUTO_SAMPLE rows)."""
    if k == "auto":
        x = np.asarray(matrix)
        if len(x) <= AUTO_SAMPLE:
            return choose_k(x, seed=seed)[1]
        rows = np.random.default_rng(seed).choice(len(x), size=AUTO_SAMPLE, replace=False)
        k = choose_k(x[np.sort(rows)], seed=seed)[0]
    return kmeans(matrix, int(k), seed=seed)


def number_along(labels: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The same clusters numbered by first appearance along `order` (a rank): cluster 0 opens
    the similarity order."""
    first: dict[int, int] = {}
    for lab in labels[np.argsort(order, kind="stable")]:
        first.setdefault(int(lab), len(first))
    return np.array([first[int(lab)] for lab in labels], np.int64)


def medoids(matrix: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """cluster -> row index of its member nearest the cluster's centroid."""
    x = np.asarray(matrix, np.float64)
    out = {}
    for lab in np.unique(labels):
        rows = np.flatnonzero(labels == lab)
        centre = x[rows].mean(axis=0)
        out[int(lab)] = int(rows[np.argmin(((x[rows] - centre) ** 2).sum(axis=1))])
    return out
