"""Benchmark of `dataload run term` as a user types it, on a machine kept busy on purpose.

    uv run python benchmarks/run_command.py                     # 1 CPU hog, 6 runs each
    uv run python benchmarks/run_command.py --hogs 2 --runs 10

Against `dataload sandbox` in another process and a database of its own (dropped afterwards),
with `--hogs` processes spinning `while True: pass` beside it for the whole measurement:

- ours: `dataload run term` on the managed local Prefect server (started once, before the
  timed runs, in a DATALOAD_HOME of the benchmark's own; its first start is timed too);
- competitor, in the same run: the same flow the way `dataload run` ran it before the managed
  server, on Prefect's ephemeral server (PREFECT_API_URL unset), which starts with every run.

Each figure is the wall time of a whole process, from exec to exit, as the user waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()

EPHEMERAL_RUN = """
import asyncio, os
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
from dataload.flows import FLOWS
asyncio.run(FLOWS["term"]())
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    last = (result.stderr.strip().splitlines() or [""])[-1]
    return time.perf_counter() - started, result.returncode, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hogs", type=int, default=1, help="CPU-bound processes beside it")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--ephemeral-runs", type=int, default=3)
    args = parser.parse_args()

    from dataload.lake import db
    from dataload.prefect_server import ManagedPrefectServer, free_port
    from dataload.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="dataload-bench-run-"))
    root.chmod(0o755)
    database = f"dataload_bench_run_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"DATALOAD_HOME": str(root / "home"), "POSTGRES_DB": database}
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataload.cli",
            "sandbox",
            "--port",
            str(port),
            "--env-file",
            str(root / ".env"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hogs: list[subprocess.Popen[bytes]] = []
    server = ManagedPrefectServer.of(root / "home")
    settings = Settings(_env_file=None, DATALOAD_HOME=root / "home", POSTGRES_DB=database)
    try:
        while not (root / ".env").exists():
            time.sleep(0.1)
        time.sleep(1.0)
        for line in (root / ".env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                name, value = line.split("=", 1)
                env[name] = value
        asyncio.run(db.ensure_database(settings))
        hogs = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)
        ]
        time.sleep(1.0)

        first_start = timed([sys.executable, "-m", "dataload.cli", "server", "start"], env)
        ours = [
            timed([sys.executable, "-m", "dataload.cli", "run", "term"], env)
            for _ in range(args.runs)
        ]
        ephemeral_env = {**env, "PREFECT_HOME": str(root / "ephemeral")}
        theirs = [
            timed([sys.executable, "-c", EPHEMERAL_RUN], ephemeral_env)
            for _ in range(args.ephemeral_runs)
        ]
    finally:
        for hog in hogs:
            hog.kill()
        server.stop()
        sandbox.terminate()
        sandbox.wait(30)
        asyncio.run(db.drop_database(settings))
        shutil.rmtree(root, ignore_errors=True)

    def row(name: str, runs: list[tuple[float, int, str]]) -> str:
        times = [t for t, _, _ in runs]
        failed = sum(1 for _, code, _ in runs if code)
        each = " ".join(f"{t:.1f}" for t in times)
        return (
            f"{name:<34} {len(runs):>4} {failed:>6} {statistics.median(times):>8.1f} "
            f"{max(times):>7.1f}  {each}"
        )

    print(
        f"\n`dataload run term` against the sandbox, {args.hogs} CPU hog(s) beside it, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'':<34} {'runs':>4} {'failed':>6} {'median s':>8} {'max s':>7}  each run (s)")
    print(row("managed server (ours)", ours))
    print(row("ephemeral server (before)", theirs))
    print(f"first start of the managed server: {first_start[0]:.1f} s (once per machine)")
    ratio = statistics.median(t for t, _, _ in theirs) / statistics.median(t for t, _, _ in ours)
    print(f"median ephemeral / median managed: {ratio:.1f}x")
    for _, code, last in theirs:
        if code:
            print(f"  an ephemeral run failed: {last[:150]}")


if __name__ == "__main__":
    main()
