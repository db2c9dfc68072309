"""Mosaic: re-make a target out of units of the collection (concatenative synthesis).

    result = make_mosaic(catalog, "song.wav", output="out.wav", match="yamnet,hz=1", k=20, smooth=0.5)
    result.score, result.frames, result.sample_rate      # DataFrame, the target's length, Hz
    write_score(result.score, "out.csv")
    result = make_mosaic(catalog, "song.wav")             # no output: result.audio (frames, ch) float32

Steps: the target is decoded block by block (mosaic/target.py), cut into units and described as
`segment` does it, and embedded as `embed --units` does it; the index proposes k candidates per
target unit within the corpus filters (mosaic/corpus.py); a path through the candidates is
chosen (mosaic/choose.py: match cost, continuity, reuse limits); the chosen units are
pitch-shifted, gain-matched, fitted and placed at the target units' samples, and the output
written block by block (mosaic/synth.py).

Memory is bounded whatever the target's length: neither the target nor the output is ever held
whole (a block, the longest unit and the units being placed). What is kept is small and per
unit: the unit rows and vectors, the k candidates with their costs, the choice and the score
(see the README's mosaic section for the measured figure per hour of target).

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

import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..io.decode import DEFAULT_BLOCK_FRAMES
from .match import MatchSpec, parse_match

BLOCK_FRAMES = DEFAULT_BLOCK_FRAMES  # the output is written in blocks of this many frames

SCORE_COLUMNS = ["target_unit", "target_start", "target_dur", "target_power", "target_hz", "path", "file_id",
                 "unit", "start", "dur", "hz", "distance", "cost", "gain_db", "shift_semitones", "layer"]


@dataclass
class MosaicResult:
    audio: np.ndarray | None  # (frames, channels) float32; None when it went to an output file
    sample_rate: int
    score: pd.DataFrame
    frames: int = 0  # the output's length: the target's, in samples
    target_units: int = 0
    silent_units: int = 0  # target units left silent (every candidate used up or unreadable)
    jumps: int = 0  # consecutive choices that do not continue the same source
    sources: int = 0  # distinct corpus files used
    skipped: list[str] = field(default_factory=list)  # corpus units that could not be read
    timings: dict = field(default_factory=dict)  # per stage: {"wall_s", "cpu_s"}


def make_mosaic(catalog, target, *, output=None, corpus_where: str | None = None, corpus_units: str | None = None,
                segment: str = "onset", match: str | MatchSpec | None = None, k: int = 20,
                pitch: str = "free", max_reuse: int | None = None, layers: int = 1, smooth: float = 0.0,
                crossfade_ms: float = 0.0, fade_ms: float = 5.0, mix: float = 0.0, seed: int = 0,
                corpus=None, block_frames: int = BLOCK_FRAMES) -> MosaicResult:
    """Re-make `target` (text as `load_target` reads it, or a TargetAudio) out of corpus units.

    `output`: the audio file to write, block by block (io/write.py: a temporary name renamed
    at the end; never over the target); without it the audio comes back in result.audio.
    `corpus`: a ready CollectionCorpus (else one is opened on `catalog` with the filters).
    `block_frames`: the blocks the output is written in and the target read for --mix and
    --layers (its units are cut in the blocks `segment` uses).
    Raises UsageError for bad options or a target / corpus that cannot be used, WriteError
    when the output cannot be written."""
    import time

    from ..io.write import same_file
    from .choose import choose_path, jumps
    from .synth import choose_layers
    from .target import TargetAudio, load_target

    spec = _checked(match, k=k, pitch=pitch, max_reuse=max_reuse, layers=layers, smooth=smooth,
                    crossfade_ms=crossfade_ms, fade_ms=fade_ms, mix=mix)
    timings: dict[str, dict] = {}
    clock = (time.perf_counter(), time.process_time())

    def lap(name: str) -> None:
        nonlocal clock
        now = (time.perf_counter(), time.process_time())
        timings[name] = {"wall_s": round(now[0] - clock[0], 3), "cpu_s": round(now[1] - clock[1], 3)}
        clock = now

    t = target if isinstance(target, TargetAudio) else load_target(catalog, target)
    if output is not None and same_file(output, t.path):
        raise UsageError(f"{output} is the target: write the mosaic under another name")
    if corpus is None:
        corpus = _open_corpus(catalog, spec, where=corpus_where, units=corpus_units, exclude_file=t.file_id)
    lap("open_corpus")
    rows, lat = _candidates(t, corpus, spec, segment=segment, k=k, pitch_match=pitch == "match", seed=seed, lap=lap)
    sr, n_out = t.sample_rate, t.frames
    spans = [(int(round(r["start"] * sr)), min(int(round((r["start"] + r["dur"]) * sr)), n_out)) for r in rows]
    chosen: list[list[tuple[int, dict]]] = []  # per target unit: (candidate index, what to read), the chosen first
    silent = np.zeros(0, bool)
    if rows:
        choice, silent = choose_path(lat, smooth=smooth, max_reuse=max_reuse)
        lap("choose")
        chosen = _requests(rows, lat, choice, silent, layers=layers, tail_s=crossfade_ms / 1000.0)
        if layers > 1:
            shares = choose_layers(t.blocks(block_frames), sr, t.channels, spans,
                                   [[q for _, q in c] for c in chosen], max_layers=layers)
            chosen = [[(chosen[ti][j][0], {**chosen[ti][j][1], "share": share}) for j, share in shares[ti]]
                      for ti in range(len(rows))]
            lap("layers")
        else:
            chosen = [c[:1] for c in chosen]
    audio, gains, skipped = _render(t, output, spans=spans, target_db=[r["power"] for r in rows],
                                    layers=[[q for _, q in c] for c in chosen], fade_ms=fade_ms,
                                    crossfade_ms=crossfade_ms, mix=mix, block_frames=block_frames)
    lap("render")
    if not rows:
        return MosaicResult(audio, sr, pd.DataFrame(columns=SCORE_COLUMNS), frames=n_out, timings=timings)
    score = _score(rows, lat, chosen, gains)
    main = score[(score["layer"] == 0) & score["path"].notna()]
    src = [int(lat.table.loc[r, "source"]) for r in main["row"]] if len(main) else []
    return MosaicResult(audio, sr, score.drop(columns=["row"]), frames=n_out, target_units=len(rows),
                        silent_units=int(silent.sum()), jumps=jumps(np.array(src), main["unit"].to_numpy()),
                        sources=int(main["path"].nunique()), skipped=skipped, timings=timings)


def _checked(match, *, k, pitch, max_reuse, layers, smooth, crossfade_ms, fade_ms, mix) -> MatchSpec:
    """The match spec; UsageError for an option out of its range."""
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
    return spec


def _open_corpus(catalog, spec: MatchSpec, *, where, units, exclude_file):
    from .corpus import CollectionCorpus

    models = [spec.model] if not spec.random else ["yamnet", "descriptors"]
    for i, model in enumerate(models):  # random: the units of whichever model has vectors
        try:
            return CollectionCorpus(catalog, model=model, where=where, units=units, exclude_file=exclude_file)
        except UsageError:
            if i == len(models) - 1:
                raise


def _candidates(t, corpus, spec: MatchSpec, *, segment, k, pitch_match, seed, lap):
    """(the target's unit rows, the lattice of their candidates or None when there are no units).
    One pass over the target cuts its units and writes its mono mix to a temporary file; the
    embed step embeds the units from it; the vectors are searched a batch at a time."""
    from .choose import build_lattice
    from .target import embed_units, scan_target, unit_vectors

    with tempfile.TemporaryDirectory(prefix="audiotrove-mosaic-") as tmp:
        mix_path = None if spec.random else os.path.join(tmp, "target-mix.wav")
        rows = scan_target(t, mode=segment, mix_path=mix_path)
        lap("segment")  # decoding included
        if not rows:
            return rows, None
        vectors = None
        if mix_path is not None:
            vectors = unit_vectors(embed_units(mix_path, rows, model=spec.model, folder=tmp), rows)
            lap("embed")
        lat = build_lattice(rows, corpus, vectors, spec=spec, k=k, pitch_match=pitch_match,
                            rng=np.random.default_rng(seed))
        lap("search")
    return rows, lat


def _render(t, output, *, block_frames: int, mix: float, **options):
    """(audio or None, gains, skipped): the output rendered block by block into `output`
    (atomically, never over the target) or, without one, into an array."""
    from ..io.write import open_writer
    from .synth import render

    options.update(frames=t.frames, channels=t.channels, sample_rate=t.sample_rate, mix=mix,
                   target_blocks=t.blocks(block_frames) if mix > 0 else None, block_frames=block_frames)
    if output is not None:
        with open_writer(output, sample_rate=t.sample_rate, channels=t.channels, protect=[t.path],
                         expected_frames=t.frames) as writer:
            gains, skipped = render(writer.write, **options)
        return None, gains, skipped
    parts: list[np.ndarray] = []
    gains, skipped = render(parts.append, **options)
    return (np.concatenate(parts) if parts else np.zeros((0, t.channels), np.float32)), gains, skipped


def _requests(rows, lat, choice, silent, *, layers: int, tail_s: float) -> list[list[tuple[int, dict]]]:
    """Per target unit, [(candidate index, what to read)]: the chosen candidate first, then (for
    --layers) the cheapest others, up to LAYER_CANDIDATES; [] where the unit stays silent."""
    from .synth import LAYER_CANDIDATES, request

    out = []
    for ti, r in enumerate(rows):
        if silent[ti]:
            out.append([])
            continue
        order = [int(choice[ti])]
        if layers > 1:
            others = [j for j in np.argsort(lat.cost[ti], kind="stable")
                      if j != choice[ti] and np.isfinite(lat.cost[ti, j])]
            order += [int(j) for j in others[:LAYER_CANDIDATES - 1]]
        out.append([(j, request(lat.table.loc[lat.rows[ti, j]], target_dur_s=r["dur"], shift=lat.shift[ti, j],
                                tail_s=tail_s)) for j in order])
    return out


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


def write_score(score: pd.DataFrame, path) -> None:
    """Write the score as CSV, atomically (io/write.py)."""
    from ..io.write import atomic_path

    with atomic_path(path) as tmp:
        score.to_csv(tmp, index=False)


__all__ = ["BLOCK_FRAMES", "MosaicResult", "SCORE_COLUMNS", "make_mosaic", "write_score"]
