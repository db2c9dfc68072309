"""A Rich progress bar for a run: files done / total, audio throughput, ETA, failures so far."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RunProgress:
    def __init__(self, step: str, total: int, *, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled and total > 0 and self.console.is_terminal
        self.total = total
        self.audio_s = 0.0
        self.failed = 0
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn(f"[bold]{step}[/]"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[throughput]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failures]}"),
            console=self.console,
            disable=not self.enabled,
        )
        self.task = self.progress.add_task(step, total=total, throughput="", failures="")

    def __enter__(self) -> "RunProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def advance(self, outcome) -> None:
        self.audio_s += outcome.audio_s
        self.failed += outcome.status != "ok"
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        throughput = (f"{self.audio_s / 3600:.2f} h audio · {self.audio_s / 3600 / elapsed:.3f} h/s "
                      f"({self.audio_s / elapsed:.0f}x)")
        failures = f"[red]{self.failed} failed[/]" if self.failed else ""
        self.progress.update(self.task, advance=1, throughput=throughput, failures=failures)
