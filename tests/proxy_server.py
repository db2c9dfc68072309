"""A forward HTTP proxy on 127.0.0.1 for the download tests: absolute-URL GETs are relayed, CONNECT
opens a byte tunnel; it can demand Basic credentials (407) and records every request it gets."""
from __future__ import annotations

import base64
import http.client
import select
import socket
import socketserver
import threading
import urllib.parse


class ProxyServer:
    def __init__(self, *, user: str | None = None, password: str | None = None):
        self.expected = None
        if user is not None:
            self.expected = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        self.requests: list[tuple[str, str, dict]] = []  # (method, target, headers)
        self.lock = threading.Lock()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "ProxyServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(proxy: ProxyServer):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(65537).decode("latin-1").strip()
            if not line:
                return
            method, target, _ = line.split(" ", 2)
            headers = {}
            while (h := self.rfile.readline(65537).decode("latin-1").strip()):
                name, _, value = h.partition(":")
                headers[name.strip()] = value.strip()
            with proxy.lock:
                proxy.requests.append((method, target, headers))
            if proxy.expected is not None and headers.get("Proxy-Authorization") != proxy.expected:
                self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)
                return
            parts = urllib.parse.urlsplit(target)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            forwarded = {k: v for k, v in headers.items()
                         if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")}
            conn.request(method, urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")),
                         headers=forwarded)
            resp = conn.getresponse()
            body = resp.read()
            out = [f"HTTP/1.1 {resp.status} {resp.reason}"]
            out += [f"{k}: {v}" for k, v in resp.getheaders()
                    if k.lower() not in ("connection", "transfer-encoding", "content-length")]
            out += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
            self.wfile.write("\r\n".join(out).encode("latin-1") + body)
            conn.close()
    return Handler


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 10)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
