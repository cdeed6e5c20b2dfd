"""Consumer roles: a granted role reads its service's curated rows and nothing else.

Real roles on a real server. Roles are cluster-wide, so each test makes uniquely named ones and
drops them at the end (after removing what they hold in any database).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from typer.testing import CliRunner

from dataload.cli import app
from dataload.lake import Lake, db, init_lake
from dataload.lake.access import AccessError, grant_service, list_grants, revoke_service
from dataload.lake.filters import read_services, sync_services
from dataload.lake.server import EmbeddedPostgres
from dataload.settings import Settings, get_settings

from .people import person

PEOPLE = [person(n) for n in range(1, 6)] + [person(n, student=False) for n in range(6, 9)]


@pytest.fixture
async def new_role(server_settings: Settings) -> AsyncIterator[Callable[[str], str]]:
    """Unique role names (the test creates them); every one is dropped at the end."""
    names: list[str] = []

    def new(prefix: str = "consumer") -> str:
        names.append(f"dl_test_{prefix}_{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield new
    for name in names:
        await drop_role(server_settings, name)


async def drop_role(settings: Settings, name: str) -> None:
    admin = await db.connect(settings, database="postgres")
    try:
        # Policies and privileges naming the role hold it; DROP OWNED removes them per database.
        databases = await admin.fetch(
            "SELECT DISTINCT d.datname FROM pg_shdepend AS s JOIN pg_database AS d"
            " ON d.oid = s.dbid JOIN pg_roles AS r ON r.oid = s.refobjid WHERE r.rolname = $1",
            name,
        )
        for row in databases:
            conn = await db.connect(settings, database=row["datname"])
            try:
                await conn.execute(f'DROP OWNED BY "{name}"')
            finally:
                await conn.close()
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await admin.close()


@asynccontextmanager
async def connected_as(settings: Settings, role: str, password: str | None = None):
    params = db.connect_params(settings)
    if password is None and role == params.user:
        password = params.password
    conn = await asyncpg.connect(
        host=params.host, port=params.port, user=role, password=password, database=params.database
    )
    try:
        yield conn
    finally:
        await conn.close()


async def load_people(lake: Lake) -> None:
    run = await lake.start_run("person")
    await run.load(PEOPLE)
    await run.finish(complete=False)  # a first load: nothing to delete either way


@pytest.fixture
async def consumer(conn, new_role) -> str:
    """A plain login role, made the way an administrator would."""
    name = new_role()
    await conn.execute(f'CREATE ROLE "{name}" LOGIN')
    return name


async def rows_by_service(conn) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT service, count(*) AS n FROM person_curated.person_data_by_service GROUP BY 1"
    )
    return {r["service"]: r["n"] for r in rows}


async def test_a_consumer_reads_exactly_the_rows_of_its_service(lake, conn, lake_db, consumer):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)

    everything = await rows_by_service(conn)
    async with connected_as(lake_db, consumer) as reader:
        seen = await rows_by_service(reader)
        asked_for_another = await reader.fetchval(
            "SELECT count(*) FROM person_curated.person_data_by_service WHERE service = 'bioDemo'"
        )
        rows = await reader.fetch(
            "SELECT person_data FROM person_curated.person_data_by_service ORDER BY bu_uid"
        )
    expected = await conn.fetch(
        "SELECT person_data FROM person_curated.person_data_by_service"
        " WHERE service = 'student' ORDER BY bu_uid"
    )
    assert everything["student"] == 5 and len(everything) > 2
    assert seen == {"student": 5}
    assert asked_for_another == 0
    assert rows == expected


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM person_raw.person_data",
        "SELECT * FROM person_raw.person_history",
        "SELECT * FROM person_xform.current_person_data",
        "SELECT * FROM person_curated.person_schema_service_filters",
        "SELECT * FROM course_curated.course_data_by_service",
        "SELECT * FROM term_curated.term_data_by_service",
        "SELECT * FROM lake.runs",
        "SELECT * FROM lake.rejected",
        "SELECT * FROM lake.service_grants",
        "SELECT * FROM lake.history('person', '[\"U00000001\"]')",
        "SELECT lake.grant_service('person', 'bioDemo', current_user)",
    ],
)
async def test_a_consumer_reads_nothing_else_of_the_lake(lake, conn, lake_db, consumer, query):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)

    async with connected_as(lake_db, consumer) as reader:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetch(query)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO person_curated.person_data_by_service VALUES ('student', 'U9', '{}', now())",
        "UPDATE person_curated.person_data_by_service SET person_data = '{}'",
        "DELETE FROM person_curated.person_data_by_service",
        "TRUNCATE person_curated.person_data_by_service",
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ('U9', '{}')",
        "UPDATE person_curated.person_schema_service_filters SET paths = '{/personid}'",
        "CREATE TABLE person_curated.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE SCHEMA mine",
    ],
)
async def test_a_consumer_cannot_write(lake, conn, lake_db, consumer, statement):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)
    before = await rows_by_service(conn)

    async with connected_as(lake_db, consumer) as reader:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute(statement)
    assert await rows_by_service(conn) == before


async def test_revoke_takes_effect_at_once_in_an_open_session(lake, conn, lake_db, consumer):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)
    await grant_service(conn, "person", "studentGPA", consumer)
    query = "SELECT DISTINCT service FROM person_curated.person_data_by_service ORDER BY 1"

    async with connected_as(lake_db, consumer) as reader:
        prepared = await reader.prepare(query)
        both = [r["service"] for r in await prepared.fetch()]
        await revoke_service(conn, "person", "studentGPA", consumer)
        one = [r["service"] for r in await reader.fetch(query)]
        await revoke_service(conn, "person", "student", consumer)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetch(query)

    assert both == ["student", "studentGPA"]
    assert one == ["student"]
    assert await list_grants(conn) == []


async def test_revoking_what_was_never_granted_says_so(conn, consumer):
    with pytest.raises(AccessError, match=r"has no grant on person\.student"):
        await revoke_service(conn, "person", "student", consumer)


async def test_the_full_service_needs_the_explicit_flag_and_warns(
    lake, conn, lake_db, consumer, run_cli
):
    await load_people(lake)

    refused = await run_cli("services", "grant", "person", "full", "--role", consumer)
    granted = await run_cli(
        "services", "grant", "person", "full", "--role", consumer, "--allow-full"
    )

    assert refused.exit_code == 1 and "--allow-full" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert granted.exit_code == 0, granted.output
    assert "warning:" in granted.output and "whole person records" in granted.output
    async with connected_as(lake_db, consumer) as reader:
        assert await rows_by_service(reader) == {"full": len(PEOPLE)}


async def test_a_service_whose_paths_change_keeps_its_grants_and_a_removed_one_loses_them(
    lake, conn, lake_db, consumer, run_cli, tmp_path
):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)
    await grant_service(conn, "person", "bioDemo", consumer)
    shipped = read_services()["person"]

    await sync_services(conn, {"person": {**shipped, "student": ["/personid", "/email"]}})
    async with connected_as(lake_db, consumer) as reader:
        changed = await reader.fetchval(
            "SELECT person_data FROM person_curated.person_data_by_service"
            " WHERE service = 'student' AND bu_uid = 'U00000001'"
        )
    without_student = tmp_path / "services.toml"
    without_student.write_text(
        "[person]\n"
        + "".join(f"{name} = {paths!r}\n" for name, paths in shipped.items() if name != "student")
    )
    synced = await run_cli("services", "sync", "--file", str(without_student))
    async with connected_as(lake_db, consumer) as reader:
        after = await rows_by_service(reader)

    assert '"email"' in changed and "studentInfo" not in changed
    assert synced.exit_code == 0, synced.output
    assert f"revoked   person.student from {consumer} (service removed)" in synced.output
    assert [(g.service, g.role) for g in await list_grants(conn)] == [("bioDemo", consumer)]
    assert set(after) == {"bioDemo"}


async def test_create_makes_a_login_role_and_never_prints_the_password(
    lake, conn, lake_db, new_role, run_cli, monkeypatch
):
    await load_people(lake)
    name = new_role()
    monkeypatch.setenv("DL_TEST_CONSUMER_PASSWORD", "correct horse battery staple")

    result = await run_cli(
        "services", "grant", "person", "studentGPA", "--role", name,
        "--create", "--password-from-env", "DL_TEST_CONSUMER_PASSWORD",
    )  # fmt: skip
    role = await conn.fetchrow(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolpassword"
        " FROM pg_authid WHERE rolname = $1",
        name,
    )

    assert result.exit_code == 0, result.output
    assert "correct horse" not in result.output
    assert f"created login role {name}" in result.output
    assert role["rolcanlogin"] and role["rolpassword"].startswith("SCRAM-SHA-256$4096:")
    assert not (role["rolsuper"] or role["rolcreaterole"] or role["rolcreatedb"])
    assert not role["rolbypassrls"]
    async with connected_as(lake_db, name) as reader:
        assert await rows_by_service(reader) == {"studentGPA": 5}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["person", "student", "--role", "postgres"], {}, "bypasses row-level security"),
        (["person", "student", "--role", "pg_read_all_data"], {}, "member of pg_read_all_data"),
        (["person", "student", "--role", "{missing}"], {}, "does not exist: add --create"),
        (["person", "student", "--role", "{consumer}", "--create", "--password-from-env", "PW"],
         {"PW": "x"}, "already exists"),
        (["person", "noSuchService", "--role", "{consumer}"], {}, 'no service "noSuchService"'),
        (["person", "noSuchService", "--role", "{missing}", "--create", "--password-from-env", "PW"],
         {"PW": "x"}, 'no service "noSuchService"'),
        (["nodomain", "student", "--role", "{consumer}"], {}, 'unknown lake domain "nodomain"'),
        (["person", "student", "--role", "{missing}", "--create"], {}, "needs --password-from-env"),
        (["person", "student", "--role", "{missing}", "--create", "--password-from-env", "NOPE"],
         {}, "NOPE is not set or empty"),
    ],
)  # fmt: skip
async def test_a_grant_that_cannot_be_done_is_one_line_and_changes_nothing(
    conn, consumer, new_role, run_cli, monkeypatch, args, env, message
):
    missing = new_role()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NOPE", raising=False)
    args = [a.format(consumer=consumer, missing=missing) for a in args]

    result = await run_cli("services", "grant", *args)

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert await list_grants(conn) == []
    assert not await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", missing
    )


async def test_access_lists_who_may_read_what(conn, consumer, new_role, run_cli):
    await grant_service(conn, "person", "student", consumer)
    await grant_service(conn, "term", "termDates", consumer)
    auditor = new_role("auditor")
    await conn.execute(f'CREATE ROLE "{auditor}" IN ROLE pg_read_all_data')

    listed = await run_cli("services", "access")
    person_only = await run_cli("services", "access", "person")

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:2] == ["person.student", consumer]
    assert lines[1].split()[:2] == ["term.termDates", consumer]
    assert lines[-1].startswith("whole records, whatever the grants:") and "superuser" in lines[-1]
    assert f"{auditor} (pg_read_all_data: raw and xform)" in lines[-1]
    assert "term.termDates" not in person_only.output


async def test_a_domain_installed_later_is_secured_and_db_init_restores_what_was_undone(conn):
    await conn.execute(
        "SELECT lake.install_domain('widget', ARRAY['widget_id'], ARRAY['text'], ARRAY['id'])"
    )
    installed = await conn.fetchval("SELECT lake.curated_secured(lake.domain('widget'))")
    await conn.execute(
        "ALTER TABLE widget_curated.widget_data_by_service NO FORCE ROW LEVEL SECURITY;"
        "DROP POLICY loader ON person_curated.person_data_by_service"
    )

    await init_lake(conn)
    await init_lake(conn)

    assert installed is True
    assert await conn.fetchval("SELECT bool_and(lake.curated_secured(d)) FROM lake.domains AS d")


async def test_a_loader_that_is_not_a_superuser_loads_syncs_and_grants_under_forced_security(
    server_settings: Settings, new_role
):
    """The loader owns the tables; FORCE ROW LEVEL SECURITY applies to it, through its policy."""
    loader, reader_role = new_role("loader"), new_role()
    database = f"dataload_test_{uuid.uuid4().hex[:12]}"
    admin = await db.connect(server_settings, database="postgres")
    try:
        await admin.execute(f'CREATE ROLE "{loader}" LOGIN CREATEROLE')
        await admin.execute(f'CREATE DATABASE "{database}" OWNER "{loader}"')
    finally:
        await admin.close()
    settings = server_settings.model_copy(update={"postgres_db": database})
    try:
        async with connected_as(settings, loader) as conn:
            await init_lake(conn)
            forced = await conn.fetchval(
                "SELECT bool_and(relforcerowsecurity) FROM pg_class"
                " WHERE relname = 'person_data_by_service'"
            )
            pool = await asyncpg.create_pool(
                host=db.connect_params(settings).host,
                port=db.connect_params(settings).port,
                user=loader,
                database=database,
                min_size=1,
                max_size=2,
            )
            try:
                await load_people(Lake(pool))
            finally:
                await pool.close()
            # A row written to raw by hand propagates too.
            await conn.execute(
                "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ($1, $2::jsonb)",
                "U00000099",
                '{"personid": "U00000099", "personBasic": {"gender": "X"}}',
            )
            await sync_services(conn, {"person": {"bioDemo": ["/personid", "/personBasic"]}})
            await grant_service(conn, "person", "bioDemo", reader_role, create_with_password="pw")
            with pytest.raises(AccessError, match="can act as the lake's owner"):
                await grant_service(conn, "person", "bioDemo", loader)
            loader_sees = await rows_by_service(conn)
        async with connected_as(settings, reader_role) as reader:
            consumer_sees = await rows_by_service(reader)
    finally:
        await db.drop_database(server_settings, database)

    assert forced is True
    assert loader_sees == {"full": len(PEOPLE) + 1, "bioDemo": len(PEOPLE) + 1}
    assert consumer_sees == {"bioDemo": len(PEOPLE) + 1}


async def test_on_the_embedded_server_a_created_consumer_logs_in_with_its_password(
    isolated_home, monkeypatch
):
    """Password authentication (SCRAM) for the consumer; the server is the test's own."""
    server = EmbeddedPostgres(isolated_home)
    status = server.start()
    try:
        settings = Settings(
            _env_file=None,
            POSTGRES_HOST="127.0.0.1",
            POSTGRES_PORT=status.port,
            POSTGRES_USER="postgres",
            POSTGRES_PASS=server.password(),
            POSTGRES_DB="lake",
        )
        await db.ensure_database(settings)
        pool = await db.create_pool(settings, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await init_lake(conn)
            await load_people(Lake(pool))
        finally:
            await pool.close()
        # Not ASCII, and changed by SASLprep (full-width letters, a no-break space).
        password = "ｐâｓｓ\u00a0wörd"
        for name, value in {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(status.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASS": server.password(),
            "POSTGRES_DB": "lake",
            "CONSUMER_PASSWORD": password,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["services", "grant", "person", "student", "--role", "advising",
             "--create", "--password-from-env", "CONSUMER_PASSWORD"],
        )  # fmt: skip
        get_settings.cache_clear()

        # The server checks every password (it used to trust every local connection).
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres:wrong@127.0.0.1:{status.port}/lake")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://advising:wrong@127.0.0.1:{status.port}/lake")
        async with connected_as(settings, "advising", password) as reader:
            seen = await rows_by_service(reader)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT * FROM person_xform.current_person_data")
    finally:
        server.stop()

    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert seen == {"student": 5}


async def test_a_renamed_role_keeps_its_grant_and_is_revoked_by_its_new_name(
    lake, conn, lake_db, consumer, new_role
):
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)
    renamed = new_role()
    await conn.execute(f'ALTER ROLE "{consumer}" RENAME TO "{renamed}"')

    listed = [(g.service, g.role) for g in await list_grants(conn)]
    async with connected_as(lake_db, renamed) as reader:
        before = await rows_by_service(reader)
        await revoke_service(conn, "person", "student", renamed)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await rows_by_service(reader)

    assert listed == [("student", renamed)]
    assert before == {"student": 5}
    assert not await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_policy WHERE polname LIKE 'consumer %')"
    )


