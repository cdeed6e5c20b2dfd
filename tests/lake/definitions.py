"""The lake's code as the database holds it, for comparing two databases.

Functions of schema lake (pg_get_functiondef, with their owner, privileges and comment), views
of schema lake (pg_get_viewdef) and every user trigger of the database (pg_get_triggerdef).
The functions compiled per domain are data, made from its service filters (lake.compile_walker:
lake.walk_*) and its names (lake.compile_raw_trigger: lake.raw_row_*): they come separately.
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
WHERE p.pronamespace = 'lake'::regnamespace AND p.proname ~ $1 AND p.proname !~ $2
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


_COMPILED = {"walker": "^walk_", "raw trigger": "^raw_row_"}


async def lake_functions(
    conn: asyncpg.Connection, *, compiled: str | None = None
) -> dict[str, str]:
    """signature -> definition of the functions of schema lake: those compiled per domain of
    one kind ("walker", "raw trigger"), or all but them."""
    if compiled:
        rows = await conn.fetch(_FUNCTIONS, _COMPILED[compiled], "^$")
    else:
        rows = await conn.fetch(_FUNCTIONS, "", "|".join(_COMPILED.values()))
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
        "walker": await lake_functions(conn, compiled="walker"),
        "raw trigger": await lake_functions(conn, compiled="raw trigger"),
    }
