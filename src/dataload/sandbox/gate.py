"""What production does to a client, applied in front of every simulated endpoint.

Order per request: count it; refuse with 429 beyond the endpoint's concurrency limit; serve at
most one drawn fault (5xx, hang, malformed JSON, HTML login, 401, 200 with an error body);
refuse wrong credentials with 401; otherwise answer; and send it when the configured latency
has passed since the request arrived. Every step is counted in `Stats`.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.responses import Response

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.systems import System

__all__ = ["EndpointStats", "Gate", "Stats"]


@dataclass
class EndpointStats:
    requests: int = 0
    #: Records a request asked for (the people of a SnapLogic person call), summed.
    records_asked: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "records_asked": self.records_asked,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "faults": dict(sorted(self.faults.items())),
        }


class Stats:
    """Request counts per endpoint, concurrency seen and faults served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.endpoints: dict[str, EndpointStats] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def _get(self, endpoint: str) -> EndpointStats:
        return self.endpoints.setdefault(endpoint, EndpointStats())

    def enter(self, endpoint: str) -> int:
        """Count a request starting; returns the endpoint's requests in flight, this one included."""
        with self._lock:
            stats = self._get(endpoint)
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return stats.in_flight

    def fault(self, endpoint: str, kind: str) -> None:
        """Count a fault when it is served (a hang counts before it ends)."""
        with self._lock:
            self._get(endpoint).faults[kind] += 1

    def leave(self, endpoint: str, status: int) -> None:
        with self._lock:
            stats = self._get(endpoint)
            stats.in_flight -= 1
            self.in_flight -= 1
            stats.statuses[status] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            endpoints = {name: s.snapshot() for name, s in sorted(self.endpoints.items())}
            return {
                "requests": sum(s.requests for s in self.endpoints.values()),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "faults": sum(sum(s.faults.values()) for s in self.endpoints.values()),
                "endpoints": endpoints,
            }

    def asked(self, endpoint: str, records: int) -> None:
        """Count the records one request asked for."""
        with self._lock:
            self._get(endpoint).records_asked += records

    def reset(self) -> None:
        with self._lock:
            for stats in self.endpoints.values():
                stats.requests = stats.max_in_flight = stats.in_flight
                stats.records_asked = 0
                stats.statuses.clear()
                stats.faults.clear()
            self.max_in_flight = self.in_flight


class Gate:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.stats = Stats()
        self._rng = random.Random(config.seed)
        self._closing = False

    def close(self) -> None:
        """Release hung requests (with 504) so that a shutdown does not wait for them."""
        self._closing = True

    async def __call__(
        self,
        endpoint: str,
        system: System,
        *,
        authorized: bool,
        answer: Callable[[], Awaitable[Response]],
        concurrency_limit: int | None = None,
    ) -> Response:
        config = self.config
        in_flight = self.stats.enter(endpoint)
        status = 500
        try:
            if concurrency_limit is not None and in_flight > concurrency_limit:
                self.stats.fault(endpoint, "rate_limited")
                response = system.too_many_requests(config.retry_after_s)
            else:
                # The latency is the time to the answer, the sandbox's own work included: a
                # call answered after exactly the configured latency is what the flows' bound
                # assumes, whatever this process's CPU costs.
                answered_at = asyncio.get_running_loop().time()
                answered_at += config.latency_for(endpoint).sample_s(self._rng)
                fault = config.faults_for(endpoint).draw(self._rng)
                if fault:
                    self.stats.fault(endpoint, fault)
                    response = await self._fault(fault, system, endpoint)
                else:
                    response = await answer() if authorized else system.unauthorized()
                if (left := answered_at - asyncio.get_running_loop().time()) > 0:
                    await asyncio.sleep(left)
            status = response.status_code
            return response
        finally:
            self.stats.leave(endpoint, status)

    async def _fault(self, fault: str, system: System, endpoint: str) -> Response:
        if fault == "http_5xx":
            return system.server_error(self._rng.choice((500, 502, 503)))
        if fault == "hang":
            # Polled, not an asyncio.Event: `close()` is called from another thread.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.hang_s
            while not self._closing and (left := deadline - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(left, 0.05))
            return system.gateway_timeout()
        if fault == "malformed_json":
            return system.malformed()
        if fault == "html_login":
            return system.login_page()
        if fault == "error_body":
            return system.error_in_success()
        if fault == "empty":
            return system.empty(endpoint)
        return system.unauthorized()
