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
                          limit=limit)

    def encoded(name, level, color, limit) -> bytes:
        """map.json's bytes, kept while the stored maps stay as they are (1 000 000 points take
        seconds to read and encode)."""
        import json

        from ..maps.store import maps_dir
        from .app import _default

        folder = maps_dir(coll.root)
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())) if folder.exists() else ()
        key = (name or "", level or "", color or "", limit, stamp)
        body = coll.maps.get(key)
        if body is None:
            body = json.dumps(data(name, level, color, limit), default=_default).encode()
            coll.maps.put(key, body)
        return body

    def warm() -> None:  # the default map is read once at start, so the first visit draws at once
        try:
            encoded(None, None, None, MAX_POINTS)
        except Exception:  # noqa: BLE001 - no map, or a broken one: the page will say why
            pass

    threading.Thread(target=warm, name="warm-map", daemon=True).start()

    @app.get("/maps.json")
    def maps_json():
        from ..views.maps import list_maps

        from .app import _json

        return _json(list_maps(coll.catalog()))

    @app.get("/map.json")
    def map_json(name: Optional[str] = Query(None, max_length=100), level: Optional[str] = Query(None, max_length=10),
                 color: Optional[str] = Query(None, max_length=400), limit: int = Query(MAX_POINTS, ge=0, le=MAX_POINTS)):
        try:
            return Response(encoded(name, level, color, limit), media_type="application/json")
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
        src = pages.url("/map.json", name=name, level=level, color=color, limit=limit if limit != MAX_POINTS else None)
        body = (f'<p class=meta>stored maps: {links} · <a id=map-open href="/units" hidden>open the selection as a list</a></p>'
                f'<div id=app data-src="{pages.esc(src)}"></div>')
        return html("Map", body, active="map", twin=twin_of(request), scripts=("app.js", "map.js"),
                    styles=("maps/mappage.css",))
