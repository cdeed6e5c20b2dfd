"""The one error tree of the source clients.

```
SourceError                      anything that went wrong talking to a source system
├── SourceTransportError         no usable answer: connect/read/write errors, timeouts (retried)
│   ├── SourceRefused            nothing listens on the host's port (retried briefly)
│   └── SourceUnresolvable       the host name does not resolve (not retried)
├── SourceRateLimited            HTTP 429 (retried after Retry-After)
├── SourceAuthError              401/403, or an HTML login page instead of JSON (never retried)
└── SourceResponseError          an answer we cannot use: unexpected status or body shape
    ├── SourceServerError        HTTP 5xx (retried)
    └── SourceMalformedResponse  a body that is not valid JSON (retried: gateways cut bodies)
```

Every error says which system and endpoint failed, what happened and what to check. Messages are
built only from redacted endpoints (no query string, no user info) and variable *names*, so a
secret can never appear in them.
"""

from __future__ import annotations

__all__ = [
    "SourceAuthError",
    "SourceError",
    "SourceMalformedResponse",
    "SourceRateLimited",
    "SourceRefused",
    "SourceResponseError",
    "SourceServerError",
    "SourceTransportError",
    "SourceUnresolvable",
]


class SourceError(Exception):
    """A source system call failed.

    `source` names the system and call ("SnapLogic person API"), `endpoint` is the redacted URL,
    `problem` what happened ("answered 401"), `hint` what to check, `status` the HTTP status when
    there was one, `attempts` how many requests were made before giving up, `retry_after` the
    server's advice in seconds (Retry-After on a 429 or 503).
    """

    #: Whether the retry policy may try the same request again.
    retryable: bool = False
    #: Set when a retryable failure was not retried because the client's retry budget was spent.
    out_of_budget: bool = False

    def __init__(
        self,
        *,
        source: str,
        endpoint: str,
        problem: str,
        hint: str,
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.source = source
        self.endpoint = endpoint
        self.problem = problem
        self.hint = hint
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(source, endpoint, problem, hint)

    def __reduce__(self):
        # Keyword-only constructor: rebuild from the attributes so errors survive pickling
        # (Prefect serialises task failures).
        return (_restore, (type(self), dict(self.__dict__)))

    def __str__(self) -> str:
        tries = f" (gave up after {self.attempts} attempts)" if self.attempts > 1 else ""
        if self.out_of_budget:
            tries = (
                f" (gave up after {self.attempts} attempt{'s' if self.attempts > 1 else ''}: "
                "too many failures on this client to keep retrying)"
            )
        return f"{self.source} at {self.endpoint} {self.problem}{tries}: {self.hint}"


def _restore(cls: type[SourceError], state: dict) -> SourceError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["source"], state["endpoint"], state["problem"], state["hint"])
    error.__dict__.update(state)
    return error


class SourceTransportError(SourceError):
    """No usable answer arrived: the connection failed, broke or timed out."""

    retryable = True


class SourceRefused(SourceTransportError):
    """The host refused the connection: nothing listens on its port (a service that is down,
    restarting, or a wrong port). Retried a few times, quickly: a restart takes seconds, and
    otherwise the answer will be the same."""


class SourceUnresolvable(SourceTransportError):
    """The system's host name does not resolve: a wrong URL or no DNS, not a passing fault."""

    retryable = False


class SourceRateLimited(SourceError):
    """The system answered 429 Too Many Requests."""

    retryable = True


class SourceAuthError(SourceError):
    """The credentials were refused (401/403) or a login page came back instead of data."""


class SourceResponseError(SourceError):
    """The system answered, but not with something we can use (status or body shape)."""


class SourceServerError(SourceResponseError):
    """The system answered with a 5xx status: usually transient."""

    retryable = True


class SourceMalformedResponse(SourceResponseError):
    """The body was not valid JSON. Flaky gateways cut or garble bodies, so this is retried."""

    retryable = True
