"""The house in order (issue 9): the run model (current results, requirements), catalog
migrations, one error model, views with JSON twins, one name per concept, gc."""
from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiotrove.catalog.db import SCHEMA_VERSION, Catalog
from audiotrove.cli import app

from conftest import TESTS_DIR, run_step_quiet, tone

runner = CliRunner()
FIXTURE = TESTS_DIR / "fixtures" / "catalog_v1"


def invoke(*args, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def _pause_file(path: Path, *, sr: int = 8000) -> Path:
    """Tone, 1.5 s of digital silence, tone: one silence with --silence-min 1, none with the
    default 2 s."""
    t = tone(freq_hz=440, seconds=0.5, sample_rate=sr, amplitude=0.3)
    sf.write(path, np.concatenate([t, np.zeros((int(1.5 * sr), 1), np.float32), t]), sr, subtype="PCM_16")
    return path


@pytest.fixture
def two_files(tmp_path) -> tuple[Path, list[Path]]:
    audio = tmp_path / "audio"
    audio.mkdir()
    paths = [_pause_file(audio / "a.wav"), _pause_file(audio / "b.wav", sr=11025)]
    root = tmp_path / "coll"
    with Catalog.create(root) as cat:
        cat.add_files([(str(p), "file", str(audio)) for p in paths])
    return root, paths


# --- the run model -----------------------------------------------------------------------------

def test_requirement_met_by_the_users_result_whatever_its_parameters(two_files):
    root, paths = two_files
    with Catalog.open(root) as cat:
        run_step_quiet(cat, "analyze", {"silence_min_s": 1.0}, workers=1)
        analyze_rows = cat.conn.execute("SELECT id, created_at FROM results WHERE step='analyze'").fetchall()
        seg = run_step_quiet(cat, "segment", {"mode": "onset"}, workers=1)
        assert seg.ok == 2
        # nothing re-analyzed: the same analyze rows, untouched; no default-parameter result
        assert cat.conn.execute("SELECT id, created_at FROM results WHERE step='analyze'").fetchall() == analyze_rows
        params = {json.loads(r[0])["silence_min_s"] for r in
                  cat.conn.execute("SELECT params FROM results WHERE step='analyze'")}
        assert params == {1.0}
        # enhance requires analyze too: it reads the user's analysis, computes none
        out = run_step_quiet(cat, "enhance", {"out_dir": str(root.parent / "restored"), "highpass": 80},
                             workers=1)
        assert out.ok == 2, cat.failures()
        assert cat.conn.execute("SELECT id, created_at FROM results WHERE step='analyze'").fetchall() == analyze_rows
    # `ls` shows the user's analysis (one 1.5 s silence found with --silence-min 1)
    out = invoke("-C", root, "ls", "--fields", "audio.silence.num_sections,units.count", "--format", "json")
    rows = json.loads(out.stdout)
    assert [r["audio.silence.num_sections"] for r in rows] == [1, 1]
    assert all(r["units.count"] >= 2 for r in rows)


def test_requirement_computed_with_defaults_only_where_missing(two_files):
    root, paths = two_files
    with Catalog.open(root) as cat:
        a, b = cat.files()
        run_step_quiet(cat, "analyze", {"silence_min_s": 1.0}, workers=1, file_ids={a.id})
        run_step_quiet(cat, "segment", None, workers=1)
        by_file = {f.path: res["analyze"].params["silence_min_s"] for f, res in cat.iter_current()}
    assert by_file == {a.path: 1.0, b.path: 2.0}


def test_current_result_is_explicit_and_follows_the_last_run(two_files):
    root, _ = two_files
    with Catalog.open(root) as cat:
        run_step_quiet(cat, "segment", {"mode": "onset"}, workers=1)
        onset = {f.id: r["segment"].id for f, r in cat.iter_current("segment")}
        run_step_quiet(cat, "segment", {"mode": "window:0.25"}, workers=1)
        window = {f.id: r["segment"].id for f, r in cat.iter_current("segment")}
        assert set(onset.values()).isdisjoint(window.values())
        stamps = cat.conn.execute("SELECT id, created_at FROM results ORDER BY id").fetchall()
        again = run_step_quiet(cat, "segment", {"mode": "onset"}, workers=1)
        assert again.up_to_date == 2 and again.ok == 0  # nothing recomputed...
        assert {f.id: r["segment"].id for f, r in cat.iter_current("segment")} == onset  # ...but current
        # no timestamp was moved to make it so
        assert cat.conn.execute("SELECT id, created_at FROM results ORDER BY id").fetchall() == stamps
    out = invoke("-C", root, "units", "--format", "json")
    durations = [u["dur"] for u in json.loads(out.stdout)]
    assert durations and not all(abs(d - 0.25) < 1e-6 for d in durations)  # onset units, not windows
    assert "mark_current" not in (Path(__file__).parents[1] / "src/audiotrove/commands/units.py").read_text()


# --- catalog migrations ------------------------------------------------------------------------

def _v1_copy(tmp_path: Path) -> Path:
    """The schema-1 fixture collection, its paths (and file facts) pointed at this copy."""
    root = tmp_path / "old"
    shutil.copytree(FIXTURE, root)
    conn = sqlite3.connect(root / ".audiotrove" / "catalog.db")
    for fid, path in conn.execute("SELECT id, path FROM files").fetchall():
        new = str(root / Path(path).relative_to("/tmp/fx_v1"))
        st = os.stat(new)
        conn.execute("UPDATE files SET path=?, mtime_ns=?, size_bytes=? WHERE id=?",
                     (new, st.st_mtime_ns, st.st_size, fid))
    conn.commit()
    conn.close()
    return root


def _expected_v1_records(root: Path) -> list[dict]:
    """What `ls --format jsonl` printed on the schema-1 catalog, in today's field names."""
    out = []
    for line in (FIXTURE / "ls_v1.jsonl").read_text().splitlines():
        rec = json.loads(line.replace("{root}", str(root)))
        audio = rec["audio"]
        bandwidth = {"frequency": audio.pop("bandwidth")}
        if "bandwidth_reason" in audio:
            bandwidth["reason"] = audio.pop("bandwidth_reason")
        audio["bandwidth"] = bandwidth
        out.append(rec)
    return out


def test_schema_1_catalog_is_upgraded_in_place(tmp_path):
    root = _v1_copy(tmp_path)
    db = root / ".audiotrove" / "catalog.db"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    conn.close()
    with Catalog.open(root) as cat:
        assert cat.schema_version == SCHEMA_VERSION
        stored = cat.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert stored == str(SCHEMA_VERSION)
        # the latest result of each step became the current one (ids 3, 4: --silence-min 0.5)
        current = {(f.path.rsplit("/", 1)[-1], s): r.id for f, res in cat.iter_current() for s, r in res.items()}
        assert current == {("a.wav", "analyze"): 3, ("b.wav", "analyze"): 4, ("a.wav", "segment"): 5}
    out = invoke("-C", root, "ls", "--format", "jsonl")
    assert [json.loads(x) for x in out.stdout.splitlines()] == _expected_v1_records(root)
    out = invoke("-C", root, "units", "--format", "json")
    assert len(json.loads(out.stdout)) == 4  # the shard made by the old code is read as is
    from audiotrove.steps import get_step

    analyze_v, segment_v = get_step("analyze").version, get_step("segment").version
    with Catalog.open(root) as cat:  # segment again: the analysis is the user's, never the defaults
        before = cat.conn.execute("SELECT count(*) FROM results WHERE step='analyze'").fetchone()[0]
        cli_params = {"mode": "onset", "min_dur": 0.08, "max_dur": 1.0}  # what `segment` stored
        summary = run_step_quiet(cat, "segment", cli_params, workers=1)
        # b.wav was never segmented; a.wav again only if the segment step changed since
        assert summary.ok == (1 if segment_v == "1" else 2) and summary.failed == 0
        if analyze_v == "1":  # the stored analyses are current: nothing re-analyzed
            assert cat.conn.execute("SELECT count(*) FROM results WHERE step='analyze'").fetchone()[0] == before
        else:  # the analyze step changed since: redone with the user's --silence-min 0.5
            rows = cat.conn.execute("SELECT params FROM results WHERE step='analyze' AND step_version=?",
                                    (analyze_v,)).fetchall()
            assert sorted(json.loads(r[0])["silence_min_s"] for r in rows) == [0.5, 0.5]


def test_a_failed_upgrade_leaves_the_catalog_as_it_was(tmp_path, monkeypatch):
    from audiotrove.catalog import db as dbmod

    root = _v1_copy(tmp_path)

    def broken(conn):
        conn.execute("CREATE TABLE current_results (x)")
        raise sqlite3.OperationalError("simulated failure half-way")

    monkeypatch.setitem(dbmod.MIGRATIONS, 1, broken)
    with pytest.raises(dbmod.CatalogError, match="cannot upgrade"):
        Catalog.open(root)
    conn = sqlite3.connect(root / ".audiotrove" / "catalog.db")
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='current_results'").fetchone()[0] == 0
    conn.close()


def test_a_newer_catalog_is_refused(tmp_path):
    root = tmp_path / "c"
    Catalog.create(root).close()
    conn = sqlite3.connect(root / ".audiotrove" / "catalog.db")
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    out = invoke("-C", root, "ls", code=2)
    assert "newer audiotrove" in out.output and "Traceback" not in out.output


# --- errors --------------------------------------------------------------------------------------

def test_segment_failures_are_item_errors(tmp_path):
    root = tmp_path / "coll"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt not really")
    good = _pause_file(tmp_path / "good.wav")
    with Catalog.create(root) as cat:
        cat.add_files([(str(bad), "file", "t"), (str(good), "file", "t")])
        summary = run_step_quiet(cat, "segment", None, workers=1)
        assert (summary.ok, summary.failed) == (1, 1)
        failures = cat.failures()
    assert failures and all(p == str(bad) for p, _, _ in failures)
    for _, _, error in failures:  # a message for the user, not an exception dump
        assert "Error:" not in error and "bug" not in error and ".py" not in error, error
    from audiotrove.errors import ItemError
    from audiotrove.steps.segment import segment_file

    with pytest.raises(ItemError, match="bad segmentation parameters"):
        segment_file(str(good), {"mode": "window:0"}, units_dir=tmp_path / "u")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the units folder should be")
    with pytest.raises(ItemError, match="cannot write the unit shard"):
        segment_file(str(good), {}, units_dir=blocked / "units")


def test_usage_errors_are_one_line_or_json(collection):
    out = invoke("-C", collection, "ls", "--format", "json", "loudnes < 3", code=2)
    err = json.loads(out.stdout)
    assert err["kind"] == "usage" and err["exit"] == 2 and "unknown field 'loudnes'" in err["error"]
    out = invoke("-C", collection, "units", "--sort", "power,hz", "--format", "jsonl", code=2)
    assert "would change nothing" in json.loads(out.stdout)["error"]
    out = invoke("-C", collection, "ls", "--format", "xml", code=2)
    assert out.output.strip().count("\n") == 0 and "unknown format 'xml'" in out.output


def test_a_bug_in_a_command_is_one_line_with_the_traceback_logged(collection, monkeypatch):
    import audiotrove.views as views

    def broken(catalog):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(views, "status", broken)
    out = invoke("-C", collection, "status", code=1)
    assert out.output.strip() == ("error: bug in `audiotrove status`: ZeroDivisionError: simulated bug "
                                  "(traceback in .audiotrove/errors.log)")
    log = (collection / ".audiotrove" / "errors.log").read_text()
    assert "Traceback" in log and "raise ZeroDivisionError" in log
    out = invoke("-C", collection, "--debug", "status", code=1)
    assert "Traceback" in out.output and "raise ZeroDivisionError" in out.output
    out = invoke("-C", collection, "status", "--format", "json", code=1)
    assert json.loads(out.stdout)["kind"] == "bug"


# --- views and formats ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("views")
    audio = tmp / "audio"
    audio.mkdir()
    paths = [_pause_file(audio / "a.wav"), _pause_file(audio / "b.wav", sr=11025)]
    root = tmp / "coll"
    with Catalog.create(root) as cat:
        cat.add_files([(str(p), "file", str(audio)) for p in paths])
        run_step_quiet(cat, "segment", None, workers=1)
    return root


def test_every_listing_takes_every_format(segmented):
    for command in (["ls"], ["units"], ["stats"], ["fields"], ["status"]):
        for fmt in ("table", "csv", "json", "jsonl"):
            out = invoke("-C", segmented, *command, "--format", fmt)
            assert out.stdout.strip(), (command, fmt)
            if fmt == "json":
                json.loads(out.stdout)
            elif fmt == "jsonl":
                [json.loads(x) for x in out.stdout.splitlines()]
    st = json.loads(invoke("-C", segmented, "status", "--format", "json").stdout)
    assert {(s["step"], s["state"], s["files"]) for s in st["steps"]} == {("analyze", "ok", 2), ("segment", "ok", 2)}


def test_the_api_returns_what_the_cli_prints(segmented):
    import audiotrove

    cli_rows = json.loads(invoke("-C", segmented, "ls", "--fields", "duration,sr,ch", "--format", "json").stdout)
    with audiotrove.open(segmented) as c:
        assert c.ls(fields="duration,sr,ch") == cli_rows
        assert c.status() == json.loads(invoke("-C", segmented, "status", "--format", "json").stdout)
        units = c.units(sort="power:desc")
    assert len(units) == len(json.loads(invoke("-C", segmented, "units", "--format", "json").stdout))


def test_report_json_is_the_reports_data(segmented, tmp_path):
    data = json.loads(invoke("-C", segmented, "report", "--format", "json").stdout)
    assert set(data) >= {"title", "collection", "stats", "problems", "restored"}
    assert data["stats"]["totals"]["files"] == 2
    assert set(data["problems"]["groups"]) >= {"clipped", "silent", "off-spec"}
    out = tmp_path / "deep" / "report.json"
    invoke("-C", segmented, "report", "--format", "json", "-o", out)
    assert json.loads(out.read_text())["stats"]["totals"]["files"] == 2


def test_one_off_analyze_formats(tmp_path):
    path = _pause_file(tmp_path / "x.wav")
    rows = json.loads(invoke("analyze", path, "--format", "json").stdout)
    assert rows[0]["path"] == str(path) and rows[0]["status"] == "ok"
    table = invoke("analyze", path, "--format", "table").stdout
    assert "duration" in table.splitlines()[0] and str(path) in table
    csv_text = invoke("analyze", path, "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("path,status,error,media_info.")


def test_one_off_records_come_in_order_while_the_batch_runs(tmp_path):
    from audiotrove.runner import run_step
    from audiotrove.views.oneoff import analyze_files

    paths = [str(_pause_file(tmp_path / f"{k}.wav")) for k in range(3)]
    events = []

    def run(cat, step, overrides, **kwargs):
        summary = run_step(cat, step, overrides, **kwargs)
        events.append("batch ended")
        return summary

    missing = str(tmp_path / "missing.wav")
    result = analyze_files(paths + [missing], workers=1, run=run,
                           on_record=lambda record: events.append(record["path"]))
    # each file's record is handed over when it is committed, not when the batch ends
    assert events == paths + ["batch ended", missing]
    assert [r["path"] for r in result.records] == paths + [missing]
    assert [r["status"] for r in result.records] == ["ok", "ok", "ok", "error"]


# --- one name per concept ------------------------------------------------------------------------

def test_every_printed_column_name_is_accepted(segmented):
    table = invoke("-C", segmented, "ls").stdout.splitlines()[0].split()
    assert table[:5] == ["status", "duration", "codec", "sample_rate", "ch"]
    for heading in table:
        invoke("-C", segmented, "ls", "--fields", heading, "--sort", heading)
    header = invoke("-C", segmented, "ls", "--format", "csv").stdout.splitlines()[0].split(",")
    for name in header:
        invoke("-C", segmented, "ls", "--fields", name)
    invoke("-C", segmented, "ls", "other >= 0 and speech >= 0")


def test_mfcc_elements_are_fields_of_units(segmented):
    rows = json.loads(invoke("-C", segmented, "units", "--format", "json").stdout)
    csv_header = invoke("-C", segmented, "units", "--format", "csv").stdout.splitlines()[0].split(",")
    assert [f"mfcc_{k}" for k in range(1, 14)] == [c for c in csv_header if c.startswith("mfcc_")]
    threshold = float(np.median([r["mfcc"][1] for r in rows]))
    picked = json.loads(invoke("-C", segmented, "units", f"mfcc_2 > {threshold}", "--sort", "mfcc_1:desc",
                               "--format", "json").stdout)
    assert picked and all(r["mfcc"][1] > threshold for r in picked)
    firsts = [r["mfcc"][0] for r in picked]
    assert firsts == sorted(firsts, reverse=True)


def test_field_registry_owns_values_and_takes_new_fields():
    from audiotrove.catalog.fields import REGISTRY

    dur = REGISTRY.resolve("duration")
    assert dur.parse("1h30m") == 5400 and dur.format(83.4) == "1:23.4"
    assert REGISTRY.resolve("sr").parse("8kHz") == 8000
    assert REGISTRY.resolve("ch") is REGISTRY.resolve("media_info.audio.channels")
    assert REGISTRY.resolve("other").name == "audio.other.percentage"
    assert REGISTRY.resolve("bandwidth").name == "audio.bandwidth.frequency"
    assert REGISTRY.resolve("audio.bandwidth.reason").kind == "text"
    assert "lobe of quiet 20 ms frame levels" in REGISTRY.resolve("noise").description  # as dsp/noise.py
    from audiotrove.catalog.fields import Field

    chain = Field("enhance.chain", "list")
    assert chain.format('["declick", "highpass 60 Hz"]') == "declick, highpass 60 Hz"
    # a step module contributes its fields (in a fresh process: the registry is global)
    import subprocess
    import sys

    code = ("from audiotrove.catalog.fields import Field, register_fields, registry\n"
            "register_fields([Field('embed.dim', 'number', 'count', 'embedding size', integer=True)],"
            " {'dim': 'embed.dim'})\n"
            "f = registry().resolve('dim'); print(f.name, f.unit, f.parse('2k'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["embed.dim", "count", "2000.0"]


# --- no cycles, no reads that write, gc --------------------------------------------------------

def _top_level_imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
    return out


def test_no_import_cycles():
    src = Path(__file__).parents[1] / "src"
    graph: dict[str, set[str]] = {}
    for path in (src / "audiotrove").rglob("*.py"):
        mod = ".".join(path.relative_to(src).with_suffix("").parts)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        mod = mod.removesuffix(".__init__")
        graph[mod] = _top_level_imports(path, package)

    def resolve(name: str) -> str | None:
        while name and name not in graph:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    edges = {m: {r for d in deps if (r := resolve(d)) and r != m} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in edges[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m, [m])
    assert "audiotrove.catalog.index" not in edges["audiotrove.catalog.query"]


def test_constructing_the_index_reads_and_writes_nothing(segmented):
    from audiotrove.catalog.index import FieldIndex

    with Catalog.open(segmented) as cat:
        before = cat.conn.total_changes
        idx = FieldIndex(cat)
        assert cat.conn.total_changes == before
        idx.refresh()
        assert idx.pending_count() == 0


def test_gc_removes_what_no_file_uses(two_files):
    root, paths = two_files
    with Catalog.open(root) as cat:
        run_step_quiet(cat, "segment", None, workers=1)
    shards = sorted((root / ".audiotrove" / "units").glob("*.parquet"))
    assert len(shards) == 2
    out = invoke("-C", root, "gc")
    assert out.stdout.startswith("removed 0 result(s) of content no file has and 0 unit shard(s)")
    _pause_file(paths[0], sr=16000)  # the file changes: its old results and shard are garbage
    with Catalog.open(root) as cat:
        run_step_quiet(cat, "segment", None, workers=1)
    assert len(list((root / ".audiotrove" / "units").glob("*.parquet"))) == 3
    size = shards[0].stat().st_size + shards[1].stat().st_size
    dry = invoke("-C", root, "gc", "--dry-run").stdout
    assert dry.startswith("would remove 2 result(s) of content no file has and 1 unit shard(s)")
    assert len(list((root / ".audiotrove" / "units").glob("*.parquet"))) == 3
    done = invoke("-C", root, "gc").stdout
    assert done.startswith("removed 2 result(s) of content no file has and 1 unit shard(s)")
    left = list((root / ".audiotrove" / "units").glob("*.parquet"))
    assert len(left) == 2 and size > 0
    units = json.loads(invoke("-C", root, "units", "--format", "json").stdout)
    assert {u["path"] for u in units} == {str(p) for p in paths}
