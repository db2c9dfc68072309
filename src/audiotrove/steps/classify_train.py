"""Training a classifier on labelled audio: the labels, the vectors, cross-validation, the files.

    items = read_labels("~/labelled")                    # folder of class subfolders, or a CSV
    items = query_labels(catalog, {"kick": 'path ~ "*kick*"', ...}, level="unit")  # or queries
    data = gather(items, model="yamnet", level="window")  # vectors, labels, groups (source files)
    model, report = train_classifier(data, classifier="auto", folds=5)

An item is (path, label, fold or None, units): `units` (unit level, from queries) the unit
indices of the file's current segmentation to use, with that segmentation's shard. The groups
of cross-validation are the source files, so the windows or units of one file are never in
train and test at once; when every item has a fold (UrbanSound8K's metadata CSV), those folds
are used as they are.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ItemError
from ..models import ModelError
from ..models import classifier as clf
from .classify import WINDOW_S, item_vectors

LEVELS = ("file", "window", "unit")


@dataclass
class LabelItem:
    path: str
    label: str
    fold: str | None = None
    units_path: str | None = None  # unit level from a collection: the file's unit shard
    units: set[int] | None = None  # ...and the units the class's query chose


@dataclass
class Dataset:
    X: np.ndarray
    labels: list[str]
    groups: list[str]  # source file of each row
    folds: list[str] | None  # given folds (all rows have one) or None
    refs: list[dict]  # per row: path, unit, start, dur
    embedding: dict
    level: str
    window_s: float | None
    skipped: list[str] = field(default_factory=list)  # "path: why"


def read_labels(labels: str | Path) -> list[LabelItem]:
    """A folder of class subfolders (files anywhere below each), or a CSV with path,label[,fold]
    columns (UrbanSound8K's slice_file_name,class,fold too: relative paths are taken from the
    CSV's folder, else from fold<N>/ beside it or in audio/ beside it or its parent, as in
    UrbanSound8K/metadata/UrbanSound8K.csv + UrbanSound8K/audio/fold1/...). ValueError when
    neither."""
    from ..catalog.sources import MEDIA_EXTENSIONS

    labels = Path(labels).expanduser()
    if labels.is_dir():
        out = []
        for sub in sorted(p for p in labels.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(sub.rglob("*")):
                if f.is_file() and f.suffix.lower() in MEDIA_EXTENSIONS:
                    out.append(LabelItem(str(f), sub.name))
        if not out:
            raise ValueError(f"{labels}: no audio in class subfolders (LABELS/<class>/<files>)")
        return out
    if labels.suffix.lower() == ".csv" and labels.is_file():
        out = []
        with open(labels, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                path = row.get("path") or row.get("slice_file_name")
                label = row.get("label") or row.get("class")
                if not path or not label:
                    raise ValueError(f"{labels} line {n}: every row needs path and label columns "
                                     "(or UrbanSound8K's slice_file_name and class)")
                fold = (row.get("fold") or "").strip() or None
                p = Path(path).expanduser()
                if not p.is_absolute():
                    p = labels.parent / path
                    if not p.exists() and fold is not None:  # UrbanSound8K: metadata/ beside audio/fold1/...
                        for base in (labels.parent, labels.parent / "audio", labels.parent.parent / "audio"):
                            if (base / f"fold{fold}" / path).exists():
                                p = base / f"fold{fold}" / path
                                break
                out.append(LabelItem(str(p), label.strip(), fold))
        if not out:
            raise ValueError(f"{labels}: no rows")
        return out
    raise ValueError(f"{labels}: give a folder of class subfolders or a CSV with path,label[,fold] columns")


def parse_class_options(options: list[str]) -> dict[str, str]:
    """["kick=path ~ \"*kick*\"", ...] -> {"kick": 'path ~ "*kick*"'}. ValueError when malformed."""
    out: dict[str, str] = {}
    for opt in options:
        name, sep, query = opt.partition("=")
        name = name.strip()
        if not sep or not name or not query.strip():
            raise ValueError(f"--class {opt!r}: write NAME=QUERY, e.g. kick='path ~ \"*kick*\"'")
        if name in out:
            raise ValueError(f"--class {name} is given twice")
        out[name] = query.strip()
    if len(out) < 2:
        raise ValueError("give at least two --class NAME=QUERY options")
    return out


def query_labels(catalog, classes: dict[str, str], *, level: str = "file") -> tuple[list[LabelItem], list[str]]:
    """Items of the collection for each class query: files (file / window level: a query on the
    files' fields) or units (unit level: a unit query, as `audiotrove units` takes). What two
    classes both match is left out (it would teach both). Returns (items, notes)."""
    notes: list[str] = []
    if level != "unit":
        from ..catalog.index import select_file_ids

        chosen: dict[int, list[str]] = {}
        for name, query in classes.items():
            for fid in select_file_ids(catalog, query):
                chosen.setdefault(fid, []).append(name)
        paths = {f.id: f.path for f in catalog.files(set(chosen))}
        local = catalog.local_copies()
        items = []
        for fid, names in sorted(chosen.items()):
            if len(names) > 1:
                notes.append(f"{paths[fid]}: matches {' and '.join(names)}: left out")
                continue
            items.append(LabelItem(local.get(fid, paths[fid]), names[0]))
        return items, notes
    from ..units.select import list_units
    from ..units.store import current_shards

    refs, problems = current_shards(catalog)
    notes += problems
    shard_of = {r.file_id: r for r in refs}
    picked: dict[tuple[int, int], list[str]] = {}
    for name, query in classes.items():
        df = list_units(catalog, query)
        for fid, unit in zip(df["file_id"], df["unit"]):
            picked.setdefault((int(fid), int(unit)), []).append(name)
    by_file: dict[tuple[int, str], set[int]] = {}
    for (fid, unit), names in picked.items():
        if len(names) > 1:
            notes.append(f"unit {fid}:{unit} matches {' and '.join(names)}: left out")
            continue
        by_file.setdefault((fid, names[0]), set()).add(unit)
    items = [LabelItem(shard_of[fid].path, name, None, str(shard_of[fid].shard), units)
             for (fid, name), units in sorted(by_file.items())]
    return items, notes


def gather(items: list[LabelItem], *, model: str = "yamnet", level: str = "file",
           window_s: float = WINDOW_S, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """The vectors of every item at `level` (a file that cannot be read is skipped and named)."""
    from ..models.embedders import get_embedder

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    embedding = dict(get_embedder(model).key)  # ModelError when not available
    if model not in ("yamnet", "descriptors"):  # PATH.onnx: where to find it again
        embedding["source"] = str(Path(model).expanduser().resolve())
    vecs, labels, groups, folds, refs, skipped = [], [], [], [], [], []
    cache: dict[tuple[str, str | None], tuple] = {}
    for n, it in enumerate(items):
        key = (it.path, it.units_path)
        try:
            if key not in cache:
                cache.clear()  # one file's vectors at a time (items of one file are adjacent)
                cache[key] = item_vectors(it.path, embedding, level=level, window_s=window_s,
                                          units_path=it.units_path)
            rows, X = cache[key]
        except (ItemError, ModelError, ValueError, OSError) as exc:
            skipped.append(f"{it.path}: {exc}")
            continue
        for (unit, start, dur), v in zip(rows, X):
            if it.units is not None and unit not in it.units:
                continue
            vecs.append(v)
            labels.append(it.label)
            groups.append(it.path)
            folds.append(it.fold)
            refs.append({"path": it.path, "unit": unit, "start": round(start, 3), "dur": round(dur, 3)})
        if progress:
            progress(n + 1, len(items))
    if len(set(labels)) < 2:
        raise ValueError("at least two classes with readable audio are needed"
                         + (f" ({len(skipped)} file(s) skipped)" if skipped else ""))
    given = folds if all(f is not None for f in folds) else None
    return Dataset(np.stack(vecs), labels, groups, given, refs, embedding, level,
                   float(window_s) if level == "window" else None, skipped)


def train_classifier(data: Dataset, *, classifier: str = "auto", folds: int = 5) -> tuple[dict, dict]:
    """(the model fitted on every item, the cross-validation report). classifier "auto": the
    one of logreg / svm / hgb with the best grouped-CV macro F1."""
    if classifier != "auto" and classifier not in clf.CLASSIFIERS:
        raise ValueError(f"--classifier must be auto or one of {', '.join(clf.CLASSIFIERS)}, not {classifier!r}")
    report = clf.cross_validate(data.X, data.labels, data.groups, folds=folds, classifier=classifier,
                                embedding=data.embedding, given_folds=data.folds)
    model = clf.train(data.X, data.labels, embedding=data.embedding, classifier=report["classifier"],
                      groups=data.groups, level=data.level, window_s=data.window_s)
    report.update({"level": data.level, "embedding": data.embedding, "items": len(data.labels),
                   "files": len(set(data.groups)), "grouped_by": "the given folds" if data.folds else "source file",
                   "skipped": data.skipped})
    report["mistakes"] = [{**m, **data.refs[m.pop("item")]} for m in report["mistakes"]]
    for k in ("predicted", "confidence", "fold"):
        report.pop(k, None)
    model["evaluation"] = {k: report[k] for k in ("accuracy", "macro_f1", "folds", "candidates", "grouped_by")}
    return model, report


__all__ = ["Dataset", "LabelItem", "gather", "parse_class_options", "query_labels", "read_labels",
           "train_classifier"]
