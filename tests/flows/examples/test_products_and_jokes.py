"""products: incremental by updated_at, the cursor in the lake, a full refresh that deletes the
discontinued; jokes: the API key from a Prefect Secret block when one is named."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret
from tests.flows.world import World

from dataload.flows.domain import domain_flow
from dataload.sandbox.examples.products import catalogue

pytestmark = pytest.mark.slow


async def test_products_load_only_what_changed_since_the_cursor(world: World) -> None:
    config = world.sandbox.config
    first = await domain_flow("products")
    day1 = catalogue(config, 1)
    cursor = await world.conn.fetchval("SELECT value FROM lake.cursors WHERE domain = 'products'")

    assert first.counts["new"] == len(day1) and first.fetched["pages"] == 3
    assert cursor == max(item["updated_at"] for item in day1)

    config.day = 2
    second = await domain_flow("products")
    day2 = catalogue(config, 2)
    since = [item for item in day2 if item["updated_at"] >= cursor]

    assert second.counts["fetched"] == len(since) < len(day2) // 5
    # The cursor's own item comes again (updated_since is inclusive) and is unchanged.
    assert second.counts["new"] == 2 and second.counts["unchanged"] == 1
    assert second.counts["changed"] == len(since) - 3
    assert second.counts["deleted"] == 0  # an incremental run never deletes


async def test_a_full_refresh_reads_everything_and_deletes_the_discontinued(world: World) -> None:
    config = world.sandbox.config
    await domain_flow("products")
    config.day = 8
    listed = {item["id"] for item in catalogue(config, 8)}
    gone = await world.column(
        "SELECT id FROM products_xform.current_products_data WHERE NOT (id = ANY($1::bigint[]))",
        list(listed),
    )

    report = await domain_flow("products", full_refresh=True)

    assert report.status == "complete" and report.counts["fetched"] == len(listed)
    assert gone and report.counts["deleted"] == len(gone)


async def test_jokes_take_their_key_from_the_prefect_secret_block_it_names(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await Secret(value=world.sandbox.config.examples.jokes_key).asave("jokes-key", overwrite=True)
    monkeypatch.setenv("JOKES_API_KEY", "prefect-secret:jokes-key")

    report = await domain_flow("jokes", {"count": "6"})

    assert report.succeeded and report.counts["fetched"] == 6
    assert await world.count("SELECT count(*) FROM jokes_xform.current_jokes_data") >= 5


async def test_jokes_read_a_plain_key_from_the_environment_and_a_wrong_one_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await domain_flow("jokes")).succeeded  # JOKES_API_KEY from the sandbox

    monkeypatch.setenv("JOKES_API_KEY", "wrong")
    with pytest.raises(Exception, match="JOKES_API_KEY"):
        await domain_flow("jokes")

    monkeypatch.setenv("JOKES_API_KEY", "prefect-secret:no-such-block")
    with pytest.raises(Exception, match="names the Prefect Secret block 'no-such-block'"):
        await domain_flow("jokes")
