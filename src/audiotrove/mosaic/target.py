"""The target of a mosaic: its audio, its units (cut and described as `segment` cuts the corpus)
and one vector per unit (embedded as `embed --units` embeds the corpus).

    t = load_target(catalog, "song.wav@0:30-1:10")   # or a collection file (path or id), a unit
    rows = cut_units(t.audio, t.sample_rate, mode="onset")
    vecs = embed_units(t.audio, t.sample_rate, rows, model="yamnet")

The target is held in memory (memory is bounded by the target, not by the corpus); a stretch
is decoded block by block and only the stretch is kept.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..io.decode import DecodeError, open_audio

MAX_TARGET_SECONDS = 3600.0  # the target and the output are held in memory: 1 h of 48 kHz stereo is 1.4 GB each


@dataclass
class TargetAudio:
    label: str  # what the user gave
    path: str
    file_id: int | None  # when the file is in the collection
    start_s: float  # where the target begins in its file
    audio: np.ndarray  # (frames, channels) float32
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def load_target(catalog, text: str) -> TargetAudio:
    """Resolve and decode a target: a collection file (path or id), a unit (FILE_ID:UNIT), any
    audio file, or PATH@START-END (s or m:ss). UsageError when it names nothing or has no audio."""
    from ..vectors.search import parse_target

    if catalog is not None:
        t = parse_target(catalog, text)
    else:
        t = _outside_target(text)
    start_s, end_s = t.start_s, t.end_s
    if t.kind == "unit":
        from ..units.select import list_units

        u = list_units(catalog, f"file_id = {t.file_id} and unit = {t.unit}")
        if not len(u):
            raise UsageError(f"no unit {t.file_id}:{t.unit}: run `audiotrove segment` first")
        start_s, end_s = float(u["start"].iloc[0]), float(u["start"].iloc[0] + u["dur"].iloc[0])
    try:
        audio, rate = _decode(t.path, start_s or 0.0, end_s)
    except DecodeError as exc:
        raise UsageError(f"{text}: cannot read the target: {exc}") from None
    if len(audio) == 0:
        raise UsageError(f"{text}: the target has no audio" + (" in that stretch" if start_s else ""))
    return TargetAudio(text, t.path, t.file_id, float(start_s or 0.0), audio, rate)


def _outside_target(text: str):
    from ..vectors.search import _STRETCH, Target, parse_seconds

    m = _STRETCH.match(text)
    if m and not os.path.exists(text):
        path, start, end = m.group(1), parse_seconds(m.group(2)), parse_seconds(m.group(3))
        if end <= start:
            raise UsageError(f"{text}: the end must come after the start")
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such file")
        return Target("stretch", path=os.path.abspath(path), start_s=start, end_s=end)
    if not os.path.isfile(text):
        raise UsageError(f"{text}: no such file")
    return Target("file", path=os.path.abspath(text))


def _decode(path: str, start_s: float, end_s: float | None) -> tuple[np.ndarray, int]:
    reader = open_audio(path)
    sr = reader.sample_rate
    lo = int(round(start_s * sr))
    hi = None if end_s is None else int(round(end_s * sr))
    limit = int(MAX_TARGET_SECONDS * sr)
    parts, pos = [], 0
    for block in reader.blocks():
        b0, b1 = pos, pos + len(block)
        pos = b1
        if b1 <= lo:
            continue
        take = block[max(lo, b0) - b0:(len(block) if hi is None else min(hi, b1) - b0)]
        if len(take):
            parts.append(np.asarray(take, np.float32))
        if hi is not None and pos >= hi:
            break
        if pos - lo > limit:
            raise UsageError(f"{path}: a target longer than {MAX_TARGET_SECONDS / 3600:g} h: "
                             "choose a stretch (PATH@START-END)")
    audio = np.concatenate(parts) if parts else np.zeros((0, reader.channels), np.float32)
    audio = np.where(np.isfinite(audio), audio, np.float32(0.0))
    if audio.shape[1] > 2:
        audio = audio[:, :2]
    return audio, sr


def cut_units(audio: np.ndarray, sample_rate: int, *, mode: str = "onset",
              min_dur_s: float | None = None, max_dur_s: float | None = None) -> list[dict]:
    """The target's unit rows (units/schema.py), as `segment` makes them for the corpus; start
    and dur are whole samples of the target (start * rate is an integer)."""
    from ..units.extract import ModeError, UnitExtractor, resolve_durations

    try:
        lo, hi = resolve_durations(mode, min_dur_s, max_dur_s)
        ex = UnitExtractor(sample_rate_hz=sample_rate, channels=audio.shape[1], mode=mode,
                           min_dur_s=lo, max_dur_s=hi)
    except ModeError as exc:
        raise UsageError(f"--segment: {exc}") from None
    rows: list[dict] = []
    for i in range(0, len(audio), 65536):
        rows += ex.update(audio[i:i + 65536])
    rows += ex.finish()
    return sorted(rows, key=lambda r: r["start"])


def embed_units(audio: np.ndarray, sample_rate: int, rows: list[dict], *, model: str) -> np.ndarray:
    """(len(rows), dim) vectors of the target's units, made by the embed step itself (the same
    cutting, mixing and resampling as the corpus's unit vectors), row for row."""
    from ..io.write import write_audio
    from ..units.store import write_shard
    from ..vectors.embed import embed_file
    from ..vectors.store import read_vectors

    with tempfile.TemporaryDirectory(prefix="audiotrove-mosaic-") as tmp:
        wav = Path(tmp) / "target.wav"
        write_audio(wav, audio, sample_rate=sample_rate, subtype="FLOAT")
        shard = write_shard(tmp, "target-units.parquet", rows)
        result = embed_file(str(wav), {"model": model, "level": "unit"}, shards_dir=tmp, units_path=str(shard))
        table, vecs = read_vectors(os.path.join(tmp, result["embed"]["shard"]))
    units = table.column("unit").to_numpy()
    order = {int(u): i for i, u in enumerate(units)}
    return np.stack([vecs[order[int(r["unit"])]] for r in rows]) if rows else vecs[:0]


__all__ = ["TargetAudio", "cut_units", "embed_units", "load_target"]
