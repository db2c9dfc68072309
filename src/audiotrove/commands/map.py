"""CLI command `map`: lay the collection out by similarity (2-D map, 1-D order, grid, clusters).

    audiotrove map [--units QUERY | --files | --windows SECONDS] [--where Q] [--model yamnet|descriptors|PATH]
                   [--method tsne|umap|pca] [--dims 2|1] [--grid WxH] [--clusters K|auto] [--seed N] [--sample N]
                   [--name NAME] [--update] [--png out.png] [--html out.html [--html-points N]] [--color FIELD]
                   [--redraw] [--format table|json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import EXIT_OK, err, fail, open_catalog, output_folder


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("map")(map_cmd)


def map_cmd(
    units: Optional[str] = typer.Option(None, "--units", "-u", help="Map the units matching this unit query ('all' for every unit)."),
    files: bool = typer.Option(False, "--files", help="Map the files (the default)."),
    windows: Optional[float] = typer.Option(None, "--windows", min=0.1, help="Map the windows of SECONDS (as embedded)."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Only items of the files matching this query."),
    model: str = typer.Option("yamnet", "--model", "-m", help="The vectors `embed` made with this model: yamnet, descriptors or PATH.onnx."),
    method: str = typer.Option("tsne", "--method", help="tsne (scikit-learn), umap (needs umap-learn) or pca."),
    dims: int = typer.Option(2, "--dims", min=1, max=2, help="2: map.x/map.y, grid and order; 1: only map.order."),
    grid: Optional[str] = typer.Option(None, "--grid", help="WxH grid for grid.col/grid.row (default: the smallest near-square that fits)."),
    clusters: str = typer.Option("auto", "--clusters", "-k", help="Number of k-means clusters, or auto (best silhouette, 2-12)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same map."),
    sample: int = typer.Option(10000, "--sample", min=100, help="t-SNE/UMAP: fit on at most this many items, place the rest by their nearest fitted neighbours."),
    name: str = typer.Option("map", "--name", help="Map name: other names keep their own fields (map.NAME.x...)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write a picture of the map."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an interactive map: one self-contained HTML file (hover to hear a unit, box to select)."),
    html_points: int = typer.Option(200_000, "--html-points", min=1, help="--html: at most this many points (a random subset of a larger map)."),
    color: str = typer.Option("cluster", "--color", help="Colour the picture by this field (a file field, or a unit field for units); --html takes several: a,b."),
    update: bool = typer.Option(False, "--update", help="Place the items added since map NAME was made on it, without recomputing it."),
    redraw: bool = typer.Option(False, "--redraw", help="Draw the stored map NAME again (with --png or --html) without recomputing it."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json (the map's summary)."),
):
    """Lay items out by the similarity of their embedding vectors (run `embed` first).

    Stores per item map.x, map.y (2-D layout), map.order (rank along a 1-D layout: play in
    this order to hear similar sounds together), grid.col, grid.row (one item per grid cell,
    neighbours kept together) and map.cluster (k-means on the full vectors). For files the
    fields are queryable (`ls 'map.cluster = 2' --sort map.order`); every map is also a
    Parquet table under .audiotrove/maps/ (`audiotrove.open(...).map()`).
    """
    from ..catalog.query import QueryError
    from ..maps.build import make_map
    from ..maps.grid import parse_grid
    from ..maps.store import load_table
    from ..models import ModelError

    chosen = [lvl for lvl, on in (("unit", units is not None), ("file", files), ("window", windows is not None)) if on]
    if len(chosen) > 1:
        raise fail("give one of --units, --files, --windows")
    level = chosen[0] if chosen else "file"
    if fmt not in ("table", "json"):
        raise fail("--format is table or json")
    if clusters != "auto" and not (clusters.isdigit() and int(clusters) >= 1):
        raise fail(f"--clusters is a number of clusters or auto, not {clusters!r}")
    with open_catalog() as cat:
        try:
            if update:
                from ..maps.update import update_map

                df, info = update_map(cat, name=name, level=level)
            elif redraw:
                try:
                    df, info = load_table(cat.root, name, level)
                except FileNotFoundError:
                    raise UsageError(f"no {level} map named {name!r} yet: run `audiotrove map` first") from None
            else:
                df, info = make_map(cat, level=level, model=model, where=where, units=units,
                                    window_s=windows or 1.0, method=method, dims=dims,
                                    grid=parse_grid(grid) if grid else None,
                                    clusters=clusters if clusters == "auto" else int(clusters),
                                    seed=seed, name=name, sample=sample)
            colours = [c.strip() for c in color.split(",") if c.strip()] or ["cluster"]
            if png is not None:
                from ..maps.plot import write_png
                from ..views.maps import colour_values

                write_png(df, info, png, color=colours[0], values=colour_values(cat, df, level, colours[0]))
            if html is not None:
                from ..maps.html import write_html
                from ..views.maps import map_points

                output_folder(html)
                write_html(map_points(cat, name=name, level=level, color=colours, limit=html_points, arrays=True),
                           html)
        except (UsageError, QueryError, ModelError) as exc:
            raise fail(str(exc))
    if fmt == "json":
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(info)
    if info.get("placed") is not None:
        err.print(f"placed {info['placed']} new item(s) on the map, dropped {info['dropped']}")
    if info.get("advice"):
        err.print(f"[yellow]advice:[/] {info['advice']}")
    if png is not None:
        err.print(f"picture: {png}")
    if html is not None:
        shown = min(info["count"], html_points)
        err.print(f"interactive map: {html} ({shown} of {info['count']} points)" if shown < info["count"]
                  else f"interactive map: {html}")
    raise typer.Exit(EXIT_OK)


def _print(info: dict) -> None:
    grid = f", grid {info['grid'][0]}x{info['grid'][1]}" if info.get("grid") else ""
    times = info.get("times_s", {})
    print(f"{info['name']}: {info['count']} {info['level']}s, {info['model']} vectors, "
          f"{info['method']} {info['dims']}-D{grid}, seed {info['seed']}"
          + (f", {times['total_s']:.1f} s" if "total_s" in times else "")
          + (f" (fitted on {info['fitted']}, the rest placed)" if info.get("fitted", info["count"]) < info["count"] else ""))
    for c in info["clusters"]:
        m = c["medoid"]
        where = f":{m['unit']}" if info["level"] == "unit" else (f"@{m['start']:.1f}s" if info["level"] == "window" else "")
        medians = ""
        if c.get("medians"):
            medians = "  " + " ".join(f"{k}={v:g}" for k, v in c["medians"].items() if v is not None)
        print(f"  cluster {c['cluster']:>2}: {c['size']:>6} items, medoid {m['path']}{where}{medians}")
    prefix = "map" if info["name"] == "map" else f"map.{info['name']}"
    gprefix = "grid" if info["name"] == "map" else f"grid.{info['name']}"
    if info["level"] == "file":
        err.print(f"fields: {prefix}.x {prefix}.y {prefix}.order {prefix}.cluster {gprefix}.col {gprefix}.row "
                  f"(try: audiotrove ls '{prefix}.cluster = 0' --sort {prefix}.order)")
