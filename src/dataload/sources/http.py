"""The HTTP core shared by the source clients: one pooled connection pool (aiohttp),
failure classification, retries, stats and redacted logging.

aiohttp rather than httpx: measured side by side against the sandbox, it spends about a fifth
of httpx's CPU per call (0.2 ms against 1.1 ms), and the person flow makes one call per person.

Each client (PeopleSoft, SnapLogic, SAP, VDS) owns one `SourceHttp` and only adds its URLs and
the shape of its answers. Every failure comes out as a `SourceError` whose message names the
system, the endpoint (redacted) and the environment variables to check.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import os
import socket
import ssl
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import httpx
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from dataload.sources.auth import HeaderAuth
from dataload.sources.errors import (
    SourceAuthError,
    SourceError,
    SourceMalformedResponse,
    SourceRateLimited,
    SourceRefused,
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


def timeouts(read: float, *, connect: float = 10.0) -> aiohttp.ClientTimeout:
    """Per-system timeouts: `read` is how long the server may stay silent while answering.
    Waiting for a pooled connection needs no timeout: a request only starts once it holds one
    of the client's slots, and there are as many slots as pooled connections."""
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect, sock_read=read)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # The trust store httpx used (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set), so that
    # changing the HTTP engine changes no certificate verdict.
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole: what the error rules and the decoder look at."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    content: bytes


@dataclass(frozen=True)
class _Decoding:
    """How one call's answer is decoded (see `SourceHttp.request_json`)."""

    large: bool = False
    each_object: Callable[[dict[str, Any]], Any] | None = None
    #: Reads the body instead of orjson (raising ValueError for a body it cannot read).
    read: Callable[[bytes], Any] | None = None


