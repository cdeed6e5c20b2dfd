"""A scripted HTTP server on a real socket, for retry behaviours that need an exact sequence of
answers ("429 with Retry-After: 1, then 200"). Everything else runs against the sandbox."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from dataload.sources import RetryPolicy

__all__ = ["FAST_RETRY", "Received", "ScriptedServer", "Step", "serving"]

#: Retries as the clients do them, with waits short enough for tests.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=3.0)


@dataclass
class Step:
    """One scripted answer."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def content(self) -> bytes:
        if self.body is not None:
            return self.body.encode() if isinstance(self.body, str) else self.body
        return json.dumps(self.json).encode()


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_port: int  # one per TCP connection: tells pooled connections apart


class ScriptedServer:
    """Answers each request with the next scripted step (then `default`), recording requests."""

    def __init__(self) -> None:
        self.base_url = ""
        self.script: list[Step] = []
        self.default = Step(status=500, body="script exhausted")
        self.received: list[Received] = []

    def reset(self, *steps: Step, default: Step | None = None) -> None:
        self.script = list(steps)
        self.default = default or Step(status=500, body="script exhausted")
        self.received = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.received.append(
            Received(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers=dict(request.headers),
                body=await request.body(),
                at=time.monotonic(),
                client_port=scope["client"][1],
            )
        )
        step = self.script.pop(0) if self.script else self.default
        if step.delay:
            await asyncio.sleep(step.delay)
        headers = {"content-type": "application/json", **step.headers}
        await Response(step.content(), status_code=step.status, headers=headers)(
            scope, receive, send
        )


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free local port in a background thread."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the scripted test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
