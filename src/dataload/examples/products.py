"""products (seed 002): a paginated API, incremental by `updated_at`, with a weekly full refresh.

A daily run asks for the items updated since the cursor (the greatest `updated_at` a finished
run loaded, kept in lake.cursors), page by page; it never deletes. The weekly full refresh
(`--full-refresh`) reads every item and, being a complete snapshot, deletes the items no longer
listed, under the lake's mass-deletion guard. `PRODUCTS_URL` names the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Key, Listing, Records, Schedule
from dataload.examples.public_api import PublicApi

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "Products"]


class ProductSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    url: str = Field("", alias="PRODUCTS_URL")


class ProductParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_page: int = Field(100, ge=1, le=500)


class Products(PublicApi):
    source = "products API"
    url_variable = "PRODUCTS_URL"
    settings_type = ProductSettings
    read_timeout_s = 60.0
    max_connections = 1

    async def pages(
        self, *, updated_since: str | None, per_page: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of items updated at or after `updated_since` (all items when None)."""
        page: int | None = 1
        while page is not None:
            params = {"page": str(page), "per_page": str(per_page)}
            if updated_since:
                params["updated_since"] = updated_since
            body = await self._http.request_json("GET", self.url, params=params)
            items = body.get("products") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise self._http.shape_error(self.url, "answered without a products array")
            yield items
            next_page = body.get("next_page")
            page = int(next_page) if next_page else None


async def products(run: DomainRun) -> AsyncIterator[Records]:
    per_page = run.typed_params(ProductParams).per_page
    api = await run.client(Products)
    pages = items = 0
    async for page in api.pages(updated_since=run.cursor, per_page=per_page):
        pages += 1
        items += len(page)
        stamps = [item["updated_at"] for item in page if isinstance(item.get("updated_at"), str)]
        if stamps:
            run.advance(max(stamps))
        yield page
    run.note("pages", pages)
    run.note("products", items)


DOMAIN = DomainSpec(
    name="products",
    description="Products from a paginated API, incremental by updated_at, weekly full refresh.",
    keys=(Key("id", "bigint"),),
    listing=Listing.INCREMENTAL,
    source=products,
    source_label="products API, paged, ?updated_since=",
    params=ProductParams,
    full_refresh=True,
    schedules=(
        Schedule("daily", cron="0 6 * * *", description="Changes since the last run, 06:00 UTC."),
        Schedule(
            "full-refresh",
            cron="0 5 * * 0",
            full_refresh=True,
            description="Every product, Sundays at 05:00 UTC; deletes the discontinued.",
        ),
    ),
    tags=("source:products", "seed:002"),
)