class SourceHttp:
    """One source system's connection pool plus the rules for turning answers into JSON or errors.

    `source` names the system in messages ("SnapLogic person API"); `url_variable` and
    `credential_variables` are the environment variables a user should check when the URL or
    the credentials are wrong; `concurrency_variable` the setting to lower when rate limited;
    `secrets` the credential values, masked in any text the server sends back that we quote.
    `user_agent` replaces the default User-Agent (`dataload`), for services that ask clients
    to name themselves and a contact. `missing`, for a service that answers 403 for an object
    it does not have (an S3 bucket that may not be listed answers so, to hide which keys
    exist), says what a URL's absence means (returns the hint, or None for a 403 that is a
    refusal after all): a 403 or 404 with a hint is then an answer about that object, not a
    refusal of the credentials; it is not retried, and other calls go on.
    After the first authentication failure every further call fails at once without a request:
    credentials do not heal within a run, and thousands of queued calls must not each knock.
    """

    def __init__(
        self,
        *,
        source: str,
        url_variable: str,
        credential_variables: str,
        auth: HeaderAuth | None,
        timeout: aiohttp.ClientTimeout,
        retry: RetryPolicy,
        max_connections: int,
        concurrency_variable: str | None = None,
        secrets: tuple[str, ...] = (),
        user_agent: str | None = None,
        missing: Callable[[str], str | None] | None = None,
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
        self._max_connections = max_connections
        self._timeout = timeout
        self._missing = missing
        self._headers = {"Accept": "application/json", "User-Agent": user_agent or _USER_AGENT}
        if auth is not None:
            self._headers[auth.header[0]] = auth.header[1]
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        """The pool, made on first use: an aiohttp session belongs to the loop it was made in."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=_tls_context()),
                timeout=self._timeout,
                headers=self._headers,
                # aiohttp's trust_env would look up proxies and ~/.netrc in a thread on every
                # request; proxies are found once per host instead (`_env_proxy`).
                trust_env=False,
                cookie_jar=aiohttp.CookieJar(unsafe=True),  # kept for the run, as httpx did
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        source: str | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        large: bool = False,
        each_object: Callable[[dict[str, Any]], Any] | None = None,
        read: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """Send one call (with retries) and return its decoded JSON body.

        `source` overrides the system's name in messages for this call (e.g. naming the query).
        A `large` answer (megabytes) is decoded in a worker thread: decoding it on the event
        loop would hold up every other call of the process for tens of milliseconds.
        `each_object` replaces every JSON object as soon as it is decoded, innermost first: of a
        list of a hundred thousand rows only what it keeps of each is ever held at once.
        `read` decodes the body instead (documents.read_documents: one bad document of an
        array costs that document, not the answer).
        """
        label = source or self.source
        decoding = _Decoding(large, each_object, read)
        return await retrying(
            lambda: self._send_once(method, url, label, params, json_body, decoding),
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
                session = self._open_session()
                wire_url = _wire_url(url)
                proxy = _env_proxy(wire_url.scheme, wire_url.host)
                async with session.get(wire_url, allow_redirects=False, proxy=proxy) as response:
                    self.stats.by_status[response.status] += 1
                    if response.status >= 300:
                        answer = await _read(response)
                        raise self._status_error(answer, self.source, url)
                    size = 0
                    with partial.open("wb") as out:
                        async for chunk in response.content.iter_chunked(chunk_bytes):
                            out.write(chunk)
                            size += len(chunk)
            except _TRANSPORT_ERRORS as exc:
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
            self.retry.attempts_for(error),
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        label: str,
        params: dict[str, str] | None,
        json_body: Any,
        decoding: _Decoding,
    ) -> Any:
        # The slot is taken per attempt (not held while backing off), and the auth check comes
        # after it: calls queued behind a 401 must not send their own.
        async with self._slots:
            if self._auth_failure is not None:
                raise copy.copy(self._auth_failure)
            try:
                return await self._exchange(method, url, label, params, json_body, decoding)
            except SourceAuthError as error:
                self._auth_failure = error
                raise

    async def _exchange(
        self,
        method: str,
        url: str,
        label: str,
        params: dict[str, str] | None,
        json_body: Any,
        decoding: _Decoding,
    ) -> Any:
        self.stats.requests += 1
        session = self._open_session()
        wire_url = _wire_url(url, params)
        data = headers = None
        if json_body is not None:
            data = orjson.dumps(json_body)
            headers = _JSON_BODY
        started = asyncio.get_running_loop().time()
        try:
            async with session.request(
                method,
                wire_url,
                data=data,
                headers=headers,
                allow_redirects=False,
                proxy=_env_proxy(wire_url.scheme, wire_url.host),
            ) as response:
                answer = await _read(response)
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, label, url) from exc
        status = answer.status
        self.stats.by_status[status] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3f s",
                method,
                redact_url(str(wire_url)),
                status,
                asyncio.get_running_loop().time() - started,
            )
        if status >= 300:
            raise self._status_error(answer, label, url)
        if decoding.large:
            return await asyncio.to_thread(self._decode, answer, label, url, decoding)
        return self._decode(answer, label, url, decoding)

    def _transport_error(self, exc: BaseException, label: str, url: str) -> SourceError:
        """A connection that failed or timed out, as the error to raise (counted)."""
        self.stats.transport_errors += 1
        if isinstance(exc, TimeoutError):
            return SourceTransportError(
                source=label,
                endpoint=endpoint(url),
                problem=f"did not answer in time ({_failure_name(exc)})",
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
        if _refused(exc):
            host, port = _host_port(url)
            sandbox = _sandbox_address(url)
            return SourceRefused(
                source=label,
                endpoint=endpoint(url),
                problem=f"could not be reached: nothing listens on {host}:{port} "
                "(connection refused)" + (": the sandbox is not running there" if sandbox else ""),
                hint=(
                    "start it (`dataload sandbox`), or point "
                    f"{self.url_variable} at the running one"
                    if sandbox
                    else f"check the host and port in {self.url_variable}, and that the service runs"
                ),
            )
        return SourceTransportError(
            source=label,
            endpoint=endpoint(url),
            problem=f"could not be reached ({_failure_name(exc)}: {_failure_detail(exc)})",
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

    def quoted_message(self, response: Answer | Any) -> str:
        """` (the server's explanation)` from an error answer or decoded body, or ''."""
        body = response
        if isinstance(response, Answer):
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

    def _status_error(self, response: Answer, label: str, url: str) -> SourceError:
        status = response.status
        where = {"source": label, "endpoint": endpoint(url), "status": status}
        problem = f"answered {status} {response.reason}".rstrip()
        if status in (403, 404) and self._missing is not None and (hint := self._missing(url)):
            return SourceResponseError(problem=problem, hint=hint, **where)
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

    def _decode(
        self,
        response: Answer,
        label: str,
        url: str,
        decoding: _Decoding,
    ) -> Any:
        body = response.content
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html") or _first_byte(body) == b"<":
            # A 200 carrying HTML is a gateway's sign-in page: the credentials were not accepted.
            raise SourceAuthError(
                source=label,
                endpoint=endpoint(url),
                problem=f"answered {response.status} with an HTML page (a login page?) "
                "instead of JSON",
                hint=f"check {self.credential_variables}",
                status=response.status,
            )
        try:
            if decoding.read is not None:
                return decoding.read(body)
            if decoding.each_object is not None:  # the standard decoder: orjson has no hook
                return json.loads(body, object_hook=decoding.each_object)
            return orjson.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # orjson's is a JSONDecodeError
            raise SourceMalformedResponse(
                source=label,
                endpoint=endpoint(url),
                problem=f"answered {response.status} with a body that is not valid JSON "
                f"({len(body)} bytes)",
                hint="the gateway may be cutting responses; if this persists, ask its owners",
                status=response.status,
            ) from exc


#: What a request raises when the connection failed, was cut or timed out.
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
_JSON_BODY = {"Content-Type": "application/json"}


def _wire_url(url: str, params: dict[str, str] | None = None) -> URL:
    """The URL as sent: the query encoded as httpx encoded it (servers have seen it so), and
    marked encoded so that it is not parsed and quoted a second time."""
    if params:
        url = str(httpx.URL(url).copy_merge_params(params))
    return URL(url, encoded=True)


@functools.lru_cache(maxsize=256)
def _env_proxy(scheme: str, host: str | None) -> str | None:
    """The proxy HTTP_PROXY / HTTPS_PROXY / ALL_PROXY name for this host, unless NO_PROXY
    exempts it (the environment httpx honoured)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or (host and urllib.request.proxy_bypass(host)):
        return None
    return proxy


async def _read(response: aiohttp.ClientResponse) -> Answer:
    content = await response.read()
    return Answer(response.status, response.reason or "", response.headers, content)


# Failures keep the names they had in messages (and in the logs people search) before the
# clients moved from httpx to aiohttp; most specific first.
_FAILURE_NAMES: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ConnectionTimeoutError, "ConnectTimeout"),
    (TimeoutError, "ReadTimeout"),
    (aiohttp.ClientConnectorError, "ConnectError"),
    (aiohttp.ServerDisconnectedError, "RemoteProtocolError"),
    (aiohttp.ClientPayloadError, "RemoteProtocolError"),
    (aiohttp.ClientResponseError, "RemoteProtocolError"),
    (aiohttp.ClientOSError, "ReadError"),
)


