"""The query language (parse, compile to parameterised SQL, errors), the field registry, and the
per-file field index (incremental sync, same records as iter_latest, discovered fields)."""
from __future__ import annotations

import fnmatch
import json
import operator

import numpy as np
import pytest

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.fields import REGISTRY, Field, FieldSet, UnknownFieldError
from audiotrove.catalog.index import FieldIndex, select_file_ids
from audiotrove.catalog.query import (And, Compare, InList, Not, Or, Present, QueryError, Truthy,
                                      glob_to_like, parse, parse_quantity, parse_sort,
                                      to_sql)
from audiotrove.catalog.records import file_record, flatten

from insight_synth import fill

# ------------------------------------------------------------------------------ parsing


def value_of(q: str):
    node = parse(q)
    assert isinstance(node, Compare), node
    return node.value


@pytest.mark.parametrize("q, expected", [
    ("duration > 10m", 600), ("duration > 10 min", 600), ("duration > 1h30m", 5400),
    ("duration < 1:30", 90), ("duration < 1:02:03.5", 3723.5), ("duration > 500ms", 0.5),
    ("duration > -2s", -2), ("sample_rate = 44.1kHz", 44100), ("sample_rate = 8k", 8000),
    ("bitrate >= 128k", 128000), ("bitrate >= 1.5Mbps", 1_500_000), ("size > 2MB", 2_000_000),
    ("size > 1KiB", 1024), ("loudness < -23LUFS", -23), ("loudness < -23 LUFS", -23),
    ("true_peak > -1dBTP", -1), ("noise > -60 dB", -60), ("speech > 50%", 50),
    ("clipped > 1e3", 1000), ("audio.noise.dc_offset > .01", 0.01),
])
def test_numbers_with_units(q, expected):
    assert value_of(q) == pytest.approx(expected)


@pytest.mark.parametrize("q, message", [
    ("loudness < 10m", "unit 'm' does not fit audio.loudness.measured (LUFS)"),
    ("loudness < -30 LU", "unit 'LU' does not fit"),
    ("duration > 3parsecs", "unit 'parsecs' does not fit"),
    ("sample_rate > 1:30", "only fits a time field"),
    ("duration > abc", "'abc' is not a number"),
])
def test_unit_errors_point_at_the_value(q, message):
    with pytest.raises(QueryError) as exc:
        parse(q)
    assert message in str(exc.value)
    assert exc.value.position == q.index(q.split()[2])


def test_precedence_and_structure():
    node = parse("codec = mp3 or codec = flac and not channels = 2")
    assert isinstance(node, Or) and isinstance(node.parts[1], And)
    assert isinstance(node.parts[1].parts[1], Not)
    node = parse("(codec = mp3 or codec = flac) and channels = 2")
    assert isinstance(node, And) and isinstance(node.parts[0], Or)
    node = parse("codec == mp3 && !(sr = 16k || sr = 8k)")
    assert isinstance(node, And) and isinstance(node.parts[1], Not)
    assert isinstance(parse("audio.hum.frequency?"), Present)
    assert parse("audio.hum.frequency?").field.name == "audio.noise.hum.frequency"
    assert isinstance(parse("not hum?"), Not)
    assert isinstance(parse("has_video"), Truthy)
    node = parse("codec in (mp3, 'pcm_s16le', null)")
    assert isinstance(node, InList) and node.values == ("mp3", "pcm_s16le", None)
    assert value_of('path ~ "a \\"quoted\\" name"') == 'a "quoted" name'
    assert value_of("path ~ *afs?4*") == "*afs?4*"
    assert value_of("container = 3gp") == "3gp"  # text fields keep the word as written
    assert value_of("has_video = yes") is True
    assert value_of("hum = null") is None
    assert parse("units = 1").field.name == "units.count"


@pytest.mark.parametrize("q, position, fragment", [
    ("audio.loudnes.measured < -30", 0, "did you mean audio.loudness.measured"),
    ("duration > 3 and snr_avg < 4", 17, "unknown field 'snr_avg'"),
    ("percentage > 3", 0, "ambiguous: audio.clipping.percentage"),
    ("audio.clipping.sections > 2", 0, "is a list"),
    ("duration ~ 3", 9, "'~' matches text"),
    ("path ~ 'abc", 7, "unterminated string"),
    ("(duration > 3", 0, "missing ')'"),
    ("duration > 3)", 12, "unbalanced ')'"),
    ("duration > 3 codec = mp3", 13, "expected 'and', 'or'"),
    ("duration 3", 9, "expected an operator"),
    ("", 0, "empty query"),
    ("duration >", 10, "expected a value"),
    ("and = 3", 0, "keyword 'and'"),
    ("has_video = maybe", 12, "true/false"),
    ("duration < null", 11, "null can only be compared"),
])
def test_syntax_errors_name_the_position(q, position, fragment):
    with pytest.raises(QueryError) as exc:
        parse(q)
    assert fragment in str(exc.value)
    assert exc.value.position == position
    if q:
        caret_line = str(exc.value).splitlines()[-1]
        assert caret_line.index("^") - 2 == position


