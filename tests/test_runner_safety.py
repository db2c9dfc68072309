"""The runner never hangs and never does work twice (issue 20, items 3, 4, 5): only regular
files are added and read, every item has a time limit, workers exit when the coordinator dies,
one run of a step at a time per collection."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import AUDIOTROVE, cli_env, group_members, run_cli, run_step_quiet, tone, write_audio

from audiotrove import steps
from audiotrove.catalog.db import Catalog
from audiotrove.steps import register

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


@pytest.fixture
def toy():
    register("toy", "toystep")
    yield
    steps._STEP_MODULES.pop("toy", None)


def _wav(path: Path, freq_hz: float = 440.0) -> Path:
    return write_audio(path, tone(freq_hz=freq_hz, seconds=0.5, sample_rate=8000), 8000)


def _wait_for(path: Path, proc: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        assert proc is None or proc.poll() is None, "the run ended early"
        time.sleep(0.01)


# --- item 3: FIFOs, devices, time limits ----------------------------------------------------

def test_add_registers_only_regular_files(tmp_path):
    src = tmp_path / "src"
    _wav(src / "a.wav")
    os.mkfifo(src / "pipe.wav")
    (src / "zero.wav").symlink_to("/dev/zero")
    coll = tmp_path / "coll"
    run_cli("init", coll)
    r = run_cli("-C", coll, "add", src, src / "pipe.wav", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "added 1," in r.stdout and "skipped 3" in r.stdout
    assert r.stderr.count("named pipe (FIFO)") == 2 and "character device" in r.stderr
    assert "not found" not in r.stderr


def test_a_file_that_became_a_fifo_fails_at_once_and_the_batch_goes_on(tmp_path):
    src = tmp_path / "src"
    paths = [_wav(src / f"f{i}.wav", 300 + 50 * i) for i in range(3)]
    coll = tmp_path / "coll"
    run_cli("init", coll)
    run_cli("-C", coll, "add", src)
    paths[1].unlink()
    os.mkfifo(paths[1])  # registered as a file, a FIFO by the time it is read
    r = run_cli("-C", coll, "analyze", "--workers", "1", timeout=90)
    assert r.returncode == 1, r.stderr
    assert "analyze: 2 ok, 1 failed" in r.stderr
    status = run_cli("-C", coll, "status").stdout
    assert "f1.wav [analyze]: not a regular file: a named pipe (FIFO)" in status


def test_one_off_analyze_of_a_fifo_and_a_device_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    good = _wav(tmp_path / "good.wav")
    r = run_cli("analyze", tmp_path / "pipe.wav", tmp_path / "zero.wav", good, timeout=90)
    assert r.returncode == 1
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 3
    assert '"status": "ok"' in lines[0]
    assert "named pipe" in r.stdout and "character device" in r.stdout


def test_an_item_past_its_time_limit_fails_and_the_batch_goes_on(tmp_path, toy):
    src = tmp_path / "src"
    paths = [_wav(src / f"f{i}.wav", 300 + 50 * i) for i in range(3)]
    hold = _wav(src / "hold.wav", 900)  # never told to go on
    with Catalog.create(tmp_path / "coll") as cat:
        cat.add_files([(str(p), "file", str(src)) for p in [*paths, hold]])
        summary = run_step_quiet(cat, "toy", {"hold_if_name": "hold"}, workers=1, item_timeout_s=1.0)
        assert (summary.ok, summary.failed) == (3, 1)
        ((path, step, error),) = cat.failures("toy")
        assert path == str(hold) and error.startswith("timed out after")
        assert "--item-timeout 1 s" in error


def test_default_time_limit_grows_with_the_audio_decoded():
    from audiotrove.runner.executor import TimeLimit

    limit = TimeLimit()
    assert limit.seconds(0.0) == 60.0 and limit.seconds(600.0) == 6060.0
    assert TimeLimit(fixed_s=5).seconds(600.0) == 5


# --- item 4: workers exit with the coordinator ------------------------------------------------



COORDINATOR = """
import sys
from audiotrove.catalog.db import Catalog
from audiotrove.runner import run_step
from audiotrove.steps import register
register("toy", "toystep")
with Catalog.open(sys.argv[1]) as cat:
    run_step(cat, "toy", {"hold_if_name": "f"}, workers=2, show_progress=False)
