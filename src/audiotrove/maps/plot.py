"""The map as a picture (matplotlib, Agg): one point per item, coloured by a field or by
cluster, a legend (a colour bar for a continuous field), each cluster's medoid labelled."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.write import atomic_path

MAX_CATEGORIES = 20


def write_png(df: pd.DataFrame, info: dict, out: str | os.PathLike, *, color: str = "cluster",
              values: pd.Series | None = None, title: str | None = None) -> Path:
    """`values`: the colour field per row of df (default: map.cluster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if info.get("dims") != 2:
        x, y = df["map.order"].to_numpy(float), np.zeros(len(df))
    else:
        x, y = df["map.x"].to_numpy(float), df["map.y"].to_numpy(float)
    values = df["map.cluster"] if values is None else values
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    size = max(2.0, min(40.0, 4000.0 / max(1, len(df))))
    numeric = pd.api.types.is_numeric_dtype(values) and color != "cluster"
    distinct = values.dropna().unique()
    if numeric and len(distinct) > MAX_CATEGORIES:
        sc = ax.scatter(x, y, c=values.to_numpy(float), s=size, cmap="viridis", linewidths=0)
        fig.colorbar(sc, ax=ax, label=color)
    else:
        cats = sorted(distinct.tolist(), key=lambda v: (str(type(v)), v))
        shown = cats[:MAX_CATEGORIES]
        cmap = plt.get_cmap("tab20" if len(shown) > 10 else "tab10")
        for k, cat in enumerate(shown):
            m = (values == cat).to_numpy()
            ax.scatter(x[m], y[m], s=size, color=cmap(k % cmap.N), linewidths=0,
                       label=f"{color} {cat}" if color == "cluster" else str(cat))
        rest = ~values.isin(shown).to_numpy()
        if rest.any():
            ax.scatter(x[rest], y[rest], s=size, color="0.75", linewidths=0,
                       label="other" if len(cats) > len(shown) else "none")
        ax.legend(loc="best", fontsize=8, markerscale=max(1.0, 30 / size) ** 0.5, title=color)
    for c in info.get("clusters", []):
        m = c["medoid"]
        hit = df.index[(df["file_id"] == m["file_id"]) & (df["unit"] == m["unit"])]
        if len(hit):
            i = hit[0]
            label = Path(m["path"]).name + (f":{m['unit']}" if info.get("level") != "file" else "")
            ax.annotate(f"{c['cluster']}: {label}", (x[i], y[i]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
            ax.scatter([x[i]], [y[i]], s=size * 3, facecolors="none", edgecolors="black", linewidths=0.8)
    ax.set_title(title or f"{info.get('name')}: {info.get('count')} {info.get('level')}s, "
                 f"{info.get('model')} / {info.get('method')}")
    ax.set_xticks([])
    ax.set_yticks([])
    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out
