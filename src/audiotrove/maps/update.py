"""Place items added since a map was made on that map, without recomputing it.

    df, info = update_map(cat, name="map", level="file")

The items the stored map lacks (same model, level and selection as when it was made) are
placed at the similarity-weighted mean of their 10 nearest mapped items (layout.place): for
map.x/map.y, and for map.order on the mapped items' ranks (then every item re-ranked); each new
item takes the cluster of its most similar mapped item and the free grid cell nearest its
position. Items whose vectors are gone are dropped. info["advice"] says when a full recompute
is advised: more than ADVISE_SHARE new items, or a full grid.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalog.db import Catalog
from ..errors import UsageError
from .build import map_vectors
from .layout import place
from .store import load_table, save_file_fields, save_table

ADVISE_SHARE = 0.1


def update_map(catalog: Catalog, *, name: str = "map", level: str = "file") -> tuple[pd.DataFrame, dict]:
    try:
        old, info = load_table(catalog.root, name, level)
    except FileNotFoundError:
        raise UsageError(f"no {level} map named {name!r} yet: run `audiotrove map` first") from None
    ids, matrix, _ = map_vectors(catalog, level=level, model=info["model"], where=info.get("where"),
                                 units=info.get("units"), window_s=info.get("window_s") or 1.0)
    key = ["file_id", "unit"]
    ids = ids.astype({"file_id": "int64", "unit": "int64"})
    merged = ids.merge(old.drop(columns=["path", "start", "dur"]).astype({"file_id": "int64", "unit": "int64"}),
                       on=key, how="left")
    known = merged["map.order"].notna().to_numpy()
    new = ~known
    dropped = len(old) - int(known.sum())
    info = dict(info)
    info["advice"] = None
    if new.any() and known.any():
        fitted, vecs = matrix[known], matrix[new]
        if info["dims"] == 2:
            xy = place(fitted, merged.loc[known, ["map.x", "map.y"]].to_numpy(float), vecs)
            merged.loc[new, "map.x"], merged.loc[new, "map.y"] = xy[:, 0], xy[:, 1]
        line = np.empty(len(merged))
        line[known] = merged.loc[known, "map.order"].to_numpy(float)
        line[new] = place(fitted, line[known][:, None], vecs)[:, 0]
        merged["map.order"] = np.argsort(np.lexsort((new, line)), kind="stable")
        nearest = (vecs @ fitted.T).argmax(axis=1)
        merged.loc[new, "map.cluster"] = merged.loc[known, "map.cluster"].to_numpy()[nearest]
        if info.get("grid"):
            full = _free_cells(merged, known, new, info)
            if full:
                info["advice"] = "the grid is full: run `audiotrove map` again (with a larger --grid)"
    elif new.any():
        raise UsageError("none of the mapped items is left: run `audiotrove map` again")
    merged["map.order"] = merged["map.order"].astype("int64")
    merged["map.cluster"] = merged["map.cluster"].astype("int64")
    share = int(new.sum()) / max(1, len(merged))
    if info["advice"] is None and share > ADVISE_SHARE:
        info["advice"] = (f"{int(new.sum())} of {len(merged)} items were placed on the old map: "
                          "run `audiotrove map` again for a map made of all of them")
    info["count"] = len(merged)
    info["placed"] = int(new.sum())
    info["dropped"] = dropped
    df = merged[list(old.columns)]
    save_table(catalog.root, name, level, df, info)
    if level == "file":
        save_file_fields(catalog, name, df)
    return df, info


def _free_cells(df: pd.DataFrame, known: np.ndarray, new: np.ndarray, info: dict) -> bool:
    """Give each new item the free cell nearest its position (in the old map's frame); True
    when the grid ran out of cells."""
    cols, rows = info["grid"]
    taken = set(zip(df.loc[known, "grid.col"].astype(int), df.loc[known, "grid.row"].astype(int)))
    free = np.array([(c, r) for r in range(rows) for c in range(cols) if (c, r) not in taken], float)
    xy_old = df.loc[known, ["map.x", "map.y"]].to_numpy(float)
    lo, span = xy_old.min(axis=0), np.ptp(xy_old, axis=0)
    span = np.where(span > 0, span, 1.0)
    full = False
    for i in np.flatnonzero(new):
        if len(free) == 0:
            full = True
            df.loc[i, ["grid.col", "grid.row"]] = None
            continue
        p = (df.loc[i, ["map.x", "map.y"]].to_numpy(float) - lo) / span * [cols, rows] - 0.5
        j = int(((free - p) ** 2).sum(axis=1).argmin())
        df.loc[i, "grid.col"], df.loc[i, "grid.row"] = int(free[j, 0]), int(free[j, 1])
        free = np.delete(free, j, axis=0)
    return full
