"""A local webhook receiver: an HTTP server on 127.0.0.1 that keeps what is posted to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Webhook", "webhook_receiver"]


@dataclass
class Webhook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    #: Posts refused (401) for want of the right `?token=`.
    refused: int = 0


@contextmanager
def webhook_receiver(token: str | None = None) -> Iterator[Webhook]:
    """`token`: accept only posts whose query string has `token=<token>` (401 otherwise)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            query = parse_qs(urlsplit(self.path).query)
            if token is not None and query.get("token") != [token]:
                hook.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            received.append({"path": self.path, "json": json.loads(body or b"null")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/hooks/dataload", received)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
