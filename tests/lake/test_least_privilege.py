"""The attack suite: the ways around the lake's rules, each tried and refused.

The lake here is set up as `dataload db init` sets it up (an owner that owns it, a loader that
loads), and the attacks come from a session logged in as the loader (a bug in the loader, or its
stolen password), or from an administrator's session in a mode the protections used to skip.
Before roles, the loader was the owner (and, on the embedded server, a superuser): every attack
below went through.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from dataload.lake import Lake, db, migrate
from dataload.lake.canonical import content_hash
from dataload.lake.roles import LakeRoles
from dataload.settings import Settings

from .people import person

SSN = "ATTACK-SSN-4242"
FIN_AID = "ATTACK-FINAID-77"


@pytest.fixture
async def lake_roles(lake_settings: Settings) -> AsyncIterator[tuple[Settings, LakeRoles]]:
    """A lake set up by `dataload db init` (the owner and the loader of this test session)."""
    setup = await db.prepare_lake(lake_settings)
    assert setup.migrations  # a new lake, migrated as the owner
    yield lake_settings, LakeRoles.of(lake_settings)


@pytest.fixture
async def loader(lake_roles) -> AsyncIterator[asyncpg.Connection]:
    """A session logged in as the loader itself (not acting as it: it cannot RESET ROLE)."""
    settings, roles = lake_roles
    params = db.connect_params(settings)
    conn = await asyncpg.connect(
        host=params.host, port=params.port, user=roles.loader, database=params.database
    )
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def admin(lake_roles) -> AsyncIterator[asyncpg.Connection]:
    conn = await db.connect(lake_roles[0])
    try:
        yield conn
    finally:
        await conn.close()


async def raw_text(admin: asyncpg.Connection) -> str:
    rows = await admin.fetch("SELECT person_data::text FROM person_raw.person_data")
    return " ".join(r[0] or "" for r in rows)


async def everything(admin: asyncpg.Connection) -> str:
    """Every layer of the person domain, as text."""
    parts = []
    for table in (
        "person_raw.person_data",
        "person_xform.current_person_data",
        "person_curated.person_data_by_service",
    ):
        parts += [r[0] for r in await admin.fetch(f"SELECT t::text FROM {table} AS t")]
    return " ".join(parts)


async def test_the_lake_belongs_to_the_owner_and_the_loader_is_an_ordinary_role(lake_roles, admin):
    _, roles = lake_roles
    owners = await admin.fetch(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
        " WHERE relnamespace::regnamespace::text ~ '^(lake|person_raw|person_xform|person_curated)$'"
    )
    assert [r[0] for r in owners] == [roles.owner]
    loader = await admin.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
        roles.loader,
    )
    assert not any(loader.values())


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE person_raw.person_data DISABLE TRIGGER fill_content_hash",
        "ALTER TABLE person_raw.person_data DISABLE TRIGGER USER",
        "SET session_replication_role = replica",
        "CREATE TABLE person_raw.shadow (a int)",
        "CREATE SCHEMA shadow",
        "DROP TRIGGER insert_only ON person_raw.person_data",
        "UPDATE person_xform.current_person_data SET person_data = '{}'",
        "DELETE FROM person_curated.person_data_by_service",
        "UPDATE lake.runs SET status = 'complete'",
        "INSERT INTO lake.person_seen (run_id, bu_uid, listed) VALUES (1, 'U1', true)",
        "TRUNCATE person_raw.person_data",
        "SELECT lake.install_domain('shadow', ARRAY['k'], ARRAY['text'], ARRAY['k'])",
        "SELECT * FROM lake.sync_services('person', '{\"x\": [\"/ssn\"]}')",
    ],
)
async def test_the_loader_can_do_no_ddl_switch_no_trigger_and_write_only_through_the_lake(
    loader, statement
):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await loader.execute(statement)


async def test_allow_raw_rewrite_does_not_let_the_loader_rewrite_raw(loader, admin, lake_roles):
    await loader.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ('U1', $1::jsonb)",
        '{"personid": "U1"}',
    )
    for statement in (
        "DELETE FROM person_raw.person_data",
        "UPDATE person_raw.person_data SET person_data = '{}'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with loader.transaction():
                await loader.execute("SET LOCAL dataload.allow_raw_rewrite = on")
                await loader.execute(statement)
    assert await admin.fetchval("SELECT count(*) FROM person_raw.person_data") == 1


async def test_the_escape_stays_the_owners_alone(lake_roles, admin):
    """An administrator acting as the owner may rewrite raw for one transaction; a role that
    merely sets the setting (here: one with UPDATE granted by mistake) may not."""
    _, roles = lake_roles
    await admin.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ('U1', $1::jsonb)",
        '{"personid": "U1"}',
    )
    intruder = f"dl_test_intruder_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE ROLE "{intruder}"')
    try:
        await admin.execute(f'GRANT USAGE ON SCHEMA person_raw TO "{intruder}"')
        await admin.execute(f'GRANT SELECT, DELETE ON person_raw.person_data TO "{intruder}"')
        async with admin.transaction():
            await admin.execute(f'SET LOCAL ROLE "{intruder}"')
            await admin.execute("SET LOCAL dataload.allow_raw_rewrite = on")
            with pytest.raises(asyncpg.PostgresError, match="insert-only history"):
                await admin.execute("DELETE FROM person_raw.person_data")
        async with admin.transaction():
            await admin.execute(f'SET LOCAL ROLE "{roles.owner}"')
            await admin.execute("SET LOCAL dataload.allow_raw_rewrite = on")
            await admin.execute("DELETE FROM person_raw.person_data")
        assert await admin.fetchval("SELECT count(*) FROM person_raw.person_data") == 0
    finally:
        await admin.execute(f'DROP OWNED BY "{intruder}"')
        await admin.execute(f'DROP ROLE "{intruder}"')


@pytest.mark.parametrize("how", ["insert", "copy"])
async def test_a_row_with_never_store_fields_and_a_content_hash_is_stripped_and_rehashed(
    loader, admin, how
):
    record = {"personid": "U1", "ssn": SSN, "awards": [{"finAidAward": FIN_AID, "year": 2026}]}
    text = orjson.dumps(record).decode()
    claimed = uuid.uuid4()
    if how == "insert":
        await loader.execute(
            "INSERT INTO person_raw.person_data (bu_uid, person_data, content_hash, exact_hash)"
            " VALUES ('U1', $1::jsonb, $2, $2)",
            text,
            claimed,
        )
    else:
        await loader.copy_records_to_table(
            "person_data",
            schema_name="person_raw",
            columns=["bu_uid", "person_data", "content_hash"],
            records=[("U1", text, claimed)],
        )
    stored = await everything(admin)
    assert SSN not in stored and FIN_AID not in stored
    row = await admin.fetchrow(
        "SELECT content_hash, lake.content_hash(person_data) AS lakes FROM person_raw.person_data"
    )
    assert row["content_hash"] == row["lakes"] != claimed


async def test_a_duplicate_under_a_made_up_hash_adds_no_version(loader, admin):
    await loader.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ('U1', $1::jsonb)",
        '{"personid": "U1", "name": "A"}',
    )
    for _ in range(3):
        await loader.execute(
            "INSERT INTO person_raw.person_data (bu_uid, person_data, content_hash)"
            " VALUES ('U1', $1::jsonb, $2)",
            '{"name": "A", "personid": "U1"}',
            uuid.uuid4(),
        )
    assert await admin.fetchval("SELECT count(*) FROM person_raw.person_data") == 1


async def test_in_replica_mode_the_protections_still_fire(admin):
    """session_replication_role = replica (a superuser's, or a role granted the setting) used to
    skip raw's triggers: an `ssn` went into raw unstripped and raw could be rewritten."""
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            "INSERT INTO person_raw.person_data (bu_uid, person_data, content_hash)"
            " VALUES ('U1', $1::jsonb, $2)",
            f'{{"personid": "U1", "ssn": "{SSN}"}}',
            uuid.uuid4(),
        )
    with pytest.raises(asyncpg.PostgresError, match="insert-only history"):
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")
            await admin.execute("DELETE FROM person_raw.person_data")
    assert SSN not in await raw_text(admin)
    # ... and propagation too: xform follows raw whoever wrote.
    assert await admin.fetchval("SELECT count(*) FROM person_xform.current_person_data") == 1


