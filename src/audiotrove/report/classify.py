"""The evaluation of a trained classifier as files beside the model, and its HTML page.

    paths = write_outputs(model, report, "kinds.json")   # kinds.json, kinds.eval.json, kinds.eval.html

The page: accuracy and macro F1 (and, for `--classifier auto`, every candidate's), per-class
precision / recall / F1 / support, the confusion matrix as a picture (rows: truth, columns:
predicted; counts in the cells, colour by the share of the row), and the worst mistakes (held-out
items given a wrong label with the highest confidence) each with a player: the audio file by a
path relative to the page, a window or unit played from its start to its end (a media fragment,
`#t=start,end`).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .media import relative_url
from .plots import figure_bytes

WORST = 25  # mistakes shown with players


def confusion_png(confusion: list[list[int]], classes: list[str], *, dpi: int = 100) -> bytes:
    """The confusion matrix as a picture: counts, coloured by the share of their row."""
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, np.float64)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    size = max(3.2, 0.55 * n + 1.8)
    fig = Figure(figsize=(size, size), dpi=dpi)
    ax = fig.add_subplot(111)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.6 else "black")
    fig.tight_layout()
    return figure_bytes(fig)


def _e(v) -> str:
    return html.escape(str(v))


def _player(m: dict, page_dir: Path) -> str:
    url = relative_url(m["path"], page_dir)
    if m.get("dur") is not None and m.get("unit") is not None and m.get("start") is not None:
        url += f"#t={m['start']:.3f},{m['start'] + m['dur']:.3f}"
    return f'<audio controls preload="none" src="{_e(url)}"></audio>'


def evaluation_html(report: dict, *, page_dir: str | Path) -> str:
    page_dir = Path(page_dir)
    classes = report["classes"]
    png = base64.b64encode(confusion_png(report["confusion"], classes)).decode()
    emb = report.get("embedding") or {}
    head = (f"{report.get('items')} {report.get('level', 'file')}s from {report.get('files')} files, "
            f"{len(classes)} classes; embedding {emb.get('model')} {emb.get('model_version')}; "
            f"{report['folds']}-fold cross-validation grouped by {report.get('grouped_by', 'source file')}")
    cand = "".join(f"<tr><td>{_e(k)}{' (chosen)' if k == report['classifier'] else ''}</td>"
                   f"<td>{v['accuracy']:.3f}</td><td>{v['macro_f1']:.3f}</td></tr>"
                   for k, v in (report.get("candidates") or {}).items())
    per = "".join(f"<tr><td>{_e(c)}</td><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td>"
                  f"<td>{m['f1']:.3f}</td><td>{m['support']}</td></tr>" for c, m in report["per_class"].items())
    worst = report.get("mistakes", [])[:WORST]
    rows = "".join(
        f"<tr><td>{_e(m['truth'])}</td><td>{_e(m['predicted'])}</td><td>{m['confidence']:.2f}</td>"
        f"<td>{_e(Path(m['path']).name)}" + (f" @ {m['start']:.2f}-{m['start'] + m['dur']:.2f} s" if m.get('unit') is not None
                                              and report.get('level') != 'file' else "") +
        f"</td><td>{_player(m if report.get('level') != 'file' else {**m, 'unit': None}, page_dir)}</td></tr>"
        for m in worst)
    skipped = "".join(f"<li>{_e(s)}</li>" for s in report.get("skipped") or [])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Classifier evaluation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}}.big{{font-size:1.4em}}</style></head>
<body><h1>Classifier evaluation</h1>
<p>{_e(head)}; classifier <b>{_e(report['classifier'])}</b>.</p>
<p class="big">accuracy <b>{report['accuracy']:.3f}</b> &middot; macro F1 <b>{report['macro_f1']:.3f}</b></p>
{f'<h2>Classifiers compared (same folds)</h2><table><tr><th>classifier</th><th>accuracy</th><th>macro F1</th></tr>{cand}</table>' if len(report.get('candidates') or {}) > 1 else ''}
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per}</table>
<h2>Confusion matrix</h2><p>Rows: truth; columns: predicted (held-out predictions).</p>
<img alt="confusion matrix" src="data:image/png;base64,{png}">
<h2>Worst mistakes</h2><p>{len(report.get('mistakes', []))} held-out items were given a wrong label; the {len(worst)} most confident:</p>
<table><tr><th>truth</th><th>predicted</th><th>confidence</th><th>item</th><th>listen</th></tr>{rows}</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}
</body></html>
"""


def write_outputs(model: dict, report: dict, output: str | Path) -> dict[str, Path]:
    """The model (JSON), OUTPUT.eval.json and OUTPUT.eval.html beside it (each atomically)."""
    from ..io.write import write_text_atomic

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    eval_json = output.with_name(output.stem + ".eval.json")
    eval_html = output.with_name(output.stem + ".eval.html")
    write_text_atomic(output, json.dumps(model))
    write_text_atomic(eval_json, json.dumps(report, indent=1))
    write_text_atomic(eval_html, evaluation_html(report, page_dir=output.parent.resolve()))
    return {"model": output, "json": eval_json, "html": eval_html}
