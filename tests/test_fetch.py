"""The download engine (io/fetch.py) against a local server with scripted faults.

Every server is on 127.0.0.1; every wait is bounded; nothing depends on the machine's speed
(timeouts fire on a server that sends nothing until released; waits are lower bounds).
"""
from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest
from proxy_server import ProxyServer
from remote_server import RemoteServer

from audiotrove.io.fetch import (
    Download, Fetcher, FetchOptions, contained, mask_url, parse_checksum, parse_rate, parse_size,
    proxy_for, safe_name, strip_credentials, url_layout,
)


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server():
    s = RemoteServer().start()
    yield s
    s.stop()


def fast(**kw) -> FetchOptions:
    kw.setdefault("timeout_s", 10.0)
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("max_wait_s", 0.05)
    kw.setdefault("retries", 3)
    return FetchOptions(**kw)


def fetch(downloads, options=None, **kw):
    return {g.key: g for g in Fetcher(options or fast(**kw)).run(downloads)}


def tls_server(tmp_path: Path) -> tuple[RemoteServer, Path]:
    """A started https RemoteServer with a fresh self-signed certificate for 127.0.0.1 (not
    trusted unless SSL_CERT_FILE names it), and that certificate's file; skipped without openssl."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    tls = RemoteServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.httpd.socket = context.wrap_socket(tls.httpd.socket, server_side=True)
    return tls.start(), cert


def outside_files(root: Path, cache: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not contained(cache, p)]


# ------------------------------------------------------------------------------- pure helpers

def test_names_urls_checksums_rates_and_sizes():
    for evil in ("..", "../..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "\\..\\x", ".hidden",
                 "a\x00b", ""):
        name = safe_name(evil)
        assert "/" not in name and "\\" not in name and name not in (".", "..") and not name.startswith(".")
    assert safe_name("tape%2001.wav") == "tape 01.wav"
    assert len(safe_name("x" * 400 + ".flac").encode()) <= 150 and safe_name("x" * 400 + ".flac").endswith(".flac")
    dirs, name = url_layout("https://u:p@Host.example:8443/a/%2e%2e/b/..%2F..%2Fevil.wav?x=1")
    assert dirs[0] == "host.example_8443" and ".." not in dirs and name.startswith("_._.._evil")
    assert url_layout("http://h/a.wav?x=1")[1] != url_layout("http://h/a.wav?x=2")[1]
    assert mask_url("https://user:secret@h.org/x.wav") == "https://***@h.org/x.wav"
    assert strip_credentials("https://user:secret@h.org/x.wav") == ("https://h.org/x.wav", True)
    assert parse_checksum("sha256:" + "A" * 64) == ("sha256", "a" * 64)
    assert parse_checksum("d41d8cd98f00b204e9800998ecf8427e") == ("md5", "d41d8cd98f00b204e9800998ecf8427e")
    with pytest.raises(ValueError):
        parse_checksum("sha256:1234")
    assert parse_rate("5/s") == 5 and parse_rate("300/min") == 5 and parse_rate(None) is None
    assert parse_size("2GB") == 2_000_000_000 and parse_size("1.5KiB") == 1536
    with pytest.raises(ValueError):
        parse_size("lots")


# ------------------------------------------------------------------------------- downloads

def test_parallel_downloads_are_verified_and_recorded(server, tmp_path):
    cache = tmp_path / "cache"
    data = {k: payload(50_000 + 1000 * k, seed=k) for k in range(8)}
    urls = {k: server.add(f"/rec/take{k}.wav", d) for k, d in data.items()}
    got = fetch([Download(k, u, cache, {"sha256": sha(data[k])}) for k, u in urls.items()],
                connections=4, per_host=4)
    assert len(got) == 8
    for k, g in got.items():
        assert g.status == "ok", g.error
        assert Path(g.path).read_bytes() == data[k]
        assert g.sha256 == sha(data[k]) and g.bytes == len(data[k]) and g.http_status == 200
        assert g.etag and g.fetched_at > 0 and contained(cache, Path(g.path))
        rec = g.record()
        assert rec["local_path"] == g.path and rec["sha256"] == g.sha256 and rec["status"] == "ok"
    assert Path(got[0].path).parent == cache / f"127.0.0.1_{server.httpd.server_address[1]}" / "rec"
    assert not [p for p in cache.rglob("*") if ".part" in p.name]


def test_per_host_limit_and_rate(server, tmp_path):
    urls = [server.add(f"/g/{k}.wav", payload(1000, k)) for k in range(6)]
    # the first two responses are held for 1 s (or until a third request comes, which must not):
    # 4 more downloads wait meanwhile with 4 free connections, kept back only by --per-host
    server.faults["/g/0.wav"], server.faults["/g/1.wav"] = ["gate:3:1.0"], ["gate:3:1.0"]
    started = time.perf_counter()
    got = fetch([Download(k, u, tmp_path) for k, u in enumerate(urls)], connections=6, per_host=2)
    assert all(g.status == "ok" for g in got.values()) and time.perf_counter() - started >= 0.99
    assert server.active_max == 2  # in parallel, but never more than --per-host
    server.active_max = 0
    urls = [server.add(f"/h/{k}.wav", payload(1000, k)) for k in range(3)]
    for k in range(3):  # with room for 3 at once, 3 run at once (each waits for the others)
        server.faults[f"/h/{k}.wav"] = ["gate:3:10"]
    got = fetch([Download(k, u, tmp_path) for k, u in enumerate(urls)], connections=3, per_host=3)
    assert all(g.status == "ok" for g in got.values()) and server.active_max == 3
    urls = [server.add(f"/r/{k}.wav", payload(100, k)) for k in range(5)]
    started = time.perf_counter()
    got = fetch([Download(k, u, tmp_path) for k, u in enumerate(urls)], connections=5, rate_per_s=20)
    assert all(g.status == "ok" for g in got.values())
    assert time.perf_counter() - started >= 4 / 20 * 0.95  # 5 starts at 20/s: at least 4 intervals


def test_500_then_200_and_429_retry_after(server, tmp_path):
    data = payload(30_000)
    url = server.add("/flaky.wav", data)
    server.faults["/flaky.wav"] = ["500", "503:0"]
    g = fetch([Download(1, url, tmp_path, {"sha256": sha(data)})])[1]
    assert g.status == "ok" and g.attempts == 3 and Path(g.path).read_bytes() == data
    # Retry-After is honoured (a lower bound, whatever the machine) ...
    url = server.add("/busy.wav", data)
    server.faults["/busy.wav"] = ["429:1"]
    started = time.perf_counter()
    g = fetch([Download(1, url, tmp_path)], fast(max_wait_s=5.0))[1]
    assert g.status == "ok" and g.attempts == 2 and time.perf_counter() - started >= 0.99
    # ... up to the cap on any one wait
    url = server.add("/busier.wav", data)
    server.faults["/busier.wav"] = ["429:3600"]
    g = fetch([Download(1, url, tmp_path)], fast(max_wait_s=0.05))[1]
    assert g.status == "ok" and g.attempts == 2
    # a server that keeps failing: an item error after the retries, with status and URL
    url = server.add("/down.wav", data)
    server.faults["/down.wav"] = ["500"] * 10
    g = fetch([Download(1, url, tmp_path)], fast(retries=2))[1]
    assert g.status == "error" and "HTTP 500" in g.error and "/down.wav" in g.error and g.attempts == 3


def test_dropped_connection_resumes_with_range(server, tmp_path):
    data = payload(1_000_000, seed=3)
    url = server.add("/long.flac", data)
    server.faults["/long.flac"] = ["drop:0.5"]
    g = fetch([Download(1, url, tmp_path, {"sha256": sha(data)})])[1]
    assert g.status == "ok" and Path(g.path).read_bytes() == data
    assert g.resumed_from == 500_000 and g.attempts == 2
    assert server.served["/long.flac"] == len(data)  # nothing fetched twice
    ranges = [h.get("Range") for p, h in server.requests if p == "/long.flac"]
    assert ranges == [None, "bytes=500000-"]


def test_server_without_range_restarts_the_file(server, tmp_path):
    data = payload(400_000, seed=4)
    url = server.add("/norange.wav", data)
    server.faults["/norange.wav"] = ["drop:0.25", "norange"]
    g = fetch([Download(1, url, tmp_path, {"sha256": sha(data)})])[1]
    assert g.status == "ok" and Path(g.path).read_bytes() == data and g.resumed_from == 0
    assert server.served["/norange.wav"] == 100_000 + len(data)


def test_checksum_mismatch_is_kept_aside_and_refetched(server, tmp_path):
    good, bad = payload(20_000, 1), payload(20_000, 2)
    url = server.add("/a.wav", bad)
    g = fetch([Download(1, url, tmp_path, {"sha256": sha(good)})])[1]
    assert g.status == "error" and "sha256 mismatch" in g.error and g.path is None
    aside = Path(g.rejected_path)
    assert aside.read_bytes() == bad and aside.parent == tmp_path / ".rejected"
    assert not [p for p in tmp_path.rglob("*.wav") if ".rejected" not in p.parts]
    server.files["/a.wav"] = good  # the server is fixed: the next run fetches from zero
    g = fetch([Download(1, url, tmp_path, {"sha256": sha(good)})])[1]
    assert g.status == "ok" and Path(g.path).read_bytes() == good
    assert server.served["/a.wav"] == 2 * 20_000
    # md5 and sha1 (as the Internet Archive gives them) are checked too
    g = fetch([Download(2, url, tmp_path / "b", {"md5": hashlib.md5(bad).hexdigest()})])[2]
    assert g.status == "error" and "md5 mismatch" in g.error


@pytest.mark.parametrize("fault", ["html", "html-sniff"])
def test_html_instead_of_audio_is_an_error(server, tmp_path, fault):
    url = server.add("/login.wav", payload(1000))
    server.faults["/login.wav"] = [fault]
    g = fetch([Download(1, url, tmp_path)])[1]
    assert g.status == "error" and "HTML" in g.error
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("status", [404, 403, 410])
def test_client_errors_name_status_and_url(server, tmp_path, status):
    url = server.add("/gone.wav", b"x")
    server.faults["/gone.wav"] = [str(status)] * 5
    g = fetch([Download(1, url, tmp_path)])[1]
    assert g.status == "error" and f"HTTP {status}" in g.error and url in g.error and g.attempts == 1


def test_redirects_only_to_http_and_https(server, tmp_path):
    data = payload(5000)
    target = server.add("/real/take.wav", data)
    url = server.add("/moved.wav", b"")
    server.faults["/moved.wav"] = ["redirect:/real/take.wav"]
    g = fetch([Download(1, url, tmp_path)])[1]
    assert g.status == "ok" and Path(g.path).read_bytes() == data and g.final_url == target
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"local secret")
    server.faults["/moved.wav"] = [f"redirect:file://{secret}"]
    g = fetch([Download(2, url, tmp_path / "c")])[2]
    assert g.status == "error" and "only http and https" in g.error
    assert not (tmp_path / "c").exists() or not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    g = fetch([Download(3, "file:///etc/passwd", tmp_path / "d")])[3]
    assert g.status == "error" and "only http and https" in g.error


def test_slow_server_times_out(server, tmp_path):
    url = server.add("/slow.wav", payload(1000))
    server.faults["/slow.wav"] = ["stall", "stall"]
    g = fetch([Download(1, url, tmp_path)], fast(timeout_s=0.2, retries=1))[1]
    assert g.status == "error" and "timed out" in g.error and g.attempts == 2


def test_names_never_escape_the_cache(server, tmp_path):
    root = tmp_path / "root"
    cache = root / "deep" / "cache"
    data = payload(2000)
    downloads = []
    for k, path in enumerate(["/x/..%2F..%2F..%2Fevil.wav", "/%2e%2e/%2e%2e/evil2.wav",
                              "/x/%2Fabs.wav", "/x/%5C..%5Cwin.wav"]):
        server.files[path] = data  # the server sees the raw (percent-encoded) path
        downloads.append(Download(k, server.url + path, cache))
    for k, name in enumerate(["../../evil3.wav", "/tmp/abs3.wav", "..", "..%2F..%2Fevil4.wav"], start=10):
        path = f"/cd{k}"  # no extension: the Content-Disposition name is used
        server.add(path, data)
        server.faults[path] = [f"disposition:{name}"]
        downloads.append(Download(k, server.url + path, cache))
    got = fetch(downloads)
    for g in got.values():
        assert g.status == "ok", g.error
        assert contained(cache, Path(g.path)) and Path(g.path).read_bytes() == data
        assert not os.path.basename(g.path).startswith(".")
    assert outside_files(root, cache) == []
    assert not Path("/tmp/abs3.wav").exists() or Path("/tmp/abs3.wav").read_bytes() != data


def test_max_size_stops_runaway_downloads(server, tmp_path):
    url = server.add("/huge.wav", payload(300_000))
    g = fetch([Download(1, url, tmp_path)], max_size_bytes=100_000)[1]
    assert g.status == "error" and "--max-size" in g.error
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_credentials_from_netrc_only_to_their_host(server, tmp_path):
    url = server.add("/private.wav", payload(100))
    opts = fast(credentials=lambda host: ("ann", "s3cret") if host == "127.0.0.1" else None)
    assert fetch([Download(1, url, tmp_path)], opts)[1].status == "ok"
    auth = [h.get("Authorization") for p, h in server.requests if p == "/private.wav"]
    assert auth == ["Basic YW5uOnMzY3JldA=="]
    # after a redirect to another host, the credentials are not sent along
    port = server.httpd.server_address[1]
    server.add("/elsewhere.wav", payload(100))
    moved = server.add("/moved2.wav", b"")
    server.faults["/moved2.wav"] = [f"redirect:http://localhost:{port}/elsewhere.wav"]
    g = fetch([Download(2, moved, tmp_path)], opts)[2]
    assert g.status == "ok"
    assert [h.get("Authorization") for p, h in server.requests if p == "/elsewhere.wav"] == [None]
    assert "s3cret" not in repr(g.record())


def test_tls_certificates_are_verified(server, tmp_path):
    """A self-signed certificate is refused (verification is on), with a clear item error."""
    tls, _ = tls_server(tmp_path)
    try:
        tls.add("/x.wav", payload(100))
        url = tls.url.replace("http://", "https://") + "/x.wav"
        g = fetch([Download(1, url, tmp_path / "c")])[1]
        assert g.status == "error" and "TLS certificate not valid" in g.error and g.attempts == 1
        assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    finally:
        tls.stop()


def test_a_kept_alive_connection_closed_by_the_server_is_replaced(server, tmp_path):
    urls = [server.add(f"/k/{k}.wav", payload(1000, k)) for k in range(3)]
    server.faults["/k/0.wav"] = ["close"]
    got = fetch([Download(k, u, tmp_path) for k, u in enumerate(urls)], connections=1)
    assert [got[k].status for k in range(3)] == ["ok"] * 3
    assert [got[k].attempts for k in range(3)] == [1, 1, 1]  # no backoff, no error


# ------------------------------------------------------------------------------------- proxies

@pytest.fixture
def proxy():
    p = ProxyServer(user="ann", password="p@ss").start()
    yield p
    p.stop()


def test_http_through_a_proxy_with_credentials(server, proxy, tmp_path):
    data = payload(50_000, 7)
    url = server.add("/via/proxy.wav", data)
    g = fetch([Download(1, url, tmp_path)], proxy=f"http://ann:p%40ss@{proxy.address}")[1]
    assert g.status == "ok" and Path(g.path).read_bytes() == data
    # the proxy got the absolute URL and the credentials; the server never saw them
    assert [(m, t) for m, t, _ in proxy.requests] == [("GET", url)]
    assert proxy.requests[0][2]["Proxy-Authorization"] == "Basic " + __import__("base64").b64encode(b"ann:p@ss").decode()
    assert [p for p, h in server.requests] == ["/via/proxy.wav"]
    assert "Proxy-Authorization" not in server.requests[0][1]
    assert "p%40ss" not in repr(g.record()) and "p@ss" not in repr(g.record())
    # wrong or no credentials: one clear item error, not five retries
    for given in (f"http://ann:nope@{proxy.address}", proxy.address):
        g = fetch([Download(2, url, tmp_path / "x")], proxy=given)[2]
        assert g.status == "error" and g.attempts == 1
        assert "asks for credentials (HTTP 407)" in g.error and "nope" not in g.error
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").rglob("*.wav"))


def test_https_goes_through_a_connect_tunnel(proxy, tmp_path, monkeypatch):
    """TLS is checked end to end against the server's own certificate (trusted here through
    SSL_CERT_FILE), the proxy only sees CONNECT host:port."""
    tls, cert = tls_server(tmp_path)
    try:
        data = payload(30_000, 3)
        url = tls.add("/secure.wav", data).replace("http://", "https://")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        g = fetch([Download(1, url, tmp_path / "c")], proxy=f"http://ann:p%40ss@{proxy.address}")[1]
        assert g.status == "ok" and Path(g.path).read_bytes() == data, g.error
        host = url.split("/")[2]
        assert [(m, t) for m, t, _ in proxy.requests] == [("CONNECT", host)]
        assert [p for p, _ in tls.requests] == ["/secure.wav"]
        # without the certificate trusted, the tunnel still ends in a TLS check that fails
        monkeypatch.delenv("SSL_CERT_FILE")
        g = fetch([Download(2, url, tmp_path / "d")], proxy=f"http://ann:p%40ss@{proxy.address}")[2]
        assert g.status == "error" and "TLS certificate not valid" in g.error
    finally:
        tls.stop()


def test_the_environment_names_the_proxy_and_no_proxy_bypasses_it(server, tmp_path, monkeypatch):
    url = server.add("/env.wav", payload(1000, 1))
    p = ProxyServer().start()
    try:
        monkeypatch.setenv("http_proxy", f"http://{p.address}")
        assert proxy_for(url) == f"http://{p.address}"
        assert proxy_for("https://example.org/x.wav") is None  # no https_proxy set
        assert fetch([Download(1, url, tmp_path / "a")])[1].status == "ok"
        assert [t for _, t, _ in p.requests] == [url]
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        assert proxy_for(url) is None
        assert fetch([Download(2, url, tmp_path / "b")])[2].status == "ok"
        assert len(p.requests) == 1  # went direct
        # an explicit proxy wins over the environment, and "" means none
        assert proxy_for(url, "") is None and proxy_for(url, "10.0.0.1:3128") == "http://10.0.0.1:3128"
    finally:
        p.stop()