async def test_the_loader_loads_through_the_lake_with_nothing_more(lake_roles, admin):
    settings, _ = lake_roles
    pool = await db.create_pool(settings, loader=True, min_size=1, max_size=3)
    try:
        lake = Lake(pool)
        run = await lake.start_run("person")
        await run.list_keys([f"U{n:08d}" for n in range(1, 6)])
        records = [person(n) | {"ssn": SSN} for n in range(1, 6)]
        await run.load(records)
        summary = await run.finish(complete=True)
        again = await lake.start_run("person")
        result = await again.load(records)  # sent again as they were: unchanged
        await again.finish(complete=True)
        counts = await lake.layer_counts("person")
    finally:
        await pool.close()
    assert summary.status == "complete" and summary.inserted == 5
    assert (result.unchanged, result.inserted, result.changed) == (5, 0, 0)
    assert counts["xform_live"] == 5 and counts["curated"]["full"] == 5
    assert SSN not in await everything(admin)


async def test_a_lake_made_before_the_roles_is_given_to_the_owner(lake_settings: Settings):
    """A lake migrated by whoever ran `dataload db init` before (its objects theirs) is adopted:
    every object changes hands, and the loader loads it."""
    conn = await db.connect(lake_settings)
    try:
        await migrate(conn)
        setup = await db.prepare_lake(lake_settings)
        owners = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relnamespace::regnamespace::text ~ '^(lake|person_raw|person_curated)$'"
        )
    finally:
        await conn.close()
    assert setup.adopted > 100
    assert [r[0] for r in owners] == [lake_settings.owner_role]
    pool = await db.create_pool(lake_settings, loader=True, min_size=1, max_size=2)
    try:
        run = await Lake(pool).start_run("person")
        assert (await run.load([person(1)])).inserted == 1
        await run.finish(complete=False)
    finally:
        await pool.close()


