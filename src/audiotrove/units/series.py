"""Time-series features of files, in parallel, into one tidy table (Parquet or CSV).

One row per window and file: path, file_id (collection files only), time (s, window start),
then the feature columns of audiotrove.dsp.features.FeatureSeries. With summary=True, one
row per file instead: path, file_id, duration (s), windows, and <column>.mean/.std/.p10/
.p50/.p90. Workers compute one file each (decoded in blocks, bounded memory) and return
its table; the calling process alone writes the output, file by file, as results arrive.
"""
from __future__ import annotations

import csv
import math
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.write import temp_path

@dataclass(frozen=True)
class FeatureJob:
    path: str
    file_id: int | None
    raw_format: str | None = None  # headerless PCM: RATE:CHANNELS:FORMAT (io/raw.py)


def file_series(path: str, *, features: list[str], hop_s: float) -> tuple[dict[str, np.ndarray], float]:
    """The time series of one file (columns -> arrays) and its duration in s."""
    from ..dsp.features import FeatureSeries
    from ..io.decode import open_audio

    reader = open_audio(path)
    series = FeatureSeries(sample_rate_hz=reader.sample_rate, hop_s=hop_s, features=features)
    parts = []
    for block in reader.blocks():
        bad = ~np.isfinite(block)
        if bad.any():
            block = np.where(bad, np.float32(0.0), block)
        parts.append(series.update(block))
    parts.append(series.finish())
    table = {c: np.concatenate([p[c] for p in parts]) for c in series.columns}
    return table, reader.decoded_frames / reader.sample_rate


def _work(job: FeatureJob, features: list[str], hop_s: float, summary: bool):
    """Runs in a worker: ('ok', job, payload) or ('error', job, message)."""
    from ..dsp.features import series_summary
    from ..io.decode import DecodeError
    from ..io.raw import declare as declare_raw

    try:
        declare_raw(job.path, job.raw_format)  # headerless PCM is read as its stated format
        table, duration = file_series(job.path, features=features, hop_s=hop_s)
    except DecodeError as exc:
        return "error", job, str(exc)
    except MemoryError:
        return "error", job, "out of memory"
    except Exception as exc:  # keep the batch going; say what happened
        return "error", job, f"{type(exc).__name__}: {exc}"
    if summary:
        row = {"duration": duration, "windows": len(table["time"])}
        row.update(series_summary(table))
        return "ok", job, row
    return "ok", job, table


class _Writer:
    """Appends tables to one Parquet or CSV output (or CSV on stdout)."""

    def __init__(self, output: Path | None):
        self.output = output
        self._pq = None
        self._csv = None
        self._stream = None
        self._tmp = None
        self._columns: list[str] | None = None

    def write(self, columns: dict[str, list | np.ndarray]) -> None:
        import pyarrow as pa

        names = list(columns)
        if self._columns is None:
            self._columns = names
        if self.output is not None and self.output.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pa.table({n: pa.array(columns[n], from_pandas=True) for n in self._columns})
            if self._pq is None:
                self._tmp = temp_path(self.output)
                self._pq = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            self._pq.write_table(table.cast(self._pq.schema))
            return
        if self._csv is None:
            if self.output is not None:
                self._tmp = temp_path(self.output)
                self._stream = open(self._tmp, "w", newline="")
            else:
                self._stream = sys.stdout
            self._csv = csv.writer(self._stream)
            self._csv.writerow(self._columns)
        n = len(columns[self._columns[0]])
        cols = [columns[c] for c in self._columns]
        for i in range(n):
            self._csv.writerow(["" if _missing(col[i]) else col[i] for col in cols])

    def close(self, ok: bool = True) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        if self._tmp is not None:
            if ok:
                os.replace(self._tmp, self.output)
            elif os.path.exists(self._tmp):
                os.unlink(self._tmp)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def run_feature_jobs(jobs: list[FeatureJob], *, features: list[str], hop_s: float, summary: bool,
                     output: Path | None, executor=None,
                     on_error: Callable[[str, str], None] | None = None) -> int:
    """Compute every job and write the output: on `executor` (runner.executor's interface, e.g.
    a LocalPoolExecutor; results arrive as they finish, this process alone writes), or in this
    process when it is None.

    Returns the number of files that failed (each reported through on_error).
    """
    writer = _Writer(output)
    failed = 0
    summaries: list[dict] = []

    def handle(result) -> None:
        nonlocal failed
        status, job, payload = result
        if status == "error":
            failed += 1
            if on_error:
                on_error(job.path, payload)
            return
        if summary:
            head = {"path": job.path} if job.file_id is None else {"path": job.path, "file_id": job.file_id}
            summaries.append({**head, **payload})
            return
        n = len(payload["time"])
        columns = {"path": [job.path] * n}
        if job.file_id is not None:  # one-off files have none: no column of nulls
            columns["file_id"] = [job.file_id] * n
        columns.update(payload)
        writer.write(columns)

    def on_outcome(done) -> None:  # a task that crashed or timed out has an error, no value
        handle(done.value if done.error is None else ("error", done.item, done.error))

    ok = False
    try:
        if executor is None or len(jobs) < 2:
            for job in jobs:
                handle(_work(job, features, hop_s, summary))
        else:
            executor.run(partial(_work, features=features, hop_s=hop_s, summary=summary), jobs, on_outcome)
        if summary and summaries:
            keys: list[str] = []
            for s in summaries:
                keys += [k for k in s if k not in keys]
            writer.write({k: [s.get(k) for s in summaries] for k in keys})
        ok = True
    finally:
        writer.close(ok=ok and (writer._columns is not None))
    return failed

