"""Human formatting for tables and the report. How a field's value reads is the field registry's
business (catalog/fields.py: Field.format, format_stat); this module lays out tables."""
from __future__ import annotations

import json
import math

from ..catalog.fields import Field, clock, size  # noqa: F401 - clock/size used via fmt.


def stored_list(value, *, text_as_item: bool = False) -> list:
    """A list field as the index hands it back: a list, JSON text of one, or None.

    Text that is not JSON is [text] with `text_as_item`, else []; anything else is [].
    """
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if text_as_item else []
    return value if isinstance(value, list) else []


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 file', '0 files', '2 files' (`plural` where adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def value(field: Field, v, *, unit: bool = False) -> str:
    """A cell: the field registry's formatting (catalog/fields.py)."""
    return field.format(v, unit=unit)


def shared(field: Field, v) -> str:
    """A value every file has, for a sentence ("all 0%", "all 16000 Hz", "all 1:00.0"): the
    registry's formatting with the unit, a whole number written without decimals. Whether the
    registry writes the value as a plain number (not a clock, a size or 128k) is read from what
    it writes, so no unit is named here."""
    text = field.format(v, unit=True)
    if field.kind != "number" or not isinstance(v, (int, float)) or not float(v).is_integer():
        return text
    number = field.format(v)
    try:
        plain = float(number) == float(v)
    except ValueError:  # a clock, a size, a bitrate in k...
        return text
    return f"{int(v)}{text[len(number):]}" if plain and text.startswith(number) else text


def formatter(field: Field):
    return field.formatter()


def number(field: Field, v) -> str:
    """A statistic of a field (mean, quartile...) in the field's unit."""
    return field.format_stat(v)


def spark(counts: list[int]) -> str:
    """A histogram as one line of block characters."""
    if not counts:
        return ""
    blocks = " ▁▂▃▄▅▆▇█"
    top = max(counts) or 1
    return "".join(blocks[0 if c == 0 else max(1, round(c / top * 8))] for c in counts)


def table(headers: list[str], rows: list[list[str]], *, align: list[str] | None = None,
          last_free: bool = True) -> list[str]:
    """Plain aligned text lines ('r' right-aligns a column); the last column is not padded."""
    align = align or ["l"] * len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        for k, cell in enumerate(row):
            if len(cell) > widths[k]:
                widths[k] = len(cell)
    lines = []
    for row in [headers] + rows:
        cells = []
        for k, cell in enumerate(row):
            if last_free and k == len(row) - 1:
                cells.append(cell)
            elif align[k] == "r":
                cells.append(cell.rjust(widths[k]))
            else:
                cells.append(cell.ljust(widths[k]))
        lines.append("  ".join(cells).rstrip())
    return lines
