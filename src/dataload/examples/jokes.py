"""jokes (seed 003): a small API loaded every 10 minutes, its key in a Prefect Secret block.

Each run asks for `count` jokes and stores the new ones (key: the joke's id); it never deletes.
The API key is `JOKES_API_KEY`, or, when it reads `prefect-secret:<block>`, the value of that
Prefect Secret block (create one with `prefect block create secret` or
`Secret(value=...).save(name)`), as for every secret setting of dataload. `JOKES_URL` defaults
to https://icanhazdadjoke.com/.

icanhazdadjoke asks every client for a custom User-Agent naming the library or site and a URL or
e-mail where someone can be reached about it. `JOKES_USER_AGENT` is sent as it is; set it to
name your deployment and its contact (`dataload/0.1.0 (+https://data.example.edu;
ops@example.edu)`). The default names dataload and its version and says no contact was set:
dataload has no public home page to point at, and a made-up one would mislead the API's owner.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Key, Listing, Records, Schedule
from dataload.settings import SECRET_BLOCK_PREFIX, ConfigurationError, Settings
from dataload.sources.auth import ApiKeyAuth
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "Jokes", "api_key"]


logger = logging.getLogger("dataload.sources")


def default_user_agent() -> str:
    """`dataload/<version>`, and that no contact was configured (JOKES_USER_AGENT sets one)."""
    try:
        version = metadata.version("dataload")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"dataload/{version} (no contact configured; set JOKES_USER_AGENT)"


class JokeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    url: str = Field("https://icanhazdadjoke.com/", alias="JOKES_URL")
    key: SecretStr = Field(SecretStr(""), alias="JOKES_API_KEY")
    #: The User-Agent the API asks for: this library or site, and a URL or e-mail to reach you.
    user_agent: str = Field("", alias="JOKES_USER_AGENT")


class JokeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(5, ge=1, le=100)


async def api_key(settings: JokeSettings) -> str:
    """JOKES_API_KEY, or the Prefect Secret block it names (`prefect-secret:<block>`)."""
    key = settings.key.get_secret_value()
    if not key.startswith(SECRET_BLOCK_PREFIX):
        return key
    from dataload.flows.secrets import secret_block_value

    block = key.removeprefix(SECRET_BLOCK_PREFIX).strip()
    value = await secret_block_value(block)
    if value is None:
        raise ConfigurationError(
            f"JOKES_API_KEY names the Prefect Secret block {block!r}, which does not exist on "
            "the Prefect server (create it with `prefect block create secret`)"
        )
    return value


class Jokes(SourceClient):
    def __init__(
        self,
        *,
        url: str,
        key: str,
        user_agent: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = require_url(url, "JOKES_URL")
        self.user_agent = (user_agent or "").strip() or default_user_agent()
        self._http = SourceHttp(
            source="jokes API",
            url_variable="JOKES_URL",
            credential_variables="JOKES_API_KEY (or the Secret block it names)",
            auth=ApiKeyAuth(key) if key else None,
            secrets=(key,) if key else (),
            timeout=timeouts(read=30.0),
            retry=retry or RetryPolicy(),
            max_connections=1,
            user_agent=self.user_agent,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        raise NotImplementedError("the key may live in Prefect: use Jokes.configured()")

    @classmethod
    async def configured(cls, settings: Settings) -> Jokes:
        own = JokeSettings()
        if not own.user_agent.strip() and urlsplit(own.url).hostname == "icanhazdadjoke.com":
            logger.warning(
                "JOKES_USER_AGENT is not set: icanhazdadjoke.com asks for a User-Agent naming "
                "you and a URL or e-mail to reach you; sending %r",
                default_user_agent(),
            )
        return cls(
            url=own.url,
            key=await api_key(own),
            user_agent=own.user_agent,
            retry=RetryPolicy(max_attempts=settings.source_max_attempts),
        )

    async def random(self) -> dict[str, Any]:
        body = await self._http.request_json("GET", self.url)
        if not isinstance(body, dict) or not body.get("id") or not body.get("joke"):
            raise self._http.shape_error(self.url, "answered without an id and a joke")
        return {"id": str(body["id"]), "joke": body["joke"]}


async def jokes(run: DomainRun) -> AsyncIterator[Records]:
    count = run.typed_params(JokeParams).count
    api = await run.adopt(await Jokes.configured(run.settings))
    for _ in range(count):
        yield await api.random()


DOMAIN = DomainSpec(
    name="jokes",
    description="Jokes from a small API, every 10 minutes, key from a Prefect Secret block.",
    keys=(Key("id"),),
    listing=Listing.INCREMENTAL,
    source=jokes,
    source_label="jokes API (icanhazdadjoke style)",
    params=JokeParams,
    schedules=(Schedule("every-10-minutes", interval_s=600, description="Every 10 minutes."),),
    tags=("source:jokes", "seed:003"),
)
