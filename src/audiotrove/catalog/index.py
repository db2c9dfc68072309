"""A flattened per-file table of the current results, kept up to date incrementally, for fast queries.

Table `file_fields` (in the catalog database): one row per file, one typed column per dotted
field ("path", "status", "media_info.audio.sample_rate", "audio.loudness.measured"...) plus
    file_id       = files.id
    content_hash, size_bytes   from `files`
    elapsed       JSON {step: seconds} of the current ok results (throughput estimates)
    record_mode, result_id, result_ids   how to rebuild the file's JSON object (below)
Registered fields (catalog/fields.py) are columns from the start; a field a step returns that is
not registered becomes a column when first seen (name and kind in `file_fields_discovered`).

`file_fields_numbers` holds, per file, every registered number/bool field, the discrete text
fields as integer codes (`file_fields_codes`), the file size and the primary step's seconds,
packed as one float64 vector (NaN = missing): `stats` and the report read 100 000 files' numbers
in one narrow scan and compute in numpy (`packed_matrix`), instead of building 10^6 Python values.

The file's full JSON object (what `ls --format jsonl` prints) is not copied: record_mode 0 means
it is just {path, status, error}; 1 means one ok result whose stored JSON text follows
path/status/error verbatim (the usual case: string concatenation, no JSON decoding); 2 means
several steps, rebuilt with `records.file_record` from the result rows in `result_ids`.

Staying current: triggers on `files`, `current_results` and `results` queue the touched file ids /
content hashes (`file_fields_dirty_file`, `file_fields_dirty_hash`). `sync()` rebuilds exactly the queued rows,
in chunks of one transaction each, so a query after a run costs the changed files only, and a
query with nothing queued costs one tiny lookup. The first use on an existing catalog, or a
change of the registry (the table's signature), queues every file. Records are built with the
same rules as `records.file_record`, so the index shows exactly what `iter_current` would.

Reading never writes: `FieldIndex(catalog)` only describes the index; `refresh()` (or
`FieldIndex.open(catalog)`, which calls it) creates or rebuilds the tables and syncs the queue.
On a read-only catalog refresh() leaves the index as it is and says how many files are stale
(`stale_files`), for the caller to report.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import sqlite3
from typing import Callable, Iterable, Iterator, Sequence

from .db import Catalog, FileRow, ResultRow
from .fields import Field, FieldSet, infer_kind, registry as default_registry
from .query import Node, QueryError, compile_query, parse, to_sql
from .records import PRIMARY_STEP, file_record

TABLE = "file_fields"
INDEX_VERSION = 7
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_MAX_DISCOVERED = 500
_SQL_TYPE = {"number": "NUMERIC", "text": "TEXT", "bool": "INTEGER", "list": "TEXT"}
_RESERVED = frozenset(("path", "status", "error"))
RECORD_BATCH = 500  # record_texts reads the result texts of this many rows in one query
PACKED_EXTRA = ("_size_bytes", "_elapsed_s")  # files.size_bytes; the primary step's seconds

# Triggers insert with NOT EXISTS rather than OR IGNORE: an outer upsert's conflict policy
# would override the trigger's.
_QUEUE_SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS {TABLE}_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {TABLE}_dirty_file (file_id INTEGER PRIMARY KEY)",
    f"CREATE TABLE IF NOT EXISTS {TABLE}_dirty_hash (content_hash TEXT PRIMARY KEY) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {TABLE}_discovered (name TEXT PRIMARY KEY, kind TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {TABLE}_codes (field TEXT NOT NULL, value TEXT NOT NULL, "
    f"code INTEGER NOT NULL, PRIMARY KEY (field, value))",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_files_ins AFTER INSERT ON files BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_files_upd AFTER UPDATE ON files BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.id);
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = OLD.id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_files_del AFTER DELETE ON files BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = OLD.id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_current_ins AFTER INSERT ON current_results BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.file_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_current_upd AFTER UPDATE ON current_results BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.file_id);
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT OLD.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = OLD.file_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_current_del AFTER DELETE ON current_results BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT OLD.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = OLD.file_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_results_ins AFTER INSERT ON results BEGIN
  INSERT INTO {TABLE}_dirty_hash(content_hash) SELECT NEW.content_hash WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_hash WHERE content_hash = NEW.content_hash); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_results_upd AFTER UPDATE ON results BEGIN
  INSERT INTO {TABLE}_dirty_hash(content_hash) SELECT NEW.content_hash WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_hash WHERE content_hash = NEW.content_hash);
  INSERT INTO {TABLE}_dirty_hash(content_hash) SELECT OLD.content_hash WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_hash WHERE content_hash = OLD.content_hash); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_results_del AFTER DELETE ON results BEGIN
  INSERT INTO {TABLE}_dirty_hash(content_hash) SELECT OLD.content_hash WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_hash WHERE content_hash = OLD.content_hash); END""",
    # per-file attributes (source, fetch, meta: db.py file_attrs) are part of the record
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_attrs_ins AFTER INSERT ON file_attrs BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.file_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_attrs_upd AFTER UPDATE ON file_attrs BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT NEW.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = NEW.file_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_attrs_del AFTER DELETE ON file_attrs BEGIN
  INSERT INTO {TABLE}_dirty_file(file_id) SELECT OLD.file_id WHERE NOT EXISTS (SELECT 1 FROM {TABLE}_dirty_file WHERE file_id = OLD.file_id); END""",
]
_N_TRIGGERS = sum(1 for s in _QUEUE_SCHEMA if "TRIGGER" in s)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _signature(registry: FieldSet) -> str:
    text = json.dumps([INDEX_VERSION] + [[f.name, f.kind, f.discrete] for f in registry])
    return hashlib.sha1(text.encode()).hexdigest()


class FieldIndex:
    """The per-file field table of one catalog. Constructing it reads nothing and writes
    nothing; `refresh()` brings it up to date (`FieldIndex.open` does both)."""

    def __init__(self, catalog: Catalog, *, registry: FieldSet | None = None):
        registry = default_registry() if registry is None else registry
        self.catalog = catalog
        self.conn = catalog.conn
        self.registry = registry
        self._registered = frozenset(registry.names())
        self._groups = frozenset(n.rsplit(".", k)[0] for n in registry.names()
                                 for k in range(1, n.count(".") + 1))
        self._fields: FieldSet | None = None
        # The packed vector: every registered number/bool field, and the discrete text fields as
        # codes (file_fields_codes), then the file's size and its primary step's seconds.
        self.packed: list[str] = [f.name for f in registry if f.kind in ("number", "bool")
                                  or (f.kind == "text" and f.discrete)] + list(PACKED_EXTRA)
        self._coded = [k for k, n in enumerate(self.packed) if n in registry and registry.get(n).kind == "text"]
        self._codes: dict[str, dict[str, int]] | None = None
        self.stale_files = 0  # set by refresh() on a read-only catalog

    @classmethod
    def open(cls, catalog: Catalog, *, registry: FieldSet | None = None,
             progress: Callable[[int, int], None] | None = None) -> "FieldIndex":
        """The index of `catalog`, brought up to date."""
        index = cls(catalog, registry=registry)
        index.refresh(progress=progress)
        return index

    def refresh(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Create or rebuild the tables when needed and re-index the queued files; return how
        many were re-indexed. A read-only catalog is answered from the index as it is
        (`stale_files` says how many files it misses)."""
        try:
            self.ensure()
            return self.sync(progress=progress)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).replace("-", "").replace(" ", ""):
                raise
            self.stale_files = self.pending_count()
            return 0

    # ----------------------------------------------------------------------------- schema
    def is_current(self) -> bool:
        """True when the tables exist with this registry's signature and every trigger."""
        try:
            row = self.conn.execute(f"SELECT value FROM {TABLE}_meta WHERE key='signature'").fetchone()
            triggers = self.conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND name LIKE ?",
                (f"{TABLE}_%",)).fetchone()[0]
        except sqlite3.OperationalError:  # no meta table yet
            return False
        return row is not None and row[0] == _signature(self.registry) and triggers == _N_TRIGGERS

    def ensure(self) -> None:
        """Create the tables and triggers, or rebuild them when the registry changed."""
        if self.is_current():
            return
        signature = _signature(self.registry)
        with self.catalog.transaction() as conn:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' "
                                        "AND name LIKE ?", (f"{TABLE}_%",)).fetchall():
                conn.execute(f"DROP TRIGGER {quote_ident(name)}")
            for stmt in _QUEUE_SCHEMA:
                conn.execute(stmt)
            row = conn.execute(f"SELECT value FROM {TABLE}_meta WHERE key='signature'").fetchone()
            if row is not None and row[0] == signature:
                return
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            conn.execute(f"DELETE FROM {TABLE}_discovered")
            conn.execute(f"DELETE FROM {TABLE}_codes")
            cols = ", ".join(f"{quote_ident(f.name)} {_SQL_TYPE[f.kind]}" for f in self.registry)
            conn.execute(
                f"CREATE TABLE {TABLE} (file_id INTEGER PRIMARY KEY, content_hash TEXT, "
                f"size_bytes INTEGER, elapsed TEXT, record_mode INTEGER NOT NULL, result_id INTEGER, "
                f"result_ids TEXT, {cols})")
            # The packed vectors live in a narrow table of their own: a full read is one small scan.
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}_numbers")
            conn.execute(f"CREATE TABLE {TABLE}_numbers (file_id INTEGER PRIMARY KEY, numbers BLOB NOT NULL)")
            conn.execute(f"CREATE INDEX {TABLE}_by_path ON {TABLE} ({quote_ident('path')})")
            conn.execute(f"DELETE FROM {TABLE}_dirty_hash")
            conn.execute(f"INSERT OR IGNORE INTO {TABLE}_dirty_file(file_id) SELECT id FROM files")
            conn.execute(f"INSERT OR REPLACE INTO {TABLE}_meta(key, value) VALUES ('signature', ?)",
                         (signature,))

    # ----------------------------------------------------------------------------- fields
    @property
    def fields(self) -> FieldSet:
        """Registered fields plus those discovered in the data (the query vocabulary)."""
        if self._fields is None:
            rows = self.conn.execute(f"SELECT name, kind FROM {TABLE}_discovered ORDER BY name")
            extra = [Field(r[0], r[1], registered=False) for r in rows]
            self._fields = self.registry.extended(extra)
        return self._fields

    def column(self, field: Field) -> str:
        """The SQL expression of a field: its table-qualified quoted column."""
        if field.name not in self.fields:
            raise KeyError(field.name)
        return f"{TABLE}.{quote_ident(field.name)}"

    def populated(self, fields: Iterable[Field], query: str | Node | None = None) -> list[Field]:
        """The fields with at least one non-null value among the selected files."""
        fields = list(fields)
        if not fields:
            return []
        sql, params = self.where(query)
        probes = ", ".join(
            f"EXISTS(SELECT 1 FROM {TABLE} WHERE ({sql}) AND {self.column(f)} IS NOT NULL)"
            for f in fields)
        flags = self.conn.execute(f"SELECT {probes}", list(params) * len(fields)).fetchone()
        return [f for f, flag in zip(fields, flags) if flag]

    # ----------------------------------------------------------------------------- sync
    def pending_count(self) -> int:
        """Files and content hashes queued for re-indexing (every file while the tables are
        missing or made for another registry)."""
        if not self.is_current():
            return self.catalog.file_count()
        row = self.conn.execute(
            f"SELECT (SELECT count(*) FROM {TABLE}_dirty_file), (SELECT count(*) FROM {TABLE}_dirty_hash)"
        ).fetchone()
        return row[0] + row[1]

    def sync(self, *, chunk: int = 2000, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the queued rows; return how many files were re-indexed."""
        self.ensure()
        if not self.pending_count():
            return 0
        with self.catalog.transaction() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO {TABLE}_dirty_file(file_id) SELECT f.id FROM files f "
                f"WHERE f.content_hash IN (SELECT content_hash FROM {TABLE}_dirty_hash)")
            conn.execute(f"DELETE FROM {TABLE}_dirty_hash")
        total = self.conn.execute(f"SELECT count(*) FROM {TABLE}_dirty_file").fetchone()[0]
        done = 0
        while True:
            with self.catalog.transaction() as conn:
                ids = [r[0] for r in conn.execute(
                    f"SELECT file_id FROM {TABLE}_dirty_file ORDER BY file_id LIMIT ?", (chunk,))]
                if not ids:
                    break
                self._codes = None  # re-read inside the write transaction (another process may add codes)
                try:
                    self._rebuild(conn, ids)
                except BaseException:
                    self._codes = None
                    raise
                conn.executemany(f"DELETE FROM {TABLE}_dirty_file WHERE file_id=?", [(i,) for i in ids])
            done += len(ids)
            if progress is not None:
                progress(done, total)
        self._fields = None
        return done

    def _rebuild(self, conn, ids: list[int]) -> None:
        cur = conn.cursor()
        cur.row_factory = None
        rows = cur.execute(
            "SELECT f.id, f.path, f.kind, f.size_bytes, f.mtime_ns, f.content_hash, "
            "r.step, r.step_version, r.params_hash, r.status, r.error, r.data, r.elapsed_s, "
            "r.created_at, r.id "
            "FROM files f LEFT JOIN current_results c ON c.file_id = f.id "
            "LEFT JOIN results r ON r.id = c.result_id AND r.content_hash = f.content_hash "
            f"WHERE f.id IN ({','.join('?' * len(ids))}) ORDER BY f.id, r.created_at, r.id",
            ids).fetchall()
        attrs: dict[int, dict] = {}
        for fid, name, data in cur.execute(
                f"SELECT file_id, name, data FROM file_attrs WHERE file_id IN ({','.join('?' * len(ids))})",
                ids):
            attrs.setdefault(fid, {})[name] = json.loads(data)
        discovered = {r[0]: r[1] for r in conn.execute(f"SELECT name, kind FROM {TABLE}_discovered")}
        new_fields: dict[str, str] = {}
        built = []
        i = 0
        while i < len(rows):
            j = i
            latest: dict[str, tuple] = {}  # step -> the file's current result row
            while j < len(rows) and rows[j][0] == rows[i][0]:
                if rows[j][6] is not None:
                    latest[rows[j][6]] = rows[j]
                j += 1
            built.append(self._build(rows[i], latest, discovered, new_fields, attrs.get(rows[i][0])))
            i = j
        for name, kind in new_fields.items():
            if name not in discovered and len(discovered) < _MAX_DISCOVERED:
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {quote_ident(name)}")
                conn.execute(f"INSERT INTO {TABLE}_discovered(name, kind) VALUES (?, ?)", (name, kind))
                discovered[name] = kind
            elif name in discovered and discovered[name] != kind:
                conn.execute(f"UPDATE {TABLE}_discovered SET kind=? WHERE name=?", (kind, name))
                discovered[name] = kind
        present = {b[0][0] for b in built}
        gone = [(i,) for i in ids if i not in present]
        if gone:
            conn.executemany(f"DELETE FROM {TABLE} WHERE file_id=?", gone)
            conn.executemany(f"DELETE FROM {TABLE}_numbers WHERE file_id=?", gone)
        if not built:
            return
        names = list(self._registered_order()) + list(discovered)
        kinds = [f.kind for f in self.registry] + [discovered[n] for n in discovered]
        sql = (f"INSERT OR REPLACE INTO {TABLE} (file_id, content_hash, size_bytes, elapsed, "
               f"record_mode, result_id, result_ids, {', '.join(quote_ident(n) for n in names)}) "
               f"VALUES ({','.join('?' * (7 + len(names)))})")
        conn.executemany(f"INSERT OR REPLACE INTO {TABLE}_numbers (file_id, numbers) VALUES (?, ?)",
                         [(base[0], self._pack(conn, flat, base)) for base, flat in built])
        list_cols = [k for k, kind in enumerate(kinds) if kind == "list"]
        bool_cols = [k for k, kind in enumerate(kinds) if kind == "bool"]
        try:
            values = []
            for base, flat in built:
                vals = list(map(flat.get, names))
                for k in list_cols:
                    if vals[k] is not None:
                        vals[k] = json.dumps(vals[k])
                for k in bool_cols:
                    if vals[k] is not None:
                        vals[k] = int(vals[k])
                values.append(base + tuple(vals))
            conn.executemany(sql, values)
        except (sqlite3.InterfaceError, sqlite3.ProgrammingError, TypeError, ValueError):
            # A value of an unexpected kind (a list where a number was registered...): redo
            # this chunk cell by cell, dropping what does not fit its column.
            position = {n: k for k, n in enumerate(names)}
            conn.executemany(sql, [base + _cells(flat, position, kinds) for base, flat in built])

    def _pack(self, conn, flat: dict, base: tuple) -> bytes:
        """The packed float64 vector of one row (NaN = missing)."""
        import numpy as np

        vals = [flat.get(n) for n in self.packed[:-2]] + [base[2], None]
        elapsed = base[3]
        if elapsed:
            vals[-1] = json.loads(elapsed).get(PRIMARY_STEP)
        for k in self._coded:
            if vals[k] is not None:
                vals[k] = self._code(conn, self.packed[k], vals[k])
        try:
            return np.array(vals, dtype="<f8").tobytes()
        except (TypeError, ValueError):  # a value of the wrong kind: drop it
            clean = [v if isinstance(v, (int, float)) else None for v in vals]
            return np.array(clean, dtype="<f8").tobytes()

    def codes(self) -> dict[str, dict[str, int]]:
        """field -> {text value: code} of the coded (discrete text) fields."""
        if self._codes is None:
            self._codes = {}
            for field, value, code in self.conn.execute(f"SELECT field, value, code FROM {TABLE}_codes"):
                self._codes.setdefault(field, {})[value] = code
        return self._codes

    def _code(self, conn, field: str, value) -> int:
        table = self.codes().setdefault(field, {})
        value = str(value)
        code = table.get(value)
        if code is None:  # a new value: the next free code of this field (we hold the write lock)
            code = conn.execute(f"SELECT coalesce(max(code) + 1, 0) FROM {TABLE}_codes WHERE field=?",
                                (field,)).fetchone()[0]
            conn.execute(f"INSERT INTO {TABLE}_codes(field, value, code) VALUES (?, ?, ?)",
                         (field, value, code))
            table[value] = code
        return code

    def packed_matrix(self, query: str | Node | None = None):
        """(matrix, names): the packed vectors of the selected files as a float array
        (files x len(names)), NaN where missing; text fields as codes (see `decode`).
        One pass, no per-value Python work: 100 000 files in a few tens of ms."""
        import numpy as np

        sql, params = self.where(query)
        cur = self.conn.cursor()
        cur.row_factory = None
        if sql == "1":
            text = f"SELECT numbers FROM {TABLE}_numbers"
        else:
            text = (f"SELECT n.numbers FROM {TABLE} JOIN {TABLE}_numbers n "
                    f"ON n.file_id = {TABLE}.file_id WHERE {sql}")
        blobs = [r[0] for r in cur.execute(text, params)]
        width = len(self.packed)
        if not blobs:
            return np.zeros((0, width)), list(self.packed)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(blobs), width)
        return matrix, list(self.packed)

    def decode(self, field: str, code) -> str | None:
        """The text value of a code in the packed matrix."""
        if code is None or code != code:
            return None
        names = {c: v for v, c in self.codes().get(field, {}).items()}
        return names.get(int(code))

    def _registered_order(self) -> list[str]:
        return [f.name for f in self.registry]

    def _build(self, frow: tuple, latest: dict[str, tuple], discovered: dict[str, str],
               new_fields: dict[str, str], attrs: dict | None = None) -> tuple[tuple, dict]:
        """One file's (base columns, flattened record)."""
        fid, path, kind, size_bytes, mtime_ns, content_hash = frow[:6]
        flat = None
        mode, result_id, result_ids = 2, None, None
        if attrs:
            pass  # per-file groups (source, fetch, meta): always the full build below
        elif not latest:
            mode, flat = 0, {"path": path, "status": "pending", "error": None}
        elif len(latest) == 1:
            (step, r), = latest.items()
            text = r[11]
            if r[9] == "ok" and text and text.startswith("{"):
                # The usual case: one ok result; its stored JSON text follows path/status/error.
                data = json.loads(text)
                if type(data) is dict and not (_RESERVED & data.keys()):
                    status = "ok" if step == PRIMARY_STEP else "pending"
                    mode, result_id = 1, r[14]
                    flat = {"path": path, "status": status, "error": None}
                    _flatten_into(flat, data, "")
        if flat is None:
            results = {step: _result_row(r) for step, r in latest.items()}
            record = file_record(FileRow(fid, path, kind, size_bytes, mtime_ns, content_hash), results,
                                 attrs)
            flat = {}
            _flatten_into(flat, record, "")
            if attrs:
                result_ids = ",".join(str(r[14]) for r in latest.values())
            elif record.keys() <= _RESERVED:
                mode = 0
            else:
                result_ids = ",".join(str(r[14]) for r in latest.values())
        extra = flat.keys() - self._registered
        if extra:
            for name in extra:
                value = flat[name]
                vkind = infer_kind(value)
                if vkind is None or name in self._groups or not _SAFE_NAME.fullmatch(name):
                    continue
                known = new_fields.get(name) or discovered.get(name)
                if known is None:
                    new_fields[name] = vkind
                elif known != vkind:
                    new_fields[name] = "text"
        elapsed = {s: r[12] for s, r in latest.items() if r[9] == "ok" and r[12]}
        base = (fid, content_hash, size_bytes, json.dumps(elapsed) if elapsed else None,
                mode, result_id, result_ids)
        return base, flat

    # ----------------------------------------------------------------------------- queries
    def where(self, query: str | Node | None) -> tuple[str, list]:
        """SQL condition and parameters for a query text (or parsed AST); None/'' = everything."""
        if query is None or isinstance(query, str):
            return compile_query(query, self.fields, self.column)
        return to_sql(query, self.column)

    def parse(self, query: str) -> Node:
        return parse(query, self.fields)

    def count(self, query: str | Node | None = None) -> int:
        sql, params = self.where(query)
        return self.conn.execute(f"SELECT count(*) FROM {TABLE} WHERE {sql}", params).fetchone()[0]

    def file_ids(self, query: str | Node | None = None) -> set[int]:
        sql, params = self.where(query)
        return {r[0] for r in self.conn.execute(f"SELECT file_id FROM {TABLE} WHERE {sql}", params)}

    def order_by(self, sort: Sequence[tuple[Field, bool]] | None) -> str:
        """ORDER BY terms: the keys given (missing values last), then path."""
        keys = []
        for f, desc in (sort or []):
            col = self.column(f)
            if f.name != "path":
                keys.append(f"({col} IS NULL)")
            keys.append(col + (" DESC" if desc else ""))
        keys.append(f"{TABLE}.{quote_ident('path')}")
        return ", ".join(keys)

    def rows(self, query: str | Node | None = None, *, columns: Sequence[str | Field] = (),
             sort: Sequence[tuple[Field, bool]] | None = None, limit: int | None = None,
             raw_columns: Sequence[str] = (), join: str = "") -> Iterator[tuple]:
        """Tuples of `raw_columns` (SQL expressions) then the field columns, in order."""
        sql, params = self.where(query)
        exprs = list(raw_columns) + [
            self.column(c if isinstance(c, Field) else self.fields.resolve(c)) for c in columns]
        select = ", ".join(exprs) or f"{TABLE}.file_id"
        text = f"SELECT {select} FROM {TABLE} {join} WHERE {sql} ORDER BY {self.order_by(sort)}"
        if limit is not None:
            text += " LIMIT ?"
            params = [*params, int(limit)]
        cur = self.conn.cursor()
        cur.row_factory = None  # plain tuples: cheaper than sqlite3.Row over 100 000 rows
        return iter(cur.execute(text, params))

    def record_texts(self, query: str | Node | None = None, *, sort=None, limit=None) -> Iterator[str]:
        """Each selected file's JSON object as text, exactly `json.dumps(file_record(...))`.

        The rows are sorted and cut on the narrow columns first; the result texts are then
        read by id, RECORD_BATCH rows at a time (joined before the sort, every matching file's
        result text went through the sort: a page of 100 of 100 000 files took 2-3x the HTML
        page's time)."""
        path, status, error = (f"{TABLE}.{quote_ident(n)}" for n in ("path", "status", "error"))
        rows = self.rows(query, sort=sort, limit=limit,
                         raw_columns=[f"{TABLE}.record_mode", path, status, error,
                                      f"{TABLE}.result_ids", f"{TABLE}.result_id"])
        dumps = json.dumps
        cur = self.conn.cursor()
        cur.row_factory = None
        while batch := list(itertools.islice(rows, RECORD_BATCH)):
            ids = [r[5] for r in batch if r[0] == 1 and r[5] is not None]
            texts = dict(cur.execute(f"SELECT id, data FROM results WHERE id IN ({','.join('?' * len(ids))})",
                                     ids)) if ids else {}
            for mode, p, s, e, ids_text, result_id in batch:
                data = texts.get(result_id) if mode == 1 else None
                if data:
                    head = f'{{"path": {dumps(p)}, "status": "{s}", "error": null'
                    yield head + ("}" if data == "{}" else ", " + data[1:])
                elif mode == 2 and ids_text is not None:
                    yield dumps(self._full_record(p, ids_text))
                else:
                    yield dumps({"path": p, "status": s, "error": e})

    def records(self, query: str | Node | None = None, *, sort=None, limit=None) -> Iterator[dict]:
        """Each selected file's JSON object (as `records.file_record` builds it)."""
        for text in self.record_texts(query, sort=sort, limit=limit):
            yield json.loads(text)

    def _full_record(self, path: str, ids: str) -> dict:
        id_list = [int(x) for x in ids.split(",") if x]
        cur = self.conn.cursor()
        cur.row_factory = None
        f = self.conn.execute("SELECT id, path, kind, size_bytes, mtime_ns, content_hash FROM files "
                              "WHERE path=?", (path,)).fetchone()
        rows = cur.execute(
            "SELECT NULL, NULL, NULL, NULL, NULL, content_hash, step, step_version, params_hash, "
            "status, error, data, elapsed_s, created_at, id FROM results "
            f"WHERE id IN ({','.join('?' * len(id_list))}) ORDER BY created_at, id", id_list).fetchall()
        results = {r[6]: _result_row(r) for r in rows}
        attrs = {name: json.loads(data) for name, data in self.conn.execute(
            "SELECT name, data FROM file_attrs WHERE file_id=?", (f[0],))}
        return file_record(FileRow(*tuple(f)), results, attrs)

    def matrix(self, fields: Sequence[Field], query: str | Node | None = None):
        """A float array (files x fields) of the selected files' values; NaN where missing or
        not a number. One scan of the table for all fields."""
        import numpy as np

        if not fields:
            return np.zeros((0, 0))
        sql, params = self.where(query)
        cols = ", ".join(
            f"CASE WHEN typeof({c}) IN ('integer', 'real') THEN {c} END"
            for c in (self.column(f) for f in fields))
        cur = self.conn.cursor()
        cur.row_factory = None
        rows = cur.execute(f"SELECT {cols} FROM {TABLE} WHERE {sql}", params).fetchall()
        if not rows:
            return np.zeros((0, len(fields)))
        return np.array(rows, dtype=float)  # None -> nan

    def value_counts(self, field: Field, query: str | Node | None = None) -> list[tuple[object, int]]:
        """(value, files) for one field among the selected files, most common first (None = missing)."""
        sql, params = self.where(query)
        col = self.column(field)
        cur = self.conn.cursor()
        cur.row_factory = None
        return cur.execute(f"SELECT {col}, count(*) FROM {TABLE} WHERE {sql} GROUP BY {col} "
                           f"ORDER BY count(*) DESC, {col}", params).fetchall()

    def export_fields(self, query: str | Node | None = None) -> list[Field]:
        """Columns of an export: every registered field, then discovered fields with data."""
        extra = [f for f in self.fields if not f.registered]
        return list(self.registry) + self.populated(extra, query)


# ----------------------------------------------------------------------------------------------

def _result_row(r: tuple) -> ResultRow:
    """A ResultRow from a row shaped like the _rebuild query's."""
    return ResultRow(content_hash=r[5], step=r[6], step_version=r[7], params_hash=r[8], status=r[9],
                     error=r[10], data=json.loads(r[11]) if r[11] else None, elapsed_s=r[12],
                     created_at=r[13], id=r[14])


def _flatten_into(out: dict, d: dict, prefix: str) -> None:
    """records.flatten, without building intermediate dicts."""
    for key, value in d.items():
        if type(value) is dict:
            _flatten_into(out, value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value


def _cells(flat: dict, position: dict[str, int], kinds: list[str]) -> tuple:
    """The column values of one row, checked: lists as JSON text, bools as 0/1, wrong kinds dropped."""
    vals: list = [None] * len(kinds)
    for name, value in flat.items():
        k = position.get(name)
        if k is None or value is None:
            continue
        kind, t = kinds[k], type(value)
        if t is list or t is dict:
            value = json.dumps(value) if kind in ("list", "text") else None
        elif t is bool:
            value = int(value) if kind in ("bool", "number") else ("true" if value else "false")
        elif t is str:
            if kind != "text":
                value = None
        elif kind == "text":
            value = str(value)
        elif kind != "number":
            value = None
        vals[k] = value
    return tuple(vals)


def select_file_ids(catalog: Catalog, query: str | None) -> set[int]:
    """The ids of the files matching `query` (all files for None/empty). Raises QueryError.

    `segment --where Q` and friends call this, then pass the ids to `run_step(..., file_ids=...)`.
    The index is brought up to date first."""
    return FieldIndex.open(catalog).file_ids(query)


__all__ = ["FieldIndex", "TABLE", "quote_ident", "select_file_ids", "QueryError"]
