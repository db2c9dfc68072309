"""Benchmark: `audiotrove fetch` vs sequential `curl` and a parallel curl, same server, same run.

A local HTTP/1.1 server (tests/remote_server.py, keep-alive, Range support) runs in a child
process on 127.0.0.1 and serves, from memory, N small files and M large files of random bytes.
Each downloader fetches everything into a fresh folder, timed by wall clock:

    audiotrove fetch   the CLI on a fresh collection (`add` of the URL list is not timed):
                       --connections 8 --per-host 8; sha256 of every file is recorded and checked
    curl sequential    one `curl -sSf -o FILE URL` process per file, one after the other
                       (the shell loop most people write)
    curl --parallel    one curl process, `--parallel --parallel-max 8`, connections reused
                       (a strong parallel baseline: C, HTTP keep-alive, no per-file process)

Small and large sets are timed separately: files/s matters for the small ones, MB/s for the
large. Every downloaded file is checked (size and sha256) before a time counts.

    python bench/bench_fetch.py                                    # 2000 x 20 KB + 20 x 8 MB
    python bench/bench_fetch.py --small 500 --large 5 --results bench/RESULTS_fetch.md
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"


def serve(spec: str) -> None:
    """Child process: serve the files of `spec` (JSON: {path: [seed, size]}) until stdin closes."""
    sys.path.insert(0, str(TESTS))
    from remote_server import RemoteServer

    files = json.loads(Path(spec).read_text())
    server = RemoteServer()
    for path, (seed, size) in files.items():
        server.add(path, random.Random(seed).randbytes(size), content_type="application/octet-stream")
    server.start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(folder: Path, expected: dict[str, tuple[int, str]]) -> None:
    """Every expected file (by name) is in `folder` (anywhere below) with its size and sha256."""
    found = {p.name: p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}
    for name, (size, sha) in expected.items():
        p = found.get(name)
        if p is None or p.stat().st_size != size or digest(p.read_bytes()) != sha:
            raise SystemExit(f"bad or missing download: {name} in {folder}")


def startup_seconds(work: Path) -> float:
    """Wall time of `audiotrove fetch` with nothing to fetch: the CLI's own start-up cost."""
    coll = work / "empty"
    exe = [sys.executable, "-c", "from audiotrove.cli import main; main()"]
    subprocess.run([*exe, "init", str(coll)], check=True, capture_output=True)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([*exe, "-C", str(coll), "fetch"], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def run_audiotrove(urls: list[str], work: Path, connections: int) -> float:
    coll = work / "coll"
    env = dict(os.environ, NETRC="/nonexistent")
    exe = [sys.executable, "-c", "from audiotrove.cli import main; main()"]
    subprocess.run([*exe, "init", str(coll)], check=True, capture_output=True, env=env)
    lst = work / "urls.txt"
    lst.write_text("\n".join(urls) + "\n")
    subprocess.run([*exe, "-C", str(coll), "add", str(lst)], check=True, capture_output=True, env=env)
    started = time.perf_counter()
    out = subprocess.run([*exe, "-C", str(coll), "fetch", "--connections", str(connections),
                          "--per-host", str(connections)], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"audiotrove fetch failed: {out.stderr[-2000:]}")
    conn = sqlite3.connect(coll / ".audiotrove" / "catalog.db")
    n_ok = conn.execute("SELECT count(*) FROM file_attrs WHERE name='fetch' AND "
                        "json_extract(data, '$.status')='ok'").fetchone()[0]
    conn.close()
    if n_ok != len(urls):
        raise SystemExit(f"audiotrove fetched {n_ok} of {len(urls)}")
    return elapsed


def run_curl_sequential(urls: list[str], out: Path) -> float:
    out.mkdir(parents=True)
    started = time.perf_counter()
    for url in urls:
        subprocess.run(["curl", "-sSf", "-o", str(out / url.rsplit("/", 1)[1]), url], check=True)
    return time.perf_counter() - started


def run_curl_parallel(urls: list[str], out: Path, connections: int) -> float:
    out.mkdir(parents=True)
    config = out.parent / (out.name + ".curlrc")
    config.write_text("".join(f'url = "{u}"\noutput = "{out / u.rsplit("/", 1)[1]}"\n' for u in urls))
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "--no-progress-meter", "--parallel", "--parallel-max", str(connections), "-K", str(config)],
                   check=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=20)
    ap.add_argument("--large", type=int, default=20)
    ap.add_argument("--large-mb", type=float, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--results", type=Path, help="append the table to this Markdown file")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve)
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the baselines (apt-get install curl)")
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    sets = {
        "small": {f"/small/s{k:05d}.wav": [k, args.small_kb * 1000] for k in range(args.small)},
        "large": {f"/large/l{k:03d}.flac": [100_000 + k, int(args.large_mb * 1e6)] for k in range(args.large)},
    }
    spec = work / "spec.json"
    spec.write_text(json.dumps({**sets["small"], **sets["large"]}))
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(spec)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        rows = []
        startup = startup_seconds(work)
        for name, files in sets.items():
            if not files:
                continue
            urls = [base + p for p in files]
            expected = {p.rsplit("/", 1)[1]: (size, digest(random.Random(seed).randbytes(size)))
                        for p, (seed, size) in files.items()}
            total_mb = sum(size for _, size in files.values()) / 1e6
            times = {}
            times["audiotrove fetch"] = run_audiotrove(urls, work / f"at-{name}", args.connections)
            check(work / f"at-{name}" / "coll" / ".audiotrove" / "cache", expected)
            times["curl sequential"] = run_curl_sequential(urls, work / f"seq-{name}")
            check(work / f"seq-{name}", expected)
            times[f"curl --parallel {args.connections}"] = run_curl_parallel(urls, work / f"par-{name}",
                                                                             args.connections)
            check(work / f"par-{name}", expected)
            times["audiotrove fetch, start-up excluded"] = max(times["audiotrove fetch"] - startup, 1e-3)
            for tool, t in times.items():
                rows.append((name, len(files), total_mb, tool, t, len(files) / t, total_mb / t,
                             times["curl sequential"] / t))
            shutil.rmtree(work / f"at-{name}")
            shutil.rmtree(work / f"seq-{name}")
            shutil.rmtree(work / f"par-{name}")
    finally:
        server.stdin.close()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    lines = ["| set | files | MB | downloader | wall s | files/s | MB/s | vs curl sequential |",
             "|---|---|---|---|---|---|---|---|"]
    for name, n, mb, tool, t, fps, mbps, ratio in rows:
        lines.append(f"| {name} | {n} | {mb:.0f} | {tool} | {t:.2f} | {fps:.1f} | {mbps:.1f} | {ratio:.2f}x |")
    lines.append("")
    lines.append(f"audiotrove fetch times include the CLI's start-up: {startup:.2f} s "
                 "(`fetch` with nothing to do, best of 3).")
    table = "\n".join(lines)
    print(table)
    if args.results:
        cmd = "python bench/bench_fetch.py " + " ".join(sys.argv[1:])
        with open(args.results, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d')}: `{cmd}`\n\nMachine: {platform.machine()}, "
                    f"{os.cpu_count()} cores, Python {platform.python_version()}, wall clock, "
                    "server and downloaders on the same machine (127.0.0.1).\n\n" + table + "\n")


if __name__ == "__main__":
    main()
