"""runner/: plans only what lacks a current result, runs it on a process pool, commits each
result as it arrives, survives crashes (a dying worker, SIGKILL of the whole run, Ctrl-C)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    group_members,
    sigint_as_from_a_terminal,
    AUDIOTROVE,
    catalog_db,
    cli_env,
    db_rows,
    run_cli,
    run_step_quiet,
    tone,
    write_audio,
)

from audiotrove import steps
from audiotrove.catalog.db import Catalog
from audiotrove.catalog.records import file_record
from audiotrove.steps import register


@pytest.fixture
def toy():
    """Register the test step `toy` (tests/toystep.py); workers receive the registry."""
    register("toy", "toystep")
    yield
    steps._STEP_MODULES.pop("toy", None)


def _files(folder: Path, n: int, *, prefix: str = "f", seconds: float = 0.5) -> list[Path]:
    """n different WAV files (different pitch and level, so different content hashes)."""
    return [write_audio(folder / f"{prefix}{i:02d}.wav",
                        tone(freq_hz=200 + 37 * i, seconds=seconds, sample_rate=16000,
                             amplitude=0.1 + 0.8 * i / max(n, 1)), 16000)
            for i in range(n)]


def _collection_with(tmp_path: Path, paths: list[Path]) -> Catalog:
    cat = Catalog.create(tmp_path / "coll")
    cat.add_files([(str(p), "file", str(p.parent)) for p in paths])
    return cat


def _rows(cat: Catalog, step: str) -> dict[tuple, tuple]:
    """(content_hash, version, params_hash) -> (row id, created_at, status) for one step."""
    rows = cat.conn.execute(
        "SELECT content_hash, step_version, params_hash, id, created_at, status FROM results "
        "WHERE step=?", (step,)).fetchall()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


def test_run_then_rerun_is_a_no_op(tmp_path):
    paths = _files(tmp_path / "src", 6)
    with _collection_with(tmp_path, paths) as cat:
        first = run_step_quiet(cat, "analyze")
        assert (first.planned, first.ok, first.failed, first.up_to_date) == (6, 6, 0, 0)
        assert first.audio_s == pytest.approx(3.0)  # seconds of audio analysed
        before = _rows(cat, "analyze")
        assert len(before) == 6
        assert all(f.content_hash and f.size_bytes == os.path.getsize(f.path) for f in cat.files())
        second = run_step_quiet(cat, "analyze")
        assert (second.planned, second.ok, second.failed, second.up_to_date) == (6 - 6, 0, 0, 6)
        assert "0 ok, 0 failed, 6 already up to date" in second.line()
        assert _rows(cat, "analyze") == before  # not one row written or rewritten
        records = [file_record(f, r) for f, r in cat.iter_current()]
        assert all(r["status"] == "ok" and r["media_info"]["container"]["duration"] == 0.5
                   for r in records)


def test_version_bump_and_parameter_change_recompute_exactly_what_changed(tmp_path, toy):
    paths = _files(tmp_path / "src", 4)
    with _collection_with(tmp_path, paths) as cat:
        v1 = run_step_quiet(cat, "toy")
        assert (v1.ok, v1.up_to_date) == (4, 0)
        rows_v1 = _rows(cat, "toy")
        assert {k[1] for k in rows_v1} == {"1"} and len(rows_v1) == 4
        assert run_step_quiet(cat, "toy").ok == 0
        assert not _rows(cat, "analyze")  # v1 requires nothing

        register("toy", "toystep_v2")  # version 2, which also requires analyze
        v2 = run_step_quiet(cat, "toy")
        assert (v2.ok, v2.up_to_date) == (4, 0)
        rows = _rows(cat, "toy")
        assert len(rows) == 8 and {k: rows[k] for k in rows_v1} == rows_v1  # v1 rows untouched
        assert len(_rows(cat, "analyze")) == 4  # the required step ran first
        latest = {f.path: file_record(f, r)["toy"] for f, r in cat.iter_current()}
        assert all(t["analyze_duration_s"] == 0.5 for t in latest.values())
        peaks = {p: t["peak_dbfs"] for p, t in latest.items()}

        gained = run_step_quiet(cat, "toy", {"gain_db": 6.0})
        assert (gained.ok, gained.up_to_date) == (4, 0)
        assert len(_rows(cat, "toy")) == 12
        latest = {f.path: file_record(f, r)["toy"] for f, r in cat.iter_current()}
        for path, t in latest.items():
            assert t["peak_dbfs"] == pytest.approx(peaks[path] + 6.0)
        assert run_step_quiet(cat, "toy", {"gain_db": 6.0}).ok == 0
        assert run_step_quiet(cat, "toy").ok == 0  # the default parameters are still stored

        # One file changes: only it is recomputed, by the step and by the step it requires.
        write_audio(paths[2], tone(freq_hz=999, seconds=0.75, sample_rate=16000), 16000)
        changed = run_step_quiet(cat, "toy")
        assert (changed.ok, changed.up_to_date) == (1, 3)
        assert len(_rows(cat, "analyze")) == 5
        latest = {f.path: file_record(f, r) for f, r in cat.iter_current()}
        assert latest[str(paths[2])]["toy"]["analyze_duration_s"] == 0.75


def test_unknown_parameter_is_refused(tmp_path, toy):
    with _collection_with(tmp_path, _files(tmp_path / "src", 1)) as cat:
        with pytest.raises(ValueError, match="no parameter 'gain'"):
            run_step_quiet(cat, "toy", {"gain": 1.0})


def test_failures_are_kept_and_retried_only_on_request(tmp_path, toy):
    paths = _files(tmp_path / "src", 5)
    for p in paths[:2]:
        Path(str(p) + ".fail").touch()  # a transient condition the toy step fails on
    params = {"fail_if_marker": True}
    with _collection_with(tmp_path, paths) as cat:
        first = run_step_quiet(cat, "toy", params)
        assert (first.ok, first.failed) == (3, 2)
        failures = cat.failures("toy")
        assert sorted(p for p, _, _ in failures) == sorted(str(p) for p in paths[:2])
        # a bug (not an ItemError): one line naming step, file and exception; traceback in the log
        for path, _, e in failures:
            assert e == (f"bug in step toy on {Path(path).name}: RuntimeError: toy step: marker file "
                         "present (traceback in .audiotrove/errors.log)")
        log = (cat.root / ".audiotrove" / "errors.log").read_text()
        assert log.count("Traceback (most recent call last)") == 2 and 'toystep.py", line' in log
        again = run_step_quiet(cat, "toy", params)
        assert (again.planned, again.up_to_date) == (0, 5)  # failures are results too
        retried = run_step_quiet(cat, "toy", params, retry_failed=True)
        assert (retried.planned, retried.ok, retried.failed) == (2, 0, 2)
        for p in paths[:2]:
            os.remove(str(p) + ".fail")
        fixed = run_step_quiet(cat, "toy", params, retry_failed=True)
        assert (fixed.planned, fixed.ok, fixed.failed, fixed.up_to_date) == (2, 2, 0, 3)
        assert cat.failures("toy") == []
        assert len(_rows(cat, "toy")) == 5  # the error rows were replaced, not duplicated


def test_a_crashing_worker_is_named_and_the_batch_goes_on(tmp_path, toy):
    paths = _files(tmp_path / "src", 6)
    paths.append(write_audio(tmp_path / "src" / "segv00.wav", tone(freq_hz=3000, seconds=0.5,
                                                                   sample_rate=16000), 16000))
    with _collection_with(tmp_path, paths) as cat:
        summary = run_step_quiet(cat, "toy", {"crash_if_name": "segv"})
        assert (summary.ok, summary.failed) == (6, 1)
        (failure,) = cat.failures("toy")
        assert failure[0].endswith("segv00.wav") and "worker process crashed" in failure[2]
        assert len(_rows(cat, "toy")) == 7


def test_identical_content_subsets_and_urls(tmp_path, toy):
    paths = _files(tmp_path / "src", 3)
    copy = tmp_path / "src" / "copy.wav"
    copy.write_bytes(paths[0].read_bytes())
    with _collection_with(tmp_path, paths + [copy]) as cat:
        cat.add_files([("https://example.org/tape.mp3", "url", "https://example.org/tape.mp3")])
        ids = {f.id for f in cat.files() if f.path in (str(paths[0]), str(paths[1]))}
        part = run_step_quiet(cat, "toy", file_ids=ids)
        assert (part.planned, part.ok) == (2, 2)
        rest = run_step_quiet(cat, "toy")
        assert rest.urls_pending == 1 and "1 URLs not fetched yet" in rest.line()
        assert (rest.ok, rest.up_to_date) == (2, 2)
        assert len(_rows(cat, "toy")) == 3  # the copy shares its original's result
        records = {f.path: file_record(f, r) for f, r in cat.iter_current()}
        assert records[str(copy)]["toy"] == records[str(paths[0])]["toy"]
        assert records[str(paths[1])]["toy"]["peak_dbfs"] != records[str(paths[0])]["toy"]["peak_dbfs"]
        assert records["https://example.org/tape.mp3"]["status"] == "pending"


# --- killing a run -------------------------------------------------------------------------



def _start_analyze(coll: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([*AUDIOTROVE, "-C", str(coll), "analyze", "--workers", "2"],
                                env=cli_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_for_results(coll: Path, proc: subprocess.Popen, at_least: int) -> int:
    conn = sqlite3.connect(catalog_db(coll), timeout=30)
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and proc.poll() is None:
            count = conn.execute("SELECT count(*) FROM results").fetchone()[0]
            if count >= at_least:
                break
            time.sleep(0.002)
        return count
    finally:
        conn.close()


def _results(coll: Path) -> dict[str, tuple]:
    rows = db_rows(coll, "SELECT content_hash, id, created_at, status, step, step_version, "
                         "params_hash FROM results")
    assert len(rows) == len({(r[0], r[4], r[5], r[6]) for r in rows})
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to watch the process group")
def test_sigkill_of_the_whole_run_loses_only_items_in_flight(tmp_path):
    n = 40
    _files(tmp_path / "src", n, seconds=1.0)
    coll = tmp_path / "coll"
    assert run_cli("init", coll).returncode == 0
    assert run_cli("-C", coll, "add", tmp_path / "src").stdout.strip() == \
        f"added {n}, already present 0, skipped 0"

    proc = _start_analyze(coll, tmp_path / "run1.log")
    try:
        _wait_for_results(coll, proc, at_least=10)
        members = group_members(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator, the forkserver, the workers
    finally:
        proc.wait(timeout=30)
    log = (tmp_path / "run1.log").read_text()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{log}"
    assert len(members) >= 3, members  # coordinator + forkserver/workers were running
    deadline = time.monotonic() + 10
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(proc.pid) == []

    assert db_rows(coll, "PRAGMA integrity_check") == [("ok",)]
    before = _results(coll)
    k = len(before)
    assert 0 < k < n, k
    # file facts are committed with their result, in the same transaction
    hashed = db_rows(coll, "SELECT content_hash FROM files WHERE content_hash IS NOT NULL")
    assert sorted(h for (h,) in hashed) == sorted(before)

    resumed = run_cli("-C", coll, "analyze", "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"analyze: {n - k} ok, 0 failed, {k} already up to date" in resumed.stderr
    after = _results(coll)
    assert len(after) == n and all(s == "ok" for _, _, s in after.values())
    changed = {h: (before[h], after[h]) for h in before if after[h] != before[h]}
    assert not changed, f"results saved before the kill were recomputed: {changed}"
    file_hashes = [h for (h,) in db_rows(coll, "SELECT content_hash FROM files")]
    assert sorted(file_hashes) == sorted(after)  # every file has exactly its own result

    again = run_cli("-C", coll, "analyze", "--workers", "2")
    assert f"analyze: 0 ok, 0 failed, {n} already up to date" in again.stderr
    assert _results(coll) == after


CTRL_C_RUN = """
import sys
import typer
from audiotrove.catalog.db import Catalog
from audiotrove.commands.common import err, run_step_cli
from audiotrove.steps import register
register("toy", "toystep")
with Catalog.open(sys.argv[1]) as cat:
    try:
        summary = run_step_cli(cat, "toy", {"hold_if_name": "hold"}, workers=2, show_progress=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    err.print(summary.line())
"""


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path):
    """Deterministic whatever the machine's speed: the first 6 files finish, the next ones wait
    in the workers (toy step, hold_if_name) until the test lets them go; Ctrl-C comes while
    they wait. The run goes through the CLI's own Ctrl-C handling (run_step_cli)."""
    n, free = 12, 6
    src = tmp_path / "src"
    paths = _files(src, free, prefix="a") + [
        write_audio(src / f"hold{i:02d}.wav", tone(freq_hz=900 + 31 * i, seconds=0.5, sample_rate=16000), 16000)
        for i in range(n - free)]
    coll = tmp_path / "coll"
    Catalog.create(coll).close()
    with Catalog.open(coll) as cat:
        cat.add_files([(str(p), "file", str(src)) for p in paths])
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", CTRL_C_RUN, str(coll)], env=cli_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=sigint_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while not all(Path(f"{p}.started").exists() for p in paths[free:free + 2]):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.01)
        assert len(_results(coll)) == free  # in path order: the free files, then the held ones
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = (tmp_path / "run.log").read_text()
    assert proc.returncode == 130, log
    assert f"toy: {free} ok, 0 failed" in log and "interrupted" in log
    assert "run the same command again to resume" in log and "Traceback" not in log
    assert len(_results(coll)) == free
    for p in paths[free:]:
        Path(f"{p}.go").touch()
    resumed = subprocess.run([sys.executable, "-c", CTRL_C_RUN, str(coll)], env=cli_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"toy: {n - free} ok, 0 failed, {free} already up to date" in resumed.stderr
    assert len(_results(coll)) == n


def test_progress_counts_audio_within_a_file_in_x_real_time():
    """Issue 10 item 16: the audio count moves while a file is decoded; speed in x real time."""
    from audiotrove.runner.progress import RunProgress
    from audiotrove.steps import Item

    progress = RunProgress("analyze", 3, enabled=False)
    progress.started -= 10.0  # as if the run began 10 s ago
    progress.decoding(Item(1, "/a.wav", {}), 1800.0)  # half an hour of a long file decoded
    progress.decoding(Item(2, "/b.wav", {}), 1800.0)
    line = progress.line()
    assert line.startswith("1.00 h audio") and "x real time" in line and "h/s" not in line
    assert 355 <= int(line.split("· ")[1].split("x")[0]) <= 360  # 3600 s of audio in ~10 s
