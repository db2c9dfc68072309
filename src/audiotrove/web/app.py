"""`audiotrove serve`: the collection in the browser. One route per page, each page = one data
function of views/ (or the function the CLI command calls) + a template of pages.py; its JSON
twin is the same address + `.json` and returns what the CLI's `--format json` prints for the
same query (datasette's way):

    /overview         report_data (+ status)         /overview.json = report --format json
    /files            list_files, keyset paging      /files.json    = ls Q --sort S --limit N --format json
    /export.{csv,parquet,json,jsonl}  export_files   (= export OUT --where Q --fields F --sort S)
    /file/ID          the file's record, picture, timeline, player, transcript, similar files
                                                      /file/ID.json  = its object in ls --format json
    /file/ID/audio    the original (HTTP Range)       /file/ID/enhanced  the enhanced output
    /file/ID/picture.webp  waveform + spectrogram     /file/ID/cut.wav?start=&dur=  a stretch
    /units            list_units                      /units.json    = units ... --format json
    /unit/ID/N.wav    one unit, cut on the fly        /units/render.wav  the selection as one WAV
    /similar?target=  vectors.search.similar          /similar.json  = similar T --format json
    /search?phrase=   transcript search               /search.json   = search P --format jsonl (as a list)
    /map              the stored map                  /map.json
    /fields.json, /status.json                        = fields / status --format json

Read-only by construction: requests read the catalog through a read-only SQLite connection
(`mode=ro`), files are found by catalog id only (never a path from the request), queries go
through the query language only. security.Guard adds the method, host, size and CSP rules.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..catalog.db import CATALOG_DIR, CATALOG_FILE, Catalog
from ..catalog.index import FieldIndex
from ..catalog.query import And, QueryError, parse_field_list, parse_sort
from ..errors import UsageError
from ..views.units import frame_records
from . import pages
from .media import ByteCache, CUT_CACHE_BYTES, MAX_CUT_S, PICTURE_CACHE_BYTES, cut_wav, media_type, picture
from .security import Guard

STATIC = Path(__file__).with_name("static")
MAP_STATIC = Path(__file__).parent.parent / "maps" / "static"
MAX_QUERY_CHARS = 4000  # one query text (the query language caps conditions and nesting too)
PAGE_ROWS = 100  # files per page (and the JSON twin's default --limit)
MAX_PAGE_ROWS = 10000
UNITS_DEFAULT_LIMIT = 200
MAX_UNITS = 5000
MAX_RENDER_UNITS = 2000
MAP_CACHE_BYTES = 256 * 2**20  # the map's JSON, kept for the next visit (1 000 000 points: 70 MB)


class TooLarge(ValueError):
    pass


class Collection:
    """The served collection: a read-only catalog connection per thread, caches of cuts and pictures."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.db_path = self.root / CATALOG_DIR / CATALOG_FILE
        if not self.db_path.exists():
            raise UsageError(f"{self.root} is not a collection (no {CATALOG_DIR}/{CATALOG_FILE})")
        self._local = threading.local()
        self.cuts = ByteCache(CUT_CACHE_BYTES)
        self.pictures = ByteCache(PICTURE_CACHE_BYTES)
        self.maps = ByteCache(MAP_CACHE_BYTES)
        self._counts: dict = {}
        self._counts_lock = threading.Lock()

    def version(self) -> tuple:
        """Changes whenever the catalog does (a commit writes the WAL or the database file)."""
        out = []
        for p in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal")):
            try:
                st = p.stat()
                out += [st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                out += [0, 0]
        return tuple(out)

    def count(self, idx: FieldIndex, q: Optional[str]) -> int:
        """Files matching q, remembered for the catalog's present version (paging through a
        listing asks the same count on every page)."""
        key = (q or "", self.version())
        with self._counts_lock:
            if key in self._counts:
                return self._counts[key]
        n = idx.count(idx.parse(q)) if q and q.strip() else idx.count(None)
        with self._counts_lock:
            if len(self._counts) > 1000:
                self._counts.clear()
            self._counts[key] = n
        return n

    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = read_only_catalog(self.root, self.db_path)
            self._local.catalog = cat
        return cat

    def index(self) -> FieldIndex:
        """The field index as it stands (a read-only catalog is never re-indexed here:
        `stale_files` says how many changed files it misses)."""
        return FieldIndex.open(self.catalog())


def read_only_catalog(root: Path, db_path: Path) -> Catalog:
    """A Catalog whose connection SQLite opens read-only (`mode=ro`): no request can write."""
    cat = Catalog.__new__(Catalog)  # Catalog() opens read-write and may upgrade the schema
    cat.root, cat.db_path = root, db_path
    cat.conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True, timeout=30.0,
                               isolation_level=None, check_same_thread=False)
    cat.conn.row_factory = sqlite3.Row
    cat.schema_version = cat._read_version()
    return cat