async def _load_as_loader(settings: Settings, records: list[dict]) -> None:
    pool = await db.create_pool(settings, loader=True, min_size=1, max_size=2)
    try:
        run = await Lake(pool).start_run("person")
        await run.load(records)
        await run.finish(complete=False)
    finally:
        await pool.close()


async def test_made_up_hashes_cannot_hide_the_next_genuine_version(lake_roles, loader, admin):
    """A row that claims the hashes of a record it is not (here those of the version the source
    will send next) must not make the lake take that version for unchanged: before, it kept
    the made-up row in xform through every later load."""
    settings, _ = lake_roles
    genuine = person(1, gpa=3.9)
    forged = person(1, gpa=0.1)
    text = orjson.dumps(genuine, option=orjson.OPT_SORT_KEYS)
    await loader.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data, content_hash, exact_hash)"
        " VALUES ($1, $2::jsonb, $3, $4)",
        forged["personid"],
        orjson.dumps(forged).decode(),
        content_hash(genuine),
        uuid.UUID(bytes=hashlib.md5(text).digest()),
    )
    await _load_as_loader(settings, [genuine])
    current = await admin.fetchval(
        "SELECT person_data FROM person_xform.current_person_data WHERE bu_uid = $1",
        genuine["personid"],
    )
    assert orjson.loads(current) == genuine


async def test_the_loader_cannot_vouch_for_a_text_the_lake_never_saw(lake_roles, loader, admin):
    """The lake's functions take no hash on the loader's word either: before, a loader could
    have the lake remember any text's hash as a key's current one, so that the source's next
    version of that key was taken for unchanged."""
    settings, _ = lake_roles
    await _load_as_loader(settings, [person(1)])
    genuine = person(1, gpa=3.9)
    text = orjson.dumps(genuine, option=orjson.OPT_SORT_KEYS)
    run = await loader.fetchval("SELECT run_id FROM lake.start_run('person', 'attack', NULL)")
    with contextlib.suppress(asyncpg.UndefinedFunctionError):
        await loader.execute(
            "SELECT lake.remember_exact($1, '[[\"U00000001\"]]', $2::uuid[])",
            run,
            [uuid.UUID(bytes=hashlib.md5(text).digest())],
        )
    await loader.execute("SELECT lake.finish_run($1, false)", run)
    await loader.execute("SELECT pg_advisory_unlock_all()")
    await _load_as_loader(settings, [genuine])
    current = await admin.fetchval(
        "SELECT person_data FROM person_xform.current_person_data WHERE bu_uid = 'U00000001'"
    )
    assert orjson.loads(current) == genuine


async def test_raw_row_triggers_are_compiled_and_db_init_leaves_them_alone(admin):
    """Compiled once (`dataload db init` checks them on every run, while other runs may load:
    replaced each time, they would wait for those loads, or collide with them)."""
    compiled = r"""SELECT t.tgrelid::regclass::text, p.oid, p.xmin::text, t.xmin::text, t.tgenabled
                   FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid
                   WHERE t.tgname = 'fill_content_hash' ORDER BY 1"""
    before = await admin.fetch(compiled)
    await admin.execute("SELECT lake.protect_raw(domain) FROM lake.domains")
    assert await admin.fetch(compiled) == before
    assert {r[0] for r in before} >= {f"{d}_raw.{d}_data" for d in ("term", "course", "person")}
    assert {r[4] for r in before} == {b"A"}  # ENABLE ALWAYS


async def test_raw_refuses_rows_while_its_row_trigger_is_not_compiled(admin):
    """Between V0021 and the compilation that follows it, raw's row trigger is the generic one:
    it stores nothing rather than store by rules that are not the current ones."""
    await admin.execute(
        "DROP TRIGGER fill_content_hash ON person_raw.person_data;"
        " CREATE TRIGGER fill_content_hash BEFORE INSERT ON person_raw.person_data"
        " FOR EACH ROW EXECUTE FUNCTION lake.raw_fill_hash()"
    )
    with pytest.raises(asyncpg.PostgresError, match="not compiled"):
        await admin.execute(
            "INSERT INTO person_raw.person_data (bu_uid, given_text) VALUES ('U1', $1)",
            f'{{"personid": "U1", "ssn": "{SSN}"}}',
        )
    assert SSN not in await raw_text(admin)


@pytest.mark.parametrize("column", ["person_data", "given_text"])
async def test_a_never_store_field_whose_name_holds_a_quote_is_stripped(loader, admin, column):
    """`finAid*` matches any name that starts so: the test of the text that finds them stopped
    at a quote, so `finAidX"Y` went into raw as it was."""
    cast = "::jsonb" if column == "person_data" else ""
    await loader.execute(
        f"INSERT INTO person_raw.person_data (bu_uid, {column}) VALUES ('U1', $1{cast})",
        orjson.dumps(
            {"personid": "U1", 'finAidX"Y': FIN_AID, "more": {'finAid"': FIN_AID}}
        ).decode(),
    )
    assert FIN_AID not in await everything(admin)
    assert await admin.fetchval("SELECT count(*) FROM person_raw.person_data") == 1
