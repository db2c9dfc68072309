"""Embedding vectors -> 1-D or 2-D coordinates: t-SNE (scikit-learn, Barnes-Hut), UMAP
(umap-learn, an optional extra) or PCA (numpy). Deterministic for a given seed.

    xy = layout(matrix, method="tsne", dims=2, seed=0)          # (n, 2) float64
    xy, fitted = fit_layout(matrix, method="tsne", sample=10000)  # fit a sample, place the rest
    rank = similarity_order(layout(matrix, dims=1)[:, 0], labels=k_means_labels)
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError

METHODS = ("tsne", "umap", "pca")


def pca(matrix: np.ndarray, dims: int) -> np.ndarray:
    """Projection on the first `dims` principal axes (signs fixed: the largest loading positive)."""
    x = np.asarray(matrix, np.float64)
    x = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), dims))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:dims]
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    out = x @ axes.T
    if out.shape[1] < dims:  # fewer distinct directions than asked
        out = np.pad(out, ((0, 0), (0, dims - out.shape[1])))
    return out


def layout(matrix: np.ndarray, *, method: str = "tsne", dims: int = 2, seed: int = 0,
           perplexity: float = 30.0, neighbours: int = 15) -> np.ndarray:
    """(n, dims) coordinates. Fewer than 5 points (or all identical): PCA."""
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if dims not in (1, 2):
        raise UsageError("--dims must be 1 or 2")
    x = np.asarray(matrix, np.float32)
    n = len(x)
    if method == "pca" or n < 5 or np.allclose(x, x[:1]):
        return pca(x, dims)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # t-SNE needs perplexity < n; PCA initialisation makes the result stable across seeds.
        # Cosine needs exact pairwise neighbours: above 2 000 rows Euclidean, which ranks
        # unit-length vectors (as stored) in the same order, lets it use a tree.
        t = TSNE(n_components=dims, perplexity=min(perplexity, (n - 1) / 3.0), init="pca",
                 random_state=seed, metric="cosine" if n <= 2000 else "euclidean",
                 learning_rate="auto", n_jobs=1)
        return t.fit_transform(x).astype(np.float64)
    try:
        import umap  # umap-learn: numba + llvmlite, an optional extra (see the README)
    except ImportError:
        raise UsageError("--method umap needs umap-learn: pip install 'audiotrove[umap]' "
                         "(or use --method tsne / pca)") from None
    u = umap.UMAP(n_components=dims, n_neighbors=min(neighbours, n - 1), random_state=seed, n_jobs=1,
                  metric="cosine", init="spectral" if n > dims + 1 else "random")
    return np.asarray(u.fit_transform(x), np.float64)


def place(fitted: np.ndarray, coords: np.ndarray, new: np.ndarray, *, k: int = 10,
          block: int = 2048) -> np.ndarray:
    """Out-of-sample placement: each row of `new` at the mean of the map coordinates of its k
    nearest rows of `fitted` (cosine similarity, unit-length rows), weighted by similarity
    (the initialisation openTSNE's transform starts from). Exact search, in blocks."""
    fitted = np.asarray(fitted, np.float32)
    coords = np.asarray(coords, np.float64)
    new = np.asarray(new, np.float32)
    k = max(1, min(k, len(fitted)))
    out = np.empty((len(new), coords.shape[1]))
    for lo in range(0, len(new), block):
        sims = new[lo:lo + block] @ fitted.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sims, near, axis=1), 0.0, None) + 1e-6
        w = w ** 4  # the nearest dominate: a new item lands inside its neighbours' cluster
        out[lo:lo + block] = (w[:, :, None] * coords[near]).sum(axis=1) / w.sum(axis=1)[:, None]
    return out


def fit_layout(matrix: np.ndarray, *, method: str = "tsne", dims: int = 2, seed: int = 0,
               sample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates, the rows the layout was fitted on). Above `sample` rows (t-SNE and UMAP
    only) the layout is fitted on a random sample of that size and the other rows placed
    with `place`."""
    n = len(matrix)
    if method == "pca" or sample is None or n <= sample:
        return layout(matrix, method=method, dims=dims, seed=seed), np.arange(n)
    fit = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    coords = np.empty((n, dims))
    coords[fit] = layout(matrix[fit], method=method, dims=dims, seed=seed)
    rest = np.setdiff1d(np.arange(n), fit)
    coords[rest] = place(matrix[fit], coords[fit], matrix[rest])
    return coords, fit


def similarity_order(coord: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Rank 0..n-1 of each row along a 1-D coordinate: similar rows get near ranks.

    With cluster `labels`, each cluster is one run of ranks (1-D layouts, t-SNE's above all,
    may split a cluster in two runs): the clusters follow the median 1-D position of their
    members, and inside a cluster the members follow their own 1-D position."""
    coord = np.asarray(coord, np.float64).reshape(-1)
    keys = [np.arange(len(coord)), coord]
    if labels is not None and len(coord):
        centre = {lab: float(np.median(coord[labels == lab])) for lab in np.unique(labels)}
        keys.append(np.array([centre[lab] for lab in labels]))
    order = np.lexsort(keys)
    rank = np.empty(len(coord), np.int64)
    rank[order] = np.arange(len(coord))
    return rank
