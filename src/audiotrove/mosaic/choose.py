"""Choosing the corpus units: a (target unit x candidate) lattice, its costs, and the path.

For each target unit t, K candidates (the index's k nearest, or a pool of 4 k re-ranked when
descriptor terms count; or k random ones for the baseline). Each candidate has a match cost
(mosaic/match.py) and, with `--pitch match`, a pitch shift. The choice minimises

    sum_t cost[t, choice_t] + smooth * sum_t continuity(choice_t-1, choice_t)

by dynamic programming (Viterbi, dsp/mosaic.best_path). Continuity: 0 when the next unit of the
same source follows (the corpus plays on), 0.5 for another unit of the same source, 1 for a
jump to another source. smooth = 0: every target unit takes its best candidate.

`max_reuse` N: no corpus unit is used more than N times. The path is found, every unit used
too often keeps its N cheapest places and is forbidden at the others, and the path is found
again, until none is over; a target unit whose K candidates are all used up stays silent
(counted in the result). Ties go to a draw from `seed`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..dsp.mosaic import best_path, pitch_shift_semitones
from .match import MatchSpec, descriptor_distance

SAME_SOURCE_COST = 0.5
JUMP_COST = 1.0
POOL_FACTOR = 4  # descriptor terms re-rank this many times k candidates from the index


@dataclass
class Lattice:
    rows: np.ndarray  # (T, K) index rows, -1 = no candidate
    distance: np.ndarray  # (T, K) embedding cosine distance (NaN for random candidates)
    cost: np.ndarray  # (T, K) match cost, inf = not allowed
    shift: np.ndarray  # (T, K) semitones
    source: np.ndarray  # (T, K) source code (-1 none)
    unit: np.ndarray  # (T, K) unit index in its source
    table: pd.DataFrame  # the candidates' descriptions, indexed by row


def build_lattice(target_rows: list[dict], corpus, vectors, *, spec: MatchSpec,
                  k: int, pitch_match: bool, rng: np.random.Generator) -> Lattice:
    """The lattice of the target units' candidates. vectors: the units' (T, dim) vectors, or
    an iterable of (n, dim) batches of them in order (only the candidates are kept); None for
    --match random."""
    T = len(target_rows)
    if spec.random:
        rows = corpus.sample(T, k, rng)
        distance = np.full(rows.shape, np.nan)
    else:
        pool = k * POOL_FACTOR if spec.fields else k
        found = [corpus.search(batch, pool) for batch in ([vectors] if isinstance(vectors, np.ndarray) else vectors)]
        rows = np.concatenate([r for r, _ in found]) if found else np.zeros((0, pool), np.int64)
        distance = np.concatenate([d for _, d in found]) if found else np.zeros((0, pool))
    table = corpus.describe(rows)
    known = table.index.to_numpy()
    ok = (rows >= 0) & np.isin(rows, known)
    if len(table):
        fresh = table["fresh"].reindex(np.where(ok, rows, known[0]).ravel()).to_numpy().reshape(rows.shape)
        ok &= fresh.astype(bool)

    def cand(name: str) -> np.ndarray:
        from .match import field_values

        if not len(table):
            return np.full(rows.shape, np.nan)
        base = "mfcc" if name.startswith("mfcc") else name
        vals = field_values(table, name)  # per table row
        pos = pd.Series(np.arange(len(table)), index=table.index)
        idx = pos.reindex(np.where(ok, rows, known[0]).ravel()).to_numpy()
        out = vals[idx]
        out = out.reshape(rows.shape + ((vals.shape[1],) if base == "mfcc" and name == "mfcc" else ()))
        return np.where(ok[..., None] if out.ndim == 3 else ok, out, np.nan)

    shift = np.zeros(rows.shape)
    if pitch_match and len(table):
        cand_hz = cand("hz")
        for t, r in enumerate(target_rows):
            for j in range(rows.shape[1]):
                if ok[t, j]:
                    shift[t, j] = pitch_shift_semitones(source_hz=_f(cand_hz[t, j]), target_hz=r.get("hz"))
    if spec.random:
        cost = np.zeros(rows.shape)
    else:
        weights = spec.model_weight + sum(spec.fields.values())
        cost = spec.model_weight * np.nan_to_num(distance, nan=2.0, posinf=2.0)
        if spec.fields:
            cost = cost + descriptor_distance(target_rows, cand, spec=spec,
                                              shift_semitones=shift if pitch_match else None)
        cost = cost / weights
    cost = cost + rng.uniform(0.0, 1e-9, size=rows.shape)  # ties: a draw from the seed
    cost = np.where(ok, cost, np.inf)
    if rows.shape[1] > k:  # keep the k cheapest of the pool
        keep = np.argsort(cost, axis=1, kind="stable")[:, :k]
        take = lambda a: np.take_along_axis(a, keep, axis=1)  # noqa: E731
        rows, distance, cost, shift, ok = take(rows), take(distance), take(cost), take(shift), take(ok)
    src = np.full(rows.shape, -1, np.int64)
    unit = np.full(rows.shape, -1, np.int64)
    if len(table):
        safe = np.where(ok, rows, known[0])
        src = np.where(ok, table["source"].reindex(safe.ravel()).to_numpy().reshape(rows.shape), -1)
        unit = np.where(ok, table["unit"].reindex(safe.ravel()).to_numpy().reshape(rows.shape), -1)
    return Lattice(np.where(ok, rows, -1), distance, cost, shift, src.astype(np.int64), unit.astype(np.int64), table)


def _f(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def transition_step(source: np.ndarray, unit: np.ndarray, t: int) -> np.ndarray:
    """(K, K) continuity costs from the candidates of target unit t to those of t + 1; computed
    step by step, so that a long target never holds the (T - 1, K, K) of them."""
    a_src, b_src = source[t, :, None], source[t + 1, None, :]
    a_unit, b_unit = unit[t, :, None], unit[t + 1, None, :]
    same = (a_src == b_src) & (a_src >= 0)
    follows = same & (b_unit == a_unit + 1)
    return np.where(follows, 0.0, np.where(same, SAME_SOURCE_COST, JUMP_COST))


def choose_path(lat: Lattice, *, smooth: float = 0.0, max_reuse: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(choice (T,) candidate index, silent (T,) bool): see the module docstring."""
    T, K = lat.cost.shape

    def continuity(t: int) -> np.ndarray:
        return smooth * transition_step(lat.source, lat.unit, t)

    trans = continuity if smooth > 0 and T > 1 else None
    forbidden = np.zeros((T, K), bool)
    while True:
        cost = np.where(forbidden, np.inf, lat.cost)
        silent = ~np.isfinite(cost).any(axis=1)
        cost[silent] = 0.0  # a placeholder: nothing is played there
        choice = best_path(cost, trans)
        if not max_reuse:
            return choice, silent
        chosen = lat.rows[np.arange(T), choice]
        chosen = np.where(silent, -1, chosen)
        rows, counts = np.unique(chosen[chosen >= 0], return_counts=True)
        over = rows[counts > max_reuse]
        if not len(over):
            return choice, silent
        for r in over:
            places = np.flatnonzero(chosen == r)
            keep = places[np.argsort(lat.cost[places, choice[places]], kind="stable")[:max_reuse]]
            drop = np.setdiff1d(places, keep)
            forbidden[drop] |= lat.rows[drop] == r


def jumps(sources: np.ndarray, units: np.ndarray) -> int:
    """How many times consecutive choices do not continue the same source's next unit."""
    s, u = np.asarray(sources), np.asarray(units)
    if len(s) < 2:
        return 0
    return int(np.sum(~((s[1:] == s[:-1]) & (u[1:] == u[:-1] + 1) & (s[1:] >= 0))))


__all__ = ["Lattice", "build_lattice", "choose_path", "jumps", "transition_step"]
