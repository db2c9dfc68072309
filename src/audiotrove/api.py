"""The Python front door: a collection as pandas DataFrames.

    import audiotrove
    c = audiotrove.open("coll")                  # the collection folder (or any folder inside it)
    df = c.frame(where="audio.noise.snr_average < 15 and duration > 10m")
    df[["path", "audio.loudness.measured"]]
    c.stats(["media_info.audio.sample_rate"])   # the `audiotrove stats` object
    c.records(where="status = error")           # the JSON objects of `ls --format jsonl`
    c.similar("12:40", k=10)                     # after `embed`: nearest units, as a DataFrame
    ids, matrix = c.vectors(level="unit")        # the embedding vectors (see vectors/search.py)
    df, info = c.map()                           # after `map`: the map's rows and clusters
    model, report = c.train_classifier(classes={"kick": 'path ~ "*kick*"', "snare": 'path ~ "*snare*"'},
                                       output="kinds.json")   # or c.train_classifier("~/labelled")
    df = c.predict("kinds.json")                 # class.label ... per file (or window / unit)
    audio, score = c.mosaic("song.wav", match="yamnet,hz=1")  # after `embed --units`: a mosaic

Columns are the dotted field names (the same as `export` and the query language): path, status,
error, every registered field (catalog/fields.py), then fields other steps returned. Integer fields
are pandas "Int64", true/false fields "boolean", lists (sections) Python lists, the rest float or
object. Reading is safe while a run writes to the catalog (SQLite WAL).
"""
from __future__ import annotations

import os
from typing import Sequence

from . import views
from .catalog.db import Catalog
from .catalog.fields import Field
from .catalog.index import FieldIndex


