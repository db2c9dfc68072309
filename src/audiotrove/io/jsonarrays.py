"""JSON text of data that holds numpy arrays, byte for byte what json.dumps writes for the same
data with lists, without a Python object per number (views/maps.py's arrays form of a map:
1 000 000 points in a fraction of json.dumps' time).

    dumps(data, separators=(",", ":"))  ==  json.dumps(as_lists(data), separators=(",", ":"))

An array is written as the list it stands for: float arrays with null where a value is NaN
(a missing value), integer arrays, and integer masked arrays with null where masked. A float is
written as Python writes it (repr: the shortest text that reads back to the same float): the
numbers that can be (a short decimal between 1e-4 and 1e15, which a rounded map coordinate or
colour value is) are written from their integer digits on whole columns; the others one by one
with json.dumps. Everything else goes through json.dumps as it is.
"""
from __future__ import annotations

import json
import secrets

import numpy as np

_POW10 = 10.0 ** np.arange(23)


def as_lists(data):
    """`data` with lists (None where missing) for its arrays: what dumps writes."""
    if isinstance(data, dict):
        return {k: as_lists(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [as_lists(v) for v in data]
    if isinstance(data, np.ndarray):
        if isinstance(data, np.ma.MaskedArray):
            out, missing = data.data.astype(object), np.ma.getmaskarray(data)
        elif data.dtype.kind == "f":
            out, missing = data.astype(object), np.isnan(data)
        else:
            return data.tolist()
        out[missing] = None
        return out.tolist()
    return data


def dumps(data, **kwargs) -> str:
    """json.dumps(as_lists(data), **kwargs), the arrays written in bulk (not with `indent`)."""
    if kwargs.get("indent") is not None:
        return json.dumps(as_lists(data), **kwargs)
    sep = (kwargs.get("separators") or (", ", ": "))[0].encode()
    allow_nan = kwargs.get("allow_nan", True)
    nonce = secrets.token_hex(8)
    arrays: list[np.ndarray] = []

    def skeleton(v):
        if isinstance(v, dict):
            return {k: skeleton(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [skeleton(x) for x in v]
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iuf":
            arrays.append(v)
            return f"{nonce}{len(arrays) - 1}"
        if isinstance(v, np.ndarray):
            return as_lists(v)
        return v

    text = json.dumps(skeleton(data), **kwargs)
    if not arrays:
        return text
    parts = text.split(f'"{nonce}')
    out = [parts[0]]
    for part in parts[1:]:
        k, _, rest = part.partition('"')
        out.append("[" + _array_text(arrays[int(k)], sep, allow_nan).decode() + "]")
        out.append(rest)
    return "".join(out)


def _array_text(a: np.ndarray, sep: bytes, allow_nan: bool) -> bytes:
    """The items of the list `a` stands for, joined by sep (no brackets)."""
    if len(a) == 0:
        return b""
    if a.dtype.kind == "f":
        return _floats(a.astype(np.float64, copy=False), sep, allow_nan)
    missing = np.ma.getmaskarray(a) if isinstance(a, np.ma.MaskedArray) else None
    values = np.asarray(a.data if isinstance(a, np.ma.MaskedArray) else a)
    if values.dtype.kind == "u" and values.max() > np.iinfo(np.int64).max:
        return _fallback(a, sep, allow_nan)
    values = values.astype(np.int64, copy=False)
    if values.min() == np.iinfo(np.int64).min:
        return _fallback(a, sep, allow_nan)
    n = len(values)
    sign = values < 0
    mag = np.abs(values)
    width = max(4, len(str(int(mag.max()))) + 1)  # room for "null" and a sign
    m = np.zeros((n, width + len(sep)), np.uint8)
    m[sign, 0] = ord("-")
    _digits(m, mag, last=width - 1, count=width - 1, keep_leading=False)
    return _finish(m, sep, missing)


def _floats(a: np.ndarray, sep: bytes, allow_nan: bool) -> bytes:
    n = len(a)
    missing = np.isnan(a)
    mag = np.abs(a)
    fast = ~missing & np.isfinite(a) & ((mag >= 1e-4) | (a == 0)) & (mag < 1e15)
    d = _decimals(a[fast], mag[fast])
    k = np.zeros(n, np.int64)
    if d is not None:
        scaled = np.rint(a[fast] * _POW10[d])
        ok = (np.abs(scaled) < 1e15) & (scaled / _POW10[d] == a[fast])  # the decimal reads back as a
        k[fast] = np.where(ok, scaled, 0).astype(np.int64)
        fast[np.flatnonzero(fast)[~ok]] = False
    else:
        fast[:] = False
    slow = np.flatnonzero(~fast & ~missing)
    texts = [json.dumps(float(a[i]), allow_nan=allow_nan).encode() for i in slow]
    d = d or 0
    kabs = np.abs(k)
    ip, fp = np.divmod(kabs, np.int64(10 ** d))
    int_width = max(1, len(str(int(ip.max()))))
    frac_width = max(1, d)
    width = max(4, 1 + int_width + 1 + frac_width, max((len(t) for t in texts), default=0))
    m = np.zeros((n, width + len(sep)), np.uint8)
    m[fast & np.signbit(a), 0] = ord("-")
    _digits(m, ip, last=int_width, count=int_width, keep_leading=False)
    m[:, int_width + 1] = ord(".")
    if d == 0:
        m[:, int_width + 2] = ord("0")
    else:  # d digits of the fraction, its trailing zeros dropped, "0" when it is 0
        _digits(m, fp, last=int_width + 1 + d, count=d, keep_leading=True)
        for j in range(d):  # column int_width + 2 + j holds the digit of 10^-(j+1)
            trailing = fp % np.int64(10 ** (d - j)) == 0
            m[trailing, int_width + 2 + j] = 0
        m[fp == 0, int_width + 2] = ord("0")
    if len(slow):
        m[slow, :width] = 0
        for i, t in zip(slow, texts):
            m[i, :len(t)] = np.frombuffer(t, np.uint8)
    return _finish(m, sep, missing)


def _decimals(values: np.ndarray, mag: np.ndarray) -> int | None:
    """The fewest decimals that write all of `values` exactly (all but 1 %, which are then
    written one by one): guessed on a sample, raised while more than 1 % need more."""
    if len(values) == 0:
        return None
    top = float(mag.max())
    int_digits = len(str(int(top))) if top >= 1 else 0
    most = min(15 - int_digits, len(_POW10) - 1)
    if most < 0:
        return None

    def failing(v, d):
        return v[np.rint(v * _POW10[d]) / _POW10[d] != v]

    sample = values[:: max(1, len(values) // 2000)]
    d = next((d for d in range(most + 1) if not len(failing(sample, d))), most)
    rest = failing(values, d)
    while len(rest) > len(values) // 100 and d < most:  # (written at d, a value is also at d + 1)
        d += 1
        rest = failing(rest, d)
    return d


def _digits(m: np.ndarray, v: np.ndarray, *, last: int, count: int, keep_leading: bool) -> None:
    """Write the decimal digits of the non-negative integers v into m, the units in column
    `last`, `count` columns leftwards; leading zeros left as 0 (not written) unless keep_leading
    (a 0 itself is written as "0")."""
    rest = v.copy()
    for j in range(count):
        rest, digit = np.divmod(rest, 10)
        col = digit.astype(np.uint8) + ord("0")
        if not keep_leading and j > 0:
            col[v < 10 ** j] = 0
        m[:, last - j] = col


def _finish(m: np.ndarray, sep: bytes, missing) -> bytes:
    if sep:
        m[:, -len(sep):] = np.frombuffer(sep, np.uint8)
    if missing is not None and missing.any():
        m[missing, :-len(sep) or None] = 0
        m[missing, :4] = np.frombuffer(b"null", np.uint8)
    out = m[m != 0].tobytes()
    return out[:-len(sep)] if sep else out


def _fallback(a, sep: bytes, allow_nan: bool) -> bytes:
    return sep.join(json.dumps(v, allow_nan=allow_nan).encode() for v in as_lists(a))


__all__ = ["dumps", "as_lists"]
