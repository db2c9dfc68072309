"""A local HTTP server for the remote-source tests and the fetch benchmark (127.0.0.1 only).

It mimics the Internet Archive's scrape-search and item-metadata JSON, serves files with
Range / If-Range support, counts the bytes it serves per path, and plays scripted faults:
each path may have a list of behaviours consumed one per request (then it serves normally):

    "500"              HTTP 500
    "429:SECONDS"      HTTP 429 with Retry-After: SECONDS   ("503:SECONDS" likewise)
    "404" / "403" / "410"
    "drop:FRACTION"    announce the full length, send FRACTION of it, close the connection
    "html"             a 200 text/html page instead of the file
    "html-sniff"       an HTML page sent as application/octet-stream
    "redirect:URL"     302 to URL (relative or absolute, any scheme)
    "stall"            send the headers, then nothing until `release` is set (a slow server)
    "block:N"          send N bytes, then wait until `release` is set, then close
    "norange"          ignore Range (answer 200 with the whole file)
    "disposition:NAME" add Content-Disposition: attachment; filename="NAME"
    "close"            serve the file, then close the connection without saying so (a server
                       that drops idle keep-alive connections)
    "noetag"           serve the file with no ETag, ignoring If-None-Match (a server that
                       cannot say whether it changed); otherwise a matching If-None-Match gets 304
    "gate:K[:S]"       wait (at most S seconds, default WAIT_S) until K file responses have been
                       in progress at once (`active_max` >= K; reset `active_max` between uses)

`active_max` is the largest number of file responses that were in progress at once.

Every wait is bounded (`WAIT_S`) so that no test can hang on it.
"""
from __future__ import annotations

import collections
import hashlib
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT_S = 30.0


class RemoteServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.types: dict[str, str] = {}
        self.faults: dict[str, list[str]] = collections.defaultdict(list)
        self.items: dict[str, dict] = {}  # IA identifier -> {"metadata": {...}, "files": [...]}
        self.served = collections.Counter()  # path -> body bytes sent
        self.requests: list[tuple[str, dict]] = []  # (path, headers)
        self.release = threading.Event()
        self.blocked = threading.Event()  # set when a "block:N" response has sent its N bytes
        self.lock = threading.Lock()
        self.active = 0
        self.active_max = 0
        self.gate = threading.Condition(self.lock)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "RemoteServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, data: bytes, *, content_type: str = "audio/wav") -> str:
        self.files[path] = data
        self.types[path] = content_type
        return self.url + path

    def add_item(self, identifier: str, *, metadata: dict, files: list[tuple[str, str, bytes]]) -> None:
        """An Internet Archive item: files as (name, format, bytes), served under /download/."""
        entries = []
        for name, fmt, data in files:
            self.add(f"/download/{identifier}/{urllib.parse.quote(name)}", data)
            entries.append({"name": name, "format": fmt, "size": str(len(data)),
                            "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()})
        self.items[identifier] = {"metadata": {"identifier": identifier, **metadata}, "files": entries}


def _handler(server: RemoteServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path
            with server.lock:
                server.requests.append((path, dict(self.headers)))
                fault = server.faults[path].pop(0) if server.faults.get(path) else None
            if path == "/services/search/v1/scrape":
                return self._scrape(urllib.parse.parse_qs(parts.query))
            if path.startswith("/metadata/"):
                ident = urllib.parse.unquote(path[len("/metadata/"):])
                if ident not in server.items:
                    return self._send(404, b"{}", "application/json")
                return self._send(200, json.dumps(server.items[ident]).encode(), "application/json")
            kind, _, arg = (fault or "").partition(":")
            if kind in ("500", "404", "403", "410"):
                return self._send(int(kind), b"no", "text/plain")
            if kind in ("429", "503"):
                return self._send(int(kind), b"slow down", "text/plain", {"Retry-After": arg or "1"})
            if kind == "redirect":
                return self._send(302, b"", "text/plain", {"Location": arg})
            if kind in ("html", "html-sniff"):
                page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
                return self._send(200, page, "text/html" if kind == "html" else "application/octet-stream")
            if path not in server.files:
                return self._send(404, b"not found", "text/plain")
            with server.gate:
                server.active += 1
                server.active_max = max(server.active_max, server.active)
                server.gate.notify_all()
                if kind == "gate":
                    want, _, limit = arg.partition(":")
                    server.gate.wait_for(lambda: server.active_max >= int(want), float(limit or WAIT_S))
            try:
                return self._file(path, kind, arg)
            finally:
                with server.gate:
                    server.active -= 1

        def _scrape(self, q: dict) -> None:
            count = int(q.get("count", ["100"])[0])
            start = int(q.get("cursor", ["0"])[0])
            idents = sorted(server.items)
            body = {"items": [{"identifier": i} for i in idents[start:start + count]],
                    "count": len(idents[start:start + count]), "total": len(idents)}
            if start + count < len(idents):
                body["cursor"] = str(start + count)
            self._send(200, json.dumps(body).encode(), "application/json")

        def _file(self, path: str, kind: str, arg: str) -> None:
            data = server.files[path]
            etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
            if kind != "noetag" and self.headers.get("If-None-Match") == etag:  # unchanged
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "").strip())
            if_range = self.headers.get("If-Range")
            if m and kind != "norange" and (if_range is None or if_range == etag):
                start = int(m.group(1))
                if start >= len(data):
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
            body = data[start:]
            headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Length": str(len(body))}
            if kind == "noetag":
                del headers["ETag"]
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if kind == "disposition":
                headers["Content-Disposition"] = f'attachment; filename="{arg}"'
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", server.types.get(path, "application/octet-stream"))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if kind == "stall":
                server.release.wait(WAIT_S)
                self.close_connection = True
                return
            if kind == "drop":
                n = int(len(body) * float(arg or 0.5))
                self._write(path, body[:n])
                self.close_connection = True
                return
            if kind == "block":
                n = int(arg)
                self._write(path, body[:n])
                server.blocked.set()
                server.release.wait(WAIT_S)
                self.close_connection = True
                return
            self._write(path, body)
            if kind == "close":
                self.close_connection = True

        def _write(self, path: str, body: bytes) -> None:
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                try:
                    self.wfile.write(view[i:i + (1 << 16)])
                except OSError:
                    self.close_connection = True
                    return
                with server.lock:
                    server.served[path] += len(view[i:i + (1 << 16)])

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler
