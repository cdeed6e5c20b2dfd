"""Benchmark of the person flow against the sandbox: wall time against the source-bound lower
bound, peak memory, and Prefect's own share of the wall time.

    uv run python benchmarks/person_flow.py                        # N = 10,000 and 100,000
    uv run python benchmarks/person_flow.py --people 10000 100000 200000 --latency-ms 50
    uv run python benchmarks/person_flow.py --people 2000 --latency-ms 20

Each size runs the real flow (a Prefect flow run) in a fresh child process, so that its peak
RSS is its own, against `dataload sandbox` in another process answering every call after
`--latency-ms`, with a database of its own (dropped afterwards) and a Prefect server started
for the benchmark (API only) unless PREFECT_API_URL is set.

The bound: the flow cannot end before its per-person PeopleSoft queries have run, 10 at once
(DATALOAD_PSQUERY_CONCURRENCY), and its SnapLogic batches of 1000 people, 8 at once, each call
taking at least the latency: ceil(N / 10) * L + ceil(ceil(N / 1000) / 8) * L.

Competitor, measured in the same run: the bare PeopleSoft client running just the per-person
queries for the same people, 10 at once, without Prefect, SnapLogic or the lake: the floor this
machine's HTTP client reaches on the flow's dominant stage.

Prefect's overhead: the flow run's wall time minus the time spent in the flow's own body
(measured inside it), plus the task runs (two: gather ids, load people) at the cost of an
empty task measured in the same process.

Memory: the flow process's peak RSS per size (flat from 10,000 to 200,000 people is the goal),
and the sandbox process's, with the CPU each spent per id (the flow's over the flow run; the
sandbox's over the flow and the bare client's run): the sandbox must not be what bounds the flow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_s(people: int, latency_s: float, ps: int = 10, snap: int = 8, batch: int = 1000) -> float:
    return (
        math.ceil(people / ps) * latency_s + math.ceil(math.ceil(people / batch) / snap) * latency_s
    )


def start_sandbox(
    people: int, latency_ms: float, *options: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "dataload.cli", "sandbox", "--port", str(port)]
    command += ["--people", str(people), "--latency-ms", str(latency_ms), *options]
    command += ["--empty-object-rate", "0.01"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox did not start")


def sandbox_environment(url: str) -> dict[str, str]:
    from dataload.sandbox.config import SandboxConfig
    from dataload.sandbox.server import environment

    return environment(SandboxConfig(), url)


async def create_database(name: str, drop: bool = False) -> None:
    from dataload.lake import db
    from dataload.settings import Settings

    conn = await db.connect(Settings(), database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def process_figures(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, peak RSS in MB) of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    return cpu, int(peak.split()[1]) / 1024


def measure(people: int, latency_ms: float, bare: bool) -> dict[str, float]:
    """One size, in a child process against a sandbox process; the child's figures."""
    sandbox, url = start_sandbox(people, latency_ms)
    database = f"dataload_bench_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **sandbox_environment(url), "POSTGRES_DB": database}
    env["BENCH_BARE"] = "1" if bare else ""
    asyncio.run(create_database(database))
    sandbox_cpu_before, _ = process_figures(sandbox.pid)
    try:
        child = subprocess.run(
            [sys.executable, str(HERE), "--child"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise RuntimeError(f"the flow failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        sandbox_cpu, sandbox_peak = process_figures(sandbox.pid)
        return figures | {
            "sandbox_cpu_s": sandbox_cpu - sandbox_cpu_before,
            "sandbox_peak_rss_mb": sandbox_peak,
        }
    finally:
        sandbox.terminate()
        sandbox.wait(30)
        asyncio.run(create_database(database, drop=True))


def child() -> None:
    """Run the person flow once in this process and print its figures as one JSON line."""
    from prefect import flow, task

    from dataload.flows.flush import flush_prefect
    from dataload.flows.person import person_raw_flow

    body: dict[str, float] = {}

    async def timed_person_flow():  # the same flow body, timed from the inside
        started = time.perf_counter()
        try:
            return await person_raw_flow.fn()
        finally:
            body["s"] = time.perf_counter() - started

    timed = flow(name=person_raw_flow.name)(timed_person_flow)

    @task
    async def empty() -> None:
        return None

    @flow
    async def empty_tasks(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await empty()
        return (time.perf_counter() - started) / n

    async def bare_queries() -> float:
        from dataload.flows.concurrency import map_bounded
        from dataload.settings import Settings
        from dataload.sources import PeopleSoft, Sap, Vds

        settings = Settings()
        async with (
            PeopleSoft.from_settings(settings) as ps,
            Sap.from_settings(settings) as sap,
            Vds.from_settings(settings) as vds,
        ):
            students, employees, faculty, staff = await asyncio.gather(
                ps.student_ids(),
                sap.active_employee_ids(),
                vds.person_ids("faculty"),
                vds.person_ids("staff"),
            )
            ids = list(dict.fromkeys([*students, *employees, *faculty, *staff]))
            started = time.perf_counter()
            await map_bounded(ps.uid_car_term, ids, limit=settings.psquery_concurrency)
            return time.perf_counter() - started

    async def measured() -> dict[str, float]:
        # One event loop for everything: Prefect's clients belong to the loop that made them.
        started, cpu_started = time.perf_counter(), time.process_time()
        report = await timed()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "people": report.fetched["unique people"],
            "status": report.status,
            "wall_s": wall,
            "cpu_s": cpu,
            "body_s": body["s"],
            "task_overhead_s": 2 * await empty_tasks(20),
            "bare_queries_s": await bare_queries() if os.environ["BENCH_BARE"] else math.nan,
            "rss_before_mb": baseline_kb / 1024,
            "peak_rss_mb": peak_kb / 1024,
        }

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = asyncio.run(measured())
    flush_prefect()
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--bare-up-to",
        type=int,
        default=100_000,
        help="run the bare-client competitor only up to this many people (it doubles the time)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return

    server = None
    if not os.environ.get("PREFECT_API_URL"):
        import tempfile

        from dataload.prefect_server import PrefectServer

        home = Path(tempfile.mkdtemp(prefix="dataload-bench-prefect-"))
        server = PrefectServer(home, free_port(), services=False)
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
    try:
        rows = []
        for people in args.people:
            figures = measure(people, args.latency_ms, bare=people <= args.bare_up_to)
            bound = bound_s(figures["people"], args.latency_ms / 1000)
            prefect = figures["wall_s"] - figures["body_s"] + figures["task_overhead_s"]
            rows.append((people, figures, bound, prefect))
            print(f"measured N={people}: {json.dumps(figures)}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()

    print(f"\nperson flow, sandbox latency {args.latency_ms:g} ms per call")
    header = (
        f"{'people':>8} {'ids':>8} {'bound s':>8} {'wall s':>8} {'wall/bound':>10} "
        f"{'bare s':>7} {'bare/bound':>10} {'wall/bare':>9} {'prefect %':>9} "
        f"{'CPU ms/id':>9} {'rss before MB':>13} {'peak rss MB':>11} "
        f"{'sandbox CPU ms/id':>17} {'sandbox rss MB':>14}"
    )
    print(header)
    for people, f, bound, prefect in rows:
        ids = f["people"]
        print(
            f"{people:>8,} {ids:>8,} {bound:>8.1f} {f['wall_s']:>8.1f} "
            f"{f['wall_s'] / bound:>10.3f} {f['bare_queries_s']:>7.1f} "
            f"{f['bare_queries_s'] / bound:>10.3f} {f['wall_s'] / f['bare_queries_s']:>9.3f} "
            f"{100 * prefect / f['wall_s']:>8.1f}% {1000 * f['cpu_s'] / ids:>9.2f} "
            f"{f['rss_before_mb']:>13.0f} {f['peak_rss_mb']:>11.0f} "
            f"{1000 * f['sandbox_cpu_s'] / ids:>17.2f} {f['sandbox_peak_rss_mb']:>14.0f}"
        )
    if len(rows) > 1:
        first, last = rows[0][1], rows[-1][1]
        print(
            f"peak RSS at {rows[-1][0]:,} people / at {rows[0][0]:,}: "
            f"{last['peak_rss_mb'] / first['peak_rss_mb']:.2f}"
        )


if __name__ == "__main__":
    main()
