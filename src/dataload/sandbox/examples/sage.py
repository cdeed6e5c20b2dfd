"""A Sage accounting export (seed 001): transactions and the chart of accounts as CSV files.

    GET /sage/transactions.csv   transaction_id,date,account_code,customer_id,description,amount,currency
    GET /sage/accounts.csv       account_code,account_name,account_type

`sage_rows` transactions, of which a share `sage_bad_rate` is malformed in one of the ways real
exports are: a missing id, an impossible date, an amount that is not a number, an empty
account, a row cut short or split by a comma in its description (one field too few or too
many), the id of the row before it again. `sage_delimiter` exports with another delimiter
(';' as in locales whose decimal mark is the comma, or a tab).
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.systems import System

__all__ = ["ACCOUNTS", "SAGE", "routes", "transactions_csv"]

SAGE = System("sage", b"transaction_id,date,account_code\nT0001,2026-0", None)
ACCOUNTS = (
    ("4000", "Sales", "income"),
    ("4100", "Consulting income", "income"),
    ("5000", "Cost of sales", "expense"),
    ("6100", "Rent", "expense"),
    ("6200", "Salaries", "expense"),
    ("6300", "Software subscriptions", "expense"),
    ("7100", "Bank charges", "expense"),
)
_CUSTOMERS = ("C-ACME", "C-GLOBEX", "C-INITECH", "C-UMBRELLA", "")
_FAULTS = (
    "missing_id",
    "bad_date",
    "bad_amount",
    "no_account",
    "short_row",
    "long_row",
    "duplicate_id",
)


def transactions_csv(config: SandboxConfig) -> bytes:
    ex = config.examples
    rng = random.Random(config.seed * 7001 + config.day)
    first = config.date_of(config.day) - timedelta(days=90)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=ex.sage_delimiter)
    writer.writerow(
        [
            "transaction_id",
            "date",
            "account_code",
            "customer_id",
            "description",
            "amount",
            "currency",
        ]
    )
    for i in range(1, ex.sage_rows + 1):
        account = rng.choice(ACCOUNTS)
        day: date = first + timedelta(days=int(rng.random() * 90))
        amount = round(rng.uniform(10, 5000), 2) * (1 if account[2] == "income" else -1)
        row = [
            f"T{i:06d}",
            day.isoformat(),
            account[0],
            rng.choice(_CUSTOMERS),
            f"{account[1]} {i}",
            f"{amount:.2f}",
            "GBP",
        ]
        if rng.random() < ex.sage_bad_rate:
            fault = rng.choice(_FAULTS)
            if fault == "missing_id":
                row[0] = ""
            elif fault == "bad_date":
                row[1] = f"{day.year}-13-{day.day:02d}"
            elif fault == "bad_amount":
                row[5] = "12,50O"
            elif fault == "short_row":
                del row[-2:]
            elif fault == "long_row":  # "Rent, 12": a comma the exporter did not quote
                row[4:5] = row[4].split(" ", 1)
            elif fault == "duplicate_id":
                row[0] = f"T{max(1, i - 1):06d}"
            else:
                row[2] = ""
        writer.writerow(row)
    return out.getvalue().encode()


def _accounts_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["account_code", "account_name", "account_type"])
    writer.writerows(ACCOUNTS)
    return out.getvalue().encode()


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def transactions(request: Request) -> Response:
        async def answer() -> Response:
            return Response(transactions_csv(config), media_type="text/csv")

        return await gate("sage.transactions", SAGE, authorized=True, answer=answer)

    async def accounts(request: Request) -> Response:
        async def answer() -> Response:
            return Response(_accounts_csv(), media_type="text/csv")

        return await gate("sage.accounts", SAGE, authorized=True, answer=answer)

    return [
        Route("/sage/transactions.csv", transactions, methods=["GET"]),
        Route("/sage/accounts.csv", accounts, methods=["GET"]),
    ]