def test_misspelled_field_suggestions():
    with pytest.raises(QueryError) as exc:
        parse("audio.noise.snr < 10")
    assert exc.value.suggestions[0] == "audio.noise.snr_average"
    with pytest.raises(QueryError) as exc:
        parse("sampel_rate = 16000")
    assert "media_info.audio.sample_rate" in exc.value.suggestions


def test_glob_to_like():
    assert glob_to_like("*afs04*") == "%afs04%"
    assert glob_to_like("afs04") == "%afs04%"  # no wildcard: substring
    assert glob_to_like("a?c*") == "a_c%"
    assert glob_to_like("100%_x") == "%100\\%\\_x%"


def test_sql_is_parameterised():
    sql, params = to_sql(parse("path ~ \"x'; DROP TABLE files; --\" and duration > 10m"),
                         lambda f: f'"{f.name}"')
    assert "DROP" not in sql and "x'" not in sql
    assert params == ["%x'; DROP TABLE files; --%", 600]


def test_parse_sort():
    keys = parse_sort("loudness:desc, path")
    assert [(f.name, d) for f, d in keys] == [("audio.loudness.measured", True), ("path", False)]
    with pytest.raises(QueryError, match="asc or desc"):
        parse_sort("loudness:down")
    with pytest.raises(QueryError, match="list"):
        parse_sort("audio.speech.sections")


def test_registry_resolution():
    assert REGISTRY.resolve("duration").name == "media_info.container.duration"
    assert REGISTRY.resolve("loudness.true_peak").name == "audio.loudness.true_peak"  # suffix
    assert REGISTRY.resolve("audio.hum.frequency").name == "audio.noise.hum.frequency"  # alias
    with pytest.raises(UnknownFieldError) as exc:
        REGISTRY.resolve("num_sections")
    assert exc.value.ambiguous
    fs = FieldSet([Field("a.b", "number"), Field("c", "text")], {"x": "a.b", "dangling": "nope"})
    assert fs.resolve("x").name == "a.b" and "dangling" not in fs.aliases
    with pytest.raises(ValueError):
        FieldSet([Field("a", "complex")])
    assert parse_quantity("90", REGISTRY.resolve("duration")) == 90


# ------------------------------------------------------------------------------ the index

@pytest.fixture
def cat(tmp_path):
    c = Catalog.create(tmp_path / "coll")
    fill(c, 120)
    yield c
    c.close()


def _like(value: str, pattern: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        pattern = f"*{pattern}*"
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}


def reference(node, flat: dict) -> bool:
    """The query semantics, evaluated in Python on a flattened record."""
    if isinstance(node, And):
        return all(reference(p, flat) for p in node.parts)
    if isinstance(node, Or):
        return any(reference(p, flat) for p in node.parts)
    if isinstance(node, Not):
        return not reference(node.part, flat)
    v = flat.get(node.field.name)
    if isinstance(node, Present):
        return v is not None and v != []
    if isinstance(node, Truthy):
        return bool(v)
    if isinstance(node, InList):
        return (v is None and None in node.values) or (v is not None and v in node.values)
    if node.value is None:
        return (v is None) == (node.op == "=")
    if v is None:
        return node.op in ("!=", "!~")
    if node.op == "~":
        return _like(v, node.value)
    if node.op == "!~":
        return not _like(v, node.value)
    return _OPS[node.op](v, node.value)


QUERIES = [
    "audio.noise.level_average < -60",
    "media_info.audio.channels = 2",
    "media_info.audio.channels != 2",
    "codec = mp3 or codec = vorbis",
    "not codec = mp3",
    "codec != mp3 and duration > 5m",
    "(loudness < -30 or true_peak > -1) and sample_rate >= 44.1k",
    'path ~ "*afs04*"', "path ~ box1", "path !~ AFS04", "path ~ '*/file0?3_*'",
    "audio.hum.frequency?", "not audio.hum.frequency?", "hum = null", "hum != null",
    "hum in (50, 60)", "codec in (mp3, flac) and not has_video",
    "has_video", "has_video = false", "bit_depth = null",
    "audio.clipping.sections?", "not audio.clipping.sections?",
    "status = error", "status = pending", "status != ok",
    "loudness >= -24 and loudness <= -20", "not loudness < -24",
    "duration > 1:00 and duration < 10m and snr > 20",
    "bitrate = 128k", "size > 50MB",
]


