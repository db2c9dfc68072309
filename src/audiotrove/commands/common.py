"""What every command shares: the collection option, error exits, running a step."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..catalog.db import Catalog, CatalogError

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

err = Console(stderr=True)


class State:
    """Global options, set by the app callback."""

    collection: Optional[Path] = None


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print an error and return the Exit to raise: `raise fail("...")`."""
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def open_catalog() -> Catalog:
    try:
        return Catalog.open(State.collection or Path.cwd())
    except CatalogError as exc:
        raise fail(str(exc))


def run_step_cli(cat: Catalog, step: str, overrides: dict, **kwargs):
    """run_step with Ctrl-C turned into a clean exit (finished items are already saved), and a
    usage error (another run holds the step's lock) into exit status 2."""
    from ..errors import UsageError
    from ..runner import run_step

    try:
        return run_step(cat, step, overrides, **kwargs)
    except UsageError as exc:
        raise fail(str(exc))
    except KeyboardInterrupt as exc:
        summary = getattr(exc, "summary", None)
        if summary is not None:
            err.print(summary.line())
        err.print("interrupted: finished items are saved; run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)


def exit_code(summary) -> int:
    """0 when every item is ok, 1 (and a message saying how many) when some failed,
    in this run or in an earlier one whose failure still stands."""
    failed = summary.failed + getattr(summary, "failed_before", 0)
    if failed:
        err.print(f"[red]{failed} item(s) failed[/]: see `audiotrove status`")
        return EXIT_FAILURES
    return EXIT_OK
