"""The data layer: one function per listing or summary, returning plain data.

Front doors (the CLI in commands/, the Python API in api.py, a web page) call these and only
format what they return: the CLI's `--format json`, `audiotrove.open(...)` and a page's JSON twin
give the same data. Nothing here prints.

    files     open_index, select_file_ids, list_files (ls), file_frame (api, export), export_files
    summary   stats (the `stats` object), field_list (`fields`), status (`status`)
    report    report_data (`report --format json`, and what the HTML page shows)
    units     list_units (`units`, `render`), collect_garbage (`gc`)
    oneoff    analyze_files (one-off `analyze FILES`)
    maps      map_points (`map --html`, the web map), list_maps, load_map, colour_values
    transcripts  search_transcripts (`search`, the web's Search page), iter_transcripts
"""
from .files import Listing, export_files, file_frame, list_files, open_index, select_file_ids
from .summary import field_list, stats, status

_LAZY = {"GarbageReport": "units", "UnitListing": "units", "collect_garbage": "units",
         "list_units": "units", "map_points": "maps", "list_maps": "maps", "load_map": "maps",
         "colour_values": "maps", "search_transcripts": "transcripts", "iter_transcripts": "transcripts"}


def __getattr__(name: str):  # the units views need pandas/pyarrow/duckdb: imported on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)

__all__ = ["Listing", "export_files", "file_frame", "list_files", "open_index", "select_file_ids",
           "field_list", "stats", "status", "UnitListing", "list_units", "GarbageReport",
           "collect_garbage", "map_points", "list_maps", "load_map", "colour_values", "search_transcripts",
           "iter_transcripts"]
