"""The rules every request passes, before any page code runs (an ASGI wrapper around the app).

- Read-only: GET and HEAD only; any other method is answered 405 (nothing in the app writes).
- DNS rebinding: a Host header that is not a loopback name (127.0.0.1, localhost, ::1) is
  refused with 421, unless the server was asked to listen on another host.
- Oversized requests: a path over MAX_PATH_CHARS or a query string over MAX_QUERY_STRING bytes
  is refused with 414 and says why (each page also caps its own query texts).
- Every answer says how long the server took to start it (Server-Timing: app;dur=MS).
- Every answer carries a Content-Security-Policy that allows only the page's own origin (no
  inline script or style, nothing from elsewhere), plus nosniff, no referrer and no framing.
"""
from __future__ import annotations

import json
import time

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_PATH_CHARS = 2048
MAX_QUERY_STRING = 16384  # bytes of ?... (a query text is capped lower, per page)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def host_name(host: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1', 'LocalHost.' -> 'localhost'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class Guard:
    """Wraps the ASGI app: `Guard(app, any_host=False)`."""

    def __init__(self, app, *, any_host: bool = False):
        self.app = app
        self.any_host = any_host

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return await _refuse(send, 405, f"this server is read-only: {method} is not allowed (GET and HEAD only)",
                                 extra=[(b"allow", b"GET, HEAD")])
        if not self.any_host:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_name(host) not in LOCAL_HOSTS:
                return await _refuse(send, 421, f"host {host!r} is not served: this server answers "
                                     "127.0.0.1 and localhost only (start it with --host to serve another)")
        if len(scope.get("path", "")) > MAX_PATH_CHARS:
            return await _refuse(send, 414, f"the address is too long (over {MAX_PATH_CHARS} characters)")
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
            return await _refuse(send, 414, f"the query is too long (over {MAX_QUERY_STRING} bytes)")

        started = time.perf_counter()
        head = method == "HEAD"
        if head:  # answered as GET, without the body (the routes are declared for GET)
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                timing = f"app;dur={1000 * (time.perf_counter() - started):.1f}".encode()
                message = {**message, "headers": list(message.get("headers", [])) +
                           [h for h in HEADERS if h[0] not in names] + [(b"server-timing", timing)]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


async def _refuse(send, status: int, message: str, *, extra=()) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra, *HEADERS]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["Guard", "LOCAL_HOSTS", "CSP", "host_name", "MAX_QUERY_STRING", "MAX_PATH_CHARS"]
