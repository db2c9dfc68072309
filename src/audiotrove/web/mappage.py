"""The Map page: the stored maps drawn in the browser (filled in with the map module)."""
from __future__ import annotations


def register(app, coll, html, twin_of) -> None:
    @app.get("/map")
    def map_page():
        return html("Map", "<p>no map view yet</p>", active="map")
