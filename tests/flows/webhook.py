"""A local webhook receiver: an HTTP server on 127.0.0.1 that keeps what is posted to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Webhook", "webhook_receiver"]


@dataclass
class Webhook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"path": self.path, "json": json.loads(body or b"null")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.server_address[1]}/hooks/dataload", received)
    finally:
        server.shutdown()
        server.server_close()
