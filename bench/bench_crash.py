"""Crash, race and fuzz checks of the runner (issue 20): never lose data, never hang.

    .venv/bin/python bench/bench_crash.py [--kills 8] [--files 24] [--seconds 2] [--only NAME ...]

Each scenario is tried several times on a fresh collection of generated WAV files, through the
real CLI (subprocesses, as a user runs it), and every try is classed as:
  survived    everything below holds
  lost        a result committed before a kill is gone or changed, an original or an output the
              catalog records changed or vanished, or the catalog is corrupt
  duplicated  a result row or an output file more than the files justify, leftover temporary files
              after the next run, or work done twice by two runs at once
  hung        a run, or a process it started, still alive past its time limit

Scenarios
  kill-analyze, kill-enhance, kill-segment   SIGKILL the whole process group at a random moment
              of a run, check the catalog, run again to the end, check everything is there once
  kill-coordinator   SIGKILL only the coordinator (what the OOM killer does): its workers, the
              forkserver and the resource tracker must be gone within 15 s
  race-analyze, race-enhance   two runs of the same step started together on one collection
  fuzz        files that broke runs before: a FIFO, links to /dev/zero and /dev/urandom, a header
              declaring 1 Hz / 7 Hz / 65535 channels, a 250-character name, random bytes, a
              truncated file, an empty file: analyze and enhance must end with one clear message
              per bad file (no traceback) within the time limit
  outputs     enhance into the source folder where a registered original already has the output's
              name, two sources with one stem (a.wav, a.flac), and 20 -> 90 -> 20 settings: no file
              overwritten, every recorded output verified

Prints one table: scenario, tried, survived, lost, duplicated, hung. Exit status 1 if any try is
not `survived`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

EXE = [sys.executable, "-m", "audiotrove.cli"]
RUN_LIMIT_S = 300  # a run past this is "hung"


# --- helpers ----------------------------------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src"


def env() -> dict:
    e = dict(os.environ)
    src = str(SRC)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (src, e.get("PYTHONPATH")) if p)
    e["COLUMNS"] = "400"
    e["NO_COLOR"] = "1"
    return e


def cli(*args, timeout: float | None = None) -> subprocess.CompletedProcess | None:
    """Run the CLI to its end; None when it is still running after `timeout` (then killed)."""
    proc = subprocess.Popen([*EXE, *map(str, args)], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout or RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([*EXE, *map(str, args)], env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                out.append(int(entry))
    return out


def gone(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def make_sources(folder: Path, n: int, seconds: float, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        t = np.arange(int(seconds * 16000)) / 16000
        x = 0.3 * np.sin(2 * np.pi * (150 + 23 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        x = x + 0.02 * rng.standard_normal(len(t))
        p = folder / f"rec{i:03d}.wav"
        sf.write(p, x.astype(np.float32), 16000, subtype="PCM_16")
        out.append(p)
    return out


def digests(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths if Path(p).is_file()}


def db(coll: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(coll / ".audiotrove" / "catalog.db", timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def results(coll: Path, step: str) -> dict[tuple, tuple]:
    rows = db(coll, f"SELECT content_hash, step_version, params_hash, id, created_at, status, data "
                    f"FROM results WHERE step = '{step}'")
    return {r[:3]: r[3:] for r in rows}


def temps_left(*folders: Path) -> list[str]:
    left = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                if name.startswith(".audiotrove-tmp-") or ".part-" in name or name.startswith(".tmp-"):
                    left.append(os.path.join(dirpath, name))
    return left


def new_collection(root: Path, n: int, seconds: float) -> tuple[Path, list[Path]]:
    if root.exists():
        shutil.rmtree(root)
    sources = make_sources(root / "src", n, seconds)
    coll = root / "coll"
    cli("init", coll)
    cli("-C", coll, "add", root / "src")
    return coll, sources


# --- scenarios -----------------------------------------------------------------------------------

STEP_ARGS = {
    "analyze": lambda root: ["analyze", "--workers", "2"],
    "enhance": lambda root: ["enhance", "-o", root / "out", "--denoise", "50", "--workers", "2"],
    "segment": lambda root: ["segment", "--workers", "2"],
}


def kill_step(step: str, root: Path, args) -> str:
    coll, sources = new_collection(root, args.files, args.seconds)
    originals = digests(sources)
    if step != "analyze":  # analysis first, so the kill lands in the step itself
        if cli("-C", coll, "analyze", "--workers", "2") is None:
            return "hung"
    proc = start("-C", coll, *STEP_ARGS[step](root))
    time.sleep(random.uniform(0.5, args.kill_window))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if not gone(proc.pid, 15):
        return "hung"
    if db(coll, "PRAGMA integrity_check") != [("ok",)]:
        return "lost"
    saved = results(coll, step)
    resumed = cli("-C", coll, *STEP_ARGS[step](root))
    if resumed is None:
        return "hung"
    after = results(coll, step)
    if digests(sources) != originals:
        return "lost"
    if any(after.get(k, (None,))[:2] != v[:2] for k, v in saved.items() if v[2] == "ok"):
        return "lost"  # a result saved before the kill was recomputed or vanished
    ok = [v for v in after.values() if v[2] == "ok"]
    if len(after) > len(sources):
        return "duplicated"
    if len(ok) < len(sources):
        return "lost"
    if step == "enhance":
        recorded = []
        for _, _, status, data in after.values():
            if status == "ok":
                e = json.loads(data)["enhance"]
                recorded.append(e["output"])
                if not Path(e["output"]).is_file() or Path(e["output"]).stat().st_size != e["output_size"]:
                    return "lost"
        on_disk = sorted(str(p) for p in (root / "out").iterdir())
        if len(recorded) != len(sources):
            return "lost"
        if on_disk != sorted(recorded):
            return "duplicated"  # an output nobody records (made before the kill, made again)
    if temps_left(root / "out", coll / ".audiotrove"):
        return "duplicated"
    return "survived"


def kill_coordinator(root: Path, args) -> str:
    coll, _ = new_collection(root, args.files, args.seconds * 4)
    proc = start("-C", coll, "analyze", "--workers", "2")
    deadline = time.monotonic() + 60
    while len(group_members(proc.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # coordinator, forkserver, resource tracker, a worker
    time.sleep(random.uniform(0.0, 1.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ok = gone(proc.pid, 15)
    if not ok:
        os.killpg(proc.pid, signal.SIGKILL)
        return "hung"
    return "survived" if db(coll, "PRAGMA integrity_check") == [("ok",)] else "lost"


def race(step: str, root: Path, args) -> str:
    coll, sources = new_collection(root, args.files, args.seconds)
    if step != "analyze" and cli("-C", coll, "analyze", "--workers", "2") is None:
        return "hung"
    a = start("-C", coll, *STEP_ARGS[step](root))
    b = start("-C", coll, *STEP_ARGS[step](root))
    outs = []
    for p in (a, b):
        try:
            _, err = p.communicate(timeout=RUN_LIMIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return "hung"
        outs.append((p.returncode, err))
    done = sum(int(err.split(f"{step}: ", 1)[1].split(" ok", 1)[0]) for code, err in outs
               if f"{step}: " in err and " ok" in err.split(f"{step}: ", 1)[1])
    rows = results(coll, step)
    if len(rows) != len(sources) or any(v[2] != "ok" for v in rows.values()):
        return "lost"
    if done > len(sources):
        return "duplicated"  # both runs did (some of) the work
    if step == "enhance" and len(list((root / "out").iterdir())) != len(sources):
        return "duplicated"
    return "survived"


def _wav_header(rate: int, channels: int, frames: int = 800) -> bytes:
    block = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block & 0xFFFFFFFF, block & 0xFFFF, 16)
    data = b"\x01\x00" * frames * min(channels, 2)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fuzz(root: Path, args) -> str:
    if root.exists():
        shutil.rmtree(root)
    src = root / "src"
    good = make_sources(src, 2, args.seconds)
    os.mkfifo(src / "pipe.wav")
    (src / "zero.wav").symlink_to("/dev/zero")
    (src / "random.wav").symlink_to("/dev/urandom")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock.wav"))
    (src / "rate1.wav").write_bytes(_wav_header(1, 1))
    (src / "rate7.wav").write_bytes(_wav_header(7, 1))
    (src / "ch65535.wav").write_bytes(_wav_header(16000, 65535, frames=2))
    shutil.copy(good[0], src / ("n" * 250 + ".wav"))
    (src / "noise.mp3").write_bytes(os.urandom(50_000))
    data = good[1].read_bytes()
    (src / "cut.wav").write_bytes(data[: len(data) // 3])
    (src / "empty.flac").write_bytes(b"")
    originals = digests([p for p in src.iterdir() if p.is_file() and not p.is_symlink()])
    coll = root / "coll"
    cli("init", coll)
    added = cli("-C", coll, "add", src, src / "pipe.wav", timeout=60)
    one_off = cli("analyze", src / "pipe.wav", src / "zero.wav", good[0], timeout=120)
    runs = [cli("-C", coll, "analyze", "--workers", "1", timeout=RUN_LIMIT_S),
            cli("-C", coll, "enhance", "-o", root / "out", "--denoise", "40", "--workers", "1",
                timeout=RUN_LIMIT_S)]
    sock.close()
    if added is None or one_off is None or any(r is None for r in runs):
        return "hung"
    if digests(originals) != originals:
        return "lost"
    status = cli("-C", coll, "status", timeout=60).stdout
    messages = [line for line in status.splitlines() if "[analyze]" in line or "[enhance]" in line]
    unclear = [m for m in messages if "Traceback" in m or ".py:" in m]
    text = added.stderr + one_off.stdout + status
    if unclear or any(w not in text for w in ("named pipe", "character device", "socket",
                                             "implausible sample rate in header: 1 Hz",
                                             "implausible channel count in header: 65535")):
        print("unclear messages:", *(unclear or [text]), sep="\n  ", file=sys.stderr)
        return "lost"
    return "survived"


def outputs(root: Path, args) -> str:
    if root.exists():
        shutil.rmtree(root)
    # a registered original has the name the output of another would take; outputs go next to them
    src = root / "in"
    a, other = make_sources(src, 2, args.seconds)
    named = src / "rec000.enhanced.wav"
    other.rename(named)
    originals = digests([a, named])
    coll = root / "coll"
    cli("init", coll)
    cli("-C", coll, "add", src)
    if cli("-C", coll, "enhance", "-o", src, "--denoise", "30", "--workers", "2") is None:
        return "hung"
    if digests([a, named]) != originals:
        return "lost"
    # one stem in two formats, then 20 -> 90 -> 20 into one folder
    src2 = root / "in2"
    (b_wav,) = make_sources(src2, 1, args.seconds)
    flac = src2 / "rec000.flac"
    x, sr = sf.read(b_wav)
    sf.write(flac, np.flip(x), sr)
    coll2 = root / "coll2"
    cli("init", coll2)
    cli("-C", coll2, "add", src2)
    for amount in ("20", "90", "20"):
        if cli("-C", coll2, "enhance", "-o", root / "out", "--denoise", amount, "--workers", "2") is None:
            return "hung"
    rows = [json.loads(d)["enhance"] for (d,) in
            db(coll2, "SELECT data FROM results WHERE step = 'enhance' AND status = 'ok'")]
    if len(rows) != 4 or len({e["output"] for e in rows}) != 4:
        return "duplicated"  # two results share one output file
    for e in rows:
        p = Path(e["output"])
        if not p.is_file() or "output_hash" not in e:
            return "lost"
        if hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() != e["output_hash"].split(":")[1]:
            return "lost"  # the file is not the one the result describes
    return "survived"


SCENARIOS = {
    "kill-analyze": lambda root, a: kill_step("analyze", root, a),
    "kill-enhance": lambda root, a: kill_step("enhance", root, a),
    "kill-segment": lambda root, a: kill_step("segment", root, a),
    "kill-coordinator": kill_coordinator,
    "race-analyze": lambda root, a: race("analyze", root, a),
    "race-enhance": lambda root, a: race("enhance", root, a),
    "fuzz": fuzz,
    "outputs": outputs,
}
TRIES = {"kill-analyze": "kills", "kill-enhance": "kills", "kill-segment": "kills",
         "kill-coordinator": "kills", "race-analyze": "races", "race-enhance": "races",
         "fuzz": None, "outputs": None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=6, help="tries of each kill scenario")
    ap.add_argument("--races", type=int, default=2, help="tries of each race scenario")
    ap.add_argument("--files", type=int, default=16, help="files per collection")
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each file (s)")
    ap.add_argument("--kill-window", type=float, default=6.0, help="kill within this many seconds of the start")
    ap.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--src", type=Path, default=SRC, help="the audiotrove sources to test (e.g. an older checkout's src/)")
    ap.add_argument("--run-limit", type=float, default=RUN_LIMIT_S, help="seconds after which a run is hung")
    args = ap.parse_args()
    globals().update(SRC=args.src.resolve(), RUN_LIMIT_S=args.run_limit)
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    table = []
    try:
        for name, run in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            tries = getattr(args, TRIES[name]) if TRIES[name] else 1
            counts = {"survived": 0, "lost": 0, "duplicated": 0, "hung": 0}
            started = time.perf_counter()
            for k in range(tries):
                verdict = run(work / f"{name}-{k}", args)
                counts[verdict] += 1
                shutil.rmtree(work / f"{name}-{k}", ignore_errors=True)
            table.append((name, tries, counts, time.perf_counter() - started))
            print(f"{name}: {counts} ({table[-1][3]:.0f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'scenario':<18} {'tried':>5} {'survived':>8} {'lost':>5} {'duplicated':>10} {'hung':>5}")
    for name, tries, c, _ in table:
        print(f"{name:<18} {tries:>5} {c['survived']:>8} {c['lost']:>5} {c['duplicated']:>10} {c['hung']:>5}")
    return 0 if all(c["survived"] == t for _, t, c, _ in table) else 1


if __name__ == "__main__":
    sys.exit(main())
