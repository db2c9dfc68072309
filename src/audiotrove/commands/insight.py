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

from ..catalog.query import QueryError
from ..errors import UsageError
from .common import (
    EXIT_USAGE,
    check_format,
    err,
    open_catalog,
    open_index,
    output_folder,
    print_error,
    write_dicts,
    write_lines,
    write_listing,
)


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("ls")(ls_cmd)
    app.command("stats")(stats_cmd)
    app.command("export")(export_cmd)
    app.command("report")(report_cmd)
    app.command("fields")(fields_cmd)


def query_fail(exc: Exception) -> typer.Exit:
    """Print a query error (multi-line, with a caret under the position) and return the Exit."""
    print_error(str(exc), code=EXIT_USAGE)
    return typer.Exit(EXIT_USAGE)


def _query_text(parts: Optional[List[str]], where: Optional[str]) -> Optional[str]:
    text = " ".join(parts) if parts else None
    if text and where:
        return f"({text}) and ({where})"
    return text or where


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
            raise UsageError("--fields does not apply to --units (units have fixed columns)")
        from .units import units_cmd  # the units topic owns unit listing

        return units_cmd(query=" ".join(query) if query else None, where=where, sort=sort,
                         per_file=None, limit=limit or None, fmt=fmt, output=None)
    from ..views import list_files

    check_format(fmt)
    shape = "summary" if fmt == "table" else "records" if fmt in ("json", "jsonl") else "all"
    with open_catalog() as cat:
        idx = open_index(cat)
        try:
            listing = list_files(idx, _query_text(query, where), fields=fields, sort=sort,
                                 limit=limit, shape=shape)
            shown = write_listing(listing, fmt)
        except QueryError as exc:
            raise query_fail(exc)
        if not shown:
            print("no files match", file=sys.stderr)


# --------------------------------------------------------------------------------------- stats


def stats_cmd(
    fields: Optional[List[str]] = typer.Argument(
        None, help="Fields to summarise (default: the uniformity fields and the main measurements)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only the files matching this query."),
    bins: str = typer.Option("auto", "--bins", help="Histogram bins: auto, a count (10), or edges "
                             "(-60,-40,-20; units allowed: 1m,5m,10m)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or jsonl (csv/jsonl: one row per field)."),
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
    from ..report.summary import to_json
    from ..views import stats

    check_format(fmt)
    names = [n for part in (fields or []) for n in part.split(",") if n.strip()]
    with open_catalog() as cat:
        idx = open_index(cat)
        try:
            summary = stats(idx, names or None, where=where, bins=bins, minority=minority,
                            price_per_minute=price_per_minute, workers=workers, step=step)
        except QueryError as exc:
            raise query_fail(exc)
        if fmt == "json":
            print(to_json(summary))
            return
        if fmt in ("csv", "jsonl"):
            write_dicts(_stats_rows(summary), fmt)
            return
        detail = bool(names) and len(names) <= 4 or bins != "auto"
        write_lines(stats_lines(summary, idx, detail=detail, root=str(cat.root)))


def _stats_rows(summary: dict):
    """One flat row per field of a stats object (csv, jsonl)."""
    for name, s in summary["fields"].items():
        row = {"field": name, "kind": s["kind"], "unit": s.get("unit"), "count": s.get("count"),
               "missing": s.get("missing")}
        for key in ("mean", "std", "min", "q25", "median", "q75", "max"):
            row[key] = s.get(key)
        if s["kind"] == "discrete":
            row["values"] = {str(v["value"]): v["count"] for v in s.get("values", [])}
            row["anomalies"] = s.get("anomalies")
        yield row


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
    from ..views import export_files

    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json", ".jsonl"):
        raise UsageError(f"cannot tell the format of {output.name!r}: name it .csv, .parquet, .json or .jsonl")
    with open_catalog() as cat:
        idx = open_index(cat)
        try:
            n = export_files(idx, output, where=where, fields=fields, sort=sort)
        except QueryError as exc:
            raise query_fail(exc)
    print(f"exported {n} file(s) to {output}")


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
    fmt: str = typer.Option("html", "--format", "-f", help="html (the page), or json: the report's data "
                            "(totals, uniformity, distributions, problem files with why, restored files) "
                            "on stdout, or into -o when it ends in .json."),
    redact_paths: bool = typer.Option(
        False, "--redact-paths", help="Show file names only, link to no file (implies --embed-audio). "
        "By default paths are shown relative to the collection folder."),
    max_transcripts: int = typer.Option(
        40, "--max-transcripts", min=0, help="Transcribed files shown with their first 2000 characters, "
        "timed and playable from any word."),
):
    """Write a self-contained HTML page: totals, uniformity with anomalies, histograms, and the
    problem files (clipped, silent, very noisy, off-spec, failed) with why, a waveform and
    spectrogram, and a player of the original; restored and transcribed files when there are some."""
    from ..report.html import write_report

    check_format(fmt, ("html", "json"))
    with open_catalog() as cat:
        idx = open_index(cat)
        if fmt == "json":
            from ..views.report import report_data

            try:
                data = report_data(idx, where=where, spec=spec, minority=minority, title=title)
            except QueryError as exc:
                raise query_fail(exc)
            text = json.dumps(data, indent=2, default=float)
            if output.suffix.lower() == ".json":
                output_folder(output)
                tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
                tmp.write_text(text + "\n", encoding="utf-8")
                os.replace(tmp, output)
                err.print(f"report data written: {output}")
            else:
                print(text)
            return
        output_folder(output)
        try:
            info = write_report(idx, output, where=where, max_problems=max_problems,
                                embed_audio=embed_audio, spec=spec, title=title, workers=workers,
                                minority=minority, progress=True, redact_paths=redact_paths,
                                max_transcripts=max_transcripts)
        except QueryError as exc:
            raise query_fail(exc)
    print(f"report written: {output} ({info['files']} files, {info['problems']} problem files)")


# -------------------------------------------------------------------------------------- fields


def fields_cmd(
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or jsonl."),
):
    """List the field names the queries, `ls`, `stats` and `export` know (with units and aliases)."""
    from ..catalog.db import CatalogError
    from ..views import field_list

    check_format(fmt)
    try:
        cat = open_catalog()
    except CatalogError:
        cat = None  # outside a collection: the registered fields only
    if cat is None:
        items = field_list()
    else:
        with cat:
            items = field_list(open_index(cat))
    if fmt in ("json",):
        print(json.dumps(items, indent=2))
        return
    if fmt in ("csv", "jsonl"):
        write_dicts(({**i, "aliases": ",".join(i["aliases"])} if fmt == "csv" else i for i in items), fmt)
        return
    from ..report import format as fmt_

    rows = [[i["name"], i["kind"], i["unit"] or "", ", ".join(i["aliases"]),
             i["description"] or ("(found in the data)" if not i["registered"] else "")] for i in items]
    write_lines(fmt_.table(["field", "kind", "unit", "aliases", "description"], rows))