def _failure_name(exc: BaseException) -> str:
    for kind, name in _FAILURE_NAMES:
        if isinstance(exc, kind):
            return name
    return type(exc).__name__


def _failure_detail(exc: BaseException) -> str:
    """What went wrong, without aiohttp's wording around the operating system's."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error)
    return str(exc) or type(exc).__name__


def _refused(exc: BaseException) -> bool:
    """Whether a connection failed because the host refused it (nothing listens on the port)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(
            seen.os_error, ConnectionRefusedError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _host_port(url: str) -> tuple[str, int]:
    parsed = URL(url)
    return parsed.host or "?", parsed.port or (443 if parsed.scheme == "https" else 80)


#: The first path segment of each system the sandbox simulates (`sandbox.server.environment`).
_SANDBOX_PATHS = frozenset(
    {"ps", "snaplogic", "sap", "vds", "frankfurter", "products", "jokes", "trip-data", "sage"}
)


def _sandbox_address(url: str) -> bool:
    """Whether `url` has the shape of a sandbox's: this machine, a path the sandbox serves."""
    parsed = URL(url)
    first = parsed.path.strip("/").split("/", 1)[0]
    loopback = parsed.host in ("127.0.0.1", "localhost", "::1")
    return loopback and first in _SANDBOX_PATHS


def _unresolvable(exc: BaseException) -> bool:
    """Whether a connection failed because the host name does not resolve (DNS)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror | aiohttp.ClientConnectorDNSError):
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
