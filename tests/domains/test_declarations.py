"""The declaration API and the registry: what a declaration refuses, how plugins are found."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from dataload.domains import (
    DomainLoadError,
    DomainSpec,
    Key,
    Listing,
    Schedule,
    all_domains,
    registry,
)


async def _nothing(run):  # a source that yields nothing
    return
    yield


def spec(**changes) -> DomainSpec:
    fields = {
        "name": "planets",
        "description": "Planets.",
        "keys": (Key("number", "bigint"),),
        "listing": Listing.COMPLETE,
        "source": _nothing,
        "source_label": "a list",
    } | changes
    return DomainSpec(**fields)


def test_the_shipped_registry_has_the_university_and_the_six_examples() -> None:
    assert list(all_domains()) == [
        "course",
        "currencies",
        "exchange_rates",
        "jokes",
        "person",
        "products",
        "sage_transactions",
        "taxi_trips",
        "term",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Planets"}, "use lower-case letters"),
        ({"name": "planets; drop"}, "use lower-case letters"),
        ({"keys": ()}, "declares no key column"),
        ({"source": None}, "needs a source or a flow"),
    ],
)
def test_a_declaration_that_cannot_become_tables_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**changes)


def test_a_schedule_is_a_cron_or_an_interval() -> None:
    assert Schedule("hourly", interval_s=3600).when == "every 60 min"
    with pytest.raises(ValueError, match="either cron or interval_s"):
        Schedule("both", cron="0 * * * *", interval_s=60)


def test_the_lake_tables_follow_the_keys() -> None:
    tables = spec(keys=(Key("year_month"), Key("trip", "bigint", field="n"))).tables()

    assert tables.key_columns == ("year_month", "trip")
    assert tables.key_types == ("text", "bigint")
    assert tables.key_fields == ("year_month", "n")


def test_full_refresh_and_parameters_are_checked_before_a_run() -> None:
    with pytest.raises(ValueError, match="planets does not take --full-refresh"):
        spec().check_request({}, full_refresh=True)
    with pytest.raises(ValueError, match=r"planets parameters: .*count.*\(parameters: none\)"):
        spec().check_request({"count": "3"}, full_refresh=False)


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry("broken", "no_such_module:DOMAIN"), "failed to load: ModuleNotFoundError"),
        (_entry("wrong", "dataload.settings:Settings"), "is a ModelMetaclass, not a DomainSpec"),
        (_entry("other", "dataload.examples.jokes:DOMAIN"), "declares the domain 'jokes'"),
    ],
)
def test_a_bad_entry_point_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, entry: EntryPoint, message: str
) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry])

    with pytest.raises(DomainLoadError, match=message) as failure:
        all_domains()
    assert f"entry point {entry.name} = {entry.value}" in str(failure.value)


def test_two_packages_registering_one_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    twice = [_entry("jokes", "dataload.examples.jokes:DOMAIN")] * 2
    monkeypatch.setattr(registry, "entry_points", lambda group: twice)

    with pytest.raises(DomainLoadError, match="two packages register the domain 'jokes'"):
        all_domains()
