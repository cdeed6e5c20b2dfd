"""Scaling benchmark of sharded person runs: 1, 2 and 4 shards on local process workers.

    uv run python benchmarks/person_shards.py                          # 10k, 100k, 200k people
    uv run python benchmarks/person_shards.py --people 5000 --shards 1 2 --latency-ms 20

Each cell is `dataload run person --shards S` as typed, in a process of its own, against
`dataload sandbox` in another process answering every call after `--latency-ms`, with a
database of its own (dropped afterwards) and a Prefect server started for the benchmark. The
source allows 4x the default concurrency (SnapLogic answers 429 beyond 40 calls at once), and
each shard gets the default concurrency (10 PeopleSoft, 8 SnapLogic calls): S shards are
configured with S times that in all, held through Prefect's global concurrency limits.

Columns: the source-bound lower bound for S shards (`person_flow.bound_s` with S times the
concurrency), the wall time of the command (local workers' start-up included), the throughput
in people (listed) per second and its ratio to one shard's, the peak RSS of the parent and of the
largest shard process (sampled every 0.2 s), and the CPU per person of the loader's processes
(parent, workers, shards), the sandbox and the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from person_flow import bound_s, create_database, free_port, sandbox_environment, start_sandbox

#: The default concurrency per shard (DATALOAD_PSQUERY_CONCURRENCY, _SNAPLOGIC_CONCURRENCY).
PEOPLESOFT, SNAPLOGIC = 10, 8
#: How much more concurrency than the default the simulated source allows.
SOURCE_ALLOWS = 4


@dataclass
class Tree:
    """CPU and peak RSS of a process and its descendants, by sampling (they come and go)."""

    root: psutil.Process
    cpu: dict[int, float] = field(default_factory=dict)
    peak_mb: dict[int, float] = field(default_factory=dict)
    shards: set[int] = field(default_factory=set)

    def sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
                    rss = process.memory_info().rss / 2**20
                    self.peak_mb[process.pid] = max(self.peak_mb.get(process.pid, 0.0), rss)
                    if "prefect.engine" in " ".join(process.cmdline()):
                        self.shards.add(process.pid)
            except psutil.NoSuchProcess:
                continue


def server_cpu_s() -> float:
    """CPU seconds spent so far by the PostgreSQL server's processes, those that ended included.

    A backend lives as long as its connection: the ones a run opened are gone when it is measured
    after. Their CPU is in the postmaster's children times once it has reaped them."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] in ("postgres", "postmaster") and times:
            total += times.user + times.system + times.children_user + times.children_system
    return total


async def listed(database: str) -> int:
    """The people the run listed (the sandbox's population less those who left)."""
    from dataload.lake import db
    from dataload.settings import Settings

    conn = await db.connect(Settings(), database=database)
    try:
        return await conn.fetchval("SELECT listed FROM lake.runs ORDER BY run_id DESC LIMIT 1")
    finally:
        await conn.close()


def measure(people: int, shards: int, latency_ms: float) -> dict[str, float]:
    sandbox, url = start_sandbox(
        people, latency_ms, "--concurrency-limit", str(SOURCE_ALLOWS * SNAPLOGIC)
    )
    database = f"dataload_bench_{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="dataload-bench-shards-"))
    env = {
        **os.environ,
        **sandbox_environment(url),
        "POSTGRES_DB": database,
        "DATALOAD_HOME": str(home),
        "DATALOAD_PSQUERY_CONCURRENCY": str(PEOPLESOFT * shards),
        "DATALOAD_SNAPLOGIC_CONCURRENCY": str(SNAPLOGIC * shards),
    }
    env.pop("DATALOAD_WORK_POOL", None)
    asyncio.run(create_database(database))
    sandbox_tree = psutil.Process(sandbox.pid)
    sandbox_cpu = sum(sandbox_tree.cpu_times()[:2])
    server_cpu = server_cpu_s()
    started = time.perf_counter()
    try:
        command = [sys.executable, "-m", "dataload.cli", "run", "person", "--shards", str(shards)]
        loader = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tree = Tree(psutil.Process(loader.pid))
        while loader.poll() is None:
            tree.sample()
            time.sleep(0.2)
        wall = time.perf_counter() - started
        out, err = loader.communicate()
        if loader.returncode != 0:
            raise RuntimeError(f"the run failed:\n{out.decode()[-3000:]}\n{err.decode()[-3000:]}")
        return {
            "ids": asyncio.run(listed(database)),
            "wall_s": wall,
            "loader_cpu_s": sum(tree.cpu.values()),
            "sandbox_cpu_s": sum(sandbox_tree.cpu_times()[:2]) - sandbox_cpu,
            "server_cpu_s": server_cpu_s() - server_cpu,
            "parent_peak_mb": tree.peak_mb.get(loader.pid, 0.0),
            "shard_peak_mb": max((tree.peak_mb[pid] for pid in tree.shards), default=0.0),
            "shard_processes": len(tree.shards),
        }
    finally:
        sandbox.terminate()
        sandbox.wait(30)
        asyncio.run(create_database(database, drop=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000, 200_000])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    from dataload.prefect_server import PrefectServer

    server = PrefectServer(Path(tempfile.mkdtemp(prefix="dataload-bench-prefect-")), free_port())
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    rows = []
    try:
        for people in args.people:
            for shards in args.shards:
                figures = measure(people, shards, args.latency_ms)
                rows.append((people, shards, figures))
                print(f"measured N={people} shards={shards}: {figures}", file=sys.stderr)
    finally:
        server.stop()

    print(
        f"\nsharded person runs on local process workers, {os.cpu_count()} CPUs, sandbox latency "
        f"{args.latency_ms:g} ms, {PEOPLESOFT} PeopleSoft and {SNAPLOGIC} SnapLogic calls per shard"
    )
    print(
        f"{'people':>8} {'shards':>6} {'bound s':>8} {'wall s':>8} {'wall/bound':>10} "
        f"{'people/s':>8} {'speed-up':>8} {'parent MB':>9} {'shard MB':>8} "
        f"{'loader CPU ms/p':>15} {'sandbox ms/p':>12} {'postgres ms/p':>13}"
    )
    single: dict[int, float] = {}
    for people, shards, f in rows:
        ids = f["ids"]
        rate = ids / f["wall_s"]
        single.setdefault(people, rate if shards == 1 else float("nan"))
        bound = bound_s(ids, args.latency_ms / 1000, PEOPLESOFT * shards, SNAPLOGIC * shards)
        print(
            f"{people:>8,} {shards:>6} {bound:>8.1f} {f['wall_s']:>8.1f} "
            f"{f['wall_s'] / bound:>10.2f} {rate:>8.0f} {rate / single[people]:>8.2f} "
            f"{f['parent_peak_mb']:>9.0f} {f['shard_peak_mb']:>8.0f} "
            f"{1000 * f['loader_cpu_s'] / ids:>15.2f} "
            f"{1000 * f['sandbox_cpu_s'] / ids:>12.2f} "
            f"{1000 * f['server_cpu_s'] / ids:>13.2f}"
        )


if __name__ == "__main__":
    main()
