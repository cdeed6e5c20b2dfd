"""API-key authentication for SnapLogic and SAP (HTTP Basic is httpx's own `httpx.BasicAuth`)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Literal

import httpx

__all__ = ["ApiKeyAuth", "ApiKeyScheme"]

#: `x-api-key: <key>` (the contract's header), or `Authorization: Bearer <key>` (SnapLogic's own).
ApiKeyScheme = Literal["x-api-key", "bearer"]


class ApiKeyAuth(httpx.Auth):
    """Send an API key with every request, in `x-api-key` or as a bearer token."""

    def __init__(self, key: str, *, scheme: ApiKeyScheme = "x-api-key") -> None:
        if scheme == "x-api-key":
            self._header = ("x-api-key", key)
        elif scheme == "bearer":
            self._header = ("Authorization", f"Bearer {key}")
        else:
            raise ValueError(f"unknown API key scheme {scheme!r}: use 'x-api-key' or 'bearer'")
        self.scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header[0]] = self._header[1]
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyAuth(scheme={self.scheme!r}, key=REDACTED)"
