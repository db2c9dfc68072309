"""HTTP(S) downloads into a cache folder: parallel, polite, resumable, checksummed, contained.

    fetcher = Fetcher(FetchOptions(connections=8, per_host=4, rate_per_s=5))
    for got in fetcher.run([Download(key=1, url=..., folder=cache, checksums={"sha256": ...})]):
        ...  # a Fetched per download, in the calling thread, as each finishes

Why the standard library (http.client) and not requests/httpx: every hop of a redirect must be
checked (only http and https, credentials dropped on a change of host), a download resumes
with Range/If-Range from the bytes on disk, and a byte cap and a stop flag act mid-stream.
http.client exposes each of these directly, keeps connections alive per thread, verifies TLS
with the system's certificates by default, and adds no dependency. Threads, not processes:
downloads wait on the network, and the GIL is released while they do.

Guarantees
- Nothing is ever written outside `Download.folder`: names from the URL and from
  Content-Disposition are percent-decoded, then cleaned (no `..`, no separators, no absolute
  names, no hidden names) and the final path is checked to lie inside the folder.
- A partial file never looks complete: bytes go to `.<hash>.part` (with a `.part.json` side
  file holding the validators) and are renamed to the final name only once verified (length,
  checksums). A later run resumes from the bytes on disk with `Range` + `If-Range`; a server
  that answers 200 instead of 206 restarts the file.
- A checksum mismatch moves the file aside into `<folder>/.rejected/` (never analyzed) and is
  an item error; the next run fetches again from zero.
- Retries with exponential backoff on 5xx, timeouts and dropped connections; 429 and 503
  honour Retry-After (capped by `max_wait_s`); 404/403/410 and other 4xx are item errors
  naming the status and the URL; an HTML page where media was expected is an item error.

Proxies: an http:// proxy, from `FetchOptions.proxy` or else the environment as curl, pip and
urllib read it (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`). Plain http goes to the
proxy with the absolute URL; https goes through a CONNECT tunnel, so TLS is still checked
against the server's own name. Proxy credentials (`http://user:password@proxy:3128`) are sent
as Proxy-Authorization to the proxy only, and never recorded.
"""
from __future__ import annotations

import base64
import collections
import email.message
import email.utils
import hashlib
import http.client
import json
import netrc
import os
import queue
import re
import socket
import ssl
import threading
import time
import unicodedata
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import ItemError

CHUNK_BYTES = 256 * 1024
ALLOWED_SCHEMES = ("http", "https")
CHECKSUM_ALGOS = ("sha256", "sha1", "md5")
REJECTED_DIR = ".rejected"
_MAX_SEGMENT = 150
_HEX = re.compile(r"[0-9a-fA-F]+")


class FetchError(ItemError):
    """One download failed; the message names the cause and the (masked) URL."""


class _Retry(Exception):
    """A transient failure: try again after `retry_after` seconds (None: exponential backoff)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Stopped(Exception):
    """The run was asked to stop (Ctrl-C): leave the partial file for the next run."""


# ------------------------------------------------------------------------------ URLs and names

def mask_url(url: str) -> str:
    """The URL with any user:password@ replaced by ***@ (for messages and the catalog)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + host))


