"""The credentials a source client sends: HTTP Basic (PeopleSoft, VDS) or an API key (SnapLogic,
SAP). Each is one header, the same on every request."""

from __future__ import annotations

import base64
from typing import Literal

__all__ = ["ApiKeyAuth", "ApiKeyScheme", "BasicAuth", "HeaderAuth"]

#: `x-api-key: <key>` (the contract's header), or `Authorization: Bearer <key>` (SnapLogic's own).
ApiKeyScheme = Literal["x-api-key", "bearer"]


class HeaderAuth:
    """Credentials sent as one header with every request; `repr` never shows them."""

    def __init__(self, name: str, value: str) -> None:
        self.header = (name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header[0]!r}, value=REDACTED)"


class BasicAuth(HeaderAuth):
    """HTTP Basic credentials, sent up front (the services never challenge first)."""

    def __init__(self, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        super().__init__("Authorization", f"Basic {token}")


class ApiKeyAuth(HeaderAuth):
    """Send an API key with every request, in `x-api-key` or as a bearer token."""

    def __init__(self, key: str, *, scheme: ApiKeyScheme = "x-api-key") -> None:
        if scheme == "x-api-key":
            super().__init__("x-api-key", key)
        elif scheme == "bearer":
            super().__init__("Authorization", f"Bearer {key}")
        else:
            raise ValueError(f"unknown API key scheme {scheme!r}: use 'x-api-key' or 'bearer'")
        self.scheme = scheme

    def __repr__(self) -> str:
        return f"ApiKeyAuth(scheme={self.scheme!r}, key=REDACTED)"