def _text(value: Optional[str], what: str) -> Optional[str]:
    if value is not None and len(value) > MAX_QUERY_CHARS:
        raise TooLarge(f"the {what} is too long ({len(value)} characters; at most {MAX_QUERY_CHARS})")
    return value or None


def create_app(root: str | os.PathLike, *, any_host: bool = False) -> Guard:
    """The ASGI app serving the collection at `root` (wrapped in security.Guard)."""
    coll = Collection(root)
    app = FastAPI(title="audiotrove", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.collection = coll
    app.mount("/static/maps", StaticFiles(directory=MAP_STATIC), name="maps")  # the map module's files
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    name = coll.root.name

    def html(title: str, body: str, *, active: str, twin: str | None = None, notice: str | None = None,
             scripts=("app.js",), styles=(), status: int = 200) -> HTMLResponse:
        return HTMLResponse(pages.layout(title, body, active=active, collection=name, twin=twin,
                                         notice=notice, scripts=scripts, styles=styles), status_code=status)

    def twin_of(request: Request) -> str:
        q = request.url.query
        return request.url.path + ".json" + ("?" + q if q else "")

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, exc: TooLarge):
        return JSONResponse({"error": str(exc)}, status_code=413)

    @app.get("/")
    def home():
        return RedirectResponse("/overview", status_code=302)

    @app.get("/favicon.ico")
    def favicon():
        return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")

    # ---------------------------------------------------------------------------- overview
    def overview_data(where: Optional[str]) -> dict:
        from ..views.report import report_data

        return report_data(coll.index(), where=_text(where, "query"))

    @app.get("/overview.json")
    def overview_json(where: Optional[str] = None):
        try:
            return _json(overview_data(where))
        except QueryError as exc:
            return _query_json(exc)

    @app.get("/overview")
    def overview_page(request: Request, where: Optional[str] = None):
        from ..views import field_list, status

        idx = coll.index()
        try:
            data = overview_data(where)
        except QueryError as exc:
            return html("Overview", pages.query_error(exc, "/overview", "where", {}), active="overview")
        from ..report.tags import tag_table

        tags, _ = tag_table(idx, where=idx.parse(where) if where and where.strip() else None, limit=20)
        body = pages.overview(data, status(coll.catalog()), field_list(idx), tags)
        return html("Overview", body, active="overview", twin=twin_of(request), notice=_stale(idx))

    @app.get("/fields.json")
    def fields_json():
        from ..views import field_list

        return _json(field_list(coll.index()))

    @app.get("/status.json")
    def status_json():
        from ..views import status

        return _json(status(coll.catalog()))

    # ------------------------------------------------------------------------------- files
    def files_listing(q, fields, sort, limit, after, *, shape):
        """(Listing of up to limit + 1 rows, parsed sort keys, index) for a files page."""
        from ..views import list_files
        from ..views.item import after_node

        idx = coll.index()
        q, fields, sort = _text(q, "query"), _text(fields, "field list"), _text(sort, "sort")
        node = idx.parse(q) if q and q.strip() else None
        keys = parse_sort(sort, idx.fields) if sort else None
        if after:
            try:
                last = json.loads(after)
                if not isinstance(last, list) or any(isinstance(v, (dict, list)) for v in last):
                    raise ValueError
                cond = after_node(idx, keys, last)
            except ValueError:
                raise QueryError("the page cursor (after=) is not valid: start from the first page") from None
            node = cond if node is None else And((node, cond))
        listing = list_files(idx, node, fields=fields, sort=sort, limit=limit + 1, shape=shape)
        return listing, keys, idx

    def cursor(idx, keys, row: dict) -> str:
        from ..catalog.records import flatten
        from ..views.item import paging_keys

        flat = flatten(row) if any(isinstance(v, dict) for v in row.values()) else row
        return json.dumps([flat.get(f.name) for f, _ in paging_keys(idx, keys)])

    @app.get("/files.json")
    def files_json(request: Request, q: Optional[str] = None, fields: Optional[str] = None,
                   sort: Optional[str] = None, limit: int = Query(PAGE_ROWS, ge=0, le=MAX_PAGE_ROWS),
                   after: Optional[str] = None):
        try:
            listing, keys, idx = files_listing(q, fields, sort, limit, after,
                                               shape="records" if not fields else "all")
            if listing.texts is not None:
                rows = [json.loads(t) for t in listing.texts]
            else:
                rows = list(listing.dicts())
        except QueryError as exc:
            return _query_json(exc)
        headers = {}
        if len(rows) > limit:
            rows = rows[:limit]
            nxt = pages.url("/files.json", q=q, fields=fields, sort=sort, limit=limit,
                            after=cursor(idx, keys, rows[-1]))
            headers["link"] = f'<{nxt}>; rel="next"'
        return _json(rows, headers=headers)

    @app.get("/files")
    def files_page(request: Request, q: Optional[str] = None, fields: Optional[str] = None,
                   sort: Optional[str] = None, limit: int = Query(PAGE_ROWS, ge=1, le=MAX_PAGE_ROWS),
                   after: Optional[str] = None):
        from ..views.item import paging_keys

        idx = coll.index()
        names = [f.name for f in idx.fields]
        params = {"q": q, "fields": fields, "sort": sort}
        try:
            shown = fields
            if sort:  # the columns sorted on are shown
                keys = parse_sort(_text(sort, "sort"), idx.fields)
                chosen = (parse_field_list(_text(fields, "field list"), idx.fields) if fields else
                          [idx.fields.resolve(n) for n in _summary_columns(idx, q)])
                missing = [f for f, _ in keys if f not in chosen]
                if missing:
                    shown = ",".join(f.name for f in chosen + missing)
            listing, keys, idx = files_listing(q, shown, sort, limit, after, shape="summary")
            columns = listing.columns
            raw = list(listing.rows)
            count = coll.count(idx, q)
        except QueryError as exc:
            param = "q"
            if sort and exc.query == sort:
                param = "sort"
            elif fields and exc.query == fields:
                param = "fields"
            error = pages.query_error(exc, "/files", param, params)
            body = pages.files(q=q or "", fields_text=fields or "", sort=sort or "", columns=[], rows=[],
                               count=None, next_url=None, error=error, field_names=names, export={},
                               first_url=None)
            return html("Files", body, active="files")
        ids = _ids(coll.catalog(), [r[[f.name for f in columns].index("path")] for r in raw])
        rows = []
        for r in raw[:limit]:
            d = {f.name: f.json_value(v) for f, v in zip(columns, r)}
            d["_id"] = ids.get(d["path"])
            rows.append(d)
        shown_cols = columns[:-2] + [columns[-2]] if listing.path_last else columns
        next_url = None
        if len(raw) > limit:
            last = rows[-1]
            values = [last.get(f.name) for f, _ in paging_keys(idx, keys)]
            next_url = pages.url("/files", **params, limit=limit if limit != PAGE_ROWS else None,
                                 after=json.dumps(values))
        export = {ext: pages.url(f"/export.{ext}", q=q, fields=fields, sort=sort)
                  for ext in ("csv", "parquet", "json", "jsonl")}
        body = pages.files(q=q or "", fields_text=fields or "", sort=sort or "", columns=shown_cols, rows=rows,
                           count=count, next_url=next_url, error="", field_names=names, export=export,
                           first_url=pages.url("/files", **params) if after else None)
        return html("Files", body, active="files", twin=twin_of(request), notice=_stale(idx))

    @app.get("/export.{ext}")
    def export(ext: str, q: Optional[str] = None, fields: Optional[str] = None, sort: Optional[str] = None):
        from starlette.background import BackgroundTask

        from ..views import export_files

        if ext not in ("csv", "parquet", "json", "jsonl"):
            return JSONResponse({"error": f"cannot export .{ext}: use csv, parquet, json or jsonl"}, status_code=404)
        folder = tempfile.mkdtemp(prefix="audiotrove-serve-")
        out = Path(folder) / f"{name}-files.{ext}"

        def cleanup():
            for p in Path(folder).iterdir():
                p.unlink()
            os.rmdir(folder)
        try:
            export_files(coll.index(), out, where=_text(q, "query"), fields=_text(fields, "field list"),
                         sort=_text(sort, "sort"))
        except QueryError as exc:
            cleanup()
            return _query_json(exc)
        mime = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json",
                "jsonl": "application/jsonl"}[ext]
        return FileResponse(out, media_type=mime, filename=out.name, background=BackgroundTask(cleanup))

    # -------------------------------------------------------------------------------- file
    def file_ref(ref: str) -> tuple[int, bool]:
        is_json = ref.endswith(".json")
        digits = ref[:-5] if is_json else ref
        if not digits.isdigit() or len(digits) > 18:
            raise LookupError(ref)
        return int(digits), is_json

    @app.get("/file/{ref}")
    def file_page(ref: str):
        from ..views.item import file_record

        try:
            file_id, is_json = file_ref(ref)
        except LookupError:
            return _not_found(f"no file {ref!r}: files are addressed by their catalog id (/file/12)")
        idx = coll.index()
        record = file_record(idx, file_id)
        if record is None:
            return _not_found(f"no file with id {file_id}")
        if is_json:
            return _json(record)
        path = record.get("path", "")
        from ..report.media import browser_playable

        mi = record.get("media_info") or {}
        playable = _audio_of(file_id) is not None and (record.get("status") != "ok" or browser_playable(
            (mi.get("container") or {}).get("kind"), (mi.get("audio") or {}).get("codec")))
        enhanced = bool(_enhanced_path(record))
        body = pages.file_page(file_id, record, playable=playable, enhanced=enhanced,
                               similar_html=_similar_files(coll, file_id, record))
        return html(os.path.basename(path) or f"file {file_id}", body, active="files",
                    twin=f"/file/{file_id}.json")

    def _audio_of(file_id: int) -> Optional[str]:
        from ..views.item import audio_path

        p = audio_path(coll.catalog(), file_id)
        return p if p and os.path.isfile(p) else None

    @app.get("/file/{file_id}/audio")
    def file_audio(file_id: int):
        p = _audio_of(file_id)
        if p is None:
            return _not_found(f"no readable audio for file {file_id}")
        return FileResponse(p, media_type=media_type(p))

    @app.get("/file/{file_id}/enhanced")
    def file_enhanced(file_id: int):
        from ..views.item import file_record

        record = file_record(coll.index(), file_id)
        p = _enhanced_path(record) if record else None
        if not p or not os.path.isfile(p):
            return _not_found(f"no enhanced version of file {file_id}")
        return FileResponse(p, media_type=media_type(p))

    @app.get("/file/{file_id}/picture.webp")
    def file_picture(file_id: int):
        from ..views.item import file_record

        cached = coll.pictures.get(file_id)
        if cached is None:
            p = _audio_of(file_id)
            record = file_record(coll.index(), file_id) if p else None
            if record is None:
                return _not_found(f"no readable audio for file {file_id}")
            try:
                cached = picture(p, duration_s=pages._get(record, "media_info.container.duration"),
                                 clipped=pages._get(record, "audio.clipping.sections"))
            except Exception as exc:  # noqa: BLE001 - an undecodable file: a picture that says so
                return Response(_message_svg(f"no picture: {exc}"), media_type="image/svg+xml")
            coll.pictures.put(file_id, cached)
        return Response(cached, media_type="image/webp", headers={"cache-control": "max-age=3600"})

    @app.get("/file/{file_id}/cut.wav")
    def file_cut(file_id: int, start: float = Query(0.0, ge=0), dur: float = Query(5.0, gt=0, le=MAX_CUT_S)):
        p = _audio_of(file_id)
        if p is None:
            return _not_found(f"no readable audio for file {file_id}")
        return _wav(coll, p, start, dur)

    # ------------------------------------------------------------------------------- units
    def units_frame(q, where, sort, per_file, limit):
        from ..views import list_units

        found = list_units(coll.catalog(), _text(q, "unit query"), where=_text(where, "file query"),
                           sort=_text(sort, "sort"), per_file=per_file, limit=limit)
        return found

    def unit_params(q, where, sort, per_file, limit):
        return {"q": q, "where": where, "sort": sort, "per_file": per_file, "limit": limit}

    @app.get("/units.json")
    def units_json(q: Optional[str] = None, where: Optional[str] = None, sort: Optional[str] = None,
                   per_file: Optional[int] = Query(None, ge=1), limit: int = Query(UNITS_DEFAULT_LIMIT, ge=1, le=MAX_UNITS)):
        try:
            found = units_frame(q, where, sort, per_file, limit)
        except (QueryError, UsageError) as exc:
            return _query_json(exc)
        return _json(frame_records(found.frame))

    @app.get("/units")
    def units_page(request: Request, q: Optional[str] = None, where: Optional[str] = None, sort: Optional[str] = None,
                   per_file: Optional[int] = Query(None, ge=1), limit: int = Query(UNITS_DEFAULT_LIMIT, ge=1, le=MAX_UNITS)):
        params = unit_params(q, where, sort, per_file, limit)
        try:
            found = units_frame(q, where, sort, per_file, limit)
        except QueryError as exc:
            param = "where" if where and exc.query == where else "sort" if sort and exc.query == sort else "q"
            body = pages.units(params=params, records=[], error=pages.query_error(exc, "/units", param, params),
                               render_url=None, note="")
            return html("Units", body, active="units")
        records = frame_records(found.frame)
        note = "" if found.segmented else "no units yet: run `audiotrove segment` first"
        if found.problems:
            note = "; ".join(found.problems[:3])
        render_url = pages.url("/units/render.wav", **{**params, "limit": min(limit, MAX_RENDER_UNITS)}) if records else None
        body = pages.units(params=params, records=records, error="", render_url=render_url, note=note)
        return html("Units", body, active="units", twin=twin_of(request))

    @app.get("/unit/{file_id}/{ref}")
    def unit_audio(file_id: int, ref: str):
        from ..views.item import unit_stretch

        if not ref.endswith(".wav") or not ref[:-4].isdigit():
            return _not_found("a unit is /unit/FILE_ID/UNIT.wav")
        unit = int(ref[:-4])
        key = ("unit", file_id, unit)
        cached = coll.cuts.get(key)
        if cached is not None:
            return Response(cached, media_type="audio/wav", headers={"cache-control": "max-age=3600"})
        found = unit_stretch(coll.catalog(), file_id, unit)
        if found is None:
            return _not_found(f"no unit {unit} of file {file_id}")
        path, start, dur = found
        resp = _wav(coll, path, start, dur)
        if resp.status_code == 200:
            coll.cuts.put(key, resp.body)
        return resp

    @app.get("/units/render.wav")
    def units_render(q: Optional[str] = None, where: Optional[str] = None, sort: Optional[str] = None,
                     per_file: Optional[int] = Query(None, ge=1),
                     limit: int = Query(UNITS_DEFAULT_LIMIT, ge=1, le=MAX_RENDER_UNITS)):
        from ..io.decode import DecodeError
        from .media import render_selection

        try:
            found = units_frame(q, where, sort, per_file, limit)
        except QueryError as exc:
            return _query_json(exc)
        if len(found.frame) == 0:
            return _not_found("no unit matches: nothing to render")
        rows = [{"path": r.path, "start": float(r.start), "dur": float(r.dur)} for r in found.frame.itertuples()]
        try:
            data = render_selection(rows)
        except (ValueError, DecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(data, media_type="audio/wav",
                        headers={"content-disposition": f'attachment; filename="{name}-units.wav"'})

    # ----------------------------------------------------------------------------- similar
    def similar_data(target: str, k: int, level, model: str, where, units):
        from ..vectors.search import parse_target, similar

        cat = coll.catalog()
        t = parse_target(cat, target.strip())
        if t.file_id is None:
            raise UsageError("the target must be a file of the collection (FILE_ID) or a unit (FILE_ID:UNIT)")
        df = similar(cat, t, k=k, model=model, level=level or None, where=_text(where, "query"),
                     units=_text(units, "unit query"))
        return frame_records(df)

    @app.get("/similar.json")
    def similar_json(target: str = Query(..., max_length=64), k: int = Query(10, ge=1, le=200),
                     level: Optional[str] = None, model: str = "yamnet", where: Optional[str] = None,
                     units: Optional[str] = None):
        from ..models import ModelError

        try:
            return _json(similar_data(target, k, level, model, where, units))
        except (UsageError, QueryError, ModelError) as exc:
            return _query_json(exc)

    @app.get("/similar")
    def similar_page(request: Request, target: str = Query("", max_length=64), k: int = Query(10, ge=1, le=200),
                     level: Optional[str] = None, model: str = "yamnet", where: Optional[str] = None,
                     units: Optional[str] = None):
        from ..models import ModelError

        params = {"k": k, "level": level, "model": model}
        if not target:
            return html("Similar", pages.similar_page(target="", params=params, body=""), active="units")
        try:
            records = similar_data(target, k, level, model, where, units)
            body = pages.neighbours(records, _ids(coll.catalog(), [r.get("path") for r in records]))
        except QueryError as exc:
            body = pages.query_error(exc, "/similar", "units", {"target": target, **params})
        except (UsageError, ModelError) as exc:
            body = pages.plain_error(str(exc))
        return html(f"Similar to {target}", pages.similar_page(target=target, params=params, body=body),
                    active="units", twin=twin_of(request))

    # ------------------------------------------------------------------------------ search
    def search_data(phrase: str, where, context: str, limit):
        from ..catalog.fields import Field
        from ..catalog.query import parse_quantity
        from ..views.transcripts import normalize_words, search_transcripts

        phrase = _text(phrase, "phrase") or ""
        try:
            context_s = parse_quantity(context or "5s", Field("context", "number", "s"))
        except ValueError as exc:
            raise UsageError(f"context: {exc}") from None
        if not normalize_words(phrase):
            raise UsageError("the phrase has no words to look for")
        cat = coll.catalog()
        file_ids = None
        if where and where.strip():
            file_ids = coll.index().file_ids(_text(where, "query"))
        hits, searched = search_transcripts(cat, phrase, file_ids=file_ids, context_s=context_s, limit=limit)
        from dataclasses import asdict

        return [asdict(h) for h in hits], searched

    @app.get("/search.json")
    def search_json(phrase: str = "", where: Optional[str] = None, context: str = "5s",
                    limit: Optional[int] = Query(None, ge=1, le=100000)):
        try:
            hits, _ = search_data(phrase, where, context, limit)
        except (UsageError, QueryError) as exc:
            return _query_json(exc)
        return _json(hits)

    @app.get("/search")
    def search_page(request: Request, phrase: str = "", where: Optional[str] = None, context: str = "5s",
                    limit: Optional[int] = Query(500, ge=1, le=100000)):
        params = {"phrase": phrase, "where": where, "context": context}
        if not phrase.strip():
            return html("Search", pages.search(params=params, hits=[], ids={}, error="", searched=None), active="search")
        try:
            hits, searched = search_data(phrase, where, context, limit)
        except QueryError as exc:
            return html("Search", pages.search(params=params, hits=[], ids={}, searched=None,
                                               error=pages.query_error(exc, "/search", "where", params)),
                        active="search")
        except UsageError as exc:
            return html("Search", pages.search(params=params, hits=[], ids={}, searched=None,
                                               error=pages.plain_error(str(exc))), active="search")
        note = None if searched else "no transcripts yet: run `audiotrove transcribe` first"
        body = pages.search(params=params, hits=hits, ids=_ids(coll.catalog(), [h["path"] for h in hits]),
                            error="", searched=searched)
        return html("Search", body, active="search", twin=twin_of(request), notice=note)

    from .mappage import register as register_map

    register_map(app, coll, html, twin_of)
    return Guard(app, any_host=any_host)


# ------------------------------------------------------------------------------------ helpers

def _json(data, *, headers: dict | None = None) -> Response:
    text = json.dumps(data, default=_default)
    return Response(text, media_type="application/json", headers=headers)


def _default(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _query_json(exc: Exception) -> JSONResponse:
    body = {"error": str(exc)}
    if isinstance(exc, QueryError):
        body.update(message=exc.message, query=exc.query, position=exc.position, length=exc.length,
                    suggestions=exc.suggestions)
    return JSONResponse(body, status_code=400)


def _not_found(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=404)


def _stale(idx: FieldIndex) -> Optional[str]:
    if idx.stale_files:
        return (f"{idx.stale_files} file(s) changed since the index was brought up to date: run any "
                "query command (audiotrove ls) or restart serve to see them")
    return None


def _ids(cat: Catalog, paths) -> dict[str, int]:
    """path -> catalog id, in one query."""
    wanted = [p for p in set(paths) if p]
    out: dict[str, int] = {}
    for k in range(0, len(wanted), 500):
        chunk = wanted[k:k + 500]
        for fid, path in cat.conn.execute(
                f"SELECT id, path FROM files WHERE path IN ({','.join('?' * len(chunk))})", chunk):
            out[path] = fid
    if len(out) < len(wanted):  # a fetched URL's local copy is what the units name
        rows = cat.conn.execute("SELECT file_id, json_extract(data, '$.local_path') FROM file_attrs "
                                "WHERE name = 'fetch'").fetchall()
        local = {p: fid for fid, p in rows if p}
        for p in wanted:
            if p not in out and p in local:
                out[p] = local[p]
    return out


def _summary_columns(idx: FieldIndex, q: Optional[str]) -> list[str]:
    from ..views.files import LS_DEFAULT

    node = idx.parse(q) if q and q.strip() else None
    return [f.name for f in idx.populated([idx.fields.resolve(n) for n in LS_DEFAULT], node)]


def _enhanced_path(record: dict) -> Optional[str]:
    out = pages._get(record, "enhance.output")
    return out if isinstance(out, str) and out else None


def _similar_files(coll: Collection, file_id: int, record: dict) -> str:
    """The file's nearest files, with the model its file vectors were made with."""
    from ..models import ModelError
    from ..vectors.search import Target, similar

    from ..io.decode import DecodeError

    model = pages._get(record, "embed.model") if pages._get(record, "embed.level") == "file" else None
    if model is None:  # never embed on the fly here (a model run per page view)
        return ("<p class=small>this file has no file vectors yet: run `audiotrove embed --files` "
                "(or `--model descriptors --files`)</p>")
    try:
        df = similar(coll.catalog(), Target("file", path=record["path"], file_id=file_id), k=8,
                     model=model or "yamnet", level="file")
    except (UsageError, QueryError, ModelError, DecodeError, OSError) as exc:
        return f"<p class=small>{pages.esc(exc)}</p>"
    records = frame_records(df)
    return pages.neighbours(records, _ids(coll.catalog(), [r.get("path") for r in records]))


def _wav(coll: Collection, path: str, start: float, dur: float) -> Response:
    from ..io.decode import DecodeError

    key = (path, round(start, 4), round(dur, 4))
    data = coll.cuts.get(key)
    if data is None:
        try:
            data = cut_wav(path, start, dur)
        except (DecodeError, ValueError, OSError) as exc:
            return JSONResponse({"error": f"cannot cut {os.path.basename(path)}: {exc}"}, status_code=422)
        coll.cuts.put(key, data)
    return Response(data, media_type="audio/wav", headers={"cache-control": "max-age=3600"})


def _message_svg(text: str) -> str:
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="760" height="40"><text x="8" y="24" '
            f'font-family="sans-serif" font-size="13">{pages.esc(text[:200])}</text></svg>')


__all__ = ["create_app", "Collection", "read_only_catalog"]