def strip_credentials(url: str) -> tuple[str, bool]:
    """(the URL without user:password@, whether there were any)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url, False
    if "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), True


def parse_checksum(text: str) -> tuple[str, str]:
    """'sha256:HEX' / 'md5:HEX' / 'sha1:HEX' (or a bare hex digest of one of those lengths)
    -> (algorithm, lowercase hex); ValueError otherwise."""
    text = text.strip()
    algo, sep, digest = text.partition(":")
    if not sep:
        algo, digest = {64: "sha256", 40: "sha1", 32: "md5"}.get(len(text), ""), text
    algo = algo.lower().replace("-", "")
    lengths = {"sha256": 64, "sha1": 40, "md5": 32}
    if algo not in lengths or len(digest) != lengths[algo] or not _HEX.fullmatch(digest):
        raise ValueError(f"not a checksum (want sha256:<64 hex>, sha1:<40 hex> or md5:<32 hex>): {text!r}")
    return algo, digest.lower()


def safe_name(text: str, *, fallback: str = "download") -> str:
    """One path segment that cannot escape its folder: percent-decoded once, then separators,
    control characters and leading dots replaced, `.`/`..`/empty refused, length capped."""
    name = urllib.parse.unquote(text)
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if (c in "/\\:\0" or unicodedata.category(c)[0] == "C") else c for c in name)
    name = name.strip().strip(".").strip() if set(name.strip()) <= {"."} else name.strip()
    if name.startswith("."):
        name = "_" + name[1:]
    if not name or name in (".", ".."):
        return fallback
    if len(name.encode("utf-8")) > _MAX_SEGMENT:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 12 else ""
        while len((stem + ext).encode("utf-8")) > _MAX_SEGMENT:
            stem = stem[:-1]
        name = stem + ext
    return name


def url_layout(url: str) -> tuple[list[str], str]:
    """(folder segments, file name) of a URL inside a cache: host[_port], the URL's folders,
    its last segment (a query string adds a short hash so that ?a and ?b differ)."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "host") + (f"_{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/")]
    name = segments[-1] if segments else ""
    dirs = [safe_name(s, fallback="_") for s in segments[:-1] if s not in ("", ".")]
    name = safe_name(name, fallback="index")
    if parts.query:
        stem, ext = os.path.splitext(name)
        name = f"{stem}-{_short_hash(parts.query)}{ext}"
    return [safe_name(host, fallback="host")] + dirs, name


def contained(folder: Path, path: Path) -> bool:
    """True when `path` (resolved, links followed) lies inside `folder` (resolved)."""
    root = os.path.realpath(folder)
    target = os.path.realpath(path)
    return os.path.commonpath([root, target]) == root and target != root


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def parse_rate(text: str | None) -> float | None:
    """'5/s', '5', '300/min', '2/m', '1000/h' -> requests per second (None: unlimited)."""
    if text is None or str(text).strip() in ("", "0", "none", "off"):
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*", str(text))
    if not m:
        raise ValueError(f"bad rate {text!r}: write e.g. 5/s, 300/min or 1000/h")
    per = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
    value = float(m.group(1)) / per[m.group(2) or "s"]
    if value <= 0:
        raise ValueError(f"bad rate {text!r}: must be above zero")
    return value


def parse_size(text: str | None) -> int | None:
    """'2GB', '500MB', '10k', '123' (bytes; K/M/G/T are powers of 1000, KiB/MiB/GiB of 1024)."""
    if text is None or str(text).strip() == "":
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*", str(text), re.I)
    if not m:
        raise ValueError(f"bad size {text!r}: write e.g. 2GB, 500MB or 1.5GiB")
    power = " kmgt".index(m.group(2).lower() or " ")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** power)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _content_disposition_name(value: str | None) -> str | None:
    if not value:
        return None
    msg = email.message.Message()
    msg["content-disposition"] = value
    try:
        name = msg.get_filename()
    except Exception:  # a malformed header: ignore it, the URL names the file
        return None
    if not name:
        return None
    # Only the last component of whatever path the server sent.
    return re.split(r"[/\\]", name.replace("%2f", "/").replace("%2F", "/"))[-1] or None


def _looks_like_html(head: bytes) -> bool:
    text = head[:512].lstrip().lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


# ------------------------------------------------------------------------------ the work items

@dataclass
class Download:
    key: object                    # the caller's id for this item (a catalog file id)
    url: str                       # without credentials (they come from `credentials`)
    folder: Path                   # the cache folder; nothing is written outside it
    checksums: dict = field(default_factory=dict)  # algo -> lowercase hex
    expect_media: bool = True      # an HTML page is then an error
    validators: dict = field(default_factory=dict)  # etag / last_modified of the copy on disk:
    #                                 a conditional request; 304 leaves that copy (Fetched.unchanged)


