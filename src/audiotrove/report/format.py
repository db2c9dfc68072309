"""Human formatting of field values (tables of `ls` and `stats`, the HTML report)."""
from __future__ import annotations

import json
import math

from ..catalog.fields import Field

_DB = {"LUFS", "LU", "dBFS", "dBTP", "dB"}


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


def clock(seconds: float | None, *, decimals: int = 1) -> str:
    """83.4 -> '1:23.4', 3725 -> '1:02:05'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds), decimals)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h >= 1:
        return f"{sign}{int(h)}:{int(m):02d}:{int(sec):02d}"
    width = 3 + decimals if decimals else 2
    return f"{sign}{int(m)}:{sec:0{width}.{decimals}f}"


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def size(num_bytes: float | None) -> str:
    if num_bytes is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num_bytes) < 1000 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1000.0
    return "-"


def value(field: Field, v, *, unit: bool = False) -> str:
    """A cell: numbers rounded to what the unit deserves, '-' for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    u = field.unit
    if field.kind == "bool":
        return "yes" if v else "no"
    if field.kind == "list":
        items = json.loads(v) if isinstance(v, str) else v
        return f"[{len(items)}]"
    if field.kind == "text" or not isinstance(v, (int, float)):
        return str(v)
    if u == "s":
        text = clock(float(v))
    elif u == "bytes":
        text = size(float(v))
    elif u == "bit/s":
        text = f"{v / 1000:.0f}k" if v >= 1000 else f"{v:.0f}"
    elif u in _DB:
        text = f"{v:.1f}"
    elif u == "%":
        text = f"{v:.1f}"
    elif u == "Hz":
        text = f"{v:.0f}"
    elif u == "FS":
        text = f"{v:.4f}"
    elif field.integer or (isinstance(v, int)) or float(v).is_integer():
        text = f"{int(v)}"
    elif abs(v) >= 100:
        text = f"{v:.0f}"
    else:
        text = f"{v:.2f}"
    if unit and u and u not in ("s", "bytes", "bit/s", "count"):
        text += f" {u}" if u != "%" else "%"
    return text


def formatter(field: Field):
    """A one-argument cell formatter for a field (what `value` does, minus the per-cell
    dispatch: for long tables)."""
    u, kind = field.unit, field.kind
    if kind == "number" and u in _DB | {"%"}:
        return lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, (int, float)) else str(v))
    if kind == "number" and u == "Hz":
        return lambda v: "-" if v is None else (f"{v:.0f}" if isinstance(v, (int, float)) else str(v))
    if kind == "text":
        return lambda v: "-" if v is None else str(v)
    if kind == "number" and u == "s":
        return _clock_cell
    if kind == "number" and field.integer and u not in ("bytes", "bit/s"):
        return lambda v: "-" if v is None else (str(v) if type(v) is int else value(field, v))
    return lambda v: value(field, v)


def _clock_cell(v) -> str:
    """clock() for table cells: the common case (under an hour) without divmod chains."""
    if v is None or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    v = round(v, 1)
    if 0 <= v < 3600:
        m = int(v // 60)
        return f"{m}:{v - 60 * m:04.1f}"
    return clock(float(v))


def number(field: Field, v) -> str:
    """A statistic of a field (mean, quartile...) in the field's unit."""
    if v is None:
        return "-"
    if field.unit in ("s",):
        return clock(v)
    if field.unit == "bytes":
        return size(v)
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


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
