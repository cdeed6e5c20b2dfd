"""sage_transactions: validation before the load (rejections kept with their reasons, the run
refused above the threshold), dimensions and transform as parallel branches joined before it."""

from __future__ import annotations

import pytest
from tests.flows.world import World

from dataload.examples.sage import validate
from dataload.flows.domain import DomainGuardError, domain_flow

pytestmark = pytest.mark.slow

XFORM = "sage_transactions_xform.current_sage_transactions_data"
GOOD = {
    "transaction_id": "T1",
    "date": "2026-04-30",
    "account_code": "4000",
    "amount": "12.50",
    "currency": "GBP",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"transaction_id": ""}, "missing transaction_id"),
        ({"date": "2026-13-01"}, "is not a YYYY-MM-DD date"),
        ({"amount": "12,50O"}, "is not a number"),
        ({"amount": "1.005"}, "more than two decimals"),
        ({"currency": "XXX"}, "currency 'XXX'"),
    ],
)
def test_validation_refuses_a_row_with_its_reason(change: dict, reason: str) -> None:
    valid, rejected = validate.fn([GOOD, {**GOOD, **change}])

    assert valid == [GOOD]
    assert len(rejected) == 1 and reason in rejected[0][0]


async def test_valid_rows_load_joined_with_their_account_and_rejections_are_kept(
    world: World,
) -> None:
    world.sandbox.config.examples.sage_bad_rate = 0.03

    report = await domain_flow("sage_transactions")

    rejected = report.counts["rejected"]
    assert 0 < rejected <= 0.05 * 400
    assert report.counts["new"] == 400 - rejected
    record = await world.conn.fetchval(f"SELECT sage_transactions_data FROM {XFORM} LIMIT 1")
    assert '"account": {"name": ' in record and '"amount_cents": ' in record
    reasons = await world.column(
        "SELECT reason FROM lake.rejected WHERE run_id = $1", report.run_id
    )
    assert len(reasons) == rejected and all(reasons)


async def test_a_run_above_the_rejection_threshold_loads_nothing(world: World) -> None:
    world.sandbox.config.examples.sage_bad_rate = 0.3

    with pytest.raises(DomainGuardError, match="validation rejected"):
        await domain_flow("sage_transactions")

    run = await world.last_run("sage_transactions")
    assert run["status"] == "failed" and run["rejected"] > 0.05 * 400
    assert await world.count(f"SELECT count(*) FROM {XFORM}") == 0
