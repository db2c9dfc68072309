"""Scale bench for `map` (issue 13): 100 000 and 1 000 000 vectors of the real dimension (1024,
as YAMNet gives) laid out in 2-D on one core, and what fitting on a sample costs in quality.

    OMP_NUM_THREADS=1 python bench/bench_map_scale.py [--n 100000] [--stages] [--quality 5000]

Vectors: synthetic, clustered like embeddings: 8 groups of 8 clusters (64 labels), each point
its cluster's centre plus Gaussian noise (norm about 3.5 times the centre's: k-NN class accuracy
about 0.83 among 5 000 of them in 1024-d, so neighbours are not trivial), unit length. Times: CPU seconds of this process
(time.process_time, one BLAS thread) and wall seconds; the load average of the machine is
printed with them (it is shared).

--stages also times the other stages `map` runs (k-means with K chosen by silhouette, the 1-D
layout for map.order). --quality M compares, on M points drawn from the n, the sample-fit map
(t-SNE on 20 000, the rest placed) with a t-SNE fitted on those M points alone: trustworthiness
(scikit-learn, k = 10) against the 1024-d vectors, k-NN class accuracy (k = 5, 5-fold) in 2-D,
and the share of each point's 10 nearest neighbours on one map that are among its 10 nearest on
the other.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DIM = 1024


def synthetic(n: int, *, dim: int = DIM, groups: int = 8, per_group: int = 8, noise: float = 3.5,
              seed: int = 0, block: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 unit vectors and their cluster label (groups * per_group clusters)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((groups, dim))
    centres = np.repeat(g, per_group, axis=0) + 0.8 * rng.standard_normal((groups * per_group, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, len(centres), n)
    x = np.empty((n, dim), np.float32)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        z = centres[labels[lo:hi]] + rng.normal(0, noise / np.sqrt(dim), (hi - lo, dim))
        x[lo:hi] = z / np.linalg.norm(z, axis=1, keepdims=True)
    return x, labels


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


class Timer:
    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu_s = time.process_time() - self.cpu
        self.wall_s = time.perf_counter() - self.wall
        print(f"  {self.label}: {self.cpu_s:.1f} CPU s, {self.wall_s:.1f} wall s ({load()})", flush=True)


def knn_accuracy(z, y, k=5):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return float(cross_val_score(KNeighborsClassifier(k), z, y, cv=5).mean())


def knn_agreement(a, b, k=10):
    from sklearn.neighbors import NearestNeighbors

    na = NearestNeighbors(n_neighbors=k + 1).fit(a).kneighbors(a, return_distance=False)[:, 1:]
    nb = NearestNeighbors(n_neighbors=k + 1).fit(b).kneighbors(b, return_distance=False)[:, 1:]
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(na, nb)]))


def main() -> None:
    from sklearn.manifold import trustworthiness

    from audiotrove.maps import cluster as clustering
    from audiotrove.maps.layout import fit_layout, layout, place

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--stages", action="store_true", help="also k-means (auto K) and the 1-D layout")
    ap.add_argument("--quality", type=int, default=0, help="compare with a full fit on this many points")
    ap.add_argument("--place-max", type=int, default=None,
                    help="place only this many of the rest and scale the time (placing is linear: fixed blocks)")
    args = ap.parse_args()

    print(f"{args.n} vectors, {DIM}-d, 64 clusters; {load()}", flush=True)
    with Timer("generate"):
        x, y = synthetic(args.n)
    # the 2-D layout as `map` runs it (layout.fit_layout), split in its two parts
    fit = np.sort(np.random.default_rng(0).choice(args.n, size=min(args.sample, args.n), replace=False))
    with Timer(f"t-SNE 2-D fitted on {len(fit)}") as t_fit:
        z_fit = layout(x[fit], method="tsne", dims=2, seed=0)
    rest = np.setdiff1d(np.arange(args.n), fit)
    placed = rest if args.place_max is None or args.place_max >= len(rest) else \
        np.sort(np.random.default_rng(2).choice(rest, size=args.place_max, replace=False))
    with Timer(f"place {len(placed)} of the other {len(rest)}") as t_place:
        z = np.full((args.n, 2), np.nan)
        z[fit] = z_fit
        z[placed] = place(x[fit], z_fit, x[placed]) if len(placed) else z[placed]
    scale = len(rest) / max(1, len(placed))
    print(f"{args.n} to 2-D: {t_fit.cpu_s + t_place.cpu_s * scale:.1f} CPU s"
          + (f" (placing scaled from {len(placed)} to {len(rest)}: x{scale:.1f})" if scale > 1 else
             f", {t_fit.wall_s + t_place.wall_s:.1f} wall s"), flush=True)
    check, _ = fit_layout(x[:3000], method="tsne", dims=2, seed=0, sample=1000)  # same code path as map
    assert check.shape == (3000, 2)

    if args.stages:
        with Timer("k-means, K chosen by silhouette (auto)") as t_k:
            labels = clustering.clusters(x, "auto", seed=0)
        print(f"  K = {len(set(labels.tolist()))}", flush=True)
        with Timer("t-SNE 1-D (map.order) fitted on the sample, the rest placed") as t_1d:
            fit_layout(x, method="tsne", dims=1, seed=0, sample=args.sample)
        total_cpu = t_fit.cpu_s + t_place.cpu_s + t_k.cpu_s + t_1d.cpu_s
        print(f"map stages together: {total_cpu:.1f} CPU s", flush=True)

    if args.quality:
        rng = np.random.default_rng(1)
        # drawn as from the whole n: fitted and placed points in their proportions
        n_fit = int(round(args.quality * len(fit) / args.n))
        sub = np.sort(np.concatenate([rng.choice(fit, size=n_fit, replace=False),
                                      rng.choice(placed, size=args.quality - n_fit, replace=False)]))
        with Timer(f"t-SNE fitted on the {args.quality} alone (the reference)"):
            ref = layout(x[sub], method="tsne", dims=2, seed=0)
        print(f"quality on {args.quality} points (k-NN class accuracy in {DIM}-d: "
              f"{knn_accuracy(x[sub], y[sub]):.3f})")
        print("| map of the subset | trustworthiness (k=10) | k-NN accuracy 2-D |")
        print("|---|---|---|")
        for label, m in ((f"t-SNE of the {args.quality} alone", ref),
                         (f"sample fit ({args.sample} of {args.n}, rest placed)", z[sub])):
            print(f"| {label} | {trustworthiness(x[sub], m, n_neighbors=10):.3f} | {knn_accuracy(m, y[sub]):.3f} |",
                  flush=True)
        print(f"10-NN agreement between the two maps: {knn_agreement(ref, z[sub]):.3f}", flush=True)


if __name__ == "__main__":
    main()
