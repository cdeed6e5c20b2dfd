"""VDS search: filters, attributes, paging with a cookie, auth, errors."""

from __future__ import annotations

from tests.sandbox.wire import PEOPLE_DN, vds_all, vds_search

from dataload.sandbox.truth import person_truth


async def test_paging_with_cookies_yields_every_faculty_and_staff_member_once(client, config):
    truth = person_truth(config)
    for affiliation in ("faculty", "staff"):
        ids, pages = await vds_all(client, affiliation)
        assert ids == getattr(truth, affiliation)
        assert pages == -(-len(ids) // config.vds_page_size) > 1


async def test_pages_state_the_total_and_name_entries_under_the_base_dn(client, config):
    body = (await vds_search(client, "staff")).json()
    assert body["httpStatus"] == 200
    assert body["totalResults"] == len(person_truth(config).staff)
    assert len(body["resources"]) == config.vds_page_size
    entry = body["resources"][0]
    assert entry["dn"] == f"uid={entry['attributes']['PersonBuid']},{PEOPLE_DN}"
    assert set(entry["attributes"]) == {"PersonBuid"}


async def test_last_page_carries_a_null_cookie_and_a_single_page_none(client, config):
    ids, _ = await vds_all(client, "faculty")
    config.vds_page_size = len(ids) + 1
    single = (await vds_search(client, "faculty")).json()
    assert "cookie" not in single
    config.vds_page_size = len(ids) - 1
    first = (await vds_search(client, "faculty")).json()
    last = (await vds_search(client, "faculty", first["cookie"])).json()
    assert len(last["resources"]) == 1
    assert last["cookie"] is None


async def test_size_limit_caps_the_page(client):
    body = (await vds_search(client, "staff", size_limit=7)).json()
    assert len(body["resources"]) == 7
    assert body["cookie"]


async def test_a_cookie_from_another_filter_or_day_is_refused(client, config):
    cookie = (await vds_search(client, "staff")).json()["cookie"]
    other_filter = await vds_search(client, "faculty", cookie)
    assert other_filter.status_code == 400
    config.day = 2
    stale = await vds_search(client, "staff", cookie)
    assert stale.status_code == 400
    assert "cookie" in stale.json()["message"]
    assert (await vds_search(client, "staff", "garbage!")).status_code == 400


async def test_wrong_credentials_unknown_base_and_bad_filter_are_refused(client):
    refused = await vds_search(client, "staff", auth=("sandbox", "wrong"))
    assert refused.status_code == 401
    assert refused.json()["httpStatus"] == 401
    auth = ("sandbox", "sandbox")
    unknown = await client.get(
        "/vds/adap/ou=groups,dc=bu,dc=edu",
        params={"filter": "(PersonPrimaryAffiliation=staff)"},
        auth=auth,
    )
    assert unknown.status_code == 404
    bad = await client.get(f"/vds/adap/{PEOPLE_DN}", params={"filter": "(|(a=b)(c=d))"}, auth=auth)
    assert bad.status_code == 400


async def test_a_buid_filter_finds_one_person_from_the_parent_base(client, config):
    buid = person_truth(config).faculty[0]
    response = await client.get(
        "/vds/adap/dc=bu,dc=edu",
        params={
            "filter": f"(PersonBuid={buid})",
            "attributes": "PersonBuid,PersonPrimaryAffiliation",
        },
        auth=("sandbox", "sandbox"),
    )
    body = response.json()
    assert body["totalResults"] == 1
    assert body["resources"][0]["attributes"] == {
        "PersonBuid": buid,
        "PersonPrimaryAffiliation": "faculty",
    }
