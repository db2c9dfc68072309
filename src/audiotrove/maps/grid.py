"""Points of a 2-D map -> cells of a W x H grid, one point per cell, neighbours kept neighbours.

    col, row = assign_grid(xy, cols=128, rows=128)

Up to EXACT_CELLS cells (32 x 32) the assignment is exact: scipy's linear_sum_assignment
minimises the total squared distance between each point (coordinates scaled to the unit
square) and its cell's centre. Above, it is blockwise: the grid is halved along its longer side
again and again (a k-d split), each half taking the share of points, sorted along that axis,
that matches its share of cells, until a block has at most BLOCK_CELLS cells; each block is then
solved exactly. Cost: O(N log N) for the splits plus blocks of bounded size, so 128 x 128 takes
seconds where one exact problem would take minutes.

`neighbourhood_preservation` measures a grid: the share of each occupied cell's (up to 8) grid
neighbours that are among the point's 16 nearest neighbours in the embedding.
"""
from __future__ import annotations

import numpy as np

# Measured (bench/RESULTS_map.md, 4 096 points at 64 x 64 on the shared 2-core machine): one
# exact problem 23.5 CPU s, the blockwise method 3.2 CPU s, keeping 2-D neighbours nearly as well
# (0.720 vs 0.735 of the 8 grid neighbours among the 16 nearest on the map; random 0.004).
EXACT_CELLS = 32 * 32
BLOCK_CELLS = 32 * 32


def parse_grid(text: str) -> tuple[int, int]:
    """'128x128' -> (128, 128)."""
    from ..errors import UsageError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--grid is WxH (e.g. 32x32), not {text!r}") from None
    if w < 1 or h < 1:
        raise UsageError("--grid: both sides must be at least 1")
    return w, h


def auto_grid(n: int) -> tuple[int, int]:
    """The smallest near-square grid holding n points."""
    w = max(1, int(np.ceil(np.sqrt(n))))
    return w, max(1, int(np.ceil(n / w)))


def _unit_square(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, np.float64)
    lo, span = xy.min(axis=0), np.ptp(xy, axis=0)
    return (xy - lo) / np.where(span > 0, span, 1.0)


def _exact(xy: np.ndarray, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    p = _unit_square(xy)
    cc, rr = np.meshgrid(np.arange(cols), np.arange(rows))
    centres = np.column_stack([(cc.ravel() + 0.5) / cols, (rr.ravel() + 0.5) / rows])
    cost = cdist(p, centres, "sqeuclidean")
    pts, cells = linear_sum_assignment(cost)
    col = np.empty(len(p), np.int64)
    row = np.empty(len(p), np.int64)
    col[pts], row[pts] = cells % cols, cells // cols
    return col, row


def assign_grid(xy: np.ndarray, *, cols: int, rows: int, exact_cells: int = EXACT_CELLS,
                block_cells: int = BLOCK_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """(col, row) per point, each cell used at most once. ValueError when n > cols * rows."""
    xy = np.asarray(xy, np.float64).reshape(len(xy), -1)
    n = len(xy)
    if n > cols * rows:
        raise ValueError(f"{n} points do not fit a {cols}x{rows} grid")
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if xy.shape[1] == 1:
        xy = np.column_stack([xy[:, 0], np.zeros(n)])
    if cols * rows <= exact_cells:
        return _exact(xy, cols, rows)
    col = np.empty(n, np.int64)
    row = np.empty(n, np.int64)
    _blocks(_unit_square(xy), np.arange(n), 0, cols, 0, rows, col, row, block_cells)
    return col, row


def _blocks(p, idx, c0, c1, r0, r1, col, row, block_cells) -> None:
    w, h = c1 - c0, r1 - r0
    if len(idx) == 0:
        return
    if w * h <= block_cells:
        bc, br = _exact(p[idx], w, h)
        col[idx], row[idx] = bc + c0, br + r0
        return
    if w >= h:  # split the columns: points sorted by x
        mid, axis = c0 + w // 2, 0
        cells_a, cells_b = (mid - c0) * h, (c1 - mid) * h
    else:
        mid, axis = r0 + h // 2, 1
        cells_a, cells_b = (mid - r0) * w, (r1 - mid) * w
    n = len(idx)
    n_a = int(round(n * cells_a / (cells_a + cells_b)))
    n_a = min(max(n_a, n - cells_b), cells_a)
    order = idx[np.lexsort((p[idx, 1 - axis], p[idx, axis]))]
    a, b = order[:n_a], order[n_a:]
    if axis == 0:
        _blocks(p, a, c0, mid, r0, r1, col, row, block_cells)
        _blocks(p, b, mid, c1, r0, r1, col, row, block_cells)
    else:
        _blocks(p, a, c0, c1, r0, mid, col, row, block_cells)
        _blocks(p, b, c0, c1, mid, r1, col, row, block_cells)


def neighbourhood_preservation(matrix: np.ndarray, col: np.ndarray, row: np.ndarray, *,
                               k: int = 16) -> float:
    """Mean share of each point's occupied 8-neighbour cells holding one of its k nearest
    neighbours in the embedding (Euclidean on the rows of `matrix`)."""
    from scipy.spatial import cKDTree

    x = np.asarray(matrix, np.float64)
    n = len(x)
    if n < 2:
        return 1.0
    _, near = cKDTree(x).query(x, k=min(k + 1, n))
    cell = {(int(c), int(r)): i for i, (c, r) in enumerate(zip(col, row))}
    shares = []
    for i in range(n):
        c, r = int(col[i]), int(row[i])
        around = [cell[(c + dc, r + dr)] for dc in (-1, 0, 1) for dr in (-1, 0, 1)
                  if (dc or dr) and (c + dc, r + dr) in cell]
        if around:
            nn = set(near[i].tolist()) - {i}
            shares.append(sum(j in nn for j in around) / len(around))
    return float(np.mean(shares)) if shares else 1.0