def test_queries_match_the_python_reference(cat):
    flats = {f.id: flatten(file_record(f, res)) for f, res in cat.iter_current()}
    idx = FieldIndex.open(cat)
    for q in QUERIES:
        node = parse(q)
        expected = {fid for fid, flat in flats.items() if reference(node, flat)}
        got = select_file_ids(cat, q)
        assert got == expected, q
        assert 0 < len(got) < len(flats) or q in ("status = pending",), q  # queries that discriminate
        assert idx.count(q) == len(got)


def test_index_records_equal_iter_latest(cat):
    # a second step on some files (merged into the record), a newer analyze on one
    for fid, h in cat.conn.execute("SELECT id, content_hash FROM files WHERE id % 10 = 1 AND content_hash IS NOT NULL").fetchall():
        cat.record(fid, size_bytes=1, mtime_ns=1, content_hash=h, step="segment", step_version="1",
                   params_hash="s", params={}, status="ok", error=None,
                   data={"units": {"count": fid * 10, "median_power": -20.5}}, elapsed_s=0.2)
    fid, h = cat.conn.execute("SELECT id, content_hash FROM files WHERE id = 3").fetchone()
    cat.record(fid, size_bytes=1, mtime_ns=1, content_hash=h, step="analyze", step_version="2",
               params_hash="p", params={}, status="ok", error=None,
               data={"media_info": {"container": {"duration": 1234.5}}}, elapsed_s=0.1)
    expected = [file_record(f, res) for f, res in cat.iter_current()]
    idx = FieldIndex.open(cat)
    got = list(idx.records())
    assert got == expected
    assert [json.loads(t) for t in idx.record_texts()] == expected
    assert idx.count("units.count > 0") == len([e for e in expected if e.get("units")])
    assert idx.file_ids("duration = 1234.5") == {3}


def test_record_texts_sorted_and_cut_in_batches(cat, monkeypatch):
    """The page is sorted and cut first, the result texts read by id in batches: the same
    objects, in the listing's order, whatever the batch size."""
    import audiotrove.catalog.index as index_module
    from audiotrove.catalog.query import parse_sort

    idx = FieldIndex.open(cat)
    by_path = {r["path"]: r for f, res in cat.iter_current() for r in [file_record(f, res)]}
    keys = parse_sort("loudness:desc", idx.fields)
    order = [row[0] for row in idx.rows(None, columns=["path"], sort=keys)]
    for batch in (500, 7, 1):  # batches ending mid-listing
        monkeypatch.setattr(index_module, "RECORD_BATCH", batch)
        whole = [json.loads(t) for t in idx.record_texts(sort=keys)]
        assert whole == [by_path[p] for p in order] and len(whole) == len(by_path) == 120
        assert [json.loads(t) for t in idx.record_texts("status = ok", sort=keys, limit=30)] == \
            [r for r in whole if r["status"] == "ok"][:30]
    assert {r["status"] for r in whole} > {"ok"}  # also files without a result's text


def test_sync_is_incremental(cat):
    idx = FieldIndex(cat)
    assert idx.sync() == 120  # first build
    assert FieldIndex(cat).sync() == 0  # nothing changed
    before = idx.count("loudness < -100")
    fid, h = cat.conn.execute("SELECT id, content_hash FROM files WHERE id = 5").fetchone()
    cat.record(fid, size_bytes=1, mtime_ns=1, content_hash=h, step="analyze", step_version="9",
               params_hash="p", params={}, status="ok", error=None,
               data={"audio": {"loudness": {"measured": -120.0}}}, elapsed_s=0.1)
    assert idx.sync() == 1  # exactly the changed file
    assert idx.count("loudness < -100") == before + 1
    # files sharing a content hash are all re-indexed; new files appear as pending; removed go
    cat.add_files([("/coll/new.wav", "file", "/coll")])
    cat.conn.execute("DELETE FROM files WHERE id = 7")
    assert idx.sync() == 2
    assert idx.count("path ~ new.wav and status = pending") == 1
    assert 7 not in idx.file_ids()
    assert len(idx.file_ids()) == cat.file_count()


