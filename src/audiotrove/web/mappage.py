"""The Map page: a stored map (`audiotrove map`) drawn by the map module (maps/static/mapview.js
and mappage.js, served as static files), its points from views.map_points.

    /map?name=map&level=unit&color=power&limit=1000000    the page
    /map.json?...                                         map_points(...) (what `map --html` inlines)
    /maps.json                                            list_maps (the stored maps)

A point plays its stretch of the original (/file/ID/audio with a media fragment: the player
fetches it with HTTP Range). A box selection opens as a units (or files) list.
"""
from __future__ import annotations

import threading
from typing import Optional

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response

from ..errors import UsageError
from . import pages

MAX_POINTS = 1_000_000


def register(app, coll, html, twin_of) -> None:
    def data(name, level, color, limit):
        from ..views.maps import map_points

        return map_points(coll.catalog(), name=name or None, level=level or None, color=color or None,
                          limit=limit, arrays=True)

    def encoded(name, level, color, limit, fmt: str) -> bytes:
        """map.json's (or map.bin's) bytes, kept while the stored maps stay as they are
        (1 000 000 points take a second to read and encode)."""
        from ..io.jsonarrays import dumps
        from ..maps.store import maps_dir
        from .app import _default

        folder = maps_dir(coll.root)
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())) if folder.exists() else ()
        key = (fmt, name or "", level or "", color or "", limit, stamp)
        body = coll.maps.get(key)
        if body is None:
            points = data(name, level, color, limit)
            body = (dumps(points, default=_default).encode() if fmt == "json" else binary(points))
            coll.maps.put(key, body)
        return body

    def warm() -> None:  # the default map is read once at start, so the first visit draws at once
        try:
            encoded(None, None, None, MAX_POINTS, "bin")
        except Exception:  # noqa: BLE001 - no map, or a broken one: the page will say why
            pass

    threading.Thread(target=warm, name="warm-map", daemon=True).start()

    @app.get("/map.bin")
    def map_bin(name: Optional[str] = Query(None, max_length=100), level: Optional[str] = Query(None, max_length=10),
                color: Optional[str] = Query(None, max_length=400), limit: int = Query(MAX_POINTS, ge=0, le=MAX_POINTS)):
        try:
            return Response(encoded(name, level, color, limit, "bin"), media_type="application/octet-stream")
        except UsageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    @app.get("/maps.json")
    def maps_json():
        from ..views.maps import list_maps

        from .app import _json

        return _json(list_maps(coll.catalog()))

    @app.get("/map.json")
    def map_json(name: Optional[str] = Query(None, max_length=100), level: Optional[str] = Query(None, max_length=10),
                 color: Optional[str] = Query(None, max_length=400), limit: int = Query(MAX_POINTS, ge=0, le=MAX_POINTS)):
        try:
            return Response(encoded(name, level, color, limit, "json"), media_type="application/json")
        except UsageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    @app.get("/map")
    def map_page(request: Request, name: Optional[str] = Query(None, max_length=100),
                 level: Optional[str] = Query(None, max_length=10), color: Optional[str] = Query(None, max_length=400),
                 limit: int = Query(MAX_POINTS, ge=0, le=MAX_POINTS)):
        from ..views.maps import list_maps

        stored = list_maps(coll.catalog())
        links = " · ".join(
            f'<a href="{pages.esc(pages.url("/map", name=m["name"], level=m["level"]))}">{pages.esc(m["name"])} '
            f'({pages.esc(m["level"])}s, {m["count"]})</a>' for m in stored)
        if not stored:
            body = pages.plain_error("no map yet: make one with `audiotrove map` (files) or "
                                     "`audiotrove map --units all` (units), after `audiotrove embed`")
            return html("Map", body, active="map")
        src = pages.url("/map.bin", name=name, level=level, color=color, limit=limit if limit != MAX_POINTS else None)
        body = (f'<p class=meta>stored maps: {links} · <a id=map-open href="/units" hidden>open the selection as a list</a></p>'
                f'<div id=app data-src="{pages.esc(src)}"></div>')
        return html("Map", body, active="map", twin=twin_of(request), scripts=("app.js", "map.js"),
                    styles=("maps/mappage.css",))


FLOAT_COLUMNS = ("x", "y", "start", "dur")


def _typed(name: str, values):
    """One column as the page reads it: float32 (NaN where missing) or int32."""
    import numpy as np

    if isinstance(values, list):  # map_points' lists
        if name not in FLOAT_COLUMNS and None not in values:
            return np.asarray(values, dtype="<i4")
        return np.asarray([np.nan if v is None else v for v in values] if None in values else values, dtype="<f4")
    if isinstance(values, np.ma.MaskedArray):  # integers, some missing
        return np.where(np.ma.getmaskarray(values), np.nan, values.data).astype("<f4")
    if name in FLOAT_COLUMNS or values.dtype.kind == "f":
        return values.astype("<f4")
    return values.astype("<i4")


def binary(points: dict) -> bytes:
    """map_points' data (lists, or arrays=True's arrays: the same bytes) with its long columns
    as typed arrays, for the page (the JSON twin is /map.json): a little-endian uint32 header
    length, the JSON header (everything else, plus "binary": [{"name", "type", "offset",
    "length"}]), padded to 4 bytes, then the arrays: x, y, start, dur as float32, the integer
    columns as int32 (float32 with NaN where a value is missing), category colour codes as int32;
    a column that is None as a whole (col, row without a grid) stays None in the header. Reading
    it costs no parsing in the browser."""
    import numpy as np

    from ..io.jsonarrays import dumps

    head = {k: v for k, v in points.items() if k not in ("columns", "colors")}
    head["columns"] = {}
    head["colors"] = {}
    arrays: list[tuple[str, np.ndarray]] = []
    for name, values in points["columns"].items():
        if values is None:  # a whole column without values (col, row of a map without a grid)
            head["columns"][name] = None
        else:
            arrays.append((f"columns.{name}", _typed(name, values)))
    for field, spec in points["colors"].items():
        if spec.get("kind") == "category":
            head["colors"][field] = {k: v for k, v in spec.items() if k != "values"}
            arrays.append((f"colors.{field}", np.asarray(spec["values"], dtype="<i4")))
        else:  # a range keeps its nulls (JSON)
            head["colors"][field] = spec
    table, offset = [], 0
    for name, a in arrays:
        table.append({"name": name, "type": "int32" if a.dtype.kind == "i" else "float32",
                      "offset": offset, "length": int(len(a))})
        offset += a.nbytes
    head["binary"] = table
    text = dumps(head).encode()
    text += b" " * (-(4 + len(text)) % 4)
    return b"".join([np.uint32(len(text)).astype("<u4").tobytes(), text] + [memoryview(a) for _, a in arrays])
