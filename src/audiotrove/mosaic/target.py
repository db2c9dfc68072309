"""The target of a mosaic: where its audio is, its units (cut and described as `segment` cuts the
corpus) and one vector per unit (embedded as `embed --units` embeds the corpus).

    t = load_target(catalog, "song.wav@0:30-1:10")   # or a collection file (path or id), a unit
    rows = scan_target(t, mode="onset", mix_path=tmp / "mix.wav")   # one pass; counts t.frames
    shard = embed_units(tmp / "mix.wav", rows, model="yamnet", folder=tmp)
    for batch in unit_vectors(shard, rows): ...      # (n, dim) float32, row for row
    for block in t.blocks(): ...                     # the target again (the render's --mix, --layers)

Memory is bounded whatever the target's length: the target is never held whole. Each pass
decodes it block by block (io/decode.py; at most 2 channels, NaN/inf samples as 0, blocks of
`block_frames` from the target's first sample); the unit extractor keeps the units not yet
final; the embed step reads the target's mono mix, written block by block to a temporary file,
and writes the vectors to a shard that is read back a batch at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import UsageError
from ..io.decode import DEFAULT_BLOCK_FRAMES, DecodeError, open_audio, rebuffer

MAX_CHANNELS = 2  # the output's channels at most (a target with more gives its first two)


@dataclass
class TargetAudio:
    label: str  # what the user gave
    path: str
    file_id: int | None  # when the file is in the collection
    start_s: float  # where the target begins in its file
    end_s: float | None  # where it ends (None: at the end of the file)
    sample_rate: int
    channels: int  # at most 2
    expected_frames: int | None = None  # from the header or the stretch (None: unknown)
    frames: int | None = None  # counted by scan_target

    @property
    def duration_s(self) -> float:
        return (self.frames or 0) / self.sample_rate

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The target's samples, (frames, channels) float32, in blocks of block_frames from its
        first sample (the last block shorter). UsageError when the file cannot be decoded."""
        try:
            reader = open_audio(self.path)
            for block in rebuffer(self._stretch(reader), block_frames, reader.channels):
                block = block[:, :MAX_CHANNELS]
                yield np.where(np.isfinite(block), block, np.float32(0.0))
        except DecodeError as exc:
            raise UsageError(f"{self.label}: cannot read the target: {exc}") from None

    def _stretch(self, reader) -> Iterator[np.ndarray]:
        sr = reader.sample_rate
        lo = int(round(self.start_s * sr))
        hi = None if self.end_s is None else int(round(self.end_s * sr))
        pos = 0
        for block in reader.blocks():
            b0, b1 = pos, pos + len(block)
            pos = b1
            if b1 <= lo:
                continue
            take = block[max(lo, b0) - b0:(len(block) if hi is None else min(hi, b1) - b0)]
            if len(take):
                yield np.asarray(take, np.float32)
            if hi is not None and pos >= hi:
                break


def load_target(catalog, text: str) -> TargetAudio:
    """Resolve and open a target: a collection file (path or id), a unit (FILE_ID:UNIT), any
    audio file, or PATH@START-END (s or m:ss). Nothing is decoded yet (scan_target does it).
    UsageError when it names nothing or cannot be read."""
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
    start_s = float(start_s or 0.0)
    try:
        reader = open_audio(t.path)
    except DecodeError as exc:
        raise UsageError(f"{text}: cannot read the target: {exc}") from None
    sr = reader.sample_rate
    lo = int(round(start_s * sr))
    stretch = None if end_s is None else int(round(end_s * sr)) - lo
    rest = None if reader.declared_frames is None else reader.declared_frames - lo
    known = [n for n in (stretch, rest) if n is not None]
    return TargetAudio(text, t.path, t.file_id, start_s, end_s, sr, min(reader.channels, MAX_CHANNELS),
                       expected_frames=max(min(known), 0) if known else None)


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


def scan_target(t: TargetAudio, *, mode: str = "onset", mix_path=None,
                min_dur_s: float | None = None, max_dur_s: float | None = None) -> list[dict]:
    """One pass over the target: its unit rows (units/schema.py) as `segment` makes them for the
    corpus (in the same blocks), sorted by start (start and dur are whole samples of the target:
    start * rate is an integer). Sets t.frames. With mix_path, writes there (float WAV, block by
    block) the mono mix the embed step makes of the target's channels, for embed_units.
    UsageError for a bad --segment or a target without audio."""
    from ..io.write import WAV_RF64_BYTES, open_writer
    from ..units.extract import ModeError, UnitExtractor, resolve_durations

    try:
        lo, hi = resolve_durations(mode, min_dur_s, max_dur_s)
        ex = UnitExtractor(sample_rate_hz=t.sample_rate, channels=t.channels, mode=mode,
                           min_dur_s=lo, max_dur_s=hi)
    except ModeError as exc:
        raise UsageError(f"--segment: {exc}") from None
    writer = None
    if mix_path is not None:  # a length not known before the end: RF64, which holds more than 4 GiB
        writer = open_writer(mix_path, sample_rate=t.sample_rate, channels=1, subtype="FLOAT",
                             expected_frames=WAV_RF64_BYTES if t.expected_frames is None else t.expected_frames)
    rows: list[dict] = []
    try:
        for block in t.blocks():
            rows += ex.update(block)
            if writer is not None:  # the embed step's own mix (vectors/embed.py): the mean, in float32
                writer.write(block if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32))
        rows += ex.finish()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.commit()
    t.frames = ex.total_samples
    if t.frames == 0:
        raise UsageError(f"{t.label}: the target has no audio" + (" in that stretch" if t.start_s else ""))
    return sorted(rows, key=lambda r: r["start"])


def embed_units(mix_path, rows: list[dict], *, model: str, folder) -> str:
    """Embed the target's units with the embed step itself (the same cutting, resampling and
    model as the corpus's unit vectors), from the mono mix scan_target wrote; the vector shard
    is written in `folder` and its path returned (unit_vectors reads it)."""
    from ..units.store import write_shard
    from ..vectors.embed import embed_file

    shard = write_shard(folder, "target-units.parquet", rows)
    result = embed_file(os.fspath(mix_path), {"model": model, "level": "unit"}, shards_dir=folder,
                        units_path=str(shard))
    return os.path.join(folder, result["embed"]["shard"])


def unit_vectors(shard, rows: list[dict], *, batch_rows: int = 4096) -> Iterator[np.ndarray]:
    """The vectors of the target's units, row for row, as (n, dim) float32 batches read from
    the shard embed_units wrote (the embed step keeps the units' order: by start)."""
    from ..vectors.store import iter_vectors

    done = 0
    for units, vecs in iter_vectors(shard, batch_rows=batch_rows):
        expected = [int(r["unit"]) for r in rows[done:done + len(units)]]
        if [int(u) for u in units] != expected:
            raise RuntimeError("the target's unit vectors are not in the order of its units")
        done += len(units)
        yield vecs
    if done != len(rows):
        raise RuntimeError(f"{len(rows)} target units but {done} vectors")


__all__ = ["TargetAudio", "embed_units", "load_target", "scan_target", "unit_vectors"]
