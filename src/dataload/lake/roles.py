"""The lake's roles: an owner that migrates, a loader that loads, consumers that read.

`dataload db init`, run by an administrator (a superuser, or a role with CREATEROLE that owns
the database), creates the owner (NOLOGIN: nobody logs in as it, administrators act as it) and
the loader (LOGIN), gives every object of the lake to the owner, migrates as the owner, and
grants the loader what a load needs (R__roles.sql says what). Where the administrator may not
create them, the error says what must be run instead.

A session that can act as the owner migrates; one that cannot (the loader's own login) only
checks that the lake is up to date and says who must run `dataload db init` when it is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from dataload.lake.scram import scram_sha256_verifier

__all__ = ["LakeRoles", "RolesError", "acting_as", "adopt_lake", "can_manage", "ensure_roles"]


class RolesError(RuntimeError):
    """The lake's roles are missing or wrong, and this session may not fix it."""


@dataclass(frozen=True)
class LakeRoles:
    owner: str
    loader: str

    @classmethod
    def of(cls, settings) -> LakeRoles:
        return cls(settings.owner_role, settings.loader_role)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def can_manage(conn: asyncpg.Connection, roles: LakeRoles) -> bool:
    """Whether this session may create the roles or act as the owner (migrate)."""
    return bool(
        await conn.fetchval(
            """
            SELECT r.rolsuper OR r.rolcreaterole
                   OR coalesce(pg_has_role(current_user, o.oid, 'MEMBER'), false)
            FROM pg_roles AS r LEFT JOIN pg_roles AS o ON o.rolname = $1
            WHERE r.rolname = current_user
            """,
            roles.owner,
        )
    )


async def ensure_roles(
    conn: asyncpg.Connection, roles: LakeRoles, *, loader_password: str | None = None
) -> list[str]:
    """Create the owner and loader if missing (the loader's password, when given, as a SCRAM
    verifier), let this session act as the owner and the owner create schemas; returns what it
    did. Raises RolesError with the statements an administrator must run when it may not."""
    if roles.owner == roles.loader:
        raise RolesError(
            f"DATALOAD_OWNER_ROLE and DATALOAD_LOADER_ROLE are both {roles.owner!r}: the loader "
            "must not own the lake; give them different names"
        )
    me = await conn.fetchrow(
        "SELECT current_user AS name, rolsuper, rolcreaterole FROM pg_roles"
        " WHERE rolname = current_user"
    )
    present = {
        r["rolname"]: r
        for r in await conn.fetch(
            "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles"
            " WHERE rolname = ANY($1::text[])",
            [roles.owner, roles.loader],
        )
    }
    loader = present.get(roles.loader)
    if loader is not None and (loader["rolsuper"] or loader["rolbypassrls"]):
        raise RolesError(
            f'the loader role "{roles.loader}" is a superuser or BYPASSRLS: it could switch every '
            "protection off; name an ordinary role in DATALOAD_LOADER_ROLE"
        )
    database = await conn.fetchval("SELECT current_database()")
    owner, loader_name = _ident(roles.owner), _ident(roles.loader)
    password = f" PASSWORD '{scram_sha256_verifier(loader_password)}'" if loader_password else ""
    statements = []
    if roles.owner not in present:
        statements.append(f"CREATE ROLE {owner} NOLOGIN")
    if loader is None:
        statements.append(f"CREATE ROLE {loader_name} LOGIN{password}")
    elif password:
        statements.append(f"ALTER ROLE {loader_name} LOGIN{password}")
    if not me["rolsuper"]:
        statements.append(f"GRANT {owner} TO {_ident(me['name'])}")
    statements.append(f"GRANT CREATE ON DATABASE {_ident(database)} TO {owner}")
    done = []
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
                done.append(statement.split(" PASSWORD ")[0])
    except (asyncpg.InsufficientPrivilegeError, asyncpg.DuplicateObjectError) as exc:
        shown = "; ".join(s.split(" PASSWORD ")[0] for s in statements)
        raise RolesError(
            f"{exc}: {me['name']} may not set up the lake's roles; an administrator must run, "
            f"in database {database}: {shown}"
            + (" (and set the loader's password)" if loader_password else "")
            + "; then run `dataload db init` again"
        ) from None
    return [s for s in done if not s.startswith("GRANT CREATE ON DATABASE")]


async def adopt_lake(conn: asyncpg.Connection, owner: str) -> int:
    """Give the owner every object of the lake another role owns (a lake made before the
    roles, by whoever ran the migrations); returns how many changed hands."""
    if not await conn.fetchval("SELECT to_regnamespace('lake') IS NOT NULL"):
        return 0
    statements = await conn.fetch(
        """
        WITH schemas AS (
            SELECT n.oid, n.nspname FROM pg_namespace AS n
            WHERE n.nspname = 'lake'
               OR n.nspname IN (SELECT d.domain || s FROM lake.domains AS d,
                                       unnest(ARRAY['_raw', '_xform', '_curated']) AS s))
        SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $1::text)
        FROM schemas AS s JOIN pg_namespace AS n ON n.oid = s.oid WHERE n.nspowner <> $1::text::regrole
        UNION ALL
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                      c.oid::regclass, $1)
        FROM pg_class AS c JOIN schemas AS s ON s.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner <> $1::text::regrole
          AND NOT EXISTS (SELECT FROM pg_depend AS d  -- identity and serial sequences follow
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
        UNION ALL
        SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1)
        FROM pg_proc AS p JOIN schemas AS s ON s.oid = p.pronamespace
        WHERE p.proowner <> $1::text::regrole
        """,
        owner,
    )
    async with conn.transaction():
        for (statement,) in statements:
            await conn.execute(statement)
    return len(statements)


@asynccontextmanager
async def acting_as(conn: asyncpg.Connection, role: str) -> AsyncIterator[asyncpg.Connection]:
    """The session acts as `role` (SET ROLE) inside the block, then as itself again."""
    await conn.execute(f"SET ROLE {_ident(role)}")
    try:
        yield conn
    finally:
        await conn.execute("RESET ROLE")
