"""`dataload run <domain> --param k=v [--full-refresh]` and its one-line errors."""

from __future__ import annotations

import pytest
from tests.flows.test_run_command import dataload
from tests.flows.world import World

pytestmark = pytest.mark.slow


async def test_run_passes_parameters_to_the_domain(world: World) -> None:
    result = dataload(
        "run", "exchange_rates", "--param", "start=2026-04-27", "-p", "end=2026-04-28"
    )

    assert result.returncode == 0, result.stderr
    assert "exchange_rates-load: incremental" in result.stdout  # it deletes nobody, by design
    assert "120 new" in result.stdout  # two days, two bases, 30 rates each
    assert "chunks 2" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nosuch"), "no domain 'nosuch' is registered; registered: course, currencies"),
        (("run", "currencies", "--full-refresh"), "currencies does not take --full-refresh"),
        (("run", "jokes", "--param", "count"), "--param 'count': write it as name=value"),
        (("run", "jokes", "-p", "count=x"), "jokes parameters: count: Input should be"),
        (("run", "term", "-p", "a=b"), "the term flow takes no --param"),
    ],
)
async def test_run_refuses_what_it_cannot_do_in_one_line(
    world: World, args: tuple[str, ...], message: str
) -> None:
    result = dataload(*args)

    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
