"""A domain, declared once: what the lake, the flow, the deployments and the CLI follow from.

A domain is one Python module that builds a `DomainSpec` and names it in the entry point group
`dataload.domains`. The declaration holds no SQL and no Prefect: `dataload db init` installs
its lake tables from `keys`, the generic flow (flows/domain.py) runs its `source`, and the
deployments come from its `schedules`.

The source is an async generator taking the run (`DomainRun`, flows/domain.py): it reads the
run's parameters and cursor from it and yields records (dicts) or batches (lists of dicts).
What the yielded records mean for deletions is the domain's `listing`:

- complete: every run lists the whole domain; a live key it did not yield is deleted;
- scoped: every run lists the part of the domain its scope names (`run.scope`, key column ->
  values, e.g. one month); a live key of that part it did not yield is deleted;
- incremental: a run yields what changed; it never deletes, except that a full refresh of a
  domain that allows one (`full_refresh=True`) lists everything and so is complete.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from dataload.domains.table import Table

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun
    from dataload.lake.install import DomainTables

__all__ = [
    "DomainSpec",
    "Guards",
    "Key",
    "Listing",
    "NoParams",
    "Records",
    "Schedule",
    "Source",
    "parse_param_options",
]

#: What a source yields: one record, or a batch of them.
Records = dict[str, Any] | list[dict[str, Any]]
Source = Callable[["DomainRun"], AsyncIterator[Records]]

# Domain names become schema names (<name>_raw, ...): lower case, no quoting needed.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Listing(StrEnum):
    COMPLETE = "complete"
    SCOPED = "scoped"
    INCREMENTAL = "incremental"


@dataclass(frozen=True)
class Key:
    """A key column of the lake tables, and the payload field it is read from."""

    column: str
    type: Literal["text", "bigint"] = "text"
    field: str | None = None  # default: the column's name

    @property
    def payload_field(self) -> str:
        return self.field or self.column


@dataclass(frozen=True)
class Schedule:
    """One deployment of the domain: `<domain>-<name>`, on a cron or every `interval_s`."""

    name: str
    cron: str | None = None
    interval_s: int | None = None
    timezone: str = "UTC"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    full_refresh: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError(f"schedule {self.name!r}: give either cron or interval_s")

    @property
    def when(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron} {self.timezone}"
        minutes, seconds = divmod(self.interval_s or 0, 60)
        return f"every {minutes} min" if not seconds else f"every {self.interval_s} s"


@dataclass(frozen=True)
class Guards:
    """What a run refuses to do.

    `min_records`: a run that yields fewer fails before anything is deleted (an empty answer
    is likelier a fault than an empty source). `max_rejected_share`: a run whose validation
    rejected more than this share of what it read is refused before it loads anything.
    `allow_mass_delete`: let a complete run delete beyond the lake's mass-deletion guard.
    """

    min_records: int = 0
    max_rejected_share: float | None = None
    allow_mass_delete: bool = False


class NoParams(BaseModel):
    """The parameters of a domain that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class DomainSpec:
    name: str
    description: str
    keys: tuple[Key, ...]
    listing: Listing
    #: The source: async generator of records or batches; None for a domain with its own flow.
    source: Source | None
    #: What the source reads, in a word or two, for `dataload domains`.
    source_label: str
    params: type[BaseModel] = NoParams
    #: Whether `--full-refresh` applies (the source then lists everything, ignoring the cursor).
    full_refresh: bool = False
    #: service -> JSON paths it may see; given to the lake when the domain is installed.
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Fields never stored, at any depth ('ssn', 'finAid*' for every key starting so).
    never_store: tuple[str, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    tags: tuple[str, ...] = ()
    guards: Guards = field(default_factory=Guards)
    #: A flow of its own, as "module:attribute" (the university's domains), instead of the
    #: generic one; imported only when run.
    flow: str | None = None
    #: The tabular shape (typed columns, see domains/table.py) instead of documents; its keys
    #: and services are the table's.
    table: Table | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"domain name {self.name!r}: use lower-case letters, digits and _ "
                "(it names PostgreSQL schemas)"
            )
        if self.table is not None and (self.keys or self.services or self.never_store):
            raise ValueError(
                f"domain {self.name!r}: a table declares its keys and services in its Table"
            )
        if not self.keys and self.table is None:
            raise ValueError(f"domain {self.name!r} declares no key column")
        if self.source is None and self.flow is None:
            raise ValueError(f"domain {self.name!r} needs a source or a flow")

    @property
    def key_columns(self) -> tuple[str, ...]:
        if self.table is not None:
            return self.table.key_columns
        return tuple(key.column for key in self.keys)

    def tables(self) -> DomainTables:
        """What the lake installs for this domain."""
        # Here, not at the top: listing domains must not load the PostgreSQL layer.
        from dataload.lake.install import DomainTables

        return DomainTables(
            name=self.name,
            key_columns=self.key_columns,
            key_types=tuple(key.type for key in self.keys),
            key_fields=tuple(key.payload_field for key in self.keys),
            services=self.services,
            never_store=self.never_store,
            table=self.table,
        )

    @property
    def deployment_tags(self) -> list[str]:
        return ["dataload", f"domain:{self.name}", *self.tags]

    def check_request(self, params: Mapping[str, Any], *, full_refresh: bool) -> BaseModel:
        """A run's parameters validated, or one clear ValueError (checked before a run starts)."""
        if self.flow is not None and (params or full_refresh):
            raise ValueError(f"the {self.name} flow takes no --param nor --full-refresh")
        if full_refresh and not self.full_refresh:
            raise ValueError(f"{self.name} does not take --full-refresh")
        return self.parse_params(params)

    def parse_params(self, raw: Mapping[str, Any]) -> BaseModel:
        """The run's parameters, validated by the domain's model (one clear error if wrong)."""
        from pydantic import ValidationError

        try:
            return self.params.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                ".".join(str(p) for p in error["loc"]) + ": " + error["msg"]
                if error["loc"]
                else error["msg"].removeprefix("Value error, ")
                for error in exc.errors()
            )
            known = ", ".join(self.params.model_fields) or "none"
            raise ValueError(f"{self.name} parameters: {problems} (parameters: {known})") from None


def parse_param_options(options: list[str]) -> dict[str, str]:
    """`--param name=value` options as a dict (one clear error for a malformed one)."""
    params: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {option!r}: write it as name=value")
        params[name.strip()] = value
    return params
