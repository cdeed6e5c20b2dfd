"""The HTTP core shared by the source clients: one pooled AsyncClient, failure classification,
retries, stats and redacted logging.

Each client (PeopleSoft, SnapLogic, SAP, VDS) owns one `SourceHttp` and only adds its URLs and
the shape of its answers. Every failure comes out as a `SourceError` whose message names the
system, the endpoint (redacted) and the environment variables to check.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import orjson

from dataload.sources.errors import (
    SourceAuthError,
    SourceError,
    SourceMalformedResponse,
    SourceRateLimited,
    SourceResponseError,
    SourceServerError,
    SourceTransportError,
    SourceUnresolvable,
)
from dataload.sources.redaction import endpoint, redact_url, scrub
from dataload.sources.retry import RetryPolicy, parse_retry_after, retrying

if TYPE_CHECKING:
    from dataload.settings import Settings

__all__ = ["ClientStats", "SourceClient", "SourceHttp", "require_url", "server_message", "timeouts"]

logger = logging.getLogger("dataload.sources")

_USER_AGENT = "dataload"


@dataclass
class ClientStats:
    """What one client did: requests sent, retries, answers by HTTP status, transport failures."""

    requests: int = 0
    retries: int = 0
    transport_errors: int = 0
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "transport_errors": self.transport_errors,
            "by_status": {str(status): n for status, n in sorted(self.by_status.items())},
        }


def require_url(value: str | None, variable: str) -> str:
    """The configured base URL without a trailing slash; a clear error when it is unset."""
    if not value or not value.strip():
        raise ValueError(f"{variable} is not set: set it to the base URL of the service")
    url = value.strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"{variable} must start with http:// or https://")
    return url


_MESSAGE_KEYS = ("message", "error_description", "errorMessage", "error", "detail")
_MESSAGE_LIMIT = 200


def server_message(body: Any, *, depth: int = 0) -> str | None:
    """The explanation an error body gives, in any of the usual dialects (`message`,
    `error.message`, `data.error.message`, `response_map.error_list[0].message`, ...)."""
    if depth > 4:
        return None
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value
        nested = (v for v in body.values() if isinstance(v, dict | list))
    elif isinstance(body, list):
        nested = (v for v in body[:3] if isinstance(v, dict | list))
    else:
        return None
    for value in nested:
        if found := server_message(value, depth=depth + 1):
            return found
    return None


def timeouts(read: float, *, connect: float = 10.0) -> httpx.Timeout:
    """Per-system timeouts: `read` is how long an answer may take. Waiting for a pooled
    connection needs no timeout: a request only starts once it holds one of the client's
    slots, and there are as many slots as pooled connections."""
    return httpx.Timeout(connect=connect, read=read, write=60.0, pool=None)


class SourceHttp:
    """One source system's connection pool plus the rules for turning answers into JSON or errors.

    `source` names the system in messages ("SnapLogic person API"); `url_variable` and
    `credential_variables` are the environment variables a user should check when the URL or
    the credentials are wrong; `concurrency_variable` the setting to lower when rate limited;
    `secrets` the credential values, masked in any text the server sends back that we quote.
    After the first authentication failure every further call fails at once without a request:
    credentials do not heal within a run, and thousands of queued calls must not each knock.
    """

    def __init__(
        self,
        *,
        source: str,
        url_variable: str,
        credential_variables: str,
        auth: httpx.Auth | None,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        max_connections: int,
        concurrency_variable: str | None = None,
        secrets: tuple[str, ...] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source = source
        self.url_variable = url_variable
        self.credential_variables = credential_variables
        self.concurrency_variable = concurrency_variable
        self._secrets = secrets
        self.retry = retry
        self._budget = retry.new_budget()
        self.stats = ClientStats()
        self._auth_failure: SourceAuthError | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._client = httpx.AsyncClient(
            auth=auth,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
            follow_redirects=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        source: str | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send one call (with retries) and return its decoded JSON body.

        `source` overrides the system's name in messages for this call (e.g. naming the query).
        """
        label = source or self.source
        return await retrying(
            lambda: self._send_once(method, url, label, params, json_body),
            self.retry,
            budget=self._budget,
            on_retry=self._on_retry,
        )

    async def download(self, url: str, dest: Path, *, chunk_bytes: int = 1 << 20) -> int:
        """Stream the body of `GET url` into the file `dest` (written whole or not at all,
        through a temporary file beside it), with the same retries and errors as a JSON call;
        returns its size in bytes."""
        return await retrying(
            lambda: self._download_once(url, dest, chunk_bytes),
            self.retry,
            budget=self._budget,
            on_retry=self._on_retry,
        )

    async def _download_once(self, url: str, dest: Path, chunk_bytes: int) -> int:
        async with self._slots:
            self.stats.requests += 1
            partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            try:
                async with self._client.stream("GET", url) as response:
                    self.stats.by_status[response.status_code] += 1
                    if response.status_code >= 300:
                        await response.aread()
                        raise self._status_error(response, self.source, url)
                    size = 0
                    with partial.open("wb") as out:
                        async for chunk in response.aiter_bytes(chunk_bytes):
                            out.write(chunk)
                            size += len(chunk)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                raise self._transport_error(exc, self.source, url) from exc
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(dest)
            return size

    def _on_retry(self, error: SourceError, attempt: int, delay: float) -> None:
        self.stats.retries += 1
        logger.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            error,
            delay,
            attempt + 1,
            self.retry.max_attempts,
        )

    async def _send_once(
        self, method: str, url: str, label: str, params: dict[str, str] | None, json_body: Any
    ) -> Any:
        # The slot is taken per attempt (not held while backing off), and the auth check comes
        # after it: calls queued behind a 401 must not send their own.
        async with self._slots:
            if self._auth_failure is not None:
                raise copy.copy(self._auth_failure)
            try:
                return await self._exchange(method, url, label, params, json_body)
            except SourceAuthError as error:
                self._auth_failure = error
                raise

    async def _exchange(
        self, method: str, url: str, label: str, params: dict[str, str] | None, json_body: Any
    ) -> Any:
        self.stats.requests += 1
        try:
            response = await self._client.request(method, url, params=params, json=json_body)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, label, url) from exc
        status = response.status_code
        self.stats.by_status[status] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3f s",
                method,
                redact_url(response.request.url),
                status,
                response.elapsed.total_seconds(),
            )
        if status >= 300:
            raise self._status_error(response, label, url)
        return self._decode(response, label, url)

    def _transport_error(self, exc: httpx.TransportError, label: str, url: str) -> SourceError:
        """A connection that failed or timed out, as the error to raise (counted)."""
        self.stats.transport_errors += 1
        if isinstance(exc, httpx.TimeoutException):
            return SourceTransportError(
                source=label,
                endpoint=endpoint(url),
                problem=f"did not answer in time ({type(exc).__name__})",
                hint="the service is slow or down; try again later, or raise the client timeout",
            )
        if _unresolvable(exc):
            # A name that does not resolve will not resolve in a few seconds either.
            return SourceUnresolvable(
                source=label,
                endpoint=endpoint(url),
                problem="could not be reached: its host name does not resolve",
                hint=f"check {self.url_variable} and this machine's DNS",
            )
        return SourceTransportError(
            source=label,
            endpoint=endpoint(url),
            problem=f"could not be reached ({type(exc).__name__}: {exc})",
            hint=f"check {self.url_variable} and that the service is reachable from here",
        )

    def shape_error(
        self, url: str, problem: str, *, source: str | None = None
    ) -> SourceResponseError:
        """The error for a JSON answer that is not in the documented shape (never retried)."""
        return SourceResponseError(
            source=source or self.source,
            endpoint=endpoint(url),
            problem=problem,
            hint=f"the answer is not in the documented shape; check that {self.url_variable} "
            "points at the right service",
        )

    def quoted_message(self, response: httpx.Response | Any) -> str:
        """` (the server's explanation)` from an error response or decoded body, or ''."""
        body = response
        if isinstance(response, httpx.Response):
            if len(response.content) > 65536 or _first_byte(response.content) not in (b"{", b"["):
                return ""
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                return ""
        message = server_message(body)
        if not message:
            return ""
        message = scrub(" ".join(message.split()), self._secrets)
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 3] + "..."
        return f" ({message})"

    def _status_error(self, response: httpx.Response, label: str, url: str) -> SourceError:
        status = response.status_code
        where = {"source": label, "endpoint": endpoint(url), "status": status}
        problem = f"answered {status} {response.reason_phrase}".rstrip()
        if status in (401, 403):
            hint = f"check {self.credential_variables}"
            if status == 403:
                hint += " and that this account may call this endpoint"
            return SourceAuthError(problem=problem, hint=hint, **where)
        problem += self.quoted_message(response)
        if status == 429:
            lower = f"lower {self.concurrency_variable} or " if self.concurrency_variable else ""
            return SourceRateLimited(
                problem=problem,
                hint=f"the service is turning calls away; {lower}try again later",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                **where,
            )
        if status == 408:
            return SourceTransportError(
                problem=problem, hint="the service is slow or down; try again later", **where
            )
        if status >= 500:
            return SourceServerError(
                problem=problem,
                hint="the service is failing; try again later, or ask its owners",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                **where,
            )
        if 300 <= status < 400:
            location = response.headers.get("Location")
            target = f" to {endpoint(location)}" if location else ""
            return SourceResponseError(
                problem=f"redirected ({status}){target}",
                hint=(
                    f"check {self.url_variable}; a redirect to a sign-in page means "
                    f"check {self.credential_variables}"
                ),
                **where,
            )
        if status == 404:
            return SourceResponseError(problem=problem, hint=f"check {self.url_variable}", **where)
        return SourceResponseError(
            problem=problem,
            hint=f"the request was refused; check {self.url_variable} and the client version",
            **where,
        )

    def _decode(self, response: httpx.Response, label: str, url: str) -> Any:
        body = response.content
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html") or _first_byte(body) == b"<":
            # A 200 carrying HTML is a gateway's sign-in page: the credentials were not accepted.
            raise SourceAuthError(
                source=label,
                endpoint=endpoint(url),
                problem=f"answered {response.status_code} with an HTML page (a login page?) "
                "instead of JSON",
                hint=f"check {self.credential_variables}",
                status=response.status_code,
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SourceMalformedResponse(
                source=label,
                endpoint=endpoint(url),
                problem=f"answered {response.status_code} with a body that is not valid JSON "
                f"({len(body)} bytes)",
                hint="the gateway may be cutting responses; if this persists, ask its owners",
                status=response.status_code,
            ) from exc


def _unresolvable(exc: BaseException) -> bool:
    """Whether a connection failed because the host name does not resolve (DNS)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _first_byte(body: bytes) -> bytes:
    """The first non-blank byte of a body, without copying the whole body."""
    return body[:64].lstrip()[:1]


class SourceClient:
    """Base of the four clients: async context manager over one `SourceHttp`, with its stats."""

    _http: SourceHttp

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Self:
        """A client configured from the settings; keyword `overrides` replace any option."""
        options = {
            "retry": RetryPolicy(max_attempts=settings.source_max_attempts),
            **cls.settings_options(settings),
        }
        return cls(**(options | overrides))

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        """The constructor options this client takes from the settings."""
        raise NotImplementedError

    @property
    def stats(self) -> ClientStats:
        return self._http.stats

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
