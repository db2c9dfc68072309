"""Query limits (issue 20, item 6): a query too big for the parser or SQLite is a clear
QueryError and exit status 2, never a traceback; long `in` lists work."""
from __future__ import annotations

import json

import pytest
from insight_synth import fill
from typer.testing import CliRunner

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import select_file_ids
from audiotrove.catalog.query import MAX_CONDITIONS, MAX_NESTING, MAX_PATTERN_CHARS, QueryError
from audiotrove.cli import app


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits") / "coll"
    with Catalog.create(root) as cat:
        ids = fill(cat, 60)
    return root, ids


def _sizes(cat) -> dict[int, int]:
    """file id -> media_info.container.size of the files analysed ok."""
    rows = cat.conn.execute("SELECT f.id, r.data FROM files f JOIN results r "
                            "ON r.content_hash = f.content_hash WHERE r.status = 'ok'").fetchall()
    return {fid: json.loads(data)["media_info"]["container"]["size"] for fid, data in rows}


TOO_BIG = {
    "parentheses": "(" * 250 + "duration > 1" + ")" * 250,
    "not": "not " * 5000 + "duration > 1",
    "and": " and ".join(f"duration > {k}" for k in range(900)),
    "pattern": 'path ~ "' + "*a" * 25000 + '"',
}


@pytest.mark.parametrize("name", sorted(TOO_BIG))
def test_a_query_past_a_limit_is_a_query_error_and_exit_2(coll, name):
    root, _ = coll
    with Catalog.open(root) as cat, pytest.raises(QueryError) as exc:
        select_file_ids(cat, TOO_BIG[name])
    assert any(str(n) in str(exc.value) for n in (MAX_NESTING, MAX_CONDITIONS, MAX_PATTERN_CHARS))
    r = CliRunner().invoke(app, ["-C", str(root), "ls", TOO_BIG[name]])
    assert r.exit_code == 2 and "error" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_queries_at_the_limits_run(coll):
    root, ids = coll
    with Catalog.open(root) as cat:
        nested = "(" * (MAX_NESTING - 1) + "size > 0" + ")" * (MAX_NESTING - 1)
        assert select_file_ids(cat, nested)
        sizes = _sizes(cat)
        values = sorted(sizes.values())[:40] + list(range(1, MAX_CONDITIONS - 40 + 1))
        wide = " or ".join(f"size = {v}" for v in values)
        assert select_file_ids(cat, wide) == {f for f, v in sizes.items() if v in values[:40]}
        assert select_file_ids(cat, 'path ~ "' + "*" * MAX_PATTERN_CHARS + '"')


def test_a_long_in_list_works(coll):
    root, ids = coll
    with Catalog.open(root) as cat:
        some = sorted(_sizes(cat).items())[::2]
        values = [v for _, v in some] + list(range(1, 40_002))
        got = select_file_ids(cat, f"size in ({', '.join(map(str, values))})")
        assert got == {f for f, _ in some}
        paths = sorted(ids.values())[:5] + [f"/nowhere/{k}.wav" for k in range(40_001)]
        quoted = ", ".join(f'"{p}"' for p in paths)
        assert len(select_file_ids(cat, f"path in ({quoted})")) == 5


def test_a_long_in_list_compiles_for_duckdb_too():
    import duckdb

    from audiotrove.catalog.query import IN_LIST_PARAMS, parse, to_sql

    words = [f"w{k}" for k in range(IN_LIST_PARAMS + 10)]
    node = parse(f"codec in ({', '.join(words)})")
    sql, params = to_sql(node, lambda f: "codec", dialect="duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('w3'), ('mp3'), ('w509')) v(codec)")
    got = con.execute(f"SELECT codec FROM t WHERE {sql} ORDER BY codec", params).fetchall()
    assert got == [("w3",), ("w509",)]
