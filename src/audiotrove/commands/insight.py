"""CLI commands for collection insight: ls, stats, export, report, fields.

Every QUERY / --where is the query language of catalog/query.py; `audiotrove fields` lists the
field names. The commands read the per-file field index (catalog/index.py), brought up to date
with the catalog first (cheap: only files changed since the last query are re-indexed).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..catalog.fields import Field
from ..catalog.query import QueryError, parse_field_list, parse_sort
from .common import EXIT_USAGE, err, fail, open_catalog

LS_DEFAULT = (
    "status", "media_info.container.duration", "media_info.audio.codec",
    "media_info.audio.sample_rate", "media_info.audio.channels", "audio.loudness.measured",
    "audio.loudness.true_peak", "audio.noise.snr_average",
)
FORMATS = ("table", "csv", "json", "jsonl")


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("ls")(ls_cmd)
    app.command("stats")(stats_cmd)
    app.command("export")(export_cmd)
    app.command("report")(report_cmd)
    app.command("fields")(fields_cmd)


def query_fail(exc: Exception) -> typer.Exit:
    """Print a query error (multi-line, with a caret under the position) and return the Exit."""
    from rich.markup import escape

    err.print("[red]error:[/] " + escape(str(exc)), soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def _open_index(cat):
    from ..catalog.index import FieldIndex, progress_printer

    return FieldIndex(cat, progress=progress_printer())


def _query_text(parts: Optional[List[str]], where: Optional[str]) -> Optional[str]:
    text = " ".join(parts) if parts else None
    if text and where:
        return f"({text}) and ({where})"
    return text or where


def _out_write(lines) -> None:
    write = sys.stdout.write
    buf = []
    for line in lines:
        buf.append(line)
        if len(buf) >= 2000:
            write("\n".join(buf) + "\n")
            buf = []
    if buf:
        write("\n".join(buf) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------ ls


def ls_cmd(
    query: Optional[List[str]] = typer.Argument(
        None, help='Query, e.g. "audio.noise.level_average < -60 and duration > 10m" (quote it).'),
    fields: Optional[str] = typer.Option(
        None, "--fields", help="Comma-separated fields to show (dotted names or aliases: duration,lufs)."),
    sort: Optional[str] = typer.Option(None, "--sort", help="field[:desc][,field...] (default: path)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=0, help="At most N files."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or jsonl."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Same as QUERY (both: and); "
                                        "with --units, the file filter."),
    units: bool = typer.Option(False, "--units", help="List units instead of files (after `segment`): "
                               "QUERY filters units (power > -30 and clarity > 0.8); same as `audiotrove units`."),
):
    """List the files matching QUERY with their fields (all files without a query).

    QUERY: comparisons on dotted fields (=, !=, <, <=, >, >=), text match with ~ (* and ?
    wildcards; no wildcard = substring), presence with ? (`hum?`, `not hum?`), `in (a, b)`,
    and/or/not and parentheses; numbers may carry units (10m, 1h30m, 1:30, 8kHz, 128k, 2MB,
    -23LUFS, 5%). Example: 'audio.noise.level_average < -60 and duration > 10m'.
    `audiotrove fields` lists the field names and their short aliases.

    json/jsonl without --fields print each file's whole JSON object; with --fields (and csv),
    flat objects whose keys are the dotted field names.
    """
    if units:
        if fields:
            raise fail("--fields does not apply to --units (units have fixed columns)")
        from .units import units_cmd  # the units topic owns unit listing

        return units_cmd(query=" ".join(query) if query else None, where=where, sort=sort,
                         per_file=None, limit=limit or None, fmt=fmt, output=None)
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    text = _query_text(query, where)
    with open_catalog() as cat:
        idx = _open_index(cat)
        try:
            node = idx.parse(text) if text else None
            keys = parse_sort(sort, idx.fields) if sort else None
            chosen = parse_field_list(fields, idx.fields) if fields else None
        except QueryError as exc:
            raise query_fail(exc)
        if fmt in ("json", "jsonl") and chosen is None:
            texts = idx.record_texts(node, sort=keys, limit=limit)
            if fmt == "jsonl":
                _out_write(texts)
            else:
                _out_write(_json_array(texts))
            return
        path_field = idx.fields.resolve("path")
        if chosen is None:
            if fmt == "table":
                wanted = [idx.fields.resolve(n) for n in LS_DEFAULT]
                chosen = idx.populated(wanted, node)
            else:
                chosen = [f for f in idx.export_fields(node) if f.name != "path"]
                chosen = [path_field] + idx.populated(chosen, node)
        if fmt == "table":
            _ls_table(idx, node, chosen, keys, limit, explicit=fields is not None)
        elif fmt == "csv":
            cols = chosen if any(f.name == "path" for f in chosen) else [path_field, *chosen]
            _ls_csv(idx, node, cols, keys, limit)
        else:
            from ..api import json_value

            cols = chosen if any(f.name == "path" for f in chosen) else [path_field, *chosen]
            rows = ({f.name: json_value(f, v) for f, v in zip(cols, row)}
                    for row in idx.rows(node, columns=cols, sort=keys, limit=limit))
            texts = (json.dumps(r) for r in rows)
            _out_write(texts if fmt == "jsonl" else _json_array(texts))


def _json_array(texts):
    first = True
    for t in texts:
        yield ("[" if first else ",") + t
        first = False
    yield "[]" if first else "]"


def _ls_table(idx, node, chosen: list[Field], keys, limit, *, explicit: bool) -> None:
    from ..report import format as fmt

    show_path = not any(f.name == "path" for f in chosen)
    cols = chosen + ([idx.fields.resolve("path"), idx.fields.resolve("error")] if show_path else [])
    rows = list(idx.rows(node, columns=cols, sort=keys, limit=limit))
    if not rows:
        print("no files match", file=sys.stderr)
        return
    # Column by column: one formatter per field, widths from the formatted strings.
    columns = []
    for k, f in enumerate(chosen):
        cell = fmt.formatter(f)
        cells = [cell(r[k]) for r in rows]
        width = max(len(f.heading), max(map(len, cells)))
        if f.kind == "number":
            columns.append([f.heading.rjust(width)] + [c.rjust(width) for c in cells])
        else:
            columns.append([f.heading.ljust(width)] + [c.ljust(width) for c in cells])
    if show_path:
        n = len(chosen)
        columns.append(["path"] + [r[n] + (f"  ({r[n + 1]})" if r[n + 1] else "") for r in rows])
    _out_write("  ".join(line).rstrip() for line in zip(*columns))


def _ls_csv(idx, node, cols: list[Field], keys, limit) -> None:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([f.name for f in cols])
    bool_cols = [k for k, f in enumerate(cols) if f.kind == "bool"]
    for row in idx.rows(node, columns=cols, sort=keys, limit=limit):
        if bool_cols:
            row = list(row)
            for k in bool_cols:
                if row[k] is not None:
                    row[k] = "true" if row[k] else "false"
        writer.writerow(row)


# --------------------------------------------------------------------------------------- stats


def stats_cmd(
    fields: Optional[List[str]] = typer.Argument(
        None, help="Fields to summarise (default: the uniformity fields and the main measurements)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    bins: str = typer.Option("auto", "--bins", help="Histogram bins: auto, a count (10), or edges "
                             "(-60,-40,-20; units allowed: 1m,5m,10m)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    price_per_minute: Optional[float] = typer.Option(
        None, "--price-per-minute", min=0, help="Price per minute of audio, for a cost estimate."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", min=1, help="Workers for the processing-time estimate (default: cores)."),
    step: str = typer.Option("analyze", "--step", help="Step whose measured throughput is used."),
    minority: float = typer.Option(
        0.25, "--minority", min=0.0, max=1.0,
        help="A value held by less than this share of files is an anomaly, where one value (the norm) is held "
             "by at least 80% of them."),
):
    """Totals, uniformity (value counts, minority values flagged) and distributions of fields."""
    from ..report.summary import summarize, to_json

    if fmt not in ("table", "json"):
        raise fail(f"unknown format {fmt!r}: use table or json")
    names = [n for part in (fields or []) for n in part.split(",") if n.strip()]
    with open_catalog() as cat:
        idx = _open_index(cat)
        try:
            chosen = parse_field_list(names, idx.fields) if names else None
            summary = summarize(idx, where=where, fields=chosen, bins=bins, minority=minority,
                                price_per_minute=price_per_minute, workers=workers, step=step)
        except QueryError as exc:
            raise query_fail(exc)
        if fmt == "json":
            print(to_json(summary))
            return
        detail = bool(names) and len(names) <= 4 or bins != "auto"
        _out_write(stats_lines(summary, idx, detail=detail, root=str(cat.root)))


def stats_lines(summary: dict, idx, *, detail: bool, root: str = "") -> list[str]:
    from ..report import format as fmt

    t, est = summary["totals"], summary["estimate"]
    lines = [
        f"{t['files']} file{'' if t['files'] == 1 else 's'}{' matching ' + repr(summary['where']) if summary.get('where') else ''}"
        f"{' in ' + root if root else ''}: {t['ok']} ok, {t['failed']} failed, {t['pending']} pending; "
        f"{fmt.hours(t['audio_s'])} of audio ({t['audio_s'] / 3600:.2f} h); {fmt.size(t['bytes'])}"
    ]
    if est.get("throughput_x_realtime"):
        lines.append(
            f"estimate: {est['step']} runs at {est['throughput_x_realtime']:.0f}x real time per worker "
            f"(measured on the {est['measured_on']}): {fmt.hours(est['processing_s'])} with "
            f"{est['workers']} worker(s)")
    else:
        lines.append(f"estimate: no measured {est['step']} times yet (run `audiotrove {est['step']}`)")
    if est.get("files_without_duration"):
        lines.append(f"  ({est['files_without_duration']} file(s) without a known duration are not counted)")
    if "cost" in est:
        lines.append(f"cost: {est['minutes']:.1f} min of audio at {est['price_per_minute']:g} per minute "
                     f"= {est['cost']:.2f}")
    fields = summary["fields"]
    discrete = [(n, s) for n, s in fields.items() if s["kind"] == "discrete"]
    continuous = [(n, s) for n, s in fields.items() if s["kind"] == "continuous"]
    lists = [(n, s) for n, s in fields.items() if s["kind"] == "list"]
    if discrete:
        lines += ["", "uniformity (files per value; ! = anomaly: a minority value where >= 80% of the files "
                  "share one, the norm)"]
        for name, s in discrete:
            f = idx.fields.resolve(name)
            head = f"{name}" + (f" ({s['unit']})" if s["unit"] and s["unit"] != "count" else "")
            flag = f"  {s['anomalies']} anomalous value(s), {s['anomalous_files']} file(s)" if s["anomalies"] else ""
            flag += f"  ({s['note']})" if s.get("note") else ""
            missing = f"  {s['missing']} missing" if s["missing"] else ""
            lines.append(f"  {head}{flag}{missing}")
            rows = []
            for v in s["values"]:
                rows.append(["!" if v["anomaly"] else " ", fmt.value(f, v["value"]), str(v["count"]),
                             f"{100 * v['share']:.1f}%"])
            if "other_values" in s:
                o = s["other_values"]
                rows.append([" ", f"({o['distinct']} other values)", str(o["count"]), ""])
            for line in fmt.table(["", "value", "files", "share"], rows, align=["l", "l", "r", "r"])[1:]:
                lines.append("    " + line)
    if continuous:
        lines += ["", "distributions"]
        rows = []
        for name, s in continuous:
            f = idx.fields.resolve(name)
            n = lambda key: fmt.number(f, s[key])  # noqa: E731
            rows.append([name, s["unit"] or "", str(s["count"]), n("mean"), n("std") if f.unit != "s" else
                         fmt.number(f, s["std"]), n("min"), n("q25"), n("median"), n("q75"), n("max"),
                         fmt.spark(s["histogram"]["counts"])])
        header = ["field", "unit", "count", "mean", "std", "min", "25%", "50%", "75%", "max", "histogram"]
        lines += ["  " + ln for ln in fmt.table(header, rows, align=["l", "l"] + ["r"] * 8 + ["l"])]
        if detail:
            for name, s in continuous:
                f = idx.fields.resolve(name)
                h = s["histogram"]
                if not h["counts"]:
                    continue
                lines += ["", f"  {name} ({s['unit'] or 'no unit'}): histogram"]
                top = max(h["counts"]) or 1
                rows = []
                edges = h["edges"]
                if h["below"]:
                    rows.append([f"< {fmt.number(f, edges[0])}", str(h["below"]), ""])
                for k, c in enumerate(h["counts"]):
                    close = "]" if k == len(h["counts"]) - 1 else ")"
                    rows.append([f"[{fmt.number(f, edges[k])}, {fmt.number(f, edges[k + 1])}{close}",
                                 str(c), "#" * int(round(40 * c / top))])
                if h["above"]:
                    rows.append([f"> {fmt.number(f, edges[-1])}", str(h["above"]), ""])
                lines += ["    " + ln for ln in fmt.table(["bin", "files", ""], rows, align=["l", "r", "l"])[1:]]
    if lists:
        lines += ["", "lists (files with a non-empty value)"]
        for name, s in lists:
            lines.append(f"  {name}: {s['count']} of {s['count'] + s['missing']}")
    if not fields:
        lines += ["", "no files match" if t["files"] == 0 and summary.get("where")
                  else "no field has values yet: run `audiotrove analyze`"]
    return lines


# -------------------------------------------------------------------------------------- export


def export_cmd(
    output: Path = typer.Argument(..., help="OUT.csv, OUT.parquet, OUT.json or OUT.jsonl."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    fields: Optional[str] = typer.Option(None, "--fields", help="Comma-separated fields (default: all)."),
    sort: Optional[str] = typer.Option(None, "--sort", help="field[:desc][,field...] (default: path)."),
):
    """Write one row per file, the dotted field names as columns (written to a temporary name,
    then renamed)."""
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json", ".jsonl"):
        raise fail(f"cannot tell the format of {output.name!r}: name it .csv, .parquet, .json or .jsonl")
    with open_catalog() as cat:
        idx = _open_index(cat)
        try:
            n = export(idx, output, where=where, fields=fields, sort=sort)
        except QueryError as exc:
            raise query_fail(exc)
    print(f"exported {n} file(s) to {output}")


def export(idx, output: Path, *, where=None, fields=None, sort=None) -> int:
    """Write the selection to `output` (format from the suffix); return the number of rows."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    suffix = output.suffix.lower()
    try:
        if suffix in (".json", ".jsonl"):
            node = idx.parse(where) if where else None
            cols = parse_field_list(fields, idx.fields) if fields else idx.export_fields(node)
            if not any(f.name == "path" for f in cols):
                cols = [idx.fields.resolve("path"), *cols]
            keys = parse_sort(sort, idx.fields) if sort else None
            n = 0
            with open(tmp, "w", encoding="utf-8") as fh:
                if suffix == ".json":
                    fh.write("[")
                for row in _sorted_rows(idx, node, cols, keys):
                    text = json.dumps(row)
                    if suffix == ".json":
                        fh.write(("\n" if n == 0 else ",\n") + text)
                    else:
                        fh.write(text + "\n")
                    n += 1
                if suffix == ".json":
                    fh.write("\n]\n")
        else:
            from ..api import build_frame

            df = build_frame(idx, where=where, fields=fields, sort=sort)
            n = len(df)
            if suffix == ".csv":
                for name in df.columns:
                    f = idx.fields.resolve(name)
                    if f.kind == "list":
                        df[name] = [None if v is None else json.dumps(v) for v in df[name]]
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def _sorted_rows(idx, node, cols, keys):
    from ..api import json_value

    for row in idx.rows(node, columns=cols, sort=keys):
        yield {f.name: json_value(f, v) for f, v in zip(cols, row)}


