"""Making the vectors of one file: one vector per unit, per window or for the whole file, written
as a vector shard (store.py). The `embed` step (steps/embed.py) runs it on a collection's files;
`similar` and `mosaic` run it on an outside target, `classify` on the files it labels.

Parameters (all part of the vectors' key)
    model          yamnet | descriptors | /path/model.onnx (models/embedders.py)
    model_version  the model's version (set by the caller from the loaded model; embedding
                   refuses to run another version than the one it was asked for)
    level          unit | window | file
    window_s       s, window length for `window`, and the windows pooled for `file` (default 1)
    units          for `unit`: the segmentation's config key (units/store.config_key), so
                   re-segmenting recomputes the unit vectors

Returned (and stored by the step with the file):
    {"embed": {"model", "model_version", "level", "count", "dim", "shard"}}

The file is decoded once, in blocks, mixed to mono and resampled to the model's rate in a
stream (soxr); each unit or window is cut from the stream as soon as it is complete and
embedded in batches, and the vectors are written to the shard as they come: memory holds one
batch, whatever the file's length. A file's vector is the duration-weighted mean of its
windows' vectors. Windows start every window_s; the last, partial one is kept when it is at
least half a window long (or when the file is shorter than one window).
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..errors import ItemError
from ..io.decode import open_audio
from ..models import ModelError
from ..models.embedders import get_embedder
from ..units.store import unit_spans
from .store import ShardWriter, shard_name

VERSION = "1"  # the embed step's version: bump it when the vectors made here change
LEVELS = ("unit", "window", "file")
DEFAULTS: dict = {"model": "yamnet", "model_version": None, "level": "window", "window_s": 1.0,
                  "units": None}
BATCH_SECONDS = 60.0  # audio embedded per model call, at most (bounds memory)


def vector_config(params: dict) -> dict:
    """What the vectors depend on (names the shard)."""
    level = params["level"]
    config = {"version": VERSION, "model": params["model"], "model_version": params["model_version"],
              "level": level}
    if level in ("window", "file"):
        config["window_s"] = float(params["window_s"])
    if level == "unit":
        config["units"] = params["units"]
    return config


class StreamCutter:
    """Cut stretches [start, end) (in samples of a mono stream) out of the stream as it arrives.

    `spans` must be sorted by start. `push(x)` returns the stretches completed so far as
    (index, samples); `finish()` the rest (cut short at the end of the stream). Memory: the
    samples from the earliest pending start on.
    """

    def __init__(self, spans: list[tuple[int, int]] | None = None):
        self.spans = spans  # None: fixed windows, see WindowCutter
        self._next = 0
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream position of _buf[0]

    @property
    def position(self) -> int:
        return self._buf_start + len(self._buf)

    def push(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32).reshape(-1)])
        return self._emit(final=False)

    def finish(self) -> list[tuple[int, np.ndarray]]:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> list[tuple[int, np.ndarray]]:
        out = []
        end_pos = self.position
        while self._next < len(self.spans):
            s, e = self.spans[self._next]
            if e > end_pos and not final:
                break
            out.append((self._next, self._buf[max(0, s - self._buf_start):max(0, e - self._buf_start)].copy()))
            self._next += 1
        keep_from = self.spans[self._next][0] if self._next < len(self.spans) else end_pos
        drop = min(max(0, keep_from - self._buf_start), len(self._buf))
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out


class WindowCutter(StreamCutter):
    """Consecutive windows of `size` samples; the last partial one kept when at least half a
    window long, or when it is the only one."""

    def __init__(self, size: int):
        super().__init__([])
        self.size = size

    def _emit(self, *, final: bool) -> list[tuple[int, np.ndarray]]:
        out = []
        while len(self._buf) >= self.size:
            out.append((self._next, self._buf[:self.size].copy()))
            self._buf = self._buf[self.size:]
            self._buf_start += self.size
            self._next += 1
        if final and len(self._buf) and (len(self._buf) * 2 >= self.size or self._next == 0):
            out.append((self._next, self._buf.copy()))
            self._next += 1
            self._buf_start += len(self._buf)
            self._buf = np.zeros(0, np.float32)
        return out


def embed_file(path: str, params: dict, *, shards_dir, units_path: str | None = None) -> dict:
    """Embed `path` at params["level"]; write its shard into shards_dir; return the summary."""
    import soxr

    params = {**DEFAULTS, **params}
    level = params["level"]
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    try:
        model = get_embedder(params["model"])
    except ModelError as exc:
        raise ItemError(str(exc)) from None
    if params["model_version"] and params["model_version"] != model.version:
        raise ItemError(f"model {params['model']} is version {model.version} here, "
                        f"not {params['model_version']}: run embed again")
    params["model_version"] = model.version
    rate = model.sample_rate_hz
    unit_ids = starts_s = durs_s = None
    if level == "unit":
        if units_path is None:
            raise ItemError("no units for this file: run `audiotrove segment` first")
        unit_ids, starts_s, durs_s = unit_spans(units_path)
        spans = [(int(round(s * rate)), int(round((s + d) * rate))) for s, d in zip(starts_s, durs_s)]
        cutter: StreamCutter = StreamCutter(spans)
    else:
        window = max(1, int(round(float(params["window_s"]) * rate)))
        cutter = WindowCutter(window)

    reader = open_audio(path)
    resampler = None if reader.sample_rate == rate else soxr.ResampleStream(
        reader.sample_rate, rate, 1, dtype="float32", quality="HQ")
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{reader.sample_rate}:{reader.channels}:".encode())
    writer = ShardWriter(shards_dir, model.dim)
    pending: list[tuple[int, np.ndarray]] = []
    pooled = np.zeros(model.dim, np.float64)
    pooled_s = 0.0
    count = 0

    def flush() -> None:
        nonlocal pooled, pooled_s, count
        if not pending:
            return
        vecs = np.asarray(model.embed_many([x for _, x in pending]), np.float32)
        idx = np.array([i for i, _ in pending])
        if level == "unit":
            writer.write(unit_ids[idx], starts_s[idx], durs_s[idx], vecs)
        elif level == "window":
            lens = np.array([len(x) for _, x in pending]) / rate
            writer.write(idx, idx * float(params["window_s"]), lens, vecs)
        if level == "file":
            lens = np.array([len(x) for _, x in pending], np.float64) / rate
            pooled += (vecs * lens[:, None]).sum(axis=0)
            pooled_s += float(lens.sum())
        count += len(pending)
        pending.clear()

    def take(items) -> None:
        pending.extend(items)
        if sum(len(x) for _, x in pending) >= BATCH_SECONDS * rate:
            flush()

    try:
        for block in reader.blocks():
            bad = ~np.isfinite(block)
            if bad.any():
                block = np.where(bad, np.float32(0.0), block)
            digest.update(np.ascontiguousarray(block, dtype=np.float32).tobytes())
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            take(cutter.push(mono))
        if resampler is not None:
            take(cutter.push(resampler.resample_chunk(np.zeros(0, np.float32), last=True)))
        take(cutter.finish())
        flush()
        if level == "file":
            vec = pooled / pooled_s if pooled_s > 0 else pooled
            writer.write([0], [0.0], [pooled_s], vec[None].astype(np.float32))
        name = shard_name(digest.hexdigest(), vector_config(params))
        writer.commit(name)
    except BaseException:
        writer.abort()
        raise
    return {"embed": {"model": model.name, "model_version": model.version, "level": level,
                      "count": writer.rows, "dim": model.dim, "shard": name}}


__all__ = ["BATCH_SECONDS", "DEFAULTS", "LEVELS", "VERSION", "StreamCutter", "WindowCutter",
           "embed_file", "vector_config"]
