"""JSON of data that holds numpy arrays (views/maps.py's arrays form of a map): each array is
written as the list it stands for: float arrays with null where a value is NaN (a missing
value), integer arrays, and integer masked arrays with null where masked.

    dumps(data, separators=(",", ":"))  ==  json.dumps(as_lists(data), separators=(",", ":"))
"""
from __future__ import annotations

import json

import numpy as np


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
    """json.dumps of `data` with its arrays as lists (json.dumps' keyword arguments)."""
    return json.dumps(as_lists(data), **kwargs)


__all__ = ["dumps", "as_lists"]
