"""Benchmark of the taxi_trips tabular path: a month's Parquet file into PostgreSQL, dataload
against typed COPY via ADBC (the limit), dlt's Arrow path, pandas to_sql, asyncpg and psycopg 3.

    uv run --frozen python benchmarks/taxi_load.py [--rows 1000000,3000000] [--rounds 3]
        [--pandas-rows 1000000] [--pandas-rounds 1] [--only NAME,...] [--dlt-format parquet]

About 12 minutes at the default settings on a busy 2-core machine (3 rounds at 1,000,000 and
3,000,000 rows; pandas, at 90-140 s and ~2.8 GB per million rows, only at 1,000,000 rows in one
round), plus ~30 s the first time to build the side virtual environment.

Runs against the server the POSTGRES_* names give (or the embedded one), in databases of its
own, one per contender per round, each dropped once measured. The month's files are the
sandbox's (`write_parquet`: the TLC's 19 yellow-taxi columns), written once per row count into
a temporary folder, with a revised copy in which fare_amount changed on every hundredth trip
(1%); writing them is not timed.

Each contender runs in a fresh Python process (benchmarks/taxi_contenders.py) on a fresh
database, from the same file. Wall seconds: measured inside that process, from after its
imports to committed rows (connecting and creating tables included). Peak RSS: the process's
own high-water mark, VmHWM (interpreter and imports included; not ru_maxrss, which Linux keeps
across exec, so a spawned process would report the benchmark's own peak). Disk: sum of pg_total_relation_size
(indexes and TOAST included) over every table of each schema, partitions counted one by one.

Contenders:
- typed COPY via ADBC (the limit): adbc_driver_postgresql's `adbc_ingest(mode="create")` of
  the file's record batches into a plain typed table; its size is the disk reference;
- dataload: `dataload.examples.taxi.load_trip_file`, one lake run per call: first load of the
  month (a fresh database, initialised by `dataload db init`'s function before the clock starts:
  that is done once per database, not per load, and its time is shown in the details),
  unchanged reload (the same file again), revised reload (the 1% revised file);
- dlt 1.31 (its Arrow path: a resource yielding the file's record batches, the postgres
  destination's `parquet` loader file format, which dlt loads by ADBC): append on a fresh
  database; merge (a month has no key: merge_key year_month, strategy delete-insert, dlt's
  way to replace a month) first load, then the same file again;
- asyncpg copy_records_to_table, rows from Arrow via to_pylist; psycopg 3 binary COPY,
  write_row per row: the two row-at-a-time Python drivers ADBC was chosen over;
- pandas to_sql as seed 004 does it (read the whole file, to_sql replace then append).
dlt, pandas and psycopg are not project dependencies: they run in a side virtual environment
the benchmark builds under ~/.cache/dataload-bench (reused when present). A contender that
fails is reported as "(not available: <error>)".

The machine is usually shared: rounds are interleaved (every contender at every size in round
1, then round 2, ...), a CHECKPOINT runs before each timed process, and medians are quoted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from dataload.lake import db
from dataload.sandbox.examples.taxi import write_parquet
from dataload.settings import Settings

YEAR, MONTH, SEED = 2024, 1, 42
HERE = Path(__file__).resolve().parent
CHILD = HERE / "taxi_contenders.py"
SIDE_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dataload-bench"
SIDE_VENV = SIDE_VENV / "venv-dlt"
SIDE_REQUIREMENTS = (
    "dlt[postgres,parquet]==1.31.0",
    # dlt loads parquet into postgres through ADBC; the same driver version as the project's.
    "adbc-driver-postgresql==1.13.0",
    "pandas",
    "sqlalchemy",
    "psycopg2-binary",
)
SIDE_OPTIONAL = ("psycopg[binary]",)
LAYERS = {
    "taxi_trips_raw": "raw",
    "taxi_trips_xform": "xform",
    "taxi_trips_curated": "curated",
    "lake": "ledger",
    "public": "table",
    "taxi": "dataset",
    "taxi_staging": "staging",
}


@dataclass(frozen=True)
class Step:
    """One timed process of a contender's sequence (all on the same database)."""

    label: str
    child: str
    side: bool = False  # run with the side virtual environment's Python
    revised: bool = False  # the 1% revised file instead of the month's file
    disk: bool = False  # measure the database's size after it


