"""Configuration from the environment (and `.env`), in one place.

Variable names are the seed's (POSTGRES_*, SNAPLOGIC_*, PEOPLE_SOFT_*, VDS_*, SAP_*, CS_ENV)
plus a few of our own, prefixed DATALOAD_, for tuning.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_home", "get_settings"]


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

    home: Path = Field(default_factory=default_home, alias="DATALOAD_HOME")

    @property
    def people_soft_base_url(self) -> str:
        return self.people_soft_url or f"https://cs{self.cs_env}.bu.edu"

    @property
    def uses_embedded_postgres(self) -> bool:
        return not self.postgres_host


@lru_cache
def get_settings() -> Settings:
    return Settings()
