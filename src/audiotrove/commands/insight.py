"""CLI commands for collection insight: ls (more to come: stats, export, report)."""
from __future__ import annotations

import json

import typer

from ..catalog.records import file_record
from .common import fail, open_catalog


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("ls")(ls_cmd)


def ls_cmd(
    fmt: str = typer.Option("table", "--format", "-f", help="table, jsonl, json or csv."),
):
    """List the files with their latest results."""
    with open_catalog() as cat:
        records = [file_record(f, res) for f, res in cat.iter_latest()]
    if fmt == "jsonl":
        for rec in records:
            print(json.dumps(rec))
    elif fmt == "json":
        print(json.dumps(records, indent=2))
    elif fmt == "table":
        for rec in records:
            mi = rec.get("media_info") or {}
            dur = (mi.get("container") or {}).get("duration")
            print(f"{rec['status']:<7} {dur if dur is not None else '':>9} {rec['path']}"
                  + (f"  ({rec['error']})" if rec["error"] else ""))
    else:
        raise fail(f"unknown format {fmt!r}: use table, jsonl, json or csv")


