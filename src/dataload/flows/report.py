"""What one flow run did, as a value (returned by the flow) and as a table artifact in the UI.

The table has three columns, section / item / value, so that every count reads on its own line:
the ledger's counts (fetched, new, changed, unchanged, deleted, rejected), what each source
system answered and how many requests and retries it cost, the rows in each lake layer and
curated service afterwards, and the durations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["LoadReport", "SourceUse", "run_name"]


def run_name(domain: str) -> Callable[[], str]:
    """Flow run names that say what ran and when, "person 2026-05-01 03:00", for the UI."""
    return lambda: f"{domain} {datetime.now().astimezone():%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class SourceUse:
    """Requests one source client sent during the run, retries among them, answers by status."""

    requests: int
    retries: int
    by_status: dict[str, int]


@dataclass
class LoadReport:
    flow: str
    domain: str
    run_id: int | None
    #: The ledger's status: complete, partial, guarded or failed.
    status: str
    duration_s: float
    #: The ledger's counts: offered, inserted, changed, unchanged, deleted, rejected.
    counts: dict[str, int]
    #: What the sources answered, e.g. {"student ids": 1800, "terms fetched": 4}.
    fetched: dict[str, int] = field(default_factory=dict)
    sources: dict[str, SourceUse] = field(default_factory=dict)
    #: Rows per layer (raw, xform live, xform deleted) and curated rows per service.
    layers: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    #: Samples of rejected records' reasons, as the ledger keeps them.
    rejected_reasons: list[str] = field(default_factory=list)
    #: What the run did, in one sentence, as the ledger keeps it.
    outcome: str | None = None
    #: Some of the listed keys the run never loaded (a partial run).
    missing: list[str] = field(default_factory=list)
    #: The failed or abandoned run this one resumed, and the records that one had loaded.
    resumed_from: int | None = None
    carried: int = 0
    #: Tabular domains: columns the run added, or found missing in its source.
    schema_changes: list[str] = field(default_factory=list)
    #: Alert destinations that did not take the run's alert, each with why.
    alerts_unsent: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """Only a complete run (or an incremental one, which deletes nobody by design) did all
        it should: a partial or guarded one needs a look."""
        return self.status in ("complete", "incremental")

    def table(self) -> list[dict[str, Any]]:
        """The report as rows of {section, item, value}, for a Prefect table artifact."""
        rows: list[tuple[str, str, Any]] = [
            ("run", "flow", self.flow),
            ("run", "ledger run", self.run_id),
            ("run", "status", self.status),
            ("run", "duration (s)", round(self.duration_s, 2)),
        ]
        if self.resumed_from is not None:
            rows.append(("run", "resumed run", self.resumed_from))
            rows.append(("run", "loaded by the resumed run", self.carried))
        if self.outcome:
            rows.append(("run", "outcome", self.outcome))
        if self.error:
            rows.append(("run", "error", self.error))
        rows += [("ledger", name, value) for name, value in self.counts.items()]
        rows += [("fetched", name, value) for name, value in self.fetched.items()]
        for name, use in self.sources.items():
            rows.append((f"source {name}", "requests", use.requests))
            rows.append((f"source {name}", "retries", use.retries))
        rows += [("layer", name, value) for name, value in self.layers.items()]
        rows += [("curated service", name, value) for name, value in self.services.items()]
        rows += [("rejected", "reason", reason) for reason in self.rejected_reasons]
        rows += [("missing", "key", key) for key in self.missing]
        rows += [("schema", "change", change) for change in self.schema_changes]
        rows += [("alert", "not sent to", line) for line in self.alerts_unsent]
        return [{"section": s, "item": i, "value": v} for s, i, v in rows]

    def headline(self) -> str:
        """One line for a terminal: status, duration, the ledger's counts and, for a run that
        is not complete, what it did and why ("stored 3 new ..., deleted nobody: ...")."""
        counts = ", ".join(f"{value:,} {name}" for name, value in self.counts.items())
        line = f"{self.flow}: {self.status} in {self.duration_s:.1f} s ({counts})"
        if self.resumed_from is not None:
            line += f", resuming run {self.resumed_from} ({self.carried:,} loaded by it)"
        if self.schema_changes:
            line += "; " + "; ".join(self.schema_changes)
        if self.status == "guarded" and self.outcome:
            return f"{line}; {self.outcome} (`dataload run {self.domain} --allow-mass-delete`)"
        if not self.succeeded and self.outcome:
            return f"{line}; {self.outcome}"
        return f"{line}; {self.error}" if self.error else line
