"""Simulators of the example domains' systems (seeds 001-004), served by the sandbox app.

Each real system's URL is a setting of its domain; `environment()` points them all here. The
simulators are imported when the app is built: SandboxConfig imports this package's config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import Route

    from dataload.sandbox.config import SandboxConfig
    from dataload.sandbox.gate import Gate

__all__ = ["environment", "routes"]


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    from dataload.sandbox.examples import frankfurter, jokes, products, sage, taxi

    return [
        *frankfurter.routes(config, gate),
        *products.routes(config, gate),
        *jokes.routes(config, gate),
        *taxi.routes(config, gate),
        *sage.routes(config, gate),
    ]


def environment(config: SandboxConfig, base_url: str) -> dict[str, str]:
    """The variables that point the example domains at a sandbox at `base_url`."""
    return {
        "FRANKFURTER_URL": f"{base_url}/frankfurter/v1",
        "PRODUCTS_URL": f"{base_url}/products",
        "JOKES_URL": f"{base_url}/jokes",
        "JOKES_API_KEY": config.examples.jokes_key,
        "TAXI_URL": f"{base_url}/trip-data",
        "SAGE_EXPORT_URL": f"{base_url}/sage/transactions.csv",
        "SAGE_ACCOUNTS_URL": f"{base_url}/sage/accounts.csv",
    }
