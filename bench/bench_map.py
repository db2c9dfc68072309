"""Bench for `map` (issue 13): layout quality per method on labelled material, grid assignment
(exact vs blockwise vs random), and scale (100 000 and 1 000 000 vectors through fitting on a
sample and placing the rest).

    python bench/bench_map.py [--quick] [--million]
    python bench/bench_map.py --sample-quality 10000   # only: full t-SNE vs a fit on a fifth, the rest placed

Labelled material, generated (no download): instrument-like notes (4 timbres x pitches), drums
(kick, snare, hat), espeak-ng speech (when installed) and noise (white, pink, brown), 0.8 s
clips embedded with the `descriptors` model (171-d, unit length as `map` reads them). Larger
sets are those vectors jittered (Gaussian, sd 0.05 per dimension, renormalized). Times are CPU
seconds of this process (time.process_time): other jobs share the machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SR = 16000
CLIP = int(0.8 * SR)


def notes(rng, n):
    out = []
    t = np.arange(CLIP) / SR
    for i in range(n):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        kind = i % 4
        amps = {0: [1 / h for h in range(1, 9)], 1: [1 / h if h % 2 else 0 for h in range(1, 9)],
                2: [1, 0.3, 0.1, 0, 0, 0, 0, 0], 3: [1 / h ** 0.5 for h in range(1, 9)]}[kind]
        env = np.exp(-t * (6 if kind == 3 else 1.5)) * np.minimum(1, t * 200)
        out.append(0.3 * env * sum(a * np.sin(2 * np.pi * f * h * t) for h, a in enumerate(amps, 1) if a))
    return out


def drums(rng, n):
    from scipy import signal

    out = []
    t = np.arange(CLIP) / SR
    for i in range(n):
        kind = i % 3
        if kind == 0:  # kick: falling sine
            f = 150 * np.exp(-t * 20) + 45 + rng.uniform(-5, 5)
            x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 8)
        elif kind == 1:  # snare: noise + 190 Hz body
            x = (rng.standard_normal(CLIP) * 0.6 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 18)
        else:  # hat: high-passed noise
            x = signal.sosfilt(signal.butter(4, 7000, "hp", fs=SR, output="sos"), rng.standard_normal(CLIP))
            x *= np.exp(-t * 30)
        out.append(0.5 * x)
    return out


def noises(rng, n):
    out = []
    for i in range(n):
        w = rng.standard_normal(CLIP)
        spec = np.fft.rfft(w)
        f = np.arange(len(spec)) + 1.0
        spec /= f ** (0.5 * (i % 3))  # white, pink, brown
        x = np.fft.irfft(spec, CLIP)
        out.append(0.2 * x / np.abs(x).max())
    return out


def speech(rng, n):
    import speak

    if not speak.available():
        return []
    words = ("archive interview freedom morning weather station records winter attic music "
             "midnight river garden letter mother harbour").split()
    audio = []
    while sum(len(a) for a in audio) < n * CLIP:
        text = " ".join(rng.choice(words, 12))
        a, _ = speak.say(text)
        audio.append(a)
    cat = np.concatenate(audio)
    return [cat[i * CLIP:(i + 1) * CLIP] for i in range(n)]


def labelled(per_class: int, seed: int = 0):
    from audiotrove.models.embedders import get_embedder

    rng = np.random.default_rng(seed)
    model = get_embedder("descriptors")
    sets = {"notes": notes(rng, per_class), "drums": drums(rng, per_class), "noise": noises(rng, per_class),
            "speech": speech(rng, per_class)}
    x, y = [], []
    for k, (name, clips) in enumerate(sets.items()):
        if clips:
            x.append(np.asarray(model.embed_many([c.astype(np.float32) for c in clips]), np.float32))
            y += [k] * len(clips)
    x = np.concatenate(x)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.array(y), [n for n, c in sets.items() if c]


def jitter(x, y, n, seed=1):
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), n)
    z = x[pick] + rng.normal(0, 0.05, (n, x.shape[1])).astype(np.float32)
    return z / np.linalg.norm(z, axis=1, keepdims=True), y[pick]


def knn_accuracy(z, y, k=5):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return float(cross_val_score(KNeighborsClassifier(k), z, y, cv=5).mean())


def cpu(fn, *a, **kw):
    t = time.process_time()
    out = fn(*a, **kw)
    return out, time.process_time() - t


def main() -> None:
    from sklearn.manifold import trustworthiness

    from audiotrove.maps.grid import assign_grid, neighbourhood_preservation
    from audiotrove.maps.layout import fit_layout, layout

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the exact 64x64 grid and the 100 000 run")
    ap.add_argument("--million", action="store_true", help="also place 1 000 000 vectors")
    ap.add_argument("--sample-quality", type=int, default=0, metavar="N",
                    help="only the quality lost by fitting on N/5 of N jittered labelled vectors")
    args = ap.parse_args()
    if args.sample_quality:
        return sample_quality(args.sample_quality)

    x, y, names = labelled(150)
    print(f"labelled: {len(x)} clips, classes {names}, {x.shape[1]}-d descriptors")
    print(f"k-NN accuracy (k=5, 5-fold) in the full embedding: {knn_accuracy(x, y):.3f}")
    methods = ["pca", "tsne"]
    try:
        import umap  # noqa: F401

        methods.append("umap")
    except ImportError:
        print("umap-learn not installed: --method umap not measured")
    print("| method | CPU s | trustworthiness (k=10) | k-NN accuracy 2-D |")
    print("|---|---|---|---|")
    for m in methods:
        z, s = cpu(layout, x, method=m, dims=2, seed=0)
        print(f"| {m} | {s:.1f} | {trustworthiness(x, z, n_neighbors=10):.3f} | {knn_accuracy(z, y):.3f} |")

    # --- the grid ----------------------------------------------------------------------------
    g, gy = jitter(x, y, 4096)
    xy = layout(g, method="tsne", dims=2, seed=0)
    rng = np.random.default_rng(0)
    print("\ngrid 64x64, 4096 t-SNE points: neighbourhood preservation (share of the 8 grid "
          "neighbours among the 16 nearest in the embedding)")
    print("| assignment | CPU s | preservation |")
    print("|---|---|---|")
    runs = [("blockwise (32x32 blocks)", dict(exact_cells=1))]
    if not args.quick:
        runs.insert(0, ("exact (one linear_sum_assignment)", dict(exact_cells=10**9)))
    for label, kw in runs:
        (c, r), s = cpu(assign_grid, xy, cols=64, rows=64, **kw)
        print(f"| {label} | {s:.1f} | {neighbourhood_preservation(g, c, r):.3f} |")
    perm = rng.permutation(4096)
    print(f"| random | 0 | {neighbourhood_preservation(g, c[perm], r[perm]):.3f} |")
    big = rng.random((16384, 2))
    _, s = cpu(assign_grid, big, cols=128, rows=128)
    print(f"128x128 (16 384 points) blockwise: {s:.1f} CPU s")

    if args.quick:
        return
    # --- fitting on a sample: the quality lost ------------------------------------------------
    m, my = jitter(x, y, 20000, seed=2)
    sub = rng.choice(20000, 2000, replace=False)
    print("\n20 000 vectors: t-SNE on all vs fitted on a sample and the rest placed")
    print("| fit | CPU s | trustworthiness (2 000 subset) | k-NN accuracy 2-D |")
    print("|---|---|---|---|")
    for sample in (None, 5000):
        (z, _), s = cpu(fit_layout, m, method="tsne", dims=2, seed=0, sample=sample)
        print(f"| {'all 20 000' if sample is None else f'sample {sample}'} | {s:.1f} | "
              f"{trustworthiness(m[sub], z[sub], n_neighbors=10):.3f} | {knn_accuracy(z, my):.3f} |")
    # --- 100 000 (and 1 000 000) ---------------------------------------------------------------
    for n in (100_000,) + ((1_000_000,) if args.million else ()):
        v, vy = jitter(x, y, n, seed=3)
        (z, _), s = cpu(fit_layout, v, method="tsne", dims=2, seed=0, sample=20000)
        sub = rng.choice(n, 5000, replace=False)
        print(f"{n} vectors to 2-D (t-SNE on 20 000, the rest placed): {s:.1f} CPU s; "
              f"k-NN accuracy 2-D on 5 000 of them {knn_accuracy(z[sub], vy[sub]):.3f}")
        (_, s) = cpu(layout, v, method="pca", dims=2)
        print(f"{n} vectors to 2-D by PCA: {s:.1f} CPU s")


def sample_quality(n: int) -> None:
    """t-SNE of n jittered labelled vectors: fitted on all of them, against fitted on n/5 with the
    rest placed (what `map --sample` does above 20 000 items: 100 000 items are fitted on a fifth)."""
    from sklearn.manifold import trustworthiness

    from audiotrove.maps.layout import fit_layout

    x, y, names = labelled(150)
    m, my = jitter(x, y, n, seed=2)
    sub = np.random.default_rng(0).choice(n, min(n, 3000), replace=False)
    print(f"{n} jittered vectors of {len(x)} labelled clips ({', '.join(names)}), {x.shape[1]}-d; "
          f"k-NN accuracy (k=5, 5-fold) in the full embedding on {len(sub)} of them: {knn_accuracy(m[sub], my[sub]):.3f}")
    print(f"| t-SNE fitted on | CPU s | trustworthiness (k=10, {len(sub)} of them) | k-NN accuracy 2-D ({len(sub)}) |")
    print("|---|---|---|---|")
    maps = {}
    for sample in (None, n // 5):
        (z, _), s = cpu(fit_layout, m, method="tsne", dims=2, seed=0, sample=sample)
        maps[sample] = z
        print(f"| {'all ' + str(n) if sample is None else f'{sample}, the rest placed'} | {s:.1f} | "
              f"{trustworthiness(m[sub], z[sub], n_neighbors=10):.3f} | {knn_accuracy(z[sub], my[sub]):.3f} |", flush=True)
    from sklearn.neighbors import NearestNeighbors

    a, b = (NearestNeighbors(n_neighbors=11).fit(maps[k][sub]).kneighbors(maps[k][sub], return_distance=False)[:, 1:]
            for k in (None, n // 5))
    print(f"10-NN agreement between the two maps: {np.mean([len(set(p) & set(q)) / 10 for p, q in zip(a, b)]):.3f}")


if __name__ == "__main__":
    main()
