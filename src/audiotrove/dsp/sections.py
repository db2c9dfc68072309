"""Frame-label smoothing and section helpers (run-length work on 1-D label arrays).

Content analysis decides a class for every short frame (tens of milliseconds); users want
structure, not flicker. These helpers turn noisy frame decisions into sections:

- `hysteresis`: a two-threshold switch on a score (on above `on`, off below `off`).
- `fill_short_gaps` / `remove_short_runs`: bridge short holes, drop short blips (boolean masks).
- `absorb_short_runs`: merge any labelled run shorter than its class minimum into a neighbour.
- `runs` / `mask_sections`: run-length encoding and [start_s, end_s] lists.
- `centered_mean`: moving average over a centred window, for frame-rate feature tracks.

All functions are vectorised over frames: Python loops run over runs or passes, never
over frames. Durations are given in frames; callers convert from seconds.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "absorb_short_runs",
    "centered_mean",
    "fill_short_gaps",
    "hysteresis",
    "mask_sections",
    "remove_short_runs",
    "runs",
]


def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode a 1-D array.

    Returns (starts, ends, run_values): run i covers frames [starts[i], ends[i]) and holds
    run_values[i]. An empty input gives three empty arrays.
    """
    values = np.asarray(values)
    n = values.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, values[:0]
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change, [n])).astype(np.int64)
    return starts, ends, values[starts]


def hysteresis(score: np.ndarray, *, on: float, off: float) -> np.ndarray:
    """Two-threshold switch: True from a frame with score >= `on` until a frame with score < `off`.

    `off` <= `on`. The switch starts off. Frames between the thresholds keep the state of the
    last frame that crossed one (vectorised with a running maximum over event indices).
    """
    if off > on:
        raise ValueError("hysteresis needs off <= on")
    score = np.asarray(score)
    n = score.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    rise = score >= on
    fall = score < off
    idx = np.arange(n)
    last_rise = np.maximum.accumulate(np.where(rise, idx, -1))
    last_fall = np.maximum.accumulate(np.where(fall, idx, -1))
    return last_rise > last_fall


def fill_short_gaps(
    mask: np.ndarray, *, max_gap_frames: int, barrier: np.ndarray | None = None
) -> np.ndarray:
    """Set to True every False run shorter than `max_gap_frames` lying between two True runs.

    barrier: frames (disjoint from `mask`) that a gap may not contain: a gap holding any
    barrier frame is left as it is.
    """
    mask = np.asarray(mask, dtype=bool).copy()
    if max_gap_frames <= 1 or mask.size == 0:
        return mask
    state = mask.astype(np.int8)
    if barrier is not None:
        state[np.asarray(barrier, dtype=bool) & ~mask] = 2
    starts, ends, vals = runs(state)
    prev_val = np.concatenate(([-1], vals[:-1]))
    next_val = np.concatenate((vals[1:], [-1]))
    inner = (vals == 0) & (prev_val == 1) & (next_val == 1) & ((ends - starts) < max_gap_frames)
    for s, e in zip(starts[inner], ends[inner]):
        mask[s:e] = True
    return mask


def remove_short_runs(mask: np.ndarray, *, min_frames: int) -> np.ndarray:
    """Set to False every True run shorter than `min_frames`."""
    mask = np.asarray(mask, dtype=bool).copy()
    if min_frames <= 1 or mask.size == 0:
        return mask
    starts, ends, vals = runs(mask)
    short = vals & ((ends - starts) < min_frames)
    for s, e in zip(starts[short], ends[short]):
        mask[s:e] = False
    return mask


def absorb_short_runs(
    labels: np.ndarray,
    *,
    min_frames: np.ndarray,
    protected: np.ndarray | None = None,
    max_passes: int = 16,
) -> np.ndarray:
    """Relabel runs shorter than their class minimum with the label of their longer neighbour.

    labels: small non-negative ints (class ids). min_frames[c]: minimum run length of class c.
    protected[c] True: runs of class c are never relabelled (they may still absorb others).
    A run that is the whole array is kept whatever its length. Passes repeat until nothing
    changes (or `max_passes`), so chains of short runs collapse into their surroundings.
    """
    labels = np.asarray(labels).copy()
    min_frames = np.asarray(min_frames)
    if labels.size == 0:
        return labels
    for _ in range(max_passes):
        starts, ends, vals = runs(labels)
        if len(starts) <= 1:
            break
        length = ends - starts
        short = length < min_frames[vals]
        if protected is not None:
            short &= ~np.asarray(protected)[vals]
        if not short.any():
            break
        # Neighbour lengths (0 where there is no neighbour) decide which side absorbs.
        prev_len = np.concatenate(([0], length[:-1]))
        next_len = np.concatenate((length[1:], [0]))
        prev_val = np.concatenate((vals[:1], vals[:-1]))
        next_val = np.concatenate((vals[1:], vals[-1:]))
        # Handle one short run per neighbourhood per pass: skip a short run whose previous
        # run is also short (it will be merged first), which keeps passes stable.
        prev_short = np.concatenate(([False], short[:-1]))
        act = short & ~prev_short
        if not act.any():
            act = short
        new_val = np.where(next_len > prev_len, next_val, prev_val)
        changed = False
        for i in np.flatnonzero(act):
            if new_val[i] != vals[i]:
                labels[starts[i]:ends[i]] = new_val[i]
                changed = True
        if not changed:
            break
    return labels


def mask_sections(
    mask: np.ndarray,
    *,
    frame_s: float,
    duration_s: float,
    max_sections: int | None = None,
    decimals: int = 6,
) -> tuple[int, list[list[float]]]:
    """Sections of a boolean frame mask as (count, [[start_s, end_s], ...]).

    Frame i spans [i * frame_s, (i + 1) * frame_s), clipped to `duration_s`. `count` is the
    true number of sections; the list keeps at most `max_sections` (the first ones).
    """
    starts, ends, vals = runs(np.asarray(mask, dtype=bool))
    starts, ends = starts[vals], ends[vals]
    count = len(starts)
    if max_sections is not None:
        starts, ends = starts[:max_sections], ends[:max_sections]
    t0 = np.minimum(starts * frame_s, duration_s)
    t1 = np.minimum(ends * frame_s, duration_s)
    sections = [[round(float(a), decimals), round(float(b), decimals)] for a, b in zip(t0, t1)]
    return count, sections


def centered_mean(x: np.ndarray, *, width: int) -> np.ndarray:
    """Mean over a centred window of `width` frames (shrinking at the edges), float64."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n == 0 or width <= 1:
        return x.copy()
    half_lo = width // 2
    half_hi = width - half_lo  # window [i - half_lo, i + half_hi)
    csum = np.concatenate(([0.0], np.cumsum(x)))
    idx = np.arange(n)
    lo = np.clip(idx - half_lo, 0, n)
    hi = np.clip(idx + half_hi, 0, n)
    return (csum[hi] - csum[lo]) / (hi - lo)
