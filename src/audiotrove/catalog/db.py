"""The collection catalog: one SQLite database (WAL mode) in <collection>/.audiotrove/catalog.db.

Tables
  files    one row per registered source (a local file or a URL), with its last known
           size, mtime and content hash.
  results  one row per (content_hash, step, step_version, params_hash): the JSON a step
           returned for that content, or its error message. Identical content shares results;
           bumping a step's version or changing a parameter makes a new row.
  current_results
           one row per (file, step): the result that is the file's current one for that step,
           whatever its parameters. The runner sets it when it commits a result (`record`) or
           finds one up to date (`make_current`); `ls`, `units`, the report and the steps that
           require another read it. A pointer to a result of content the file no longer has
           counts as none.
  meta     schema_version: read at open; an older catalog is upgraded in place (MIGRATIONS),
           in one transaction.
  file_attrs  per-file facts that belong to the file, not to its content: where it came from
           (`source`), its download (`fetch`), the user's metadata (`meta`); one JSON object
           per (file, group), shown in the file's record under that group's name.

During a run the runner's coordinator is the only writer; each finished item is committed
in its own transaction, so a crash loses at most the items in flight.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UsageError

CATALOG_DIR = ".audiotrove"
CATALOG_FILE = "catalog.db"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,      -- absolute path, or the URL
    kind          TEXT NOT NULL DEFAULT 'file',  -- 'file' | 'url'
    source        TEXT,                      -- the `add` argument that brought it in
    size_bytes    INTEGER,
    mtime_ns      INTEGER,
    content_hash  TEXT,                      -- set by the first run that reads the file
    added_at      REAL NOT NULL,
    raw_format    TEXT                       -- headerless PCM: RATE:CHANNELS:FORMAT (io/raw.py)
);
CREATE TABLE IF NOT EXISTS results (
    id            INTEGER PRIMARY KEY,
    content_hash  TEXT NOT NULL,
    step          TEXT NOT NULL,
    step_version  TEXT NOT NULL,
    params_hash   TEXT NOT NULL,
    params        TEXT NOT NULL,             -- JSON
    status        TEXT NOT NULL,             -- 'ok' | 'error'
    error         TEXT,
    data          TEXT,                      -- JSON returned by the step
    elapsed_s     REAL,
    created_at    REAL NOT NULL,
    UNIQUE (content_hash, step, step_version, params_hash)
);

CREATE INDEX IF NOT EXISTS results_by_hash ON results (content_hash, step, created_at);
CREATE INDEX IF NOT EXISTS files_by_hash ON files (content_hash);
"""
_FILE_ATTRS = """
CREATE TABLE IF NOT EXISTS file_attrs (
    file_id       INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,             -- the record's group: 'source' | 'fetch' | 'meta'
    data          TEXT NOT NULL,             -- JSON object
    updated_at    REAL NOT NULL,
    PRIMARY KEY (file_id, name)
)"""
_CURRENT_TABLE = """
CREATE TABLE IF NOT EXISTS current_results (
    file_id       INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    result_id     INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    PRIMARY KEY (file_id, step)
) WITHOUT ROWID"""
_CURRENT_INDEX = "CREATE INDEX IF NOT EXISTS current_by_result ON current_results (result_id)"


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 1 had no current-result pointers: the latest result (by created_at) of each step
    for a file's content was its current one. Record exactly that as pointers. And the
    bandwidth became a group like the others: audio.bandwidth (Hz) and audio.bandwidth_reason
    are now audio.bandwidth.frequency and audio.bandwidth.reason. Files may be headerless PCM
    read with a stated format (files.raw_format)."""
    conn.execute("ALTER TABLE files ADD COLUMN raw_format TEXT")
    conn.execute(_FILE_ATTRS)
    rows = conn.execute("SELECT id, data FROM results WHERE step = 'analyze' AND data IS NOT NULL").fetchall()
    for rid, text in rows:
        data = json.loads(text)
        audio = data.get("audio") if isinstance(data, dict) else None
        if not isinstance(audio, dict) or isinstance(audio.get("bandwidth"), dict) or "bandwidth" not in audio:
            continue
        group = {"frequency": audio.pop("bandwidth")}
        if "bandwidth_reason" in audio:
            group["reason"] = audio.pop("bandwidth_reason")
        audio["bandwidth"] = group
        conn.execute("UPDATE results SET data = ? WHERE id = ?", (json.dumps(data), rid))
    conn.execute(_CURRENT_TABLE)
    conn.execute(_CURRENT_INDEX)
    conn.execute("""
INSERT INTO current_results (file_id, step, result_id)
SELECT f.id, r.step, (SELECT r2.id FROM results r2 WHERE r2.content_hash = f.content_hash
                      AND r2.step = r.step ORDER BY r2.created_at DESC, r2.id DESC LIMIT 1)