async def test_a_dropped_role_leaves_no_grant_behind(conn, consumer, new_role):
    other = new_role()
    await conn.execute(f'CREATE ROLE "{other}"')
    await grant_service(conn, "person", "student", consumer)
    await conn.execute(f'DROP OWNED BY "{consumer}"')
    await conn.execute(f'DROP ROLE "{consumer}"')

    await grant_service(conn, "person", "student", other)

    assert await conn.fetchval("SELECT count(*) FROM lake.service_grants") == 1
    assert [g.role for g in await list_grants(conn)] == [other]


async def test_only_the_lakes_owner_may_grant(conn, lake_db, consumer, new_role):
    other = new_role("other")
    await conn.execute(f'CREATE ROLE "{other}" LOGIN')

    async with connected_as(lake_db, other) as outsider:
        with pytest.raises(AccessError, match="run it as the owner of the lake"):
            await grant_service(outsider, "person", "student", consumer)

    assert await list_grants(conn) == []


async def test_revoke_with_terminate_is_not_held_up_by_an_open_transaction_nor_a_held_cursor(
    lake, conn, lake_db, consumer
):
    """Before: a consumer's open transaction made the revoke wait 10 s and fail; a cursor
    opened WITH HOLD before the revoke kept returning rows after it."""
    await load_people(lake)
    await grant_service(conn, "person", "student", consumer)
    params = db.connect_params(lake_db)
    reader = await asyncpg.connect(
        host=params.host, port=params.port, user=consumer, database=params.database
    )
    try:
        await reader.execute(
            "DECLARE held CURSOR WITH HOLD FOR"
            " SELECT bu_uid FROM person_curated.person_data_by_service"
        )
        await reader.execute("BEGIN")
        await reader.fetch("SELECT count(*) FROM person_curated.person_data_by_service")
        started = asyncio.get_running_loop().time()
        ended = await revoke_service(conn, "person", "student", consumer, terminate=True)
        took = asyncio.get_running_loop().time() - started
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await reader.fetch("FETCH 1 FROM held")
    finally:
        reader.terminate()
    assert ended == 1 and took < 5
    assert await list_grants(conn) == []
