"""The `tag` step: what is in the file, as YAMNet's 521 AudioSet classes over time.

The file is decoded once in blocks, mixed to mono and resampled to 16 kHz in a stream; YAMNet
scores its 0.96 s patches (every `hop_s`, by default YAMNet's own 0.48 s) in batches of about a
minute, so memory holds one batch whatever the file's length. Each patch stands for the stretch
of time nearest its centre (cells split halfway between consecutive centres; the first starts
at 0, the last ends at the end of the file). A class is *present* in a cell when its score
(0-1, independent per class) is at least `min_score`.

Per file (JSON under "tags"; every number rounded):
    <class>    % of the duration where the class is present, for every class present at least
               once; the class's field name is its AudioSet display name in lower case with
               each run of non-alphanumeric characters turned into `_` (`class_field_name`):
               "Speech" -> speech, "Narration, monologue" -> narration_monologue
    top        the 5 most present classes with their % (0.1), as text: "speech 80%, music 12.5%, ..."
               (ties: higher mean score first)
    classes    the present classes' field names, most present first, space-separated text
               (so `tags.classes ~ "dog"` works on any collection)
    sections   [[start_s, end_s, class], ...] where each class is present, merged across gaps
               of at most `max_gap_s`, sorted by start (at most MAX_SECTIONS_PER_CLASS each)
    windows    patches scored; model, model_version, min_score: what the tags depend on
    unit_table (a segmented file) the table of its units' tags (below)

Per unit (a file with units, `audiotrove segment`): `tag`, the AudioSet class (display name,
e.g. "Speech") with the highest mean score over the unit, and `tag_score`, that mean (0-1):
the scores of the patch cells the unit overlaps, weighted by the overlap (a unit shorter than
a cell takes its cell's scores). No extra model run: the file's patches are scored once. Stored
as a small Parquet table (unit, tag, tag_score, units: the unit shard's name) in
<collection>/.audiotrove/tags/, joined to the units' fields (units/labels.py): `audiotrove
units 'tag = "Speech"'`.

Parameters (all part of the result's key): model_version (YAMNet's export), min_score,
hop_s (s between patch starts, a multiple of 10 ms), max_gap_s, units (the segmentation's
config key for a segmented file, set by the command, so re-segmenting re-tags the units).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..dsp.melspec import YAMNET, log_mel_patches, log_mel_spectrogram
from ..errors import ItemError
from ..io.decode import open_audio
from ..models import ModelError
from ..models.yamnet import MODEL_NAME, MODEL_VERSION, SAMPLE_RATE_HZ
from .base import Item, Step

VERSION = "1"
DEFAULTS: dict = {"model_version": MODEL_VERSION, "min_score": 0.3, "hop_s": 0.48, "max_gap_s": 1.0,
                  "units": None}
TOP_N = 5
BATCH_PATCHES = 128  # patches per model call (about a minute of audio at the 0.48 s hop)
MAX_SECTIONS_PER_CLASS = 200
META_KEYS = frozenset(("top", "classes", "sections", "windows", "model", "model_version", "min_score",
                       "unit_table"))
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def class_field_name(display_name: str) -> str:
    """An AudioSet display name as a field name: lower case, non-alphanumeric runs to '_'."""
    return _NON_ALNUM.sub("_", display_name.lower()).strip("_")


class TagAccumulator:
    """Per-class seconds present and sections, fed patch by patch (centres in seconds, rising).

    Each patch's cell ends halfway to the next patch's centre, so a patch is settled when the
    next one arrives; `finish(duration_s)` settles the last one. Memory: per class a total and
    its sections (capped), never the patches' scores.
    """

    def __init__(self, n_classes: int, *, min_score: float, max_gap_s: float, on_cell=None):
        self.on_cell = on_cell  # called with (start_s, end_s, scores) for every settled cell
        self.min_score = float(min_score)
        self.max_gap_s = float(max_gap_s)
        self.seconds = np.zeros(n_classes, np.float64)
        self.score_sum = np.zeros(n_classes, np.float64)  # score x seconds: ties in `top`
        self.sections: dict[int, list[list[float]]] = {}
        self.count = 0
        self._cell_start = 0.0
        self._pending: tuple[float, np.ndarray] | None = None  # (centre_s, scores) not yet settled

    def add(self, centres_s: np.ndarray, scores: np.ndarray) -> None:
        for centre, row in zip(np.asarray(centres_s, np.float64), np.asarray(scores)):
            if self._pending is not None:
                self._settle(0.5 * (self._pending[0] + centre))
            self._pending = (float(centre), row)
            self.count += 1

    def finish(self, duration_s: float) -> None:
        if self._pending is not None:
            self._settle(max(float(duration_s), self._cell_start))
            self._pending = None

    def _settle(self, end_s: float) -> None:
        _, row = self._pending
        start, length = self._cell_start, max(0.0, end_s - self._cell_start)
        self._cell_start = end_s
        if length <= 0:
            return
        if self.on_cell is not None:
            self.on_cell(start, end_s, row)
        self.score_sum += row * length
        for c in np.flatnonzero(row >= self.min_score):
            self.seconds[c] += length
            spans = self.sections.setdefault(int(c), [])
            if spans and start - spans[-1][1] <= self.max_gap_s:
                spans[-1][1] = end_s
            elif len(spans) < MAX_SECTIONS_PER_CLASS:
                spans.append([start, end_s])

    def result(self, class_fields: list[str], duration_s: float) -> dict:
        """The "tags" dict (without the model keys)."""
        duration_s = max(float(duration_s), 1e-9)
        present = np.flatnonzero(self.seconds > 0)
        order = sorted(present, key=lambda c: (-self.seconds[c], -self.score_sum[c]))
        share = {int(c): round(100.0 * min(1.0, float(self.seconds[c]) / duration_s), 2) for c in order}
        out: dict = {class_fields[c]: share[c] for c in order}
        out["top"] = ", ".join(f"{class_fields[c]} {round(share[c], 1):g}%" for c in order[:TOP_N])
        out["classes"] = " ".join(class_fields[c] for c in order)
        out["sections"] = sorted(
            ([round(float(s), 2), round(float(e), 2), class_fields[c]] for c in order for s, e in self.sections.get(int(c), [])),
            key=lambda r: (r[0], r[1]))
        out["windows"] = self.count
        return out


class UnitTagger:
    """Each unit's top class over the patch cells it overlaps, fed cell by cell (rising).

    units, starts_s, durs_s: the units sorted by start. Memory: the sums of the units
    overlapping the current cell, and one (unit, class, score) row per finished unit."""

    def __init__(self, units, starts_s, durs_s, class_names: list[str]):
        self.units = np.asarray(units)
        self.starts = np.asarray(starts_s, np.float64)
        self.ends = self.starts + np.asarray(durs_s, np.float64)
        self.class_names = class_names
        self._next = 0
        self._open: dict[int, list] = {}  # index -> [score sum, weight]
        self.rows: list[tuple[int, str | None, float | None]] = []

    def add(self, start: float, end: float, scores: np.ndarray) -> None:
        while self._next < len(self.starts) and self.starts[self._next] < end:
            self._open[self._next] = [np.zeros(len(scores), np.float64), 0.0]
            self._next += 1
        for i in list(self._open):
            overlap = min(end, self.ends[i]) - max(start, self.starts[i])
            acc = self._open[i]
            if overlap > 0:
                acc[0] += scores * overlap
                acc[1] += overlap
            elif acc[1] == 0 and self.ends[i] <= self.starts[i] and start <= self.starts[i] < end:
                acc[0] += scores  # a zero-length unit takes its cell
                acc[1] = 1.0
            if self.ends[i] <= end:
                self._close(i)

    def finish(self) -> list[tuple[int, str | None, float | None]]:
        for i in list(self._open):
            self._close(i)
        for i in range(self._next, len(self.starts)):  # after the last cell (none normally)
            self.rows.append((int(self.units[i]), None, None))
        self._next = len(self.starts)
        return sorted(self.rows)

    def _close(self, i: int) -> None:
        total, weight = self._open.pop(i)
        if weight <= 0:
            self.rows.append((int(self.units[i]), None, None))
            return
        mean = total / weight
        c = int(mean.argmax())
        self.rows.append((int(self.units[i]), self.class_names[c], round(float(mean[c]), 4)))


def write_unit_tags(directory, name: str, rows, units_name: str) -> str:
    """The units' tags as <directory>/<name>.parquet (atomically); the file's name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io.write import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({"unit": pa.array([r[0] for r in rows], pa.int32()),
                      "tag": pa.array([r[1] for r in rows], pa.string()),
                      "tag_score": pa.array([r[2] for r in rows], pa.float32()),
                      "units": pa.array([units_name] * len(rows), pa.string())})
    final = directory / f"{name}.parquet"
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp)
    return final.name


