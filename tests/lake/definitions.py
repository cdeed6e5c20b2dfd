"""The lake's code as the database holds it, for comparing two databases.

Functions of schema lake (pg_get_functiondef, with their owner, privileges and comment), views
of schema lake (pg_get_viewdef) and every user trigger of the database (pg_get_triggerdef).
The walkers lake.compile_walker generates (lake.walk_*) are data, made per domain from its
service filters: they come separately.
"""

from __future__ import annotations

import asyncpg

_FUNCTIONS = r"""
SELECT p.oid::regprocedure::text AS name,
       pg_get_functiondef(p.oid) AS definition,
       pg_get_userbyid(p.proowner) AS owner,
       coalesce(p.proacl::text, '') AS acl,
       coalesce(obj_description(p.oid, 'pg_proc'), '') AS comment
FROM pg_proc AS p
WHERE p.pronamespace = 'lake'::regnamespace AND p.proname LIKE $1 AND p.proname NOT LIKE $2
ORDER BY 1
"""
_VIEWS = """
SELECT c.oid::regclass::text AS name, pg_get_viewdef(c.oid) AS definition
FROM pg_class AS c
WHERE c.relnamespace = 'lake'::regnamespace AND c.relkind IN ('v', 'm')
ORDER BY 1
"""
_TRIGGERS = """
SELECT t.tgrelid::regclass::text || ' ' || t.tgname AS name,
       pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger AS t
WHERE NOT t.tgisinternal
ORDER BY 1
"""


async def lake_functions(conn: asyncpg.Connection, *, walkers: bool = False) -> dict[str, str]:
    """signature -> definition of the functions of schema lake (walkers, or all but them)."""
    pattern, excluded = ("walk\\_%", "") if walkers else ("%", "walk\\_%")
    rows = await conn.fetch(_FUNCTIONS, pattern, excluded)
    return {
        r["name"]: f"{r['definition']}-- owner {r['owner']} acl {r['acl']} comment {r['comment']}"
        for r in rows
    }


async def lake_code(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """Everything the lake's SQL defines as code, by kind, then by name."""
    return {
        "function": await lake_functions(conn),
        "view": {r["name"]: r["definition"] for r in await conn.fetch(_VIEWS)},
        "trigger": {r["name"]: r["definition"] for r in await conn.fetch(_TRIGGERS)},
        "walker": await lake_functions(conn, walkers=True),
    }
