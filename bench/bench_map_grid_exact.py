"""Exact vs blockwise grid assignment at 64 x 64 on the same PCA map (bench/RESULTS_map.md)."""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import bench_map as b
from audiotrove.maps.grid import assign_grid, neighbourhood_preservation
from audiotrove.maps.layout import layout
x, y, names = b.labelled(150)
g, gy = b.jitter(x, y, 4096)
xy = layout(g, method="pca", dims=2)
for label, kw in (("blockwise", dict(exact_cells=1)), ("exact", dict(exact_cells=10**9))):
    t = time.process_time(); w = time.time()
    c, r = assign_grid(xy, cols=64, rows=64, **kw)
    print(label, f"{time.process_time()-t:.1f} CPU s, {time.time()-w:.1f} wall s", f"{neighbourhood_preservation(g, c, r):.3f}", f"2-D kept {neighbourhood_preservation(xy, c, r):.3f}", flush=True)
p = np.random.default_rng(0).permutation(4096)
print("random", f"{neighbourhood_preservation(g, c[p], r[p]):.3f}", flush=True)