"""


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to watch the process group")
def test_workers_exit_when_only_the_coordinator_is_killed(tmp_path):
    src = tmp_path / "src"
    paths = [_wav(src / f"f{i}.wav", 300 + 50 * i) for i in range(4)]
    with Catalog.create(tmp_path / "coll") as cat:
        cat.add_files([(str(p), "file", str(src)) for p in paths])
    proc = subprocess.Popen([sys.executable, "-c", COORDINATOR, str(tmp_path / "coll")],
                            env=cli_env(), start_new_session=True)
    try:
        for p in paths[:2]:  # both workers are inside an item
            _wait_for(Path(str(p) + ".started"), proc)
        members = group_members(proc.pid)
        assert len(members) >= 3, members  # coordinator, forkserver, workers (and resource tracker)
        os.kill(proc.pid, signal.SIGKILL)  # what the OOM killer does: the coordinator only
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_members(proc.pid) == []
    finally:
        left = group_members(proc.pid)
        if left:
            os.killpg(proc.pid, signal.SIGKILL)


# --- item 5: one run of a step at a time --------------------------------------------------------

def test_a_second_run_of_the_same_step_exits_2_and_names_the_holder(tmp_path):
    from audiotrove.runner.lock import step_lock

    _wav(tmp_path / "src" / "a.wav")
    coll = tmp_path / "coll"
    run_cli("init", coll)
    run_cli("-C", coll, "add", tmp_path / "src")
    with step_lock(coll / ".audiotrove", "analyze"):
        r = run_cli("-C", coll, "analyze", timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"another run of analyze is working on this collection (process {os.getpid()}" in r.stderr
    assert "Traceback" not in r.stderr
    again = run_cli("-C", coll, "analyze", timeout=60)  # the lock went with its holder
    assert again.returncode == 0 and "1 ok" in again.stderr


def test_a_step_that_requires_a_locked_step_waits_for_it(tmp_path):
    from audiotrove.runner.lock import RunLocked, step_lock

    work = tmp_path / ".audiotrove"
    holding, waited = threading.Event(), threading.Event()
    release = threading.Event()

    def other_run():
        with step_lock(work, "analyze"):
            holding.set()
            release.wait(30)

    t = threading.Thread(target=other_run)
    t.start()
    holding.wait(30)
    with pytest.raises(RunLocked):
        with step_lock(work, "analyze"):
            pass
    seen = []

    def on_wait(holder):
        seen.append(holder)
        waited.set()
        release.set()

    with step_lock(work, "analyze", wait=True, on_wait=on_wait):
        assert waited.is_set()
    t.join(30)
    assert seen and f"process {os.getpid()}" in seen[0]


def test_two_runs_at_once_never_do_the_work_twice(tmp_path, toy):
    """Two coordinators started together on one collection: one works, the other exits 2."""
    src = tmp_path / "src"
    paths = [_wav(src / f"f{i}.wav", 300 + 50 * i) for i in range(3)]
    with Catalog.create(tmp_path / "coll") as cat:
        cat.add_files([(str(p), "file", str(src)) for p in paths])
    script = COORDINATOR.replace('"f"', '"f0"').replace("workers=2", "workers=1")
    first = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "coll")], env=cli_env(),
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(Path(str(paths[0]) + ".started"), first)
        second = subprocess.run([sys.executable, "-c", script, str(tmp_path / "coll")], env=cli_env(),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "RunLocked: another run of toy" in second.stderr
        Path(str(paths[0]) + ".go").touch()
        first.wait(timeout=60)
        assert first.returncode == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    from conftest import db_rows

    assert db_rows(tmp_path / "coll", "SELECT count(*) FROM results WHERE step = 'toy'") == [(3,)]


# --- item 7: temporary names ---------------------------------------------------------------------

def test_temporary_names_are_never_mistaken_and_leftovers_are_swept(tmp_path, toy):
    import fnmatch

    from audiotrove.io.write import temp_path
    from audiotrove.units.store import write_shard

    units = tmp_path / "coll" / ".audiotrove" / "units"
    for final in ("a.parquet", "b.enhanced.wav", "x.csv"):
        name = temp_path(units / final).name
        assert name.startswith(".audiotrove-tmp-") and name.endswith(".part")
        assert not fnmatch.fnmatch(name, "*" + Path(final).suffix)
    write_shard(units, "b2-0123.parquet", [])
    assert sorted(p.name for p in units.iterdir()) == ["b2-0123.parquet"]  # nothing else left
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = [units / f".audiotrove-tmp-{dead}-0badc0de-c.parquet.part", units / f".tmp-{dead}-features.csv",
            tmp_path / "coll" / ".audiotrove" / f".audiotrove-tmp-{dead}-0badc0de"]
    for p in left[:2]:
        p.write_bytes(b"PAR1 truncated")
    left[2].mkdir()
    mine = units / f".audiotrove-tmp-{os.getpid()}-00000000-d.parquet.part"  # a live process's
    mine.write_bytes(b"PAR1 busy")
    # names carry the machine: a dead process of this one is swept, another machine's is kept
    # (a Dask worker writing into the shared folder: its process id means nothing here)
    from audiotrove.io.write import _host_tag
    here = units / f".audiotrove-tmp-{dead}.{_host_tag()}-0badc0de-e.parquet.part"
    other_tag = "000000" if _host_tag() != "000000" else "ffffff"
    elsewhere = units / f".audiotrove-tmp-{dead}.{other_tag}-0badc0de-f.parquet.part"
    for p in (here, elsewhere):
        p.write_bytes(b"PAR1 truncated")
    left.append(here)
    assert temp_path(units / "g.parquet").name.startswith(f".audiotrove-tmp-{os.getpid()}.{_host_tag()}-")
    _wav(tmp_path / "src" / "a.wav")
    with Catalog.create(tmp_path / "coll") as cat:
        cat.add_files([(str(tmp_path / "src" / "a.wav"), "file", "src")])
        assert run_step_quiet(cat, "toy").ok == 1
    assert not any(p.exists() for p in left) and mine.exists() and elsewhere.exists()