def patch_geometry(hop_s: float) -> tuple[int, int, int]:
    """(hop frames, hop samples, patch samples) at 16 kHz for patches every hop_s."""
    hop_frames = int(round(float(hop_s) / YAMNET.hop_s))
    if hop_frames < 1 or abs(hop_frames * YAMNET.hop_s - float(hop_s)) > 1e-6:
        raise ValueError(f"hop_s must be a positive multiple of {YAMNET.hop_s} s, not {hop_s}")
    patch = (YAMNET.patch_frames - 1) * YAMNET.hop + YAMNET.frame_length
    return hop_frames, hop_frames * YAMNET.hop, patch


def _patches(x: np.ndarray, count: int, hop_frames: int) -> np.ndarray:
    """`count` patches of x, starting every hop_frames frames."""
    logmel = log_mel_spectrogram(x, YAMNET)
    return np.stack([logmel[k * hop_frames:k * hop_frames + YAMNET.patch_frames] for k in range(count)])


def tag_file(path: str, params: dict, *, net=None, units_path: str | None = None,
             tables_dir: str | None = None, table_name: str | None = None) -> dict:
    """Tag `path`; return {"tags": {...}} (see the module's docstring). With `units_path` (its
    unit shard), its units are tagged too, into tables_dir/table_name.parquet."""
    import soxr

    params = {**DEFAULTS, **params}
    if net is None:
        from ..models.yamnet import load_yamnet

        try:
            net = load_yamnet()
        except ModelError as exc:
            raise ItemError(str(exc)) from None
    if params["model_version"] != net.version:
        raise ItemError(f"YAMNet is version {net.version} here, not {params['model_version']}: run tag again")
    fields = [class_field_name(n) for n in net.class_names]
    hop_frames, hop, size = patch_geometry(params["hop_s"])
    rate = SAMPLE_RATE_HZ
    unit_tagger = None
    if units_path is not None:
        from ..units.store import unit_spans

        unit_tagger = UnitTagger(*unit_spans(units_path), net.class_names)
    acc = TagAccumulator(len(fields), min_score=params["min_score"], max_gap_s=params["max_gap_s"],
                         on_cell=unit_tagger.add if unit_tagger is not None else None)
    buf = np.zeros(0, np.float32)
    history = np.zeros(0, np.float32)  # the last `size` samples before buf (for the end patch)
    next_k = 0  # index of the patch that starts at buf[0]
    batch_len = (BATCH_PATCHES - 1) * hop + size

    def run(count: int) -> None:
        nonlocal buf, history, next_k
        if count <= 0:
            return
        scores = net.run_patches(_patches(buf[:(count - 1) * hop + size], count, hop_frames)).scores
        centres = ((next_k + np.arange(count)) * hop + size / 2) / rate
        acc.add(centres, scores)
        history = np.concatenate([history, buf[:count * hop]])[-size:]
        buf = buf[count * hop:]
        next_k += count

    reader = open_audio(path)
    resampler = None if reader.sample_rate == rate else soxr.ResampleStream(
        reader.sample_rate, rate, 1, dtype="float32", quality="HQ")
    total = 0  # samples at 16 kHz
    for block in reader.blocks():
        bad = ~np.isfinite(block)
        if bad.any():
            block = np.where(bad, np.float32(0.0), block)
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        if resampler is not None:
            mono = resampler.resample_chunk(mono)
        buf = np.concatenate([buf, np.asarray(mono, np.float32)])
        total += len(mono)
        while len(buf) >= batch_len:
            run(BATCH_PATCHES)
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        buf = np.concatenate([buf, tail])
        total += len(tail)
    if len(buf) >= size:
        run(1 + (len(buf) - size) // hop)
    duration_s = reader.decoded_frames / reader.sample_rate
    covered = (next_k - 1) * hop + size if next_k else 0
    if total > covered:
        # the uncovered end: one patch aligned to the end (a short file: one padded patch)
        x = np.concatenate([history, buf])[-size:]
        scores = net.run_patches(log_mel_patches(log_mel_spectrogram(x, YAMNET), YAMNET)[:1]).scores
        centre = max(0.0, total - size / 2) / rate if total >= size else total / 2 / rate
        acc.add(np.array([centre]), scores)
    acc.finish(duration_s)
    tags = acc.result(fields, duration_s)
    tags.update({"model": MODEL_NAME, "model_version": net.version, "min_score": float(params["min_score"])})
    if unit_tagger is not None and tables_dir is not None:
        tags["unit_table"] = write_unit_tags(tables_dir, table_name or Path(units_path).stem,
                                             unit_tagger.finish(), Path(units_path).name)
    return {"tags": tags}


def _run(item: Item) -> dict:
    units_path = tables_dir = name = None
    if item.params.get("units") and item.workdir:
        import hashlib
        import json
        import os

        from ..units.labels import TAGS_DIRNAME
        from ..units.store import UNITS_DIRNAME
        from .embed import read_unit_map

        shard = read_unit_map(item.workdir).get(str(item.file_id))
        if shard:
            units_path = os.path.join(item.workdir, UNITS_DIRNAME, shard)
            if not os.path.exists(units_path):
                raise ItemError(f"its unit shard {shard} is missing: run `audiotrove segment` again")
            tables_dir = os.path.join(item.workdir, TAGS_DIRNAME)
            key = json.dumps({k: item.params.get(k) for k in sorted(DEFAULTS)}, sort_keys=True)
            name = f"{Path(shard).stem}-{hashlib.blake2b(key.encode(), digest_size=6).hexdigest()}"
    return tag_file(item.path, item.params, units_path=units_path, tables_dir=tables_dir, table_name=name)


STEP = Step(
    name="tag",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    summary="what is in it: share of time and sections of YAMNet's 521 AudioSet classes",
)
