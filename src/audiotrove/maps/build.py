"""The `map` command's data function: read the stored vectors, lay them out, grid and cluster
them, store the fields.

    df, info = make_map(cat, level="unit", units="power > -40", model="descriptors",
                        method="tsne", dims=2, grid=(32, 32), clusters="auto", seed=0)

df: path, file_id, unit, start, dur, map.x, map.y (2-D; null with dims=1), map.order (rank
0..n-1 along a 1-D layout of the same method, each cluster one run: similar items are
adjacent), grid.col, grid.row
(2-D), map.cluster (k-means on the full vectors, numbered along map.order). info: the settings,
the timings, and per cluster its size, medoid (path, unit, start) and, for units, the medians
of the unit descriptors.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..catalog.db import Catalog
from ..errors import UsageError
from . import cluster as clustering
from .grid import assign_grid, auto_grid
from .layout import fit_layout, similarity_order
from .store import DEFAULT_NAME, save_file_fields, save_table

AUTO_GRID_MAX = 128 * 128  # above, a grid only when --grid asks for one
SAMPLE = 10_000  # t-SNE / UMAP fitted on this many items at most, the rest placed (layout.place)
UNIT_MEDIANS = ("power", "hz", "clarity", "centroid", "flatness", "dur")


def map_vectors(catalog: Catalog, *, level: str, model: str, where: str | None, units: str | None,
                window_s: float) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame | None]:
    """(ids, matrix, unit rows or None) of the items to map."""
    from ..vectors.search import collection_vectors

    ids, matrix = collection_vectors(catalog, model=model, level=level, where=where, window_s=window_s)
    if len(ids) == 0:
        raise UsageError(f"no {level} vectors of model {model}: run `audiotrove embed --model {model}"
                         + (" --units`" if level == "unit" else " --files`" if level == "file" else
                            f" --windows {window_s:g}`") + " first")
    unit_rows = None
    if level == "unit":
        from ..units.select import list_units

        query = None if units is None or units.strip().lower() in ("", "all", "*") else units
        unit_rows = list_units(catalog, query, where=where)
        keys = pd.MultiIndex.from_frame(unit_rows[["file_id", "unit"]].astype("int64"))
        keep = pd.MultiIndex.from_frame(ids[["file_id", "unit"]].astype("int64")).isin(keys)
        ids, matrix = ids[keep].reset_index(drop=True), matrix[keep]
        if len(ids) == 0:
            raise UsageError(f"no unit matching {units!r} has a {model} vector")
    return ids, matrix, unit_rows


def make_map(catalog: Catalog, *, level: str = "file", model: str = "yamnet", where: str | None = None,
             units: str | None = None, window_s: float = 1.0, method: str = "tsne", dims: int = 2,
             grid: tuple[int, int] | None = None, clusters: int | str = "auto", seed: int = 0,
             name: str = DEFAULT_NAME, sample: int | None = SAMPLE) -> tuple[pd.DataFrame, dict]:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise UsageError(f"--name is letters, digits and _ (starting with a letter), not {name!r}")
    t0 = time.perf_counter()
    ids, matrix, unit_rows = map_vectors(catalog, level=level, model=model, where=where, units=units,
                                         window_s=window_s)
    n = len(ids)
    times = {"read_s": time.perf_counter() - t0}
    df = ids.copy()
    t = time.perf_counter()
    labels = clustering.clusters(matrix, clusters, seed=seed)
    times["clusters_s"] = time.perf_counter() - t
    t = time.perf_counter()
    line, fitted = fit_layout(matrix, method=method, dims=1, seed=seed, sample=sample)
    df["map.order"] = similarity_order(line[:, 0], labels)
    if dims == 2:
        xy, _ = fit_layout(matrix, method=method, dims=2, seed=seed, sample=sample)
        df["map.x"], df["map.y"] = xy[:, 0], xy[:, 1]
    else:
        df["map.x"] = df["map.y"] = np.nan
    times["layout_s"] = time.perf_counter() - t
    cols = rows = None
    if dims == 2 and (grid or n <= AUTO_GRID_MAX):
        t = time.perf_counter()
        cols, rows = grid or auto_grid(n)
        if n > cols * rows:
            raise UsageError(f"{n} items do not fit a {cols}x{rows} grid: give a larger --grid "
                             "or select fewer items")
        gc, gr = assign_grid(xy, cols=cols, rows=rows)
        df["grid.col"], df["grid.row"] = gc, gr
        times["grid_s"] = time.perf_counter() - t
    else:
        df["grid.col"] = df["grid.row"] = pd.NA
    labels = clustering.number_along(labels, df["map.order"].to_numpy())
    df["map.cluster"] = labels
    info = {"name": name, "level": level, "model": model, "method": method, "dims": dims,
            "seed": seed, "count": n, "fitted": int(len(fitted)), "where": where, "units": units,
            "window_s": window_s if level == "window" else None,
            "grid": [cols, rows] if cols else None, "clusters": _cluster_info(df, matrix, labels, unit_rows),
            "times_s": {k: round(v, 3) for k, v in times.items()}}
    save_table(catalog.root, name, level, df, info)
    if level == "file":
        save_file_fields(catalog, name, df)
    info["times_s"]["total_s"] = round(time.perf_counter() - t0, 3)
    return df, info


def _cluster_info(df: pd.DataFrame, matrix: np.ndarray, labels: np.ndarray, unit_rows) -> list[dict]:
    out = []
    merged = None
    if unit_rows is not None:
        cols = ["file_id", "unit", *[c for c in UNIT_MEDIANS if c != "dur" and c in unit_rows.columns]]
        merged = df[["file_id", "unit", "dur"]].astype({"file_id": "int64", "unit": "int64"}).merge(
            unit_rows[cols].astype({"file_id": "int64", "unit": "int64"}), on=["file_id", "unit"], how="left")
    for lab, row in sorted(clustering.medoids(matrix, labels).items()):
        members = labels == lab
        item = {"cluster": lab, "size": int(members.sum()),
                "medoid": {"path": df.at[row, "path"], "file_id": int(df.at[row, "file_id"]),
                           "unit": int(df.at[row, "unit"]), "start": float(df.at[row, "start"])}}
        if merged is not None:
            item["medians"] = {c: _num(merged.loc[members, c].median()) for c in UNIT_MEDIANS
                               if c in merged.columns}
        out.append(item)
    return out


def _num(v):
    return None if v is None or pd.isna(v) else round(float(v), 4)
