"""Secrets kept in Prefect: any secret setting may name a Prefect Secret block instead.

`PEOPLE_SOFT_PASS=prefect-secret:peoplesoft-password` makes the run read the password from the
Secret block `peoplesoft-password` on the Prefect server (`prefect block create secret`, or
`Secret(value=...).save("peoplesoft-password")`), so that the password lives in Prefect, not in
the environment of every worker. This works for every secret setting: POSTGRES_PASS,
PEOPLE_SOFT_PASS, SNAPLOGIC_COURSE_KEY, SNAPLOGIC_PERSON_KEY, VDS_PASSWORD, SAP_KEY and
DATALOAD_ALERTS.
"""

from __future__ import annotations

from pydantic import SecretStr

from dataload.settings import SECRET_BLOCK_PREFIX, ConfigurationError, Settings

__all__ = ["block_references", "resolve_secret_blocks", "secret_block_value"]


async def secret_block_value(block: str) -> str | None:
    """The value of the Prefect Secret block `block` as stored; None when there is none."""
    from prefect.blocks.system import Secret

    try:
        secret = await Secret.aload(block)
    except ValueError:
        return None
    raw = secret.value.get_secret_value()  # as stored: get() would parse JSON
    return raw if isinstance(raw, str) else str(raw)


def block_references(settings: Settings) -> dict[str, str]:
    """{field name: block name} for the secret settings that name a Secret block."""
    references = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value().startswith(
            SECRET_BLOCK_PREFIX
        ):
            references[name] = value.get_secret_value().removeprefix(SECRET_BLOCK_PREFIX).strip()
    return references


async def resolve_secret_blocks(settings: Settings) -> Settings:
    """The settings with every Secret block reference replaced by the block's value."""
    references = block_references(settings)
    if not references:
        return settings
    values, problems = {}, []
    for name, block in references.items():
        value = await secret_block_value(block)
        if value is None:
            variable = Settings.model_fields[name].alias
            problems.append(
                f"{variable} names the Prefect Secret block {block!r}, which does not exist"
            )
            continue
        values[name] = SecretStr(value)
    if problems:
        raise ConfigurationError(
            "; ".join(problems)
            + " on the Prefect server (create it with `prefect block create secret`)"
        )
    return settings.model_copy(update=values)
