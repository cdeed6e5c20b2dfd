"""What durability costs the lake's write path, and what never-store fields cost a reload, side by
side in one run.

    uv run python benchmarks/safety_cost.py [--people 5000] [--rounds 3] [--batch 1000]

Two embedded PostgreSQL servers of its own (temporary DATALOAD_HOMEs, stopped and removed at the
end): one durable (the default: fsync, full_page_writes, synchronous_commit on), one started in
the opt-in unsafe fast mode (the three off, the embedded server's old defaults). On each, lakes
cloned from one migrated template, set up by `dataload db init` (owner, loader) and loaded as
the loader. Workloads per lake, timed from Python dicts to committed rows (benchmarks/
lake_load.py's 5 KB person documents): first load; unchanged reload; and the same people sent
with never-store fields (`ssn`, `sexualOrientation`, `finAid*`) in them: first sent (the lake
strips them and finds the content unchanged), then reloaded unchanged; and, into a new lake, a
first load and a reload of the people with those fields (a source that always sends them, as
SnapLogic does). Rounds are interleaved
(every lake of a round before the next round) and the median is kept.

The rules before least privilege (the loader a superuser, raw's row trigger skipping rows that
brought a content hash) cannot be run with today's loader: raw's row trigger now parses, strips
and hashes every record the loader sends. Their cost was measured against them when they came
(README, "Least privilege"); a later change to the write path is measured by running
benchmarks/lake_load.py on both commits.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from dataload.lake import Lake, db, migrate
from dataload.lake.filters import read_services, sync_services
from dataload.lake.server import EmbeddedPostgres
from dataload.settings import Settings
from lake_load import ours, person, timed


def with_secrets(doc: dict[str, Any], n: int) -> dict[str, Any]:
    """The person as a source sends them: with the fields the lake never stores."""
    doc = {**doc, "ssn": f"{n % 900 + 100:03d}-55-{n % 10000:04d}", "sexualOrientation": "x"}
    doc["studentInfo"] = {**doc["studentInfo"], "finAidAwards": [{"amount": n % 5000}]}
    return doc


class Server:
    def __init__(self, label: str, unsafe_fast: bool) -> None:
        self.label = label
        self.folder = Path(tempfile.mkdtemp(prefix="dataload-bench-"))
        self.folder.chmod(0o755)
        self.home = self.folder / "home"
        self.server = EmbeddedPostgres(self.home, unsafe_fast=unsafe_fast)
        self.server.start()
        self.settings = Settings(
            _env_file=None,
            POSTGRES_HOST=None,  # its own embedded server, whatever POSTGRES_HOST says
            DATALOAD_HOME=self.home,
            DATALOAD_EMBEDDED_UNSAFE_FAST=unsafe_fast,
            POSTGRES_DB="template_lake",
        )

    async def template(self) -> None:
        await db.ensure_database(self.settings)
        conn = await db.connect(self.settings)
        try:
            await migrate(conn)
            await sync_services(conn, read_services())
        finally:
            await conn.close()

    async def lake(self) -> Settings:
        name = f"bench_{uuid.uuid4().hex[:6]}"
        admin = await db.connect(self.settings, database="postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template_lake')
        finally:
            await admin.close()
        settings = self.settings.model_copy(update={"postgres_db": name})
        await db.prepare_lake(settings)
        return settings

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


async def workloads(server: Server, clean: list[dict], dirty: list[dict], args) -> dict[str, float]:
    times: dict[str, float] = {}
    for docs in (clean, dirty):
        settings = await server.lake()
        pool = await db.create_pool(settings, loader=True, min_size=2, max_size=3)
        try:
            lake = Lake(pool)

            async def load(docs: list[dict], lake: Lake = lake) -> float:
                return await timed(lambda: ours(lake, docs, args.batch, args.concurrency))

            if docs is clean:
                times["first load"] = await load(clean)
                times["unchanged reload"] = await load(clean)
                # The same people again, now as a source that sends never-store fields:
                # unchanged (what is kept is the same), then reloaded unchanged.
                times["sent with never-store fields"] = await load(dirty)
                times["  unchanged reload of those"] = await load(dirty)
            else:  # a source that always sends them, into a new lake
                times["first load with never-store fields"] = await load(dirty)
                times["  its unchanged reload"] = await load(dirty)
        finally:
            await pool.close()
            await db.drop_database(settings)
    return times


async def main(args: argparse.Namespace) -> None:
    clean = [person(n) for n in range(args.people)]
    dirty = [with_secrets(d, n) for n, d in enumerate(clean)]
    servers = [Server("durable (default)", False), Server("unsafe fast (opt-in)", True)]
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for server in servers:
            await server.template()
        for _ in range(args.rounds):
            for server in servers:
                results.setdefault(server.label, []).append(
                    await workloads(server, clean, dirty, args)
                )
    finally:
        for server in servers:
            server.close()

    print(
        f"{args.people} person records of ~5 KB, batches of {args.batch}, {args.concurrency} at a"
        f" time, loaded as the loader role; median of {args.rounds} interleaved rounds; seconds"
        " (and x the unsafe fast server)"
    )
    base = results["unsafe fast (opt-in)"]
    print(f"{'workload':38}" + "".join(f" {label:>24}" for label in results))
    for w in base[0]:
        reference = statistics.median(r[w] for r in base)
        cells = []
        for runs in results.values():
            seconds = statistics.median(r[w] for r in runs)
            cells.append(f"{seconds:6.2f} s ({seconds / reference:4.2f}x)")
        print(f"{w:38}" + "".join(f" {c:>24}" for c in cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