@dataclass
class Fetched:
    key: object
    url: str
    status: str = "error"          # ok | error
    path: str | None = None        # the verified local copy
    bytes: int = 0
    sha256: str | None = None
    md5: str | None = None
    sha1: str | None = None
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    final_url: str | None = None   # after redirects (masked)
    fetched_at: float = 0.0        # unix time the copy was completed (or the failure)
    elapsed_s: float = 0.0
    attempts: int = 0
    resumed_from: int = 0          # bytes already on disk when the successful attempt began
    error: str | None = None
    rejected_path: str | None = None
    unchanged: bool = False        # 304 to a conditional request: the copy on disk is current

    def record(self) -> dict:
        """The JSON stored per item (the `fetch.*` fields)."""
        out = {"status": self.status, "url": mask_url(self.url), "local_path": self.path,
               "bytes": self.bytes, "sha256": self.sha256, "http_status": self.http_status,
               "etag": self.etag, "last_modified": self.last_modified,
               "content_type": self.content_type, "fetched_at": self.fetched_at,
               "elapsed_s": round(self.elapsed_s, 3), "attempts": self.attempts,
               "resumed_from": self.resumed_from, "error": self.error}
        if self.final_url and self.final_url != mask_url(self.url):
            out["final_url"] = self.final_url
        if self.rejected_path:
            out["rejected_path"] = self.rejected_path
        return out


@dataclass
class FetchOptions:
    connections: int = 8           # parallel downloads in all
    per_host: int = 4              # parallel downloads per host[:port]
    rate_per_s: float | None = None  # request starts per second, all hosts together
    max_size_bytes: int | None = None
    timeout_s: float = 30.0        # connect and per-read timeout
    retries: int = 5               # further attempts after the first, on transient failures
    backoff_s: float = 1.0         # first wait; doubles each retry
    max_wait_s: float = 60.0       # cap on any one wait (backoff or Retry-After)
    max_redirects: int = 10
    user_agent: str = "audiotrove (+https://github.com/audiotrove)"
    credentials: Callable[[str], tuple[str, str] | None] | None = None  # host -> (user, password)
    proxy: str | None = None       # http://[user:password@]host:port for every URL; "": none;
    #                                None: the environment's (http_proxy, https_proxy, no_proxy)


def proxy_for(url: str, proxy: str | None = None) -> str | None:
    """The proxy URL to reach `url` through, or None for a direct connection: `proxy` when given
    ("" means none), else the environment's `<scheme>_proxy` (or `all_proxy`) unless `no_proxy`
    names the host (urllib's reading of them)."""
    if proxy is None:
        parts = urllib.parse.urlsplit(url)
        found = urllib.request.getproxies_environment()
        proxy = found.get(parts.scheme.lower()) or found.get("all")
        if proxy and urllib.request.proxy_bypass_environment(parts.hostname or "", found):
            proxy = None
    if not proxy:
        return None
    return proxy if "://" in proxy else "http://" + proxy  # host:port alone is an http proxy


def _proxy_refused(proxy: str) -> FetchError:
    return FetchError(f"the proxy {mask_url(proxy)} asks for credentials (HTTP 407): give them "
                      "in the proxy URL, http://user:password@host:port")


def _proxy_address(proxy: str) -> tuple[str, int, dict]:
    """(host, port, headers for the proxy) of an http:// proxy URL (a bare host:port too)."""
    parts = urllib.parse.urlsplit(proxy)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise FetchError(f"proxy {mask_url(proxy)}: only http:// proxies are supported")
    headers = {}
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        port = parts.port or 80
    except ValueError:
        raise FetchError(f"proxy {mask_url(proxy)}: not a valid port") from None
    return parts.hostname, port, headers


def netrc_credentials(path: str | None = None) -> Callable[[str], tuple[str, str] | None]:
    """Credentials from ~/.netrc (or $NETRC), looked up by host: never from the catalog."""
    path = path or os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        data = netrc.netrc(path) if os.path.exists(path) else None
    except (netrc.NetrcParseError, OSError):
        data = None

    def lookup(host: str) -> tuple[str, str] | None:
        if data is None:
            return None
        found = data.authenticators(host)
        if not found:
            return None
        login, _, password = found
        return login or "", password or ""
    return lookup


# ------------------------------------------------------------------------------ scheduling

class _HostQueue:
    """Work items by host; `take` hands out the next item whose host has a free slot."""

    def __init__(self, items: Iterable[Download], per_host: int, stop: threading.Event):
        self.by_host: "collections.OrderedDict[str, collections.deque]" = collections.OrderedDict()
        for d in items:
            self.by_host.setdefault(_host_key(d.url), collections.deque()).append(d)
        self.active: collections.Counter = collections.Counter()
        self.per_host = max(1, per_host)
        self.cond = threading.Condition()
        self.stop = stop

    def take(self) -> Download | None:
        with self.cond:
            while True:
                if self.stop.is_set() or not self.by_host:
                    return None
                for host in list(self.by_host):
                    if self.active[host] < self.per_host:
                        items = self.by_host[host]
                        d = items.popleft()
                        if not items:
                            del self.by_host[host]
                        else:
                            self.by_host.move_to_end(host)  # round robin across hosts
                        self.active[host] += 1
                        return d
                self.cond.wait(0.5)

    def done(self, d: Download) -> None:
        with self.cond:
            self.active[_host_key(d.url)] -= 1
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()


