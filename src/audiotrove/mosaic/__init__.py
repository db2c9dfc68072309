"""Mosaic: re-make a target out of units of the collection (concatenative synthesis).

    result = make_mosaic(catalog, "song.wav", match="yamnet,hz=1", k=20, smooth=0.5)
    result.audio, result.sample_rate, result.score       # (frames, ch) float32, Hz, DataFrame
    write_mosaic(result, "out.wav", score_path="out.csv")

Steps: the target is decoded (mosaic/target.py), cut into units and described as `segment`
does it, and embedded as `embed --units` does it; the index proposes k candidates per target
unit within the corpus filters (mosaic/corpus.py); a path through the candidates is chosen
(mosaic/choose.py: match cost, continuity, reuse limits); the chosen units are pitch-shifted,
gain-matched, fitted and placed at the target units' samples (mosaic/synth.py).

The score (one row per layer placed; a target unit nothing could fill has one row with an
empty corpus side):
    target_unit, target_start (s), target_dur (s), target_power (dB), target_hz (Hz or NaN),
    path, file_id, unit, start (s), dur (s), hz (Hz or NaN)        the corpus unit
    distance   the embedding's cosine distance (NaN for --match random)
    cost       the match cost (mosaic/match.py)
    gain_db    the gain applied (dB)
    shift_semitones  the pitch shift applied (semitones, + = up)
    layer      0 for the chosen unit, 1.. for the layers added on top
Deterministic: the same target, corpus, options and seed give the same samples and score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UsageError
from .match import MatchSpec, parse_match

SCORE_COLUMNS = ["target_unit", "target_start", "target_dur", "target_power", "target_hz", "path", "file_id",
                 "unit", "start", "dur", "hz", "distance", "cost", "gain_db", "shift_semitones", "layer"]


@dataclass
class MosaicResult:
    audio: np.ndarray  # (frames, channels) float32, the target's length
    sample_rate: int
    score: pd.DataFrame
    target_units: int = 0
    silent_units: int = 0  # target units left silent (every candidate used up or unreadable)
    jumps: int = 0  # consecutive choices that do not continue the same source
    sources: int = 0  # distinct corpus files used
    skipped: list[str] = field(default_factory=list)  # corpus units that could not be read
    timings: dict = field(default_factory=dict)  # per stage: {"wall_s", "cpu_s"}


def make_mosaic(catalog, target, *, corpus_where: str | None = None, corpus_units: str | None = None,
                segment: str = "onset", match: str | MatchSpec | None = None, k: int = 20,
                pitch: str = "free", max_reuse: int | None = None, layers: int = 1, smooth: float = 0.0,
                crossfade_ms: float = 0.0, fade_ms: float = 5.0, mix: float = 0.0, seed: int = 0,
                corpus=None) -> MosaicResult:
    """Re-make `target` (text as `load_target` reads it, or a TargetAudio) out of corpus units.

    `corpus`: a ready CollectionCorpus (else one is opened on `catalog` with the filters).
    Raises UsageError for bad options or a target / corpus that cannot be used."""
    import time

    from .choose import build_lattice, choose_path, jumps
    from .corpus import CollectionCorpus
    from .synth import choose_layers, render, request
    from .target import TargetAudio, cut_units, embed_units, load_target

    spec = match if isinstance(match, MatchSpec) else parse_match(match)
    if k < 1:
        raise UsageError("--k must be at least 1")
    if pitch not in ("match", "free"):
        raise UsageError(f"--pitch is match or free, not {pitch!r}")
    if max_reuse is not None and max_reuse < 1:
        raise UsageError("--max-reuse must be at least 1")
    if not 1 <= layers <= 8:
        raise UsageError("--layers must be between 1 and 8")
    if smooth < 0 or crossfade_ms < 0 or fade_ms < 0:
        raise UsageError("--smooth, --crossfade and fades are >= 0")
    if not 0.0 <= mix <= 1.0:
        raise UsageError("--mix is between 0 and 1")
    timings: dict[str, dict] = {}
    clock = (time.perf_counter(), time.process_time())

    def lap(name: str) -> None:
        nonlocal clock
        now = (time.perf_counter(), time.process_time())
        timings[name] = {"wall_s": round(now[0] - clock[0], 3), "cpu_s": round(now[1] - clock[1], 3)}
        clock = now

    t = target if isinstance(target, TargetAudio) else load_target(catalog, target)
    lap("decode")
    if corpus is None:
        models = [spec.model] if not spec.random else ["yamnet", "descriptors"]
        for i, model in enumerate(models):  # random: the units of whichever model has vectors
            try:
                corpus = CollectionCorpus(catalog, model=model, where=corpus_where, units=corpus_units,
                                          exclude_file=t.file_id)
                break
            except UsageError:
                if i == len(models) - 1:
                    raise
    lap("open_corpus")
    rows = cut_units(t.audio, t.sample_rate, mode=segment)
    lap("segment")
    sr = t.sample_rate
    n_out = len(t.audio)
    spans = [(int(round(r["start"] * sr)), min(int(round((r["start"] + r["dur"]) * sr)), n_out)) for r in rows]
    vectors = None if spec.random or not rows else embed_units(t.audio, sr, rows, model=spec.model)
    lap("embed")
    rng = np.random.default_rng(seed)
    if not rows:
        return MosaicResult(np.zeros_like(t.audio), sr, pd.DataFrame(columns=SCORE_COLUMNS), timings=timings)
    lat = build_lattice(rows, corpus, vectors, spec=spec, k=k, pitch_match=pitch == "match", rng=rng)
    lap("search")
    choice, silent = choose_path(lat, smooth=smooth, max_reuse=max_reuse)
    lap("choose")
    tail_s = crossfade_ms / 1000.0
    table = lat.table
    picks: list[list[int]] = []  # candidate indices per target unit, the chosen first
    for ti, r in enumerate(rows):
        if silent[ti]:
            picks.append([])
            continue
        order = [int(choice[ti])]
        if layers > 1:
            others = [j for j in np.argsort(lat.cost[ti], kind="stable")
                      if j != choice[ti] and np.isfinite(lat.cost[ti, j])]
            order += [int(j) for j in others[:LAYER_POOL - 1]]
        picks.append(order)
    reqs = [[request(table.loc[lat.rows[ti, j]], target_dur_s=r["dur"], shift=lat.shift[ti, j], tail_s=tail_s)
             for j in picks[ti]] for ti, r in enumerate(rows)]
    if layers > 1:
        shares = choose_layers(t.audio, sr, spans, reqs, max_layers=layers)
        chosen = []
        for ti in range(len(rows)):
            keep = []
            for j, share in shares[ti]:
                keep.append((picks[ti][j], {**reqs[ti][j], "share": share}))
            chosen.append(keep)
        lap("layers")
    else:
        chosen = [[(picks[ti][0], reqs[ti][0])] if picks[ti] else [] for ti in range(len(rows))]
    audio, gains, skipped = render(t.audio, sr, spans, [r["power"] for r in rows],
                                   [[q for _, q in c] for c in chosen], fade_ms=fade_ms,
                                   crossfade_ms=crossfade_ms, mix=mix)
    lap("render")
    score = _score(rows, lat, chosen, gains)
    main = score[(score["layer"] == 0) & score["path"].notna()]
    src = [int(table.loc[r, "source"]) for r in main["row"]] if len(main) else []
    result = MosaicResult(audio, sr, score.drop(columns=["row"]), target_units=len(rows),
                          silent_units=int(silent.sum()), jumps=jumps(np.array(src), main["unit"].to_numpy()),
                          sources=int(main["path"].nunique()), skipped=skipped, timings=timings)
    return result


LAYER_POOL = 8  # candidates the layer search looks at per target unit (the chosen one included)


def _score(rows, lat, chosen, gains) -> pd.DataFrame:
    table = lat.table
    recs = []
    for ti, r in enumerate(rows):
        base = {"target_unit": ti, "target_start": r["start"], "target_dur": r["dur"],
                "target_power": r["power"], "target_hz": np.nan if r["hz"] is None else r["hz"]}
        if not chosen[ti]:
            recs.append({**base, "layer": 0})
            continue
        for layer, (j, _req) in enumerate(chosen[ti]):
            row = int(lat.rows[ti, j])
            c = table.loc[row]
            hz = c.get("hz")
            recs.append({**base, "row": row, "path": c["path"], "file_id": int(c["file_id"]), "unit": int(c["unit"]),
                         "start": float(c["start"]), "dur": float(c["dur"]),
                         "hz": np.nan if hz is None or pd.isna(hz) else float(hz),
                         "distance": float(lat.distance[ti, j]) if np.isfinite(lat.distance[ti, j]) else np.nan,
                         "cost": round(float(lat.cost[ti, j]), 6), "gain_db": gains[ti][layer],
                         "shift_semitones": round(float(lat.shift[ti, j]), 4), "layer": layer})
    df = pd.DataFrame(recs, columns=SCORE_COLUMNS + ["row"])
    df["layer"] = df["layer"].astype(int)
    return df


def write_mosaic(result: MosaicResult, output, *, score_path=None) -> None:
    """Write the audio (atomically, io/write.py; WAV/FLAC 24-bit) and, when asked, the score (CSV)."""
    from ..io.write import atomic_path, write_audio

    write_audio(output, result.audio, sample_rate=result.sample_rate)
    if score_path is not None:
        with atomic_path(score_path) as tmp:
            result.score.to_csv(tmp, index=False)


__all__ = ["MosaicResult", "SCORE_COLUMNS", "make_mosaic", "write_mosaic"]
