"""Strip secrets from URLs and server text before they reach a log line or an error message."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

__all__ = ["endpoint", "redact_url", "scrub"]

# Query parameter names that carry credentials, e.g. SnapLogic's `bearer_token`.
_SENSITIVE_PARAM_PARTS = ("token", "key", "pass", "secret", "auth", "sig", "cookie", "session")
_MASK = "REDACTED"


def _is_sensitive_param(name: str) -> bool:
    name = name.lower()
    return any(part in name for part in _SENSITIVE_PARAM_PARTS)


def redact_url(url: httpx.URL | str) -> str:
    """The URL with user info removed and the values of credential-like query parameters masked."""
    url = httpx.URL(url)
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    if url.query:
        params = [
            (name, _MASK if _is_sensitive_param(name) else value)
            for name, value in url.params.multi_items()
        ]
        url = url.copy_with(params=params)
    return str(url)


def endpoint(url: httpx.URL | str) -> str:
    """The URL to name in messages: scheme, host and path only (no query, no user info)."""
    url = httpx.URL(url)
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a known secret masked (for text a server sent back)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return text