FROM files f JOIN results r ON r.content_hash = f.content_hash
GROUP BY f.id, r.step""")


# from_version -> the function upgrading a catalog from that version to the next one.
MIGRATIONS = {1: _migrate_1_to_2}


class CatalogError(UsageError):
    """A setup problem with the collection (missing, not initialised, too new...)."""


@dataclass
class FileRow:
    id: int
    path: str
    kind: str
    size_bytes: int | None
    mtime_ns: int | None
    content_hash: str | None
    raw_format: str | None = None  # headerless PCM: RATE:CHANNELS:FORMAT


@dataclass
class ResultRow:
    content_hash: str
    step: str
    step_version: str
    params_hash: str
    status: str
    error: str | None
    data: dict | None
    elapsed_s: float | None
    created_at: float
    id: int | None = None
    params: dict | None = None


def find_root(start: str | os.PathLike) -> Path:
    """The collection folder containing `start` (itself or a parent), or CatalogError."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / CATALOG_DIR / CATALOG_FILE).exists():
            return folder
    raise CatalogError(
        f"no collection at {here} or above it: run `audiotrove init {start}` first, "
        "or point at one with -C DIR"
    )


class Catalog:
    """Open with Catalog.create(root) or Catalog.open(root)."""

    def __init__(self, root: Path, db_path: Path):
        self.root = root
        self.db_path = db_path
        self.conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.schema_version = self._upgrade()

    def _read_version(self) -> int:
        """The stored schema version; 0 for an empty database."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "files" not in tables:
            return 0
        if "meta" not in tables:
            return 1
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 1

    def _upgrade(self) -> int:
        """Create the schema in an empty database, or upgrade an older one in place, in one
        transaction (a failure leaves the catalog as it was)."""
        version = self._read_version()
        if version == SCHEMA_VERSION:
            return version
        if version > SCHEMA_VERSION:
            raise CatalogError(f"{self.db_path} was written by a newer audiotrove (catalog schema "
                               f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade audiotrove")
        try:
            with self.transaction() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                if version == 0:
                    for stmt in [*_SCHEMA.split(";"), _FILE_ATTRS, _CURRENT_TABLE, _CURRENT_INDEX]:
                        if stmt.strip():
                            conn.execute(stmt)
                else:
                    for step in range(version, SCHEMA_VERSION):
                        MIGRATIONS[step](conn)
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        except sqlite3.OperationalError as exc:
            raise CatalogError(f"cannot upgrade {self.db_path} from catalog schema {version} to "
                               f"{SCHEMA_VERSION}: {exc}") from exc
        return SCHEMA_VERSION

    # --- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike) -> "Catalog":
        root = Path(root).resolve()
        (root / CATALOG_DIR).mkdir(parents=True, exist_ok=True)
        return cls(root, root / CATALOG_DIR / CATALOG_FILE)

    @classmethod
    def open(cls, start: str | os.PathLike = ".") -> "Catalog":
        root = find_root(start)
        return cls(root, root / CATALOG_DIR / CATALOG_FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- files -------------------------------------------------------------------------
    def add_files(self, entries: Iterable[tuple[str, str, str]], *,
                  raw_format: str | None = None) -> tuple[int, int]:
        """Register (path, kind, source) entries; return (added, already_present).
        `raw_format` (RATE:CHANNELS:FORMAT): the files are headerless PCM of that format (it is
        set on files already present too)."""
        added = present = 0
        now = time.time()
        with self.transaction():
            for path, kind, source in entries:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO files(path, kind, source, added_at, raw_format) "
                    "VALUES (?, ?, ?, ?, ?)", (path, kind, source, now, raw_format),
                )
                if cur.rowcount:
                    added += 1
                else:
                    present += 1
                    if raw_format is not None:  # read differently now: its results no longer apply
                        self.conn.execute("UPDATE files SET raw_format=?, content_hash=NULL WHERE path=? "
                                          "AND raw_format IS NOT ?", (raw_format, path, raw_format))
        return added, present

    def files(self, ids: Iterable[int] | None = None) -> list[FileRow]:
        rows = self.conn.execute(
            "SELECT id, path, kind, size_bytes, mtime_ns, content_hash, raw_format FROM files ORDER BY path"
        ).fetchall()
        wanted = set(ids) if ids is not None else None
        return [FileRow(**dict(r)) for r in rows if wanted is None or r["id"] in wanted]

    def file_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM files").fetchone()[0]

    def file_ids(self, paths: Iterable[str]) -> dict[str, int]:
        """path (or URL) -> file id, for the registered ones among `paths`."""
        out = {}
        for path in paths:
            row = self.conn.execute("SELECT id FROM files WHERE path=?", (path,)).fetchone()
            if row is not None:
                out[path] = row[0]
        return out

    # --- per-file attributes (source, fetch, meta) --------------------------------------
    def set_attrs(self, rows: Iterable[tuple[int, str, dict]], *, merge: bool = False) -> int:
        """Store (file_id, group, data) rows in one transaction; `merge` updates the keys of an
        existing object instead of replacing it. Returns the rows written."""
        n = 0
        now = time.time()
        with self.transaction():
            for file_id, name, data in rows:
                if merge:
                    old = self.conn.execute("SELECT data FROM file_attrs WHERE file_id=? AND name=?",
                                            (file_id, name)).fetchone()
                    if old is not None:
                        data = {**json.loads(old[0]), **data}
                self.conn.execute(
                    "INSERT OR REPLACE INTO file_attrs(file_id, name, data, updated_at) VALUES (?,?,?,?)",
                    (file_id, name, json.dumps(data, sort_keys=True), now))
                n += 1
        return n

    def attrs(self, file_ids: Iterable[int] | None = None, name: str | None = None) -> dict[int, dict]:
        """file_id -> {group: data} (only `name`'s group when given)."""
        sql, params = "SELECT file_id, name, data FROM file_attrs", []
        if name is not None:
            sql, params = sql + " WHERE name=?", [name]
        wanted = set(file_ids) if file_ids is not None else None
        out: dict[int, dict] = {}
        for fid, group, data in self.conn.execute(sql, params):
            if wanted is None or fid in wanted:
                out.setdefault(fid, {})[group] = json.loads(data)
        return out

    def local_copies(self) -> dict[int, str]:
        """file_id -> the verified local copy of a fetched URL."""
        rows = self.conn.execute(
            "SELECT file_id, json_extract(data, '$.local_path') FROM file_attrs "
            "WHERE name='fetch' AND json_extract(data, '$.status')='ok'")
        return {fid: path for fid, path in rows if path}

    # --- results -----------------------------------------------------------------------
    def has_result(self, content_hash: str, step: str, version: str, params_hash: str,
                   *, ok_only: bool = False) -> bool:
        sql = ("SELECT status FROM results WHERE content_hash=? AND step=? AND step_version=? "
               "AND params_hash=?")
        row = self.conn.execute(sql, (content_hash, step, version, params_hash)).fetchone()
        return row is not None and (not ok_only or row["status"] == "ok")

    def result_status(self, step: str, version: str, params_hash: str) -> dict[str, str]:
        """content_hash -> status for one step configuration (for planning)."""
        rows = self.conn.execute(
            "SELECT content_hash, status FROM results WHERE step=? AND step_version=? AND params_hash=?",
            (step, version, params_hash),
        )
        return {r["content_hash"]: r["status"] for r in rows}

    def record(self, file_id: int, *, size_bytes: int | None, mtime_ns: int | None,
               content_hash: str, step: str, step_version: str, params_hash: str,
               params: dict, status: str, error: str | None, data: dict | None,
               elapsed_s: float | None) -> int:
        """Store one finished item: file facts, its result, and that result as the file's
        current one for the step, in one transaction. Returns the result's id."""
        with self.transaction():
            self.conn.execute(
                "UPDATE files SET size_bytes=?, mtime_ns=?, content_hash=? WHERE id=?",
                (size_bytes, mtime_ns, content_hash, file_id),
            )
            # Update in place when the key exists (the row keeps its id, so other files'
            # pointers to it stay valid), else insert. Not an upsert: its conflict policy would
            # override the index triggers' own.
            key = (content_hash, step, step_version, params_hash)
            values = (json.dumps(params, sort_keys=True), status, error,
                      None if data is None else json.dumps(data), elapsed_s, time.time())
            row = self.conn.execute(
                "SELECT id FROM results WHERE content_hash=? AND step=? AND step_version=? "
                "AND params_hash=?", key).fetchone()
            if row is not None:
                self.conn.execute("UPDATE results SET params=?, status=?, error=?, data=?, elapsed_s=?, "
                                  "created_at=? WHERE id=?", (*values, row[0]))
                result_id = row[0]
            else:
                result_id = self.conn.execute(
                    "INSERT INTO results(content_hash, step, step_version, params_hash, params,"
                    " status, error, data, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (*key, *values)).lastrowid
            self.conn.execute(
                "INSERT OR REPLACE INTO current_results(file_id, step, result_id) VALUES (?, ?, ?)",
                (file_id, step, result_id))
        return result_id

    def make_current(self, step: str, step_version: str, params_hash: str,
                     file_ids: Iterable[int]) -> int:
        """Point these files' current `step` result at their stored result of this configuration
        (for their present content); files without one are left alone. Returns how many moved."""
        ids = list(file_ids)
        moved = 0
        with self.transaction() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                cur = conn.execute(
                    "INSERT OR REPLACE INTO current_results(file_id, step, result_id) "
                    "SELECT f.id, r.step, r.id FROM files f JOIN results r ON r.content_hash = f.content_hash "
                    "AND r.step = ? AND r.step_version = ? AND r.params_hash = ? "
                    f"WHERE f.id IN ({','.join('?' * len(chunk))}) AND NOT EXISTS ("
                    "SELECT 1 FROM current_results c WHERE c.file_id = f.id AND c.step = r.step "
                    "AND c.result_id = r.id)",
                    [step, step_version, params_hash, *chunk])
                moved += cur.rowcount
        return moved

    def current_results(self, file_id: int) -> dict[str, ResultRow]:
        """step -> the file's current result (for its present content)."""
        rows = self.conn.execute(
            "SELECT r.* FROM current_results c JOIN files f ON f.id = c.file_id "
            "JOIN results r ON r.id = c.result_id AND r.content_hash = f.content_hash "
            "WHERE c.file_id = ? ORDER BY r.created_at, r.id", (file_id,)).fetchall()
        return {r["step"]: _result_row(r) for r in rows}

    def current_pointers(self, step: str, file_ids: Iterable[int] | None = None) -> dict[int, ResultRow]:
        """file id -> its current `step` result, even one for content the file no longer has
        (a requirement is re-run with the parameters the user chose last)."""
        rows = self.conn.execute(
            "SELECT c.file_id AS fid, r.* FROM current_results c JOIN results r ON r.id = c.result_id "
            "WHERE c.step = ?", (step,)).fetchall()
        wanted = None if file_ids is None else set(file_ids)
        return {r["fid"]: _result_row(r) for r in rows if wanted is None or r["fid"] in wanted}

    def iter_current(self, step: str | None = None, *,
                     with_result: bool = False) -> Iterator[tuple[FileRow, dict[str, ResultRow]]]:
        """Every file (by path) with its current result of each step (or of `step`).
        with_result: only the files that have one (what a reader of one step's results wants:
        the same rows, without walking every file of a large collection in Python)."""
        join = "JOIN" if with_result else "LEFT JOIN"
        query = (
            "SELECT f.id AS fid, f.path, f.kind, f.size_bytes, f.mtime_ns, f.content_hash AS fhash, r.* "
            f"FROM files f {join} current_results c ON c.file_id = f.id "
            + ("AND c.step = ? " if step else "")
            + f"{join} results r ON r.id = c.result_id AND r.content_hash = f.content_hash "
            "ORDER BY f.path, r.created_at, r.id"
        )
        current: FileRow | None = None
        results: dict[str, ResultRow] = {}
        for row in self.conn.execute(query, (step,) if step else ()):
            if current is None or row["fid"] != current.id:
                if current is not None:
                    yield current, results
                current = FileRow(row["fid"], row["path"], row["kind"], row["size_bytes"],
                                  row["mtime_ns"], row["fhash"])
                results = {}
            if row["step"] is not None:
                results[row["step"]] = _result_row(row)
        if current is not None:
            yield current, results

    def step_counts(self) -> list[tuple[str, str, int]]:
        """(step, status, count of files) over the files' current results."""
        rows = self.conn.execute(
            "SELECT r.step, r.status, count(DISTINCT f.id) FROM files f "
            "JOIN current_results c ON c.file_id = f.id "
            "JOIN results r ON r.id = c.result_id AND r.content_hash = f.content_hash "
            "GROUP BY r.step, r.status ORDER BY r.step, r.status"
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def failures(self, step: str | None = None) -> list[tuple[str, str, str]]:
        """(path, step, error) for files whose current result of a step is an error."""
        out = []
        for f, results in self.iter_current(step):
            for name, res in results.items():
                if res.status == "error":
                    out.append((f.path, name, res.error or ""))
        return out

    # --- transactions ------------------------------------------------------------------
    def transaction(self):
        return _Transaction(self.conn)

    # --- stale results (commands/enhance.py) -------------------------------------------
    def mark_stale(self, results: list[tuple[int, str]]) -> None:
        """Mark results (id, reason) stale: their output is gone or changed. 'stale' is neither
        ok nor an error, so the planner runs them again; the row stays (its `error` says why)
        until the new result replaces it."""
        with self.transaction():
            self.conn.executemany("UPDATE results SET status = 'stale', error = ? WHERE id = ?",
                                  [(reason, rid) for rid, reason in results])


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _result_row(r: sqlite3.Row) -> ResultRow:
    return ResultRow(
        content_hash=r["content_hash"], step=r["step"], step_version=r["step_version"],
        params_hash=r["params_hash"], status=r["status"], error=r["error"],
        data=json.loads(r["data"]) if r["data"] else None,
        elapsed_s=r["elapsed_s"], created_at=r["created_at"], id=r["id"],
        params=json.loads(r["params"]) if r["params"] else None,
    )