# -------------------------------------------------------------------------------------- report


def report_cmd(
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The HTML file to write."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    max_problems: int = typer.Option(
        60, "--max-problems", min=0, help="Problem files shown with a waveform, spectrogram and player."),
    embed_audio: bool = typer.Option(
        False, "--embed-audio", help="Embed a short preview of every problem file (a portable page) "
        "instead of linking to the originals."),
    spec: Optional[str] = typer.Option(
        None, "--spec", help='Files NOT matching this query are off-spec, e.g. "sample_rate = 48k and bit_depth >= 24".'),
    title: Optional[str] = typer.Option(None, "--title", help="Page title (default: the collection's name)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Processes for the thumbnails."),
    minority: float = typer.Option(0.25, "--minority", min=0.0, max=1.0, help="See `stats --minority`."),
    redact_paths: bool = typer.Option(
        False, "--redact-paths", help="Show file names only, link to no file (implies --embed-audio). "
        "By default paths are shown relative to the collection folder."),
):
    """Write a self-contained HTML page: totals, uniformity with anomalies, histograms, and the
    problem files (clipped, silent, very noisy, off-spec, failed) with why, a waveform and
    spectrogram, and a player of the original."""
    from ..report.html import write_report

    with open_catalog() as cat:
        idx = _open_index(cat)
        try:
            info = write_report(idx, output, where=where, max_problems=max_problems,
                                embed_audio=embed_audio, spec=spec, title=title, workers=workers,
                                minority=minority, progress=True, redact_paths=redact_paths)
        except QueryError as exc:
            raise query_fail(exc)
    print(f"report written: {output} ({info['files']} files, {info['problems']} problem files)")


# -------------------------------------------------------------------------------------- fields


def fields_cmd(
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
):
    """List the field names the queries, `ls`, `stats` and `export` know (with units and aliases)."""
    from ..catalog.fields import REGISTRY, describe_fields

    from ..catalog.db import Catalog, CatalogError
    from .common import State

    try:
        cat = Catalog.open(State.collection or Path.cwd())
    except CatalogError:
        cat = None  # outside a collection: the registered fields only
    fields = REGISTRY
    if cat is not None:
        with cat:
            fields = _open_index(cat).fields
    items = describe_fields(fields)
    for item, f in zip(items, fields):
        item["registered"] = f.registered
    if fmt == "json":
        print(json.dumps(items, indent=2))
        return
    from ..report import format as fmt_

    rows = [[i["name"], i["kind"], i["unit"] or "", ", ".join(i["aliases"]),
             i["description"] or ("(found in the data)" if not i["registered"] else "")] for i in items]
    _out_write(fmt_.table(["field", "kind", "unit", "aliases", "description"], rows))
