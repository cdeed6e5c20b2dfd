"""The base of the example clients of public HTTP APIs that take no key.

Such a client is its base URL (a setting of its own), the shared retry policy (exponential
backoff with full jitter, `DATALOAD_SOURCE_MAX_ATTEMPTS`), a read timeout and a number of
connections; a subclass says which and adds the calls it makes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic_settings import BaseSettings

from dataload.settings import Settings
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

__all__ = ["PublicApi"]


class PublicApi(SourceClient):
    #: The service as errors name it, and the variable that holds its base URL.
    source: ClassVar[str]
    url_variable: ClassVar[str]
    #: Settings with a `url` field read from `url_variable`.
    settings_type: ClassVar[type[BaseSettings]]
    read_timeout_s: ClassVar[float] = 60.0
    max_connections: ClassVar[int] = 1

    def __init__(
        self,
        *,
        url: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = require_url(url, self.url_variable)
        self._http = SourceHttp(
            source=self.source,
            url_variable=self.url_variable,
            credential_variables=f"{self.url_variable} (the API takes no key)",
            auth=None,
            timeout=timeouts(read=self.read_timeout_s),
            retry=retry or RetryPolicy(),
            max_connections=self.max_connections,
            missing=self.missing,
        )

    def missing(self, url: str) -> str | None:
        """For a service that answers 403 for an object it does not have: what the absence of
        `url` means, as the error's hint. None (the default): a 403 refuses the client."""
        return None

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {"url": cls.settings_type().url}  # type: ignore[attr-defined]