class _RateLimit:
    """At most `per_s` request starts per second (evenly spaced), shared by all threads."""

    def __init__(self, per_s: float | None, stop: threading.Event):
        self.interval = 1.0 / per_s if per_s else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()
        self.stop = stop

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            self.stop.wait(start - now)


def _host_key(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or ''}"


# ------------------------------------------------------------------------------ the fetcher

class Fetcher:
    """Runs downloads on `connections` threads; results come back in the calling thread."""

    def __init__(self, options: FetchOptions | None = None, *,
                 on_bytes: Callable[[int], None] | None = None):
        self.options = options or FetchOptions()
        self.on_bytes = on_bytes or (lambda n: None)
        self.stop = threading.Event()
        self._local = threading.local()
        self._claimed: dict[str, str] = {}
        self._claim_lock = threading.Lock()
        self._ssl = ssl.create_default_context()  # certificate and host name checks on
        self._rate = _RateLimit(self.options.rate_per_s, self.stop)

    def claim(self, path: str, url: str) -> None:
        """Reserve a final path for a URL (paths already recorded in the catalog)."""
        self._claimed[os.path.realpath(path)] = url

    # --- running ------------------------------------------------------------------------
    def run(self, downloads: Iterable[Download]) -> Iterator[Fetched]:
        """Yield one Fetched per download as each finishes. On KeyboardInterrupt (or `.stop`),
        the threads stop at their next chunk; partial files stay for the next run."""
        items = list(downloads)
        if not items:
            return
        work = _HostQueue(items, self.options.per_host, self.stop)
        results: "queue.Queue[Fetched | None]" = queue.Queue()
        n_threads = max(1, min(self.options.connections, len(items)))

        def worker() -> None:
            try:
                while True:
                    d = work.take()
                    if d is None:
                        return
                    try:
                        got = self.fetch_one(d)
                    except _Stopped:
                        return
                    except Exception as exc:  # a bug: the item fails with a message, the run goes on
                        got = Fetched(key=d.key, url=d.url, fetched_at=time.time(),
                                      error=f"{type(exc).__name__}: {exc}: {mask_url(d.url)}")
                    finally:
                        work.done(d)
                    results.put(got)
            finally:
                self._close_connections()
                results.put(None)

        threads = [threading.Thread(target=worker, name=f"fetch-{k}", daemon=True)
                   for k in range(n_threads)]
        for t in threads:
            t.start()
        running = len(threads)
        try:
            while running:
                got = results.get()
                if got is None:
                    running -= 1
                else:
                    yield got
        finally:
            if running:  # interrupted (or the consumer stopped early): ask the threads to stop
                self.stop.set()
                work.wake()
                deadline = time.monotonic() + 2.0
                for t in threads:
                    t.join(max(0.0, deadline - time.monotonic()))

    def fetch_one(self, d: Download) -> Fetched:
        """Download one item with retries; never raises for a bad item (only _Stopped)."""
        started = time.perf_counter()
        got = Fetched(key=d.key, url=d.url)
        opt = self.options
        try:
            folder_parts, name = url_layout(d.url)
            scheme = urllib.parse.urlsplit(d.url).scheme.lower()
            if scheme not in ALLOWED_SCHEMES:
                raise FetchError(f"only http and https URLs are fetched, not {scheme or 'this'}: "
                                 f"{mask_url(d.url)}")
            folder = Path(d.folder).joinpath(*folder_parts)
            if not contained(Path(d.folder), folder / name):
                raise FetchError(f"refusing a name outside the cache folder: {mask_url(d.url)}")
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f".{_short_hash(d.url, 16)}.part"
            while True:
                got.attempts += 1
                try:
                    self._attempt(d, got, folder, name, part)
                    got.status = "ok"
                    break
                except _Retry as why:
                    if got.attempts > opt.retries:
                        raise FetchError(f"{why} (gave up after {got.attempts} attempts): "
                                         f"{mask_url(d.url)}") from None
                    wait = why.retry_after
                    if wait is None:
                        wait = opt.backoff_s * 2 ** (got.attempts - 1)
                    if self.stop.wait(min(wait, opt.max_wait_s)):
                        raise _Stopped()
        except FetchError as exc:
            got.status, got.error = "error", str(exc)
        except OSError as exc:  # the disk: permissions, full, a folder where a file should be
            got.status = "error"
            got.error = f"cannot write the download: {exc.strerror or exc}: {mask_url(d.url)}"
        got.elapsed_s = time.perf_counter() - started
        got.fetched_at = time.time()
        return got

    # --- one attempt ----------------------------------------------------------------------
    def _attempt(self, d: Download, got: Fetched, folder: Path, name: str, part: Path) -> None:
        opt = self.options
        side = part.with_name(part.name + ".json")
        have, validator = self._partial(part, side, d.url)
        headers = {"User-Agent": opt.user_agent, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            if validator:
                headers["If-Range"] = validator
        elif d.validators.get("etag"):
            headers["If-None-Match"] = d.validators["etag"]
        elif d.validators.get("last_modified"):
            headers["If-Modified-Since"] = d.validators["last_modified"]
        self._rate.wait()
        if self.stop.is_set():
            raise _Stopped()
        conn, resp, final_url = self._open(d.url, headers)
        try:
            status = resp.status
            got.http_status = status
            got.final_url = mask_url(final_url)
            if status in (429, 503):
                raise _Retry(f"HTTP {status} {resp.reason}",
                             _retry_after(resp.getheader("Retry-After")))
            if status >= 500:
                raise _Retry(f"HTTP {status} {resp.reason}")
            if status == 304 and d.validators and not have:  # not modified: keep the copy
                got.unchanged = True
                got.etag = resp.getheader("ETag") or d.validators.get("etag")
                resp.read()
                self._reuse(conn, resp)
                conn = None
                return
            if status == 416 and have:  # our bytes are no prefix of this file any more
                _remove(part, side)
                raise _Retry("the server refused to resume (HTTP 416); starting again", 0.0)
            if status >= 400 or status < 200 or status not in (200, 203, 206):
                raise FetchError(f"HTTP {status} {resp.reason}: {mask_url(final_url)}")
            length = resp.getheader("Content-Length")
            length = int(length) if length and length.strip().isdigit() else None
            start = 0
            if status == 206:
                m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.getheader("Content-Range") or "")
                if not have or not m or int(m.group(1)) != have:
                    _remove(part, side)
                    raise _Retry("the server sent a range we did not ask for; starting again", 0.0)
                start = have
            total = start + length if length is not None else None
            got.etag = resp.getheader("ETag")
            got.last_modified = resp.getheader("Last-Modified")
            got.content_type = resp.getheader("Content-Type")
            if opt.max_size_bytes is not None and total is not None and total > opt.max_size_bytes:
                _remove(part, side)
                raise FetchError(f"larger than --max-size ({total} > {opt.max_size_bytes} bytes): "
                                 f"{mask_url(final_url)}")
            ctype = (got.content_type or "").split(";")[0].strip().lower()
            if d.expect_media and ctype in ("text/html", "application/xhtml+xml"):
                _remove(part, side)
                raise FetchError(f"the server sent an HTML page ({ctype}), not media: "
                                 f"{mask_url(final_url)}")
            if start == 0:
                side.write_text(json.dumps({"url": mask_url(d.url), "etag": got.etag,
                                            "last_modified": got.last_modified}))
            got.resumed_from = start
            # sha256 always (it is recorded), md5 / sha1 only when there is one to check
            hashers = {a: hashlib.new(a) for a in CHECKSUM_ALGOS if a == "sha256" or a in d.checksums}
            if start:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 20):
                        for h in hashers.values():
                            h.update(chunk)
            received = start
            first = start == 0
            with open(part, "ab" if start else "wb", buffering=0) as out:
                if start:
                    out.truncate(start)  # bytes past `have` (none expected) are not trusted
                while True:
                    if self.stop.is_set():
                        raise _Stopped()
                    try:
                        chunk = resp.read1(CHUNK_BYTES)
                    except (socket.timeout, TimeoutError):
                        raise _Retry(f"timed out after {received} bytes") from None
                    except (http.client.IncompleteRead, ConnectionError, OSError,
                            http.client.HTTPException) as exc:
                        raise _Retry(f"connection dropped after {received} bytes "
                                     f"({type(exc).__name__})") from None
                    if not chunk:
                        break
                    if first and d.expect_media and _looks_like_html(chunk):
                        out.close()
                        _remove(part, side)
                        raise FetchError(f"the server sent an HTML page, not media: {mask_url(final_url)}")
                    first = False
                    received += len(chunk)
                    if opt.max_size_bytes is not None and received > opt.max_size_bytes:
                        out.close()
                        _remove(part, side)
                        raise FetchError(f"stopped at --max-size ({opt.max_size_bytes} bytes): "
                                         f"{mask_url(final_url)}")
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    self.on_bytes(len(chunk))
            if total is not None and received < total:
                raise _Retry(f"connection dropped after {received} of {total} bytes")
            if total is not None and received > total:
                _remove(part, side)
                raise _Retry("the server sent more bytes than announced; starting again", 0.0)
            self._reuse(conn, resp)
            conn = None
        finally:
            if conn is not None:
                self._discard(conn)
        got.bytes = received
        got.sha256 = hashers["sha256"].hexdigest()
        got.md5 = hashers["md5"].hexdigest() if "md5" in hashers else None
        got.sha1 = hashers["sha1"].hexdigest() if "sha1" in hashers else None
        for algo, expected in (d.checksums or {}).items():
            actual = getattr(got, algo, None)
            if actual is not None and actual != expected.lower():
                got.rejected_path = self._reject(d.folder, part, side, name)
                raise FetchError(f"{algo} mismatch: expected {expected.lower()}, got {actual} "
                                 f"(file kept aside in {got.rejected_path}): {mask_url(d.url)}")
        final = self._final_path(d, folder, name, resp.getheader("Content-Disposition"))
        os.replace(part, final)
        _remove(side)
        got.path = str(final)

    def _partial(self, part: Path, side: Path, url: str) -> tuple[int, str | None]:
        """(bytes on disk to resume from, the If-Range validator) — (0, None) to start afresh."""
        try:
            have = part.stat().st_size
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            _remove(part, side)
            return 0, None
        if meta.get("url") != mask_url(url) or have == 0:
            _remove(part, side)
            return 0, None
        etag = meta.get("etag")
        strong_etag = etag if etag and not etag.startswith("W/") else None
        return have, strong_etag or meta.get("last_modified")

    def _final_path(self, d: Download, folder: Path, name: str, disposition: str | None) -> Path:
        """The URL's name, or the server's Content-Disposition name when the URL's last segment
        has no extension (e.g. /download?id=7); unique among the URLs of this collection."""
        cd_name = _content_disposition_name(disposition)
        if cd_name and not os.path.splitext(urllib.parse.urlsplit(d.url).path)[1]:
            name = safe_name(cd_name, fallback=name)
        final = folder / name
        with self._claim_lock:
            owner = self._claimed.get(os.path.realpath(final))
            if owner is not None and owner != d.url:
                stem, ext = os.path.splitext(name)
                final = folder / f"{stem}-{_short_hash(d.url)}{ext}"
            self._claimed[os.path.realpath(final)] = d.url
        if not contained(Path(d.folder), final) or final.is_symlink():
            raise FetchError(f"refusing a name outside the cache folder: {mask_url(d.url)}")
        return final

    def _reject(self, root: Path, part: Path, side: Path, name: str) -> str:
        aside = Path(root) / REJECTED_DIR
        aside.mkdir(parents=True, exist_ok=True)
        target = aside / f"{time.strftime('%Y%m%dT%H%M%S')}-{_short_hash(str(part))}-{name}"
        os.replace(part, target)
        _remove(side)
        return str(target)

    # --- HTTP -----------------------------------------------------------------------------
    def _open(self, url: str, headers: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        """Send GET, following redirects (http/https only; credentials only to the first host)."""
        opt = self.options
        current = url
        first_host = _host_key(url)
        for _ in range(opt.max_redirects + 1):
            parts = urllib.parse.urlsplit(current)
            scheme = parts.scheme.lower()
            if scheme not in ALLOWED_SCHEMES:
                raise FetchError(f"redirected to a {scheme or 'schemeless'}: URL; only http and https "
                                 f"are fetched: {mask_url(url)} -> {mask_url(current)}")
            send = dict(headers)
            if _host_key(current) == first_host and opt.credentials and parts.hostname:
                creds = opt.credentials(parts.hostname)
                if creds:
                    token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
                    send["Authorization"] = f"Basic {token}"
            proxy = proxy_for(current, opt.proxy)
            target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            if proxy and scheme == "http":  # a plain-http proxy takes the absolute URL
                netloc = parts.netloc.rpartition("@")[2]
                target = urllib.parse.urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))
            conn, reused = self._connection(scheme, parts.hostname or "", parts.port, proxy=proxy)
            send.update(getattr(conn, "audiotrove_proxy_headers", {}))
            try:
                try:
                    conn.request("GET", target, headers=send)
                    resp = conn.getresponse()
                except (ConnectionError, http.client.BadStatusLine, BrokenPipeError):
                    if not reused:
                        raise
                    # a kept-alive connection the server had closed meanwhile: once more, fresh
                    self._discard(conn)
                    conn, _ = self._connection(scheme, parts.hostname or "", parts.port, proxy=proxy,
                                               fresh=True)
                    conn.request("GET", target, headers=send)
                    resp = conn.getresponse()
            except ssl.SSLCertVerificationError as exc:
                self._discard(conn)
                raise FetchError(f"TLS certificate not valid ({exc.verify_message}): {mask_url(current)}") from None
            except (socket.timeout, TimeoutError):
                self._discard(conn)
                raise _Retry("timed out waiting for the server") from None
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                self._discard(conn)
                if isinstance(exc, socket.gaierror):
                    where = f"proxy {mask_url(proxy)}" if proxy else parts.hostname
                    raise FetchError(f"unknown host {where}: {mask_url(current)}") from None
                if proxy and "Tunnel connection failed: 407" in str(exc):
                    raise _proxy_refused(proxy) from None
                via = f" through the proxy {mask_url(proxy)}" if proxy else ""
                raise _Retry(f"connection failed{via} ({type(exc).__name__}: {exc})") from None
            if resp.status == 407 and proxy:
                self._discard(conn)
                raise _proxy_refused(proxy)
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                location = resp.getheader("Location")
                self._drain(conn, resp)
                current = urllib.parse.urljoin(current, location)
                continue
            return conn, resp, current
        raise FetchError(f"more than {opt.max_redirects} redirects: {mask_url(url)}")

    def _connection(self, scheme: str, host: str, port: int | None, *, proxy: str | None = None,
                    fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """(a connection to scheme://host:port, directly or through the http:// `proxy` (a
        CONNECT tunnel for https), whether it is a kept-alive one)."""
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, host, port, proxy)
        conn = None if fresh else pool.pop(key, None)
        reused = conn is not None
        if conn is None:
            timeout = self.options.timeout_s
            if proxy:
                proxy_host, proxy_port, proxy_headers = _proxy_address(proxy)
                if scheme == "https":
                    conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout, context=self._ssl)
                    conn.set_tunnel(host, port or 443, headers=proxy_headers)  # TLS checks `host`
                else:
                    conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
                    conn.audiotrove_proxy_headers = proxy_headers  # sent with each request
            elif scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.audiotrove_key = key
        return conn, reused

    def _reuse(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        """Keep the connection for the next request when the response was read to its end."""
        if resp.isclosed() and not resp.will_close:
            key = conn.audiotrove_key
            old = self._local.pool.get(key)
            if old is not None and old is not conn:
                old.close()
            self._local.pool[key] = conn
        else:
            conn.close()

    def _drain(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        try:
            if int(resp.getheader("Content-Length") or 0) <= 65536:
                resp.read()
                self._reuse(conn, resp)
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self._discard(conn)

    @staticmethod
    def _discard(conn: http.client.HTTPConnection) -> None:
        try:
            conn.close()
        except OSError:
            pass

    def _close_connections(self) -> None:
        for conn in getattr(self._local, "pool", {}).values():
            self._discard(conn)
        self._local.pool = {}


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            pass


__all__ = ["Download", "Fetched", "FetchOptions", "Fetcher", "FetchError", "mask_url",
           "strip_credentials", "parse_checksum", "parse_rate", "parse_size", "safe_name",
           "url_layout", "contained", "netrc_credentials", "CHECKSUM_ALGOS", "REJECTED_DIR"]