def test_discovered_fields_and_kind_mismatch(cat):
    fid, h = cat.conn.execute("SELECT id, content_hash FROM files WHERE id = 2").fetchone()
    cat.record(fid, size_bytes=1, mtime_ns=1, content_hash=h, step="enhance", step_version="1",
               params_hash="e", params={}, status="ok", error=None,
               data={"enhance": {"gain_db": 3.5, "method": "wiener", "bands": [1, 2]},
                     "audio": {"bandwidth": {"frequency": [4000, 8000]}}},  # a list where a number is registered
               elapsed_s=0.5)
    idx = FieldIndex.open(cat)
    assert idx.file_ids("enhance.gain_db > 3") == {2}
    assert idx.file_ids('enhance.method = wiener') == {2}
    assert idx.file_ids("enhance.bands?") == {2}
    assert idx.count("audio.bandwidth.frequency?") == 0  # the wrong-kind value is not stored in the column
    names = [f.name for f in idx.fields if not f.registered]
    assert names == ["enhance.bands", "enhance.gain_db", "enhance.method"]
    with pytest.raises(QueryError) as exc:
        idx.parse("enhance.gain < 2")
    assert "enhance.gain_db" in exc.value.suggestions
    # the record still holds everything
    rec = next(r for r in idx.records("enhance.gain_db?"))
    assert rec["enhance"]["bands"] == [1, 2] and rec["audio"]["bandwidth"]["frequency"] == [4000, 8000]


def test_injection_attempts_are_data(cat):
    n = cat.file_count()
    assert select_file_ids(cat, "path ~ \"'; DROP TABLE files; --\"") == set()
    assert select_file_ids(cat, 'codec = "mp3\' OR 1=1 --"') == set()
    assert cat.file_count() == n
    with pytest.raises(QueryError):
        select_file_ids(cat, 'path"; DROP TABLE files; -- = 1')
    assert select_file_ids(cat, None) == select_file_ids(cat, "  ") == set(range(1, n + 1))


def test_registry_change_rebuilds(cat):
    FieldIndex.open(cat)
    bigger = REGISTRY.extended([Field("audio.noise.new_thing", "number", "dB")])
    idx = FieldIndex(cat, registry=bigger)
    assert idx.pending_count() == cat.file_count()
    idx.sync()
    assert idx.count() == cat.file_count()
    # and back
    assert FieldIndex(cat).pending_count() == cat.file_count()


def test_packed_matrix_matches_columns(cat):
    idx = FieldIndex.open(cat)
    matrix, names = idx.packed_matrix("codec = flac")
    k = names.index("audio.loudness.measured")
    rows = list(idx.rows("codec = flac", columns=["audio.loudness.measured"]))
    # same set of values (the packed read is unordered)
    a = np.sort(np.nan_to_num(matrix[:, k], nan=-999))
    b = np.sort(np.array([-999 if r[0] is None else r[0] for r in rows], dtype=float))
    assert np.allclose(a, b)
    codes = matrix[:, names.index("media_info.audio.codec")]
    assert {idx.decode("media_info.audio.codec", c) for c in codes} == {"flac"}


def test_second_connection_reads_the_same_index(cat):
    # a second connection (another `ls` while a run commits) reads the same answers
    idx = FieldIndex.open(cat)
    other = Catalog.open(cat.root)
    try:
        assert FieldIndex.open(other).file_ids("codec = mp3") == idx.file_ids("codec = mp3")
    finally:
        other.close()


def test_two_connections_share_text_codes(cat):
    """Two processes indexing in turn (an `ls` while another `ls` runs) never give two values one code."""
    idx1 = FieldIndex.open(cat)
    idx1.codes()  # this connection's cache now holds the codes known so far
    other = Catalog.open(cat.root)
    try:
        def add(c: Catalog, name: str, codec: str) -> None:
            c.add_files([(f"/coll/{name}", "file", "/coll")])
            fid = c.conn.execute("SELECT id FROM files WHERE path=?", (f"/coll/{name}",)).fetchone()[0]
            c.record(fid, size_bytes=1, mtime_ns=1, content_hash=f"hash-{name}", step="analyze",
                     step_version="1", params_hash="p", params={}, status="ok", error=None,
                     data={"media_info": {"audio": {"codec": codec}}}, elapsed_s=0.1)

        add(other, "a.opus", "opus")
        FieldIndex.open(other)  # assigns a code to "opus"
        add(cat, "b.m4a", "aac")
        idx1.sync()  # must not reuse opus's code for aac
        matrix, names = FieldIndex.open(cat).packed_matrix("path ~ '/coll/?.*'")
        k = names.index("media_info.audio.codec")
        assert sorted(idx1.decode("media_info.audio.codec", c) for c in matrix[:, k]) == ["aac", "opus"]
        assert FieldIndex.open(cat).file_ids("codec = aac") != FieldIndex.open(cat).file_ids("codec = opus")
    finally:
        other.close()