class Collection:
    """An open collection. Use as a context manager or call close()."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.root = catalog.root

    def __repr__(self) -> str:
        return f"<audiotrove.Collection {str(self.root)!r}: {self.catalog.file_count()} files>"

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.catalog.close()

    @property
    def index(self) -> FieldIndex:
        """The field index, brought up to date with the catalog on each access."""
        return views.open_index(self.catalog)

    def fields(self) -> list[Field]:
        """Every field a query, `frame()` or `stats()` accepts (registered and discovered)."""
        return list(self.index.fields)

    def frame(self, where: str | None = None, *, fields: Sequence[str] | str | None = None,
              sort: str | None = None, limit: int | None = None):
        """A pandas DataFrame, one row per selected file, dotted field names as columns."""
        return views.file_frame(self.index, where=where, fields=fields, sort=sort, limit=limit)

    def ls(self, where: str | None = None, *, fields: Sequence[str] | str | None = None,
           sort: str | None = None, limit: int | None = None) -> list[dict]:
        """What `audiotrove ls --format json --fields ...` prints: flat dicts, dotted names."""
        return list(views.list_files(self.index, where, fields=fields, sort=sort, limit=limit,
                                     shape="all").dicts())

    def units(self, query: str | None = None, *, where: str | None = None, sort: str | None = None,
              per_file: int | None = None, limit: int | None = None):
        """The units `audiotrove units` lists, as a DataFrame (path, file_id, unit columns)."""
        return views.list_units(self.catalog, query, where=where, sort=sort, per_file=per_file,
                                limit=limit).frame

    def status(self) -> dict:
        """The object `audiotrove status --format json` prints."""
        return views.status(self.catalog)

    def report_data(self, where: str | None = None, *, spec: str | None = None) -> dict:
        """The object `audiotrove report --format json` prints."""
        from .views.report import report_data

        return report_data(self.index, where=where, spec=spec)

    def records(self, where: str | None = None, *, limit: int | None = None) -> list[dict]:
        """The files' JSON objects ({"path", "status", "error", "media_info", "audio"...})."""
        return list(self.index.records(where, limit=limit))

    def paths(self, where: str | None = None) -> list[str]:
        return [r[0] for r in self.index.rows(where, columns=["path"])]

    def file_ids(self, where: str | None = None) -> set[int]:
        return self.index.file_ids(where)

    def count(self, where: str | None = None) -> int:
        return self.index.count(where)

    def stats(self, fields: Sequence[str] | None = None, *, where: str | None = None,
              bins: str | int = "auto", minority: float = 0.25,
              price_per_minute: float | None = None, workers: int | None = None) -> dict:
        """The object `audiotrove stats --format json` prints."""
        return views.stats(self.index, fields, where=where, bins=bins, minority=minority,
                           price_per_minute=price_per_minute, workers=workers)

    def similar(self, target: str, *, k: int = 10, model: str = "yamnet", level: str | None = None,
                where: str | None = None, units: str | None = None,
                exclude_same_file: bool | None = None, window_s: float = 1.0):
        """The DataFrame `audiotrove similar TARGET --format json` prints (vectors/search.py)."""
        from .vectors.search import similar

        return similar(self.catalog, target, k=k, model=model, level=level, where=where, units=units,
                       exclude_same_file=exclude_same_file, window_s=window_s)

    def vectors(self, where: str | None = None, *, level: str = "file", model: str = "yamnet",
                window_s: float = 1.0):
        """(ids, matrix): ids a DataFrame (path, file_id, unit, start, dur), matrix the
        unit-length float32 vectors of the current files matching `where`, row for row."""
        from .vectors.search import collection_vectors

        return collection_vectors(self.catalog, model=model, level=level, where=where, window_s=window_s)

    def mosaic(self, target: str, *, output: str | os.PathLike | None = None, score_path=None, **options):
        """(audio, score) of `audiotrove mosaic TARGET`: audio (frames, channels) float32 at the
        target's rate, score the DataFrame `--score` writes (mosaic/__init__.py). Options as the
        command's, by their Python names (corpus_where, corpus_units, segment, match, k, pitch,
        max_reuse, layers, smooth, crossfade_ms, fade_ms, mix, seed). `output` writes the audio
        to that file block by block instead (memory bounded whatever the target's length) and
        audio comes back None; `score_path` writes the score as CSV."""
        from .mosaic import make_mosaic, write_score

        result = make_mosaic(self.catalog, target, output=output, **options)
        if score_path is not None:
            write_score(result.score, score_path)
        return result.audio, result.score

    def map(self, name: str = "map", level: str = "file"):
        """(df, info) of a map `audiotrove map` made: df one row per item (path, file_id, unit,
        start, dur, map.x, map.y, map.order, grid.col, grid.row, map.cluster), info its settings
        and clusters (maps/store.py). FileNotFoundError when there is no such map."""
        from .maps.store import load_table

        return load_table(self.root, name, level)

    def train_classifier(self, labels: str | os.PathLike | None = None, *, classes: dict[str, str] | None = None,
                         output: str | os.PathLike | None = None, model: str = "yamnet", level: str = "file",
                         classifier: str = "auto", folds: int = 5, window_s: float = 1.0) -> tuple[dict, dict]:
        """`audiotrove classify train`: (the model dict, the cross-validation report). `labels` a
        folder of class subfolders or a path,label[,fold] CSV, or `classes` {name: query} over
        this collection (unit queries at level "unit"). With `output`, the model, its
        .eval.json and .eval.html are written there. ValueError on bad input."""
        from .steps import classify_train as ct

        if (labels is None) == (classes is None):
            raise ValueError("give labels (a folder or a CSV) or classes ({name: query}), not both")
        if labels is not None:
            items = ct.read_labels(labels)
        else:
            items, _ = ct.query_labels(self.catalog, dict(classes), level=level)
        data = ct.gather(items, model=model, level=level, window_s=window_s)
        fitted, report = ct.train_classifier(data, classifier=classifier, folds=folds)
        if output is not None:
            from .report.classify import write_outputs

            write_outputs(fitted, report, output)
        return fitted, report

    def predict(self, model_path: str | os.PathLike, *, where: str | None = None, units: str | None = None,
                min_confidence: float = 0.0, workers: int | None = None):
        """`audiotrove classify predict`, then its predictions as a DataFrame: one row per file
        (path, file_id, label, confidence, scores) or, for a window / unit model, per window or
        unit (path, file_id, unit, start, dur, label, confidence). Files that failed are absent
        (their errors: `records("status = error")`)."""
        from pathlib import Path

        from .models import classifier as clf
        from .runner import run_step
        from .steps.classify import predictions_frame, write_unit_map

        fitted = clf.load(model_path)
        file_ids = self.index.file_ids(where) if where else None
        if (fitted.get("level") or "file") == "unit":
            file_ids = write_unit_map(self.catalog, file_ids)
        params = {"model_path": str(Path(model_path).resolve()), "model_digest": clf.digest(fitted),
                  "min_confidence": min_confidence, "units_query": units}
        run_step(self.catalog, "classify", params, workers=workers, file_ids=file_ids, show_progress=False)
        return predictions_frame(self.catalog, file_ids)

    def report(self, output: str | os.PathLike, *, where: str | None = None, **options):
        """Write the HTML report (see `audiotrove report --help` for the options)."""
        from .report.html import write_report

        return write_report(self.index, output, where=where, **options)


def open(path: str | os.PathLike = ".") -> Collection:  # noqa: A001 - the package's front door
    """Open the collection at `path` (its folder or any folder inside it)."""
    return Collection(Catalog.open(path))


__all__ = ["Collection", "open"]
