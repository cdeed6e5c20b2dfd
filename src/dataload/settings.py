"""Configuration from the environment (and `.env`), in one place.

Variable names are the seed's (POSTGRES_*, SNAPLOGIC_*, PEOPLE_SOFT_*, VDS_*, SAP_*, CS_ENV)
plus a few of our own, prefixed DATALOAD_, for tuning.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "FLOW_VARIABLES",
    "SECRET_BLOCK_PREFIX",
    "ConfigurationError",
    "Settings",
    "check_configuration",
    "default_home",
    "get_settings",
    "load_settings",
]


def default_home() -> Path:
    """Where dataload keeps its local state (embedded PostgreSQL data, logs, pid files)."""
    if os.geteuid() == 0:
        # As root the embedded server runs as an unprivileged user that must be able to
        # reach its data folder; /var/lib is traversable, /root is not and must stay closed.
        return Path("/var/lib/dataload")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dataload"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # PostgreSQL. Without POSTGRES_HOST the embedded server is used.
    postgres_host: str | None = Field(None, alias="POSTGRES_HOST")
    postgres_port: int = Field(5432, alias="POSTGRES_PORT")
    postgres_db: str = Field("dataload", alias="POSTGRES_DB")
    postgres_user: str = Field("postgres", alias="POSTGRES_USER")
    postgres_pass: SecretStr = Field(SecretStr(""), alias="POSTGRES_PASS")
    # The lake's roles (`dataload db init` creates them): the owner migrates, the loader loads.
    owner_role: str = Field("dataload_owner", alias="DATALOAD_OWNER_ROLE", min_length=1)
    loader_role: str = Field("dataload_loader", alias="DATALOAD_LOADER_ROLE", min_length=1)
    # The embedded server without fsync, full_page_writes and synchronous_commit: faster, and an
    # operating-system crash can corrupt the whole cluster. Off by default.
    embedded_unsafe_fast: bool = Field(False, alias="DATALOAD_EMBEDDED_UNSAFE_FAST")

    # Campus Solutions environment, passed to SnapLogic and used to derive PEOPLE_SOFT_URL.
    cs_env: str = Field("test", alias="CS_ENV")

    people_soft_url: str | None = Field(None, alias="PEOPLE_SOFT_URL")
    people_soft_user: str = Field("", alias="PEOPLE_SOFT_USER")
    people_soft_pass: SecretStr = Field(SecretStr(""), alias="PEOPLE_SOFT_PASS")

    snaplogic_course_url: str = Field("", alias="SNAPLOGIC_COURSE_URL")
    snaplogic_course_key: SecretStr = Field(SecretStr(""), alias="SNAPLOGIC_COURSE_KEY")
    snaplogic_person_url: str = Field("", alias="SNAPLOGIC_PERSON_URL")
    snaplogic_person_key: SecretStr = Field(SecretStr(""), alias="SNAPLOGIC_PERSON_KEY")

    vds_url: str = Field("", alias="VDS_URL")
    vds_username: str = Field("", alias="VDS_USERNAME")
    vds_password: SecretStr = Field(SecretStr(""), alias="VDS_PASSWORD")
    vds_base_dn: str = Field("ou=people,dc=bu,dc=edu", alias="VDS_BASE_DN")

    sap_url: str = Field("", alias="SAP_URL")
    sap_key: SecretStr = Field(SecretStr(""), alias="SAP_KEY")

    # Where failed, partial and guarded runs are announced: Apprise URLs, separated by spaces
    # or commas (json://host/path for a webhook, mailto://user:pass@host for e-mail, ...).
    alerts: SecretStr = Field(SecretStr(""), alias="DATALOAD_ALERTS")
    # The address people reach the Prefect UI at (a reverse proxy's), for the links alerts and
    # summaries give; unset: the Prefect server's own (http://127.0.0.1:<port>).
    ui_url: str | None = Field(None, alias="DATALOAD_UI_URL")

    # Tuning (the seed's defaults).
    psquery_concurrency: int = Field(10, alias="DATALOAD_PSQUERY_CONCURRENCY", ge=1)
    snaplogic_concurrency: int = Field(8, alias="DATALOAD_SNAPLOGIC_CONCURRENCY", ge=1)
    person_batch_size: int = Field(1000, alias="DATALOAD_PERSON_BATCH_SIZE", ge=1)
    lake_batch_size: int = Field(1000, alias="DATALOAD_LAKE_BATCH_SIZE", ge=1)
    # Source calls: attempts per call (transient failures only) and read timeouts in seconds.
    source_max_attempts: int = Field(6, alias="DATALOAD_SOURCE_MAX_ATTEMPTS", ge=1)
    peoplesoft_timeout_s: float = Field(120.0, alias="DATALOAD_PEOPLESOFT_TIMEOUT_S", gt=0)
    snaplogic_timeout_s: float = Field(900.0, alias="DATALOAD_SNAPLOGIC_TIMEOUT_S", gt=0)
    # The term flow refuses an answer shorter than this fraction of the terms it has.
    term_shrink_threshold: float = Field(0.5, alias="DATALOAD_TERM_SHRINK_THRESHOLD", ge=0, le=1)
    # A run that would delete more than this share of a domain's live records deletes nobody
    # (`dataload run ... --allow-mass-delete` overrides it for one run).
    max_delete_share: float = Field(0.05, alias="DATALOAD_MAX_DELETE_SHARE", ge=0, le=1)
    # Seconds a run waits for another run of its domain to end before it is refused.
    writer_wait_s: float = Field(60.0, alias="DATALOAD_WRITER_WAIT_S", ge=0)
    # A run resumes a failed or killed one (`--resume`, a Prefect retry) only while the work
    # kept began less than this many hours ago; an older one is started over.
    resume_window_h: float = Field(24.0, alias="DATALOAD_RESUME_WINDOW_H", gt=0)

    # The Prefect work pool whose workers run a sharded run's shards (process, Docker,
    # Kubernetes); unset: local process workers, started for the run and stopped after it.
    work_pool: str | None = Field(None, alias="DATALOAD_WORK_POOL")
    # Person runs split into this many shards, each a flow run on the work pool (`--shards`).
    person_shards: int = Field(1, alias="DATALOAD_PERSON_SHARDS", ge=1)

    home: Path = Field(default_factory=default_home, alias="DATALOAD_HOME")

    @property
    def people_soft_base_url(self) -> str:
        return self.people_soft_url or f"https://cs{self.cs_env}.bu.edu"

    @property
    def uses_embedded_postgres(self) -> bool:
        return not self.postgres_host


@lru_cache
def get_settings() -> Settings:
    return load_settings()


#: A secret setting that starts with this names a Prefect Secret block (`dataload.flows.secrets`).
SECRET_BLOCK_PREFIX = "prefect-secret:"


class ConfigurationError(ValueError):
    """Settings that are missing or malformed; the message names every variable concerned."""


#: The variables each flow needs, beyond the database's (checked before any network call).
FLOW_VARIABLES: dict[str, tuple[str, ...]] = {
    "term": ("PEOPLE_SOFT_USER", "PEOPLE_SOFT_PASS"),
    "course": ("SNAPLOGIC_COURSE_URL", "SNAPLOGIC_COURSE_KEY"),
    "person": (
        "PEOPLE_SOFT_USER",
        "PEOPLE_SOFT_PASS",
        "SAP_URL",
        "SAP_KEY",
        "VDS_URL",
        "VDS_USERNAME",
        "VDS_PASSWORD",
        "SNAPLOGIC_PERSON_URL",
        "SNAPLOGIC_PERSON_KEY",
    ),
}

_URL_VARIABLES = (
    "DATALOAD_UI_URL",
    "PEOPLE_SOFT_URL",
    "SNAPLOGIC_COURSE_URL",
    "SNAPLOGIC_PERSON_URL",
    "VDS_URL",
    "SAP_URL",
)


def load_settings(**overrides: object) -> Settings:
    """The settings, or a ConfigurationError naming every malformed variable in one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "a setting"
            value = error.get("input")
            got = f" (got {value!r})" if isinstance(value, str | int | float) else ""
            problems.append(f"{name}: {error['msg'].lower()}{got}")
        raise ConfigurationError("; ".join(problems)) from None


