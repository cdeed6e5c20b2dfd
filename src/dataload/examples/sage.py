"""sage_transactions (seed 001): a Sage CSV export, validated, then transformed and joined with
the account dimension in parallel branches, before the load.

    extract ─▶ validate ─┬─▶ transform (amounts to cents, dates, signs) ─┬─▶ join ─▶ load
                         └─▶ update dimensions (chart of accounts)  ─────┘

Validation checks every row (required fields, a real date, an amount that is a number with at
most two decimals, a known currency); a refused row is kept in lake.rejected with its reason,
and when more than the domain's `max_rejected_share` of the rows are refused the run loads
nothing. `SAGE_EXPORT_URL` and `SAGE_ACCOUNTS_URL` name the two exports (HTTP).
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Guards, Key, Listing, Records, Schedule
from dataload.domains.tasks import lazy_task
from dataload.settings import Settings
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "SageExports", "transform", "validate"]

REQUIRED = ("transaction_id", "date", "account_code", "amount", "currency")
CURRENCIES = frozenset({"GBP", "EUR", "USD"})
Row = dict[str, str]


class SageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    transactions_url: str = Field("", alias="SAGE_EXPORT_URL")
    accounts_url: str = Field("", alias="SAGE_ACCOUNTS_URL")


class SageExports(SourceClient):
    def __init__(
        self,
        *,
        transactions_url: str,
        accounts_url: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.transactions_url = require_url(transactions_url, "SAGE_EXPORT_URL")
        self.accounts_url = require_url(accounts_url, "SAGE_ACCOUNTS_URL")
        self._http = SourceHttp(
            source="Sage export",
            url_variable="SAGE_EXPORT_URL / SAGE_ACCOUNTS_URL",
            credential_variables="SAGE_EXPORT_URL",
            auth=None,
            timeout=timeouts(read=120.0),
            retry=retry or RetryPolicy(),
            max_connections=2,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        own = SageSettings()
        return {"transactions_url": own.transactions_url, "accounts_url": own.accounts_url}

    async def rows(self, url: str) -> list[Row]:
        """The rows of one CSV export, as dicts by header."""
        with tempfile.TemporaryDirectory(prefix="dataload-sage-") as folder:
            path = Path(folder) / "export.csv"
            await self._http.download(url, path)
            return await asyncio.to_thread(_read_csv, path)


def _read_csv(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def _problem(row: Row) -> str | None:
    for name in REQUIRED:
        if not (row.get(name) or "").strip():
            return f"missing {name}"
    try:
        date.fromisoformat(row["date"])
    except ValueError:
        return f"date {row['date']!r} is not a YYYY-MM-DD date"
    try:
        amount = Decimal(row["amount"])
    except InvalidOperation:
        return f"amount {row['amount']!r} is not a number"
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return f"amount {row['amount']!r} has more than two decimals"
    if row["currency"] not in CURRENCIES:
        return f"currency {row['currency']!r} is not one of {', '.join(sorted(CURRENCIES))}"
    return None


@lazy_task("validate")
def validate(rows: list[Row]) -> tuple[list[Row], list[tuple[str, str]]]:
    """The rows that pass, and (reason, row) for those that do not."""
    valid, rejected = [], []
    for row in rows:
        problem = _problem(row)
        if problem is None:
            valid.append(row)
        else:
            rejected.append((problem, ",".join(row.values())))
    return valid, rejected


@lazy_task("transform")
def transform(rows: list[Row]) -> list[dict[str, Any]]:
    """Valid rows as typed records: the amount in cents (an integer), its direction."""
    records = []
    for row in rows:
        cents = int(Decimal(row["amount"]) * 100)
        records.append(
            {
                "transaction_id": row["transaction_id"].strip(),
                "date": row["date"],
                "account_code": row["account_code"].strip(),
                "customer_id": row.get("customer_id") or None,
                "description": row.get("description", ""),
                "amount_cents": cents,
                "direction": "credit" if cents >= 0 else "debit",
                "currency": row["currency"],
            }
        )
    return records


@lazy_task("update-dimensions")
async def update_dimensions(exports: SageExports) -> dict[str, dict[str, str]]:
    """The chart of accounts, account code -> {name, type}."""
    return {
        row["account_code"]: {"name": row["account_name"], "type": row["account_type"]}
        for row in await exports.rows(exports.accounts_url)
    }


async def sage_transactions(run: DomainRun) -> AsyncIterator[Records]:
    exports = await run.client(SageExports)
    rows = await exports.rows(exports.transactions_url)
    run.note("rows read", len(rows))
    valid, rejected = validate(rows)
    await run.reject(rejected, read=len(rows))  # refuses the run above the threshold
    # Two branches at once, joined before the load.
    accounts, records = await asyncio.gather(
        update_dimensions(exports), asyncio.to_thread(transform, valid)
    )
    run.note("accounts", len(accounts))
    for record in records:
        record["account"] = accounts.get(record["account_code"])
    yield records


DOMAIN = DomainSpec(
    name="sage_transactions",
    description="Transactions from a Sage CSV export, validated, joined with the accounts.",
    keys=(Key("transaction_id"),),
    listing=Listing.INCREMENTAL,
    source=sage_transactions,
    source_label="Sage CSV exports (transactions, accounts)",
    schedules=(Schedule("daily", cron="0 7 * * *", description="Daily at 07:00 UTC."),),
    tags=("source:sage", "seed:001"),
    guards=Guards(max_rejected_share=0.05),
)
