"""Consumer access to the curated layer: which role may read which service's rows.

A grant lets a PostgreSQL role read the rows of one service in `<d>_curated.<d>_data_by_service`
and nothing else of the lake; PostgreSQL enforces it with row-level security (the migration
V0013__curated_consumers.sql says how and why). For a tabular domain a service is a view of its
own, `<d>_curated.<service>` (its columns, its rows), and a grant is SELECT on that view. The
grants are data, in lake.service_grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dataload.lake.scram import scram_sha256_verifier

__all__ = [
    "AccessError",
    "Grant",
    "grant_service",
    "list_grants",
    "revoke_service",
    "unrestricted_readers",
]


class AccessError(ValueError):
    """A grant or revoke that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class Grant:
    domain: str
    service: str
    role: str
    granted_at: datetime
    granted_by: str
    can_login: bool


async def _role_exists(conn: asyncpg.Connection, role: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role)
    )


async def grant_service(
    conn: asyncpg.Connection,
    domain: str,
    service: str,
    role: str,
    *,
    allow_full: bool = False,
    create_with_password: str | None = None,
) -> bool:
    """Let `role` read `service` of `domain`; returns False when it already could.

    With `create_with_password`, the role is created first (a login role whose password is
    sent as a SCRAM verifier), in the same transaction: a grant that fails creates no role.
    """
    exists = await _role_exists(conn, role)
    if create_with_password is not None and exists:
        raise AccessError(f'role "{role}" already exists: grant to it without --create')
    if create_with_password is None and not exists:
        raise AccessError(
            f'role "{role}" does not exist: add --create --password-from-env VARIABLE to create it'
        )
    if service == "full" and not allow_full:
        raise AccessError(
            f"the full service holds whole {domain} records: grant it with --allow-full "
            "only if this consumer may see every field"
        )
    try:
        async with conn.transaction():
            if create_with_password is not None:
                await conn.execute(
                    "SELECT lake.create_consumer_role($1, $2)",
                    role,
                    scram_sha256_verifier(create_with_password),
                )
            return bool(
                await conn.fetchval(
                    "SELECT lake.grant_service($1, $2, $3, $4)", domain, service, role, allow_full
                )
            )
    except (asyncpg.InvalidParameterValueError, asyncpg.UndefinedObjectError) as exc:
        raise AccessError(_message(exc)) from None
    except asyncpg.InsufficientPrivilegeError as exc:
        raise AccessError(
            f"{_message(exc)}: the lake's user may not do this; run it as the owner of the "
            "lake (with CREATEROLE for --create), or ask an administrator"
        ) from None
    except asyncpg.LockNotAvailableError:
        raise AccessError(_busy(domain)) from None


async def revoke_service(
    conn: asyncpg.Connection, domain: str, service: str, role: str, *, terminate: bool = False
) -> int:
    """Stop `role` reading `service` of `domain`, from its next statement on; returns the
    sessions ended.

    A revoke changes a policy, which waits (10 s at most) for the role's open transactions to
    end, and a cursor opened WITH HOLD before it keeps its rows after it. With `terminate`, the
    role's sessions on this database are ended first (pg_terminate_backend: needs a superuser,
    pg_signal_backend or the role's own privileges), so neither holds the revoke up or outlives
    it.
    """
    ended = 0
    if terminate:
        ended = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
            " FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()"
            "   AND pid <> pg_backend_pid()",
            role,
        )
    try:
        revoked = await conn.fetchval(
            "SELECT lake.revoke_service($1, $2, $3)", domain, service, role
        )
    except (asyncpg.InvalidParameterValueError, asyncpg.UndefinedObjectError) as exc:
        raise AccessError(_message(exc)) from None
    except asyncpg.LockNotAvailableError:
        raise AccessError(_busy(domain)) from None
    if not revoked:
        raise AccessError(f'role "{role}" has no grant on {domain}.{service}; nothing to revoke')
    return ended


async def list_grants(conn: asyncpg.Connection, domain: str | None = None) -> list[Grant]:
    """Every grant (of one domain, if named), by domain, service and role.

    Grants of roles dropped since are left out: nothing in the database names them any more.
    """
    rows = await conn.fetch(
        """
        SELECT g.domain, g.service, r.rolname, g.granted_at, g.granted_by, r.rolcanlogin
        FROM lake.service_grants AS g JOIN pg_roles AS r ON r.oid = g.role_oid
        WHERE $1::text IS NULL OR g.domain = $1
        ORDER BY g.domain, g.service, r.rolname
        """,
        domain,
    )
    return [Grant(*row) for row in rows]


async def unrestricted_readers(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Roles that read whole records whatever the grants, with the reason: superusers and
    BYPASSRLS roles (outside row-level security), the owners of the curated tables (the
    loader's policy), and members of pg_read_all_data (raw and xform)."""
    rows = await conn.fetch(
        """
        SELECT rolname, CASE WHEN rolsuper THEN 'superuser' ELSE 'BYPASSRLS' END AS why
        FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND rolname !~ '^pg_'
        UNION
        SELECT rolname, 'pg_read_all_data: raw and xform'
        FROM pg_roles
        WHERE NOT (rolsuper OR rolbypassrls) AND rolname !~ '^pg_'
          AND pg_has_role(oid, 'pg_read_all_data', 'MEMBER')
        UNION
        SELECT DISTINCT pg_get_userbyid(c.relowner), 'owner of the curated tables'
        FROM lake.domains AS d, pg_class AS c
        WHERE NOT lake.is_tabular(d.domain) AND c.oid = lake.curated_table(d)
          AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE oid = c.relowner)
        ORDER BY 1
        """
    )
    return [(r["rolname"], r["why"]) for r in rows]


def _message(exc: asyncpg.PostgresError) -> str:
    hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
    return f"{exc.message}{hint}"


def _busy(domain: str) -> str:
    return (
        f"{domain}_curated.{domain}_data_by_service stayed busy for 10 s (a long query or a "
        "load holds it; a policy change needs it alone for an instant): try again, or revoke "
        "with --terminate to end the role's sessions first"
    )