def check_configuration(settings: Settings, flows: tuple[str, ...] = ()) -> None:
    """Raise a ConfigurationError naming every variable `flows` need that is unset or wrong,
    and database settings that would be silently ignored."""
    problems = []
    values = {
        field.alias: getattr(settings, name)
        for name, field in Settings.model_fields.items()
        if field.alias
    }
    missing = [
        variable
        for flow in flows
        for variable in FLOW_VARIABLES[flow]
        if not _text(values[variable]).strip()
    ]
    if missing:
        problems.append(f"not set: {', '.join(dict.fromkeys(missing))}")
    for variable in _URL_VARIABLES:
        url = _text(values[variable]).strip()
        if url and not url.lower().startswith(("http://", "https://")):
            problems.append(f"{variable} must start with http:// or https://")
    alerts = settings.alerts.get_secret_value()
    if alerts and not alerts.startswith(SECRET_BLOCK_PREFIX):
        from dataload.destinations import DestinationError, check_destinations

        try:
            check_destinations(alerts)
        except DestinationError as exc:
            problems.append(str(exc))
    if not settings.postgres_host and settings.postgres_pass.get_secret_value():
        problems.append(
            "POSTGRES_PASS is set but POSTGRES_HOST is not, so it would be ignored (the embedded "
            "PostgreSQL is used): set POSTGRES_HOST, or unset POSTGRES_PASS"
        )
    if problems:
        raise ConfigurationError(
            "; ".join(problems) + " (in the environment or .env; .env.example lists them all)"
        )


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)
