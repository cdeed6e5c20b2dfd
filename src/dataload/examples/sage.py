"""sage_transactions (seed 001): a Sage CSV export, validated, then transformed and joined with
the account dimension in parallel branches, before the load.

    extract ─▶ validate ─┬─▶ transform (amounts to cents, dates, signs) ─┬─▶ join ─▶ load
                         └─▶ update dimensions (chart of accounts)  ─────┘

Validation checks every row (as many fields as the header, required fields, a real date, an
amount that is a number with at most two decimals, a known currency, a transaction id no other
row of the export has); a refused row is kept in lake.rejected with its reason, which names its
line in the file, and when more than the domain's `max_rejected_share` of the rows are refused
the run loads nothing. A transaction id on several otherwise valid rows rejects every one of
them, not only the later ones: the export says two things about one transaction and nothing
tells which is true (a later row is no correction: an export has no order of edits), so the
lake keeps the version it has (the run is incremental) rather than record a guess as the
transaction's history, and lake.rejected names every line to fix. An export delimited by anything but commas (';' or tabs, as some locales export) is
refused whole, in one line naming the delimiter. `SAGE_EXPORT_URL` and `SAGE_ACCOUNTS_URL` name
the two exports (HTTP).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Guards, Listing, Records, Schedule
from dataload.domains.table import Column, ColumnService, Table
from dataload.domains.tasks import lazy_task
from dataload.settings import Settings
from dataload.sources.errors import SourceResponseError
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.redaction import endpoint
from dataload.sources.retry import RetryPolicy

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "CsvExport", "SageExports", "read_csv", "transform", "validate"]

REQUIRED = ("transaction_id", "date", "account_code", "amount", "currency")
CURRENCIES = frozenset({"GBP", "EUR", "USD"})
Row = dict[str, str]
#: Delimiters other than the comma that exports are found with, as messages name them.
OTHER_DELIMITERS = {";": "';' (semicolons)", "\t": "tabs", "|": "'|' (pipes)"}


@dataclass
class CsvExport:
    """One CSV export: its rows by header, the line each starts on (the header is line 1), and
    (reason, sample) for each row with too few or too many fields."""

    rows: list[Row] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    ragged: list[tuple[str, str]] = field(default_factory=list)
    #: A delimiter other than the comma that the header is split by, as messages name it.
    other_delimiter: str | None = None


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

    async def export(self, url: str) -> CsvExport:
        """One CSV export, read (see `read_csv`); an export delimited by another character
        than the comma is refused whole."""
        with tempfile.TemporaryDirectory(prefix="dataload-sage-") as folder:
            path = Path(folder) / "export.csv"
            await self._http.download(url, path)
            export = await asyncio.to_thread(read_csv, path)
        if export.other_delimiter is not None:
            raise SourceResponseError(
                source=self._http.source,
                endpoint=endpoint(url),
                problem=f"is delimited by {export.other_delimiter}, not commas",
                hint="export it again as comma-separated CSV (Sage's CSV export, with the "
                "comma as the list separator)",
            )
        return export


def read_csv(path: Path) -> CsvExport:
    """The export's rows by header, each with the line it starts on; a row with too few or too
    many fields is set apart as a rejection naming its line, as is nothing else: values are
    checked by `validate`. A header without a comma but split by ';', tabs or '|' is noted in
    `other_delimiter`, and then no row is read."""
    export = CsvExport()
    with path.open(newline="", encoding="utf-8-sig") as file:
        first = file.readline()
        if "," not in first:
            found = [(first.count(d), name) for d, name in OTHER_DELIMITERS.items() if d in first]
            if found:
                export.other_delimiter = max(found)[1]
                return export
        reader = csv.reader(itertools.chain((first,), file))
        header = next(reader, [])
        start = reader.line_num + 1
        for fields in reader:
            if fields and len(fields) != len(header):
                export.ragged.append(
                    (
                        f"line {start}: {len(fields)} fields where the header has {len(header)}",
                        # Its fields cannot be told apart: where it is, never what it holds.
                        f'{{"line": {start}}}',
                    )
                )
            elif fields:  # a blank line is no row
                export.rows.append(dict(zip(header, fields, strict=True)))
                export.lines.append(start)
            start = reader.line_num + 1
    return export


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
def validate(
    rows: list[Row], lines: list[int] | None = None
) -> tuple[list[Row], list[tuple[str, str]]]:
    """The rows that pass, and (reason, row) for those that do not; with `lines` (the line each
    row starts on), each reason begins with its row's line. When rows that pass their own checks
    share a transaction id, every one of them is refused (see the module's note); a row refused
    for its own reason does not make another row of its id doubtful."""
    where = lines if lines is not None else list(range(2, len(rows) + 2))
    problems = [_problem(row) for row in rows]
    seen: defaultdict[str, list[int]] = defaultdict(list)  # id -> lines of its readable rows
    for row, line, problem in zip(rows, where, problems, strict=True):
        if problem is None:
            seen[row["transaction_id"].strip()].append(line)
    valid, rejected = [], []
    for row, line, problem in zip(rows, where, problems, strict=True):
        key = (row.get("transaction_id") or "").strip()
        if problem is None and len(seen[key]) > 1:
            others = ", ".join(str(n) for n in seen[key] if n != line)
            problem = f"transaction_id {key!r} is also on line {others}"
        if problem is None:
            valid.append(row)
            continue
        if lines is not None:
            problem = f"line {line}: {problem}"
        # The sample names the transaction; its other fields (customers, descriptions) stay out.
        rejected.append((problem, orjson.dumps({"transaction_id": key}).decode()))
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
        for row in (await exports.export(exports.accounts_url)).rows
    }


async def sage_transactions(run: DomainRun) -> AsyncIterator[Records]:
    exports = await run.client(SageExports)
    export = await exports.export(exports.transactions_url)
    read = len(export.rows) + len(export.ragged)
    run.note("rows read", read)
    valid, rejected = validate(export.rows, export.lines)
    # Refuses the run above the threshold.
    await run.reject(export.ragged + rejected, read=read)
    # Two branches at once, joined before the load.
    accounts, records = await asyncio.gather(
        update_dimensions(exports), asyncio.to_thread(transform, valid)
    )
    run.note("accounts", len(accounts))
    for record in records:
        account = accounts.get(record["account_code"]) or {}
        record["account_name"] = account.get("name")
        record["account_type"] = account.get("type")
    yield records


DOMAIN = DomainSpec(
    name="sage_transactions",
    description="Transactions from a Sage CSV export, validated, joined with the accounts.",
    keys=(),
    table=Table(
        columns=(
            Column("transaction_id", "text"),
            Column("date", "date", required=True),
            Column("account_code", "text", required=True),
            Column("account_name", "text"),
            Column("account_type", "text"),
            Column("customer_id", "text"),
            Column("description", "text"),
            Column("amount_cents", "bigint", required=True),
            Column("direction", "text"),
            Column("currency", "text", required=True),
        ),
        key=("transaction_id",),
        services={
            # The general ledger's view: amounts by account, no customers, no descriptions.
            "ledger": ColumnService(
                (
                    "transaction_id",
                    "date",
                    "account_code",
                    "account_name",
                    "amount_cents",
                    "direction",
                    "currency",
                )
            ),
        },
    ),
    listing=Listing.INCREMENTAL,
    source=sage_transactions,
    source_label="Sage CSV exports (transactions, accounts)",
    schedules=(Schedule("daily", cron="0 7 * * *", description="Daily at 07:00 UTC."),),
    tags=("source:sage", "seed:001"),
    guards=Guards(max_rejected_share=0.05),
)