SEQUENCES: dict[str, tuple[Step, ...]] = {
    "adbc": (Step("typed COPY via ADBC (the limit)", "adbc", disk=True),),
    "dataload": (
        Step("dataload: first load", "dataload", disk=True),
        Step("dataload: unchanged reload", "dataload"),
        Step("dataload: revised reload (1% changed)", "dataload", revised=True, disk=True),
    ),
    "dlt-append": (Step("dlt Arrow path, append", "dlt-append", side=True, disk=True),),
    "dlt-merge": (
        Step("dlt Arrow path, merge: first load", "dlt-merge", side=True, disk=True),
        Step("dlt Arrow path, merge: same file again", "dlt-merge", side=True, disk=True),
    ),
    "asyncpg": (Step("asyncpg copy_records_to_table (to_pylist)", "asyncpg", disk=True),),
    "psycopg": (
        Step("psycopg 3 binary COPY (write_row per row)", "psycopg", side=True, disk=True),
    ),
    "pandas": (Step("pandas to_sql (seed 004)", "pandas", side=True, disk=True),),
}


@dataclass
class Outcome:
    """What the runs of one step at one row count gave."""

    seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    disk: list[dict[str, int]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    def disk_median(self) -> dict[str, int]:
        names = sorted({name for sizes in self.disk for name in sizes})
        return {n: int(statistics.median(s.get(n, 0) for s in self.disk)) for n in names}


# ---- files ---------------------------------------------------------------------------------


def write_revised(source: Path, dest: Path) -> int:
    """The same trips with fare_amount raised by 1.00 on every hundredth trip (1%), row group
    by row group; returns how many changed."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    changed = offset = 0
    with pq.ParquetFile(source) as parquet, pq.ParquetWriter(dest, parquet.schema_arrow) as out:
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group)
            mask = pa.array([(offset + i) % 100 == 0 for i in range(table.num_rows)])
            column = table.schema.get_field_index("fare_amount")
            fare = table.column(column)
            table = table.set_column(
                column, "fare_amount", pc.if_else(mask, pc.add(fare, 1.0), fare)
            )
            out.write_table(table)
            changed += pc.sum(mask).as_py() or 0
            offset += table.num_rows
    return changed


# ---- the side virtual environment ----------------------------------------------------------


def side_python(folder: Path) -> tuple[Path | None, str]:
    """The side environment's Python (built when missing), or None and why not."""
    python = folder / "bin" / "python"
    marker = folder / "dataload-bench-requirements.txt"
    wanted = "\n".join(SIDE_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python, ""
    print(f"building the side virtual environment in {folder} ...", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *SIDE_REQUIREMENTS], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
        return None, f"side virtual environment: {tail[0]}"
    # psycopg 3 is one more contender, not needed by the others.
    optional = subprocess.run([*pip, *SIDE_OPTIONAL], capture_output=True, text=True)
    if optional.returncode:
        print(f"psycopg 3 not installed: {optional.stderr.strip()[-300:]}", file=sys.stderr)
    marker.write_text(wanted)
    return python, ""


# ---- the database --------------------------------------------------------------------------


class Server:
    """The benchmark's PostgreSQL: throwaway databases, checkpoints, sizes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.params = db.connect_params(settings)  # starts the embedded server if need be
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        conn = await db.connect(self.settings, database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self) -> str:
        name = f"dataload_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)

    def checkpoint(self) -> None:
        """Flush what the previous contender left dirty, so that no one pays for another's
        writes (needs a superuser; skipped otherwise)."""
        try:
            asyncio.run(self._admin("CHECKPOINT"))
        except asyncpg.InsufficientPrivilegeError:
            pass

    def sizes(self, name: str) -> dict[str, int]:
        """Bytes on disk per schema: every table (partitions one by one), with its indexes and
        TOAST."""

        async def query() -> dict[str, int]:
            conn = await db.connect(self.settings, database=name)
            try:
                # Every schema, tables or not: a layer made of views shows as 0.
                rows = await conn.fetch(
                    "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint"
                    " AS bytes FROM pg_namespace n LEFT JOIN pg_class c"
                    " ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm')"
                    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                    " AND n.nspname NOT LIKE 'pg_%' GROUP BY 1"
                )
            finally:
                await conn.close()
            return {r["nspname"]: r["bytes"] for r in rows}

        return asyncio.run(query())

    def version(self) -> str:
        async def query() -> str:
            conn = await db.connect(self.settings, database="postgres")
            try:
                return await conn.fetchval("SHOW server_version")
            finally:
                await conn.close()

        return asyncio.run(query())

    def env(self, database: str) -> dict[str, str]:
        """The environment of a contender's process: where to connect, never the embedded
        server's start-up (POSTGRES_HOST is always set)."""
        env = {
            **os.environ,
            "POSTGRES_HOST": self.params.host,
            "POSTGRES_PORT": str(self.params.port),
            "POSTGRES_USER": self.params.user,
            "POSTGRES_DB": database,
        }
        if self.params.password:
            env["POSTGRES_PASS"] = env["PGPASSWORD"] = self.params.password
        return env


def run_child(
    python: Path, step: Step, file: Path, env: dict[str, str], args: argparse.Namespace, **extra
) -> dict[str, Any]:
    """Run one step in a process of its own; its JSON line, or {"error": ...}."""
    command = [str(python), str(CHILD), step.child, "--file", str(file)]
    command += ["--year", str(YEAR), "--month", str(MONTH), "--batch", str(args.batch)]
    command += ["--dlt-format", args.dlt_format]
    for name, value in extra.items():
        command += [f"--{name}", str(value)]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=args.timeout, cwd=HERE
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {args.timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = " ".join(done.stderr.strip().splitlines()[-2:])
    return {"error": f"exit {done.returncode}: {tail[-300:] or 'no output'}"}


def run_sequence(
    server: Server,
    name: str,
    rows: int,
    files: dict[str, Path],
    pythons: dict[bool, tuple[Path | None, str]],
    results: dict[tuple[int, str], Outcome],
    args: argparse.Namespace,
    progress: str,
) -> None:
    database = server.create()
    state = tempfile.mkdtemp(prefix="dataload-bench-dlt-")
    try:
        failed = ""
        for step in SEQUENCES[name]:
            outcome = results.setdefault((rows, step.label), Outcome())
            python, why = pythons[step.side]
            if python is None or failed:
                outcome.errors.append(why or failed)
                continue
            server.checkpoint()
            extra = {"state": state} if step.child.startswith("dlt") else {}
            file = files["revised" if step.revised else "month"]
            got = run_child(python, step, file, server.env(database), args, **extra)
            if "error" in got:
                outcome.errors.append(got["error"])
                failed = "an earlier step failed"
                print(f"{progress} {step.label}: {got['error']}", file=sys.stderr)
                continue
            outcome.seconds.append(got.pop("seconds"))
            outcome.rss.append(got.pop("rss"))
            outcome.details.append(got)
            if step.disk:
                outcome.disk.append(server.sizes(database))
            print(
                f"{progress} {step.label}: {outcome.seconds[-1]:.1f} s,"
                f" {outcome.rss[-1] / 2**20:.0f} MB {got}",
                file=sys.stderr,
            )
    finally:
        server.drop(database)
        shutil.rmtree(state, ignore_errors=True)


# ---- the report ----------------------------------------------------------------------------


def mb(size: int) -> str:
    return "0" if not size else f"{size / 2**20:.{0 if size >= 10 * 2**20 else 1}f}"


def disk_text(sizes: dict[str, int]) -> str:
    """Total MB, and per schema where several matter (dataload's three layers always)."""
    if not sizes:
        return ""
    named = {
        LAYERS.get(schema, schema): b
        for schema, b in sorted(
            sizes.items(),
            key=lambda item: list(LAYERS).index(item[0]) if item[0] in LAYERS else len(LAYERS),
        )
        if b >= 2**20 / 10 or schema.startswith("taxi_trips_")
    }
    total = sum(sizes.values()) / 2**20
    if len(named) <= 1:
        return f"{total:.0f}"
    parts = " + ".join(f"{k} {mb(v)}" for k, v in named.items())
    return f"{total:.0f} ({parts})"


def report(
    rows: int, results: dict[tuple[int, str], Outcome], order: list[str]
) -> dict[str, float]:
    """Print the table of one row count; returns the figures the targets are judged on."""
    copy = results.get((rows, SEQUENCES["adbc"][0].label))
    copy_s = copy.median if copy else None
    print(f"\n{rows:,} rows")
    header = (
        f"{'contender':44} {'wall s: median (min-max)':>26} {'rows/s':>10} {'x COPY':>7}"
        f" {'peak RSS MB':>11}  disk MB"
    )
    print(header)
    print("-" * len(header))
    for name in order:
        for step in SEQUENCES[name]:
            outcome = results.get((rows, step.label))
            if outcome is None:
                continue
            if not outcome.seconds:
                print(f"{step.label:44} (not available: {outcome.errors[0]})")
                continue
            median = outcome.median
            spread = f"{median:.2f} ({min(outcome.seconds):.2f}-{max(outcome.seconds):.2f})"
            ratio = f"{copy_s / median:.2f}" if copy_s else "-"
            rss = statistics.median(outcome.rss) / 2**20
            print(
                f"{step.label:44} {spread:>26} {rows / median:>10,.0f} {ratio:>7}"
                f" {rss:>11.0f}  {disk_text(outcome.disk_median())}"
            )
            if outcome.errors:
                print(f"{'':44} ({len(outcome.errors)} run(s) failed: {outcome.errors[0]})")
    figures: dict[str, float] = {}
    first, unchanged, revised = (results.get((rows, s.label)) for s in SEQUENCES["dataload"])
    if copy_s and first and first.median:
        figures["first_x_copy"] = copy_s / first.median
    if first and first.median and unchanged and unchanged.median:
        figures["unchanged_share"] = unchanged.median / first.median
    if copy and copy.disk and first and first.disk:
        table = sum(copy.disk_median().values())
        lake = first.disk_median()
        figures["disk_x_table"] = sum(lake.values()) / table
        layers = sum(v for k, v in lake.items() if k.startswith("taxi_trips_"))
        figures["layers_x_table"] = layers / table
    peaks = [max(o.rss) for o in (first, unchanged, revised) if o and o.rss]
    if peaks:
        figures["rss_mb"] = max(peaks) / 2**20
    notes = []
    for outcome, label in ((first, "first"), (unchanged, "unchanged"), (revised, "revised")):
        if outcome and outcome.details:
            notes.append(f"{label} {outcome.details[-1]}")
    if notes:
        print("dataload summaries (last round): " + "; ".join(notes))
    for step in SEQUENCES["dlt-append"] + SEQUENCES["dlt-merge"]:
        outcome = results.get((rows, step.label))
        if outcome and outcome.details:
            formats = outcome.details[-1].get("formats")
            print(f"{step.label}: loader file formats used {formats}")
            break
    return figures


def targets(figures: dict[int, dict[str, float]]) -> None:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else "met" if ok else "MISSED"

    print("\nTargets (dataload)")
    for rows, f in figures.items():
        first = f.get("first_x_copy")
        share = f.get("unchanged_share")
        disk = f.get("disk_x_table")
        print(
            f"  {rows:>9,} rows: first load >= 0.70x typed COPY: "
            + (f"{first:.2f}x {verdict(first >= 0.7)}" if first else "n/a")
            + "; unchanged reload < 5% of first load: "
            + (f"{share:.1%} {verdict(share < 0.05)}" if share else "n/a")
            + "; month on disk <= 1.5x typed table: "
            + (
                f"{disk:.2f}x {verdict(disk <= 1.5)} (layers alone {f['layers_x_table']:.2f}x)"
                if disk
                else "n/a"
            )
        )
    at = 3_000_000 if 3_000_000 in figures else max(figures, default=0)
    rss = figures.get(at, {}).get("rss_mb")
    print(
        f"  peak RSS < 300 MB at {at:,} rows (largest of the three loads): "
        + (f"{rss:.0f} MB {verdict(rss < 300)}" if rss else "n/a")
    )


def versions(server: Server, pythons: dict[bool, tuple[Path | None, str]]) -> str:
    lines = []
    for side, where in ((False, "project"), (True, "side venv")):
        python = pythons[side][0]
        if python is None:
            continue
        command = [str(python), str(CHILD), "versions"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
        if done.returncode == 0:
            found = json.loads(done.stdout.splitlines()[-1])
            found.pop("seconds", None)
            found.pop("rss", None)
            lines.append(f"{where}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    lines.append(f"server: PostgreSQL {server.version()}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,3000000", help="row counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pandas-rows", default="1000000", help="row counts pandas runs at")
    parser.add_argument("--pandas-rounds", type=int, default=1)
    parser.add_argument("--only", default="", help=f"contenders: {','.join(SEQUENCES)}")
    parser.add_argument("--batch", type=int, default=100_000, help="rows per record batch")
    parser.add_argument("--dlt-format", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--side-venv", type=Path, default=SIDE_VENV)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    pandas_sizes = {int(n) for n in args.pandas_rows.split(",") if n}
    order = [n for n in SEQUENCES if not args.only or n in args.only.split(",")]

    server = Server(Settings())
    needs_side = any(s.side for n in order for s in SEQUENCES[n])
    pythons = {
        False: (Path(sys.executable), ""),
        True: side_python(args.side_venv) if needs_side else (None, "not asked for"),
    }
    results: dict[tuple[int, str], Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="dataload-taxi-bench-") as folder:
        files: dict[int, dict[str, Path]] = {}
        for rows in sizes:
            month = Path(folder) / f"yellow_tripdata_{YEAR}-{MONTH:02d}_{rows}.parquet"
            write_parquet(month, SEED, YEAR, MONTH, rows)
            revised = month.with_name(f"revised_{month.name}")
            changed = write_revised(month, revised)
            files[rows] = {"month": month, "revised": revised}
            print(f"wrote {month.name}, {changed:,} trips revised", file=sys.stderr)
        try:
            for round_ in range(args.rounds):
                for rows in sizes:
                    for name in order:
                        if name == "pandas" and (
                            rows not in pandas_sizes or round_ >= args.pandas_rounds
                        ):
                            continue
                        progress = f"[round {round_ + 1}/{args.rounds}, {rows:,} rows]"
                        run_sequence(
                            server, name, rows, files[rows], pythons, results, args, progress
                        )
        finally:
            server.drop_all()

    print(f"\n{versions(server, pythons)}")
    print(
        f"{args.rounds} rounds, interleaved (pandas: {args.pandas_rounds} at"
        f" {sorted(pandas_sizes)} rows); each contender a fresh process on a fresh database;"
        f" record batches of {args.batch:,} rows; wall from the Parquet file to committed rows;"
        " peak RSS the process's VmHWM; disk MB median after the load (per schema where"
        " several)."
    )
    figures = {rows: report(rows, results, order) for rows in sizes}
    targets(figures)


if __name__ == "__main__":
    main()
