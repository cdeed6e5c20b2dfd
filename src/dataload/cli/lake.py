"""Shared by the commands that work on the lake: its settings, a connection, one line per
database error."""

from __future__ import annotations

from dataload.cli.errors import fail, lake_error
from dataload.cli.prefect import prefect_api, quiet_prefect


def lake_settings():
    """The settings, with POSTGRES_PASS read from its Prefect Secret block when it names one."""
    import asyncio

    from dataload.settings import SECRET_BLOCK_PREFIX, get_settings

    settings = get_settings()
    if not settings.postgres_pass.get_secret_value().startswith(SECRET_BLOCK_PREFIX):
        return settings
    quiet_prefect()
    prefect_api(settings)
    from dataload.flows.secrets import resolve_secret_blocks

    return asyncio.run(resolve_secret_blocks(settings))


async def lake_connection(settings):
    """A connection to the lake database (created first when it is the embedded server's)."""
    from dataload.lake import db

    try:
        if settings.uses_embedded_postgres:
            await db.ensure_database(settings)
        return await db.connect(settings)
    except db.DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


def on_lake(work):
    """Run `await work(conn)` on a lake connection; any failure becomes one line and exit 1."""
    import asyncio

    settings = lake_settings()

    async def run():
        conn = await lake_connection(settings)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except Exception as exc:
        raise lake_error(exc) from None
