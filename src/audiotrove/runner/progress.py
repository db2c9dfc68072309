"""A Rich progress bar for a run: files done / total, audio throughput, ETA, failures so far.

The audio count moves within a file too: workers report the seconds they have decoded
(`decoding`), so a long file shows progress while it is processed, and the speed is shown as
"x real time" (seconds of audio per second of wall time).
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RunProgress:
    def __init__(self, step: str, total: int, *, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled and total > 0 and self.console.is_terminal
        self.total = total
        self.audio_s = 0.0
        self.in_flight: dict[int, float] = {}  # file id -> seconds decoded so far
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
            # lines a caller prints while the bar is shown (one-off analyze's JSON lines) go
            # above it when stdout is the terminal too, and to stdout untouched when it is piped
            redirect_stdout=sys.stdout.isatty(),
        )
        self.task = self.progress.add_task(step, total=total, throughput="", failures="")

    def __enter__(self) -> "RunProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def decoding(self, item, decoded_s: float) -> None:
        """A worker has decoded `decoded_s` seconds of `item` so far."""
        self.in_flight[item.file_id] = decoded_s
        self._show(advance=0)

    def advance(self, outcome) -> None:
        self.in_flight.pop(outcome.file_id, None)
        self.audio_s += outcome.audio_s
        self.failed += outcome.status != "ok"
        self._show(advance=1)

    def line(self) -> str:
        """Audio done (finished files and decoded parts of those in flight) and the speed."""
        audio_s = self.audio_s + sum(self.in_flight.values())
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return f"{audio_s / 3600:.2f} h audio · {audio_s / elapsed:.0f}x real time"

    def _show(self, *, advance: int) -> None:
        if not self.enabled:
            return
        failures = f"[red]{self.failed} failed[/]" if self.failed else ""
        self.progress.update(self.task, advance=advance, throughput=self.line(), failures=failures)
