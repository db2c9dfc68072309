"""The Dask executor on real processes: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, started here and stopped (their whole process groups) at the end.

Items are stopped at known moments by tests/dask_preload.py (loaded into the workers): a
sidecar "<file>.hold-<step>" makes the first attempt at that item write "<file>.started-<step>"
(the worker's pid) and wait; the test then kills that worker, presses Ctrl-C or stops the
scheduler. No sleep races the machine's speed: every wait is for a file or an exit.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiotrove.errors import UsageError
from audiotrove.runner.dask_executor import PathMap
from audiotrove.steps import Item

from conftest import (AUDIOTROVE, TESTS_DIR, cli_env, db_rows, group_members, noise, speech_like,
                      sigint_as_from_a_terminal, tone, write_audio)

distributed = pytest.importorskip("distributed")

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
START_S = 120  # a generous bound for a process to come up on a loaded machine (not a race)
NO_LIMIT = ("--item-timeout", "100000")  # a held item waits for the test, however slow the machine


# --- pure: the path map, the option checks ------------------------------------------------------

def test_path_map_translates_items_and_results_back():
    pm = PathMap.parse(["/data/audio=/mnt/nfs/audio", "/data/audio/special/=/srv/special", "/home/me/coll=/mnt/coll"])
    item = Item(3, "/data/audio/a/b.wav", {"out_dir": "/data/audio/out", "gain_db": 2.0, "mode": "onset"},
                {"analyze": {"x": ["/data/audio/a/b.wav"]}}, "/home/me/coll/.audiotrove")
    remote = pm.to_remote(item)
    assert remote.path == "/mnt/nfs/audio/a/b.wav"
    assert remote.workdir == "/mnt/coll/.audiotrove"
    assert remote.params == {"out_dir": "/mnt/nfs/audio/out", "gain_db": 2.0, "mode": "onset"}
    assert remote.inputs["analyze"]["x"] == ["/mnt/nfs/audio/a/b.wav"]
    assert remote.file_id == 3 and item.path == "/data/audio/a/b.wav"  # the original is untouched
    # the longest prefix wins; a prefix matches whole folder names only
    assert pm.path_to_remote("/data/audio/special/x.wav") == "/srv/special/x.wav"
    assert pm.path_to_remote("/data/audiobooks/x.wav") == "/data/audiobooks/x.wav"
    assert pm.path_to_remote("/data/audio") == "/mnt/nfs/audio"
    # results come back in the coordinator's paths, messages included
    assert pm.to_local({"output": "/mnt/nfs/audio/out/b.enhanced.wav", "n": 1}) == \
        {"output": "/data/audio/out/b.enhanced.wav", "n": 1}
    assert pm.to_local("cannot write the unit shard into /mnt/coll/.audiotrove/units: full") == \
        "cannot write the unit shard into /home/me/coll/.audiotrove/units: full"
    assert pm.to_local(pm.to_remote(item)) == item
    assert PathMap().to_remote(item) is item
    for bad in ("/data", "=/mnt", "/data=", "data=/mnt", "/data=mnt"):
        with pytest.raises(UsageError, match="--path-map"):
            PathMap.parse([bad])


def test_option_checks_and_missing_extra(monkeypatch):
    from audiotrove.commands.cluster import chosen_executor
    from audiotrove.commands.common import State
    from audiotrove.runner import dask_executor

    monkeypatch.setattr(State, "executor", None)
    monkeypatch.setattr(State, "scheduler", None)
    monkeypatch.setattr(State, "path_map", [])
    monkeypatch.delenv("AUDIOTROVE_SCHEDULER", raising=False)
    with chosen_executor() as ex:
        assert ex is None  # the local pool by default
    monkeypatch.setattr(State, "path_map", ["/a=/b"])
    with pytest.raises(UsageError, match="--path-map applies to --executor dask"):
        with chosen_executor():
            pass
    monkeypatch.setattr(State, "path_map", [])
    monkeypatch.setattr(State, "executor", "dask")
    with pytest.raises(UsageError, match="needs a scheduler"):
        with chosen_executor():
            pass
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
        dask_executor.DaskExecutor.connect("tcp://127.0.0.1:1", timeout_s=0.5)
    monkeypatch.setitem(sys.modules, "distributed", None)  # the dask extra not installed
    with pytest.raises(UsageError, match=r"pip install 'audiotrove\[dask\]'"):
        dask_executor.DaskExecutor.connect("tcp://127.0.0.1:1")
    monkeypatch.setattr(State, "executor", "spark")
    with pytest.raises(UsageError, match="unknown executor"):
        with chosen_executor():
            pass


# --- a real cluster ---------------------------------------------------------------------------------

class Cluster:
    def __init__(self, root: Path, workers: int = 2):
        self.root = root
        self.file = root / "scheduler.json"
        self.env = cli_env({"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
                            "DASK_DISTRIBUTED__WORKER__DAEMON": "False"})
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._start([*DASK, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.file)], "scheduler")
        deadline = time.monotonic() + START_S
        while not self.file.exists():
            assert self.scheduler.poll() is None and time.monotonic() < deadline, self.log("scheduler")
            time.sleep(0.05)
        self.address = json.loads(self.file.read_text())["address"]
        for k in range(workers):
            self._start([*WORKER, "--scheduler-file", str(self.file), "--nthreads", "1", "--nworkers", "1",
                         "--memory-limit", "0", "--no-dashboard", "--name", f"w{k}", "--host", "127.0.0.1",
                         "--preload", str(TESTS_DIR / "dask_preload.py")], f"worker{k}")
        self.wait_for_workers(workers)

    def _start(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def client(self):
        return distributed.Client(self.address, timeout=START_S, set_as_default=False)

    def wait_for_workers(self, n: int) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=START_S)

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(timeout=30)
        deadline = time.monotonic() + 30  # killed processes of a group vanish once reaped
        while any(group_members(p.pid) for p in self.procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(group_members(p.pid) for p in self.procs), "a Dask process outlived the test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = None
    try:
        c = Cluster(tmp_path_factory.mktemp("dask"))
        yield c
    finally:
        if c is not None:
            c.stop()


def _files(folder: Path) -> list[Path]:
    folder.mkdir()
    sr = 22050
    signals = {"a_tone.wav": tone(freq_hz=330, seconds=2.0, sample_rate=sr),
               "b_speech.wav": speech_like(seconds=2.0, sample_rate=16000, seed=5),
               "c_hold.wav": tone(freq_hz=550, seconds=1.5, sample_rate=sr, channels=2),
               "d_noise.flac": noise(seconds=1.0, sample_rate=sr, seed=7),
               "e_speech.ogg": speech_like(seconds=2.0, sample_rate=16000, seed=8),
               "f_tone.wav": tone(freq_hz=990, seconds=1.0, sample_rate=sr)}
    return [write_audio(folder / name, audio, 16000 if "speech" in name else sr)
            for name, audio in signals.items()]


def _wait_for(path: Path, proc: subprocess.Popen | None = None) -> str:
    deadline = time.monotonic() + START_S
    while not (path.exists() and path.read_text()):
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _popen_cli(*args, extra_env: dict | None = None) -> subprocess.Popen:
    """The CLI in a process of its own, with Ctrl-C (SIGINT) handled even when this test runs in
    a background job (where the shell starts it, and so its children, with SIGINT ignored)."""
    return subprocess.Popen([*AUDIOTROVE, *map(str, args)], env=cli_env(extra_env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=sigint_as_from_a_terminal)


def _invoke(*args):
    """`audiotrove ARGS` in this process (no process start: the machine is slow)."""
    from typer.testing import CliRunner

    from audiotrove.cli import app

    result = CliRunner().invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def _collection(root: Path, audio: Path) -> Path:
    from audiotrove.catalog.db import Catalog
    from audiotrove.catalog.sources import expand_sources

    cat = Catalog.create(root)
    cat.add_files(expand_sources([str(audio)]).entries)
    cat.close()
    return root


def _json(result):
    return json.loads(result.stdout[result.stdout.index("["):])


def _one_result_each(coll: Path, step: str, files: int) -> None:
    rows = db_rows(coll, "SELECT status, count(*) FROM results WHERE step = ? GROUP BY status", (step,))
    assert rows == [("ok", files)], (step, rows)


def test_analyze_segment_embed_on_dask_equal_local_with_a_worker_killed(cluster, tmp_path):
    audio = _files(tmp_path / "audio")
    link = tmp_path / "mnt"
    link.symlink_to(tmp_path / "audio")  # the workers' view of the same folder under another name
    local = _collection(tmp_path / "local", tmp_path / "audio")
    remote = _collection(tmp_path / "remote", tmp_path / "audio")
    _invoke("-C", local, "segment", "-j", "2")  # analyze, then segment
    _invoke("-C", local, "embed", "--units", "--model", "descriptors", "-j", "2")

    # analyze then segment on the cluster; the worker running c_hold.wav is SIGKILLed in the middle of it
    held = audio[2]
    Path(f"{held}.hold-segment").touch()
    run = _popen_cli("-C", remote, "segment", "--path-map", f"{tmp_path / 'audio'}={link}", *NO_LIMIT,
                     extra_env={"AUDIOTROVE_SCHEDULER": cluster.address})
    pid = int(_wait_for(Path(f"{held}.started-segment"), run))
    os.kill(pid, signal.SIGKILL)
    _, stderr = run.communicate(timeout=START_S)
    assert run.returncode == 0, stderr
    assert "segment: 6 ok, 0 failed" in stderr  # each outcome committed once
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    _invoke("-C", remote, "embed", "--units", "--model", "descriptors", "--executor", "dask",
            "--scheduler", cluster.address)

    # nothing lost, nothing twice: one result per file and step, one shard per file
    for step in ("analyze", "segment", "embed"):
        _one_result_each(remote, step, 6)
    shards = [sorted(p.name for p in (c / ".audiotrove" / "units").iterdir()) for c in (local, remote)]
    assert len(shards[0]) == 6 and all(s.endswith(".parquet") for s in shards[0])
    assert shards[1] == shards[0]
    listing = _json(_invoke("-C", remote, "ls", "--format", "json"))
    assert len(listing) == 6 and all(f.get("units") for f in listing)
    assert listing == _json(_invoke("-C", local, "ls", "--format", "json"))
    assert _json(_invoke("-C", remote, "units", "--format", "json")) == \
        _json(_invoke("-C", local, "units", "--format", "json"))
    cluster.wait_for_workers(2)  # the nanny restarts the killed worker


def test_an_item_that_kills_two_workers_fails_with_a_message(cluster, tmp_path, monkeypatch):
    from audiotrove.catalog.db import Catalog
    from audiotrove.runner import run_step
    from audiotrove.runner.dask_executor import DaskExecutor
    from audiotrove.steps import register

    monkeypatch.syspath_prepend(str(TESTS_DIR))
    register("toy", "toystep")
    audio = _files(tmp_path / "audio")
    crash = audio[1].rename(audio[1].with_name("b_crash.wav"))
    cat = Catalog.create(tmp_path / "coll")
    cat.add_files([(str(p), "file", None) for p in [*audio[:1], crash, *audio[2:]]])
    with DaskExecutor.connect(cluster.address) as executor:
        summary = run_step(cat, "toy", {"crash_if_name": "crash"}, executor=executor, show_progress=False)
    assert (summary.ok, summary.failed) == (5, 1)
    rows = db_rows(tmp_path / "coll", "SELECT f.path, r.status, r.error FROM results r JOIN files f "
                                      "ON f.content_hash = r.content_hash WHERE r.step = 'toy'")
    failed = [(p, e) for p, s, e in rows if s == "error"]
    assert len(failed) == 1 and failed[0][0] == str(crash)
    assert "worker process died while processing this item, on 2 Dask workers" in failed[0][1]
    cat.close()
    cluster.wait_for_workers(2)


def test_an_item_past_its_time_limit_fails_and_the_worker_goes_on(cluster, tmp_path, monkeypatch):
    from audiotrove.catalog.db import Catalog
    from audiotrove.runner import run_step
    from audiotrove.runner.dask_executor import DaskExecutor
    from audiotrove.runner.executor import TimeLimit
    from audiotrove.steps import register

    monkeypatch.syspath_prepend(str(TESTS_DIR))
    register("toy", "toystep")
    stuck = write_audio(tmp_path / "stuck.wav", tone(seconds=0.5), 44100)
    cat = Catalog.create(tmp_path / "coll")
    cat.add_files([(str(stuck), "file", None)])
    try:
        with DaskExecutor.connect(cluster.address, time_limit=TimeLimit(fixed_s=1.0)) as executor:
            summary = run_step(cat, "toy", {"hold_if_name": "stuck"}, executor=executor, show_progress=False)
            assert (summary.ok, summary.failed) == (0, 1)
            assert Path(f"{stuck}.started").exists()  # it was running, not waiting for a worker
            error = db_rows(tmp_path / "coll", "SELECT error FROM results WHERE step = 'toy'")[0][0]
            assert error.startswith("timed out after 1 s (limit: --item-timeout 1 s)"), error
            # both workers still take items
            assert sorted(executor.client.gather(executor.client.map(len, ["a", "bb"], pure=False))) == [1, 2]
    finally:
        Path(f"{stuck}.go").touch()  # let the abandoned thread end
        cat.close()


def test_ctrl_c_cancels_and_the_next_run_resumes(cluster, tmp_path):
    audio = _files(tmp_path / "audio")
    coll = _collection(tmp_path / "coll", tmp_path / "audio")
    held = audio[0]
    Path(f"{held}.hold-analyze").touch()
    run = _popen_cli("-C", coll, "analyze", "--scheduler", cluster.address, *NO_LIMIT)
    _wait_for(Path(f"{held}.started-analyze"), run)
    # the other worker goes on alone: wait until it has committed the 5 other files
    deadline = time.monotonic() + START_S
    while db_rows(coll, "SELECT count(*) FROM results WHERE step = 'analyze'")[0][0] < 5:
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=START_S)
    assert run.returncode == 130, stderr
    assert "run again to resume" in stderr
    Path(f"{held}.go").touch()  # the worker thread still holding the cancelled item may go
    out = _invoke("-C", coll, "analyze", "--scheduler", cluster.address)
    assert "analyze: 1 ok, 0 failed, 5 already up to date" in out.output
    _one_result_each(coll, "analyze", 6)


def test_path_map_reaches_the_workers(cluster, tmp_path):
    from audiotrove.runner.dask_executor import DaskExecutor

    real = tmp_path / "real"
    real.mkdir()
    (real / "a.wav").write_bytes(b"x")
    seen = []
    for mapping, expected in (([f"/nowhere/{tmp_path.name}={real}"], True), ([], False)):
        with DaskExecutor.connect(cluster.address, path_map=PathMap.parse(mapping)) as ex:
            ex.run(os.path.isfile, [f"/nowhere/{tmp_path.name}/a.wav"], seen.append)
        assert seen[-1].error is None and seen[-1].value is expected
        assert seen[-1].item == f"/nowhere/{tmp_path.name}/a.wav"  # outcomes name the item as given


def test_cluster_local_prints_its_address_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([*AUDIOTROVE, "cluster", "local", "--workers", "1", "--port", "0", "--memory-limit", "0"],
                            env=cli_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else address
        with distributed.Client(address, timeout=START_S, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=START_S)
            assert client.submit(sum, [1, 2, 3]).result(timeout=START_S) == 6
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=START_S)
        assert proc.returncode == 0 and "cluster stopped" in stderr
        deadline = time.monotonic() + 30
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_members(proc.pid) == []  # its scheduler and workers went with it
    finally:
        if proc.poll() is None or group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_scheduler_gone_stops_the_run_with_what_finished_saved(cluster, tmp_path):
    """The last test of the module: it kills the module's scheduler."""
    audio = _files(tmp_path / "audio")
    coll = _collection(tmp_path / "coll", tmp_path / "audio")
    held = audio[3]
    Path(f"{held}.hold-analyze").touch()
    run = _popen_cli("-C", coll, "analyze", "--scheduler", cluster.address, *NO_LIMIT)
    _wait_for(Path(f"{held}.started-analyze"), run)
    deadline = time.monotonic() + START_S  # the other worker goes on: the 5 other files are committed
    while db_rows(coll, "SELECT count(*) FROM results WHERE step = 'analyze'")[0][0] < 5:
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(cluster.scheduler.pid, signal.SIGKILL)
    _, stderr = run.communicate(timeout=START_S)
    assert run.returncode == 2, stderr
    assert "went away during the run" in stderr and "run the same command again" in stderr
    assert "analyze: 5 ok, 0 failed" in stderr
    assert db_rows(coll, "SELECT status, count(*) FROM results WHERE step = 'analyze' GROUP BY status") == [("ok", 5)]
