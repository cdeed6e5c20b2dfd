"""A paginated products API (seed 002), for incremental loads by `updated_at`.

    GET /products?updated_since=2026-05-02T00:00:00Z&page=1&per_page=50
        -> {"products": [...], "page": 1, "per_page": 50, "total": N, "next_page": 2 | null}

The catalogue of day d: `products` items on day 1, two more each day; each item changes on a
day with probability `products_daily_change` (a new price, a new `updated_at`); every 50th item
is discontinued on a day of its own and is listed no more. Items come sorted by (updated_at,
id); `updated_since` keeps those updated at or after it.
"""

from __future__ import annotations

from datetime import datetime, time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.rng import mix, unit
from dataload.sandbox.systems import System, json_response

__all__ = ["PRODUCTS", "catalogue", "routes"]

PRODUCTS = System("products", b'{"products": [{"id": 1, "name": "Desk lamp", "pri', None)
_NAMES = ("lamp", "chair", "desk", "shelf", "mug", "kettle", "notebook", "backpack", "clock")
_CATEGORIES = ("home", "office", "kitchen", "travel")
_NEW_PER_DAY = 2


def _version_day(seed: int, i: int, created: int, day: int, rate: float) -> int:
    """The last day up to `day` on which item `i` changed (its creation day at least)."""
    for d in range(day, created, -1):
        if unit(seed, 2002, i, d) < rate:
            return d
    return created


def _discontinued_on(seed: int, i: int) -> int | None:
    return 2 + mix(seed, 2003, i) % 10 if i % 50 == 0 else None


def catalogue(config: SandboxConfig, day: int) -> list[dict[str, object]]:
    """Every item listed on `day`, sorted by (updated_at, id)."""
    seed, ex = config.seed, config.examples
    items = []
    for i in range(1, ex.products + _NEW_PER_DAY * (day - 1) + 1):
        created = 1 if i <= ex.products else 1 + (i - ex.products - 1) // _NEW_PER_DAY + 1
        gone = _discontinued_on(seed, i)
        if gone is not None and gone <= day:
            continue
        version = _version_day(seed, i, created, day, ex.products_daily_change)
        h = mix(seed, 2004, i, version)
        stamp = datetime.combine(
            config.date_of(version), time(h % 24, (h >> 8) % 60, (h >> 16) % 60)
        )
        items.append(
            {
                "id": i,
                "name": f"{_NAMES[i % len(_NAMES)]} {i}",
                "category": _CATEGORIES[(i // 7) % len(_CATEGORIES)],
                "price": round(5 + unit(seed, 2005, i, version) * 195, 2),
                "updated_at": stamp.isoformat() + "Z",
            }
        )
    items.sort(key=lambda item: (item["updated_at"], item["id"]))
    return items


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def products(request: Request) -> Response:
        async def answer() -> Response:
            q = request.query_params
            try:
                page = int(q.get("page", "1"))
                per_page = min(int(q.get("per_page", str(config.examples.products_page_size))), 500)
                since = q.get("updated_since")
                if since:
                    datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                return PRODUCTS.error(400, "page and per_page are numbers, updated_since ISO 8601")
            if page < 1 or per_page < 1:
                return PRODUCTS.error(400, "page and per_page start at 1")
            items = catalogue(config, config.day)
            if since:
                items = [item for item in items if str(item["updated_at"]) >= since]
            start = (page - 1) * per_page
            more = start + per_page < len(items)
            return json_response(
                {
                    "products": items[start : start + per_page],
                    "page": page,
                    "per_page": per_page,
                    "total": len(items),
                    "next_page": page + 1 if more else None,
                }
            )

        return await gate("products.list", PRODUCTS, authorized=True, answer=answer)

    return [Route("/products", products, methods=["GET"])]
