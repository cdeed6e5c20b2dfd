"""Benchmark of the lake's write path against the physical limit and the per-row trigger design.

    uv run python benchmarks/lake_load.py [--people 5000] [--per-row-people 100] [--batch 1000]
                                          [--concurrency 2] [--repeat 3]

Runs against the server POSTGRES_* names (or the embedded one), in databases of its own that
it drops at the end. Records are deterministic person documents of about 5 KB, nested like
SnapLogic's (DESIGN.md section 3); the services are the shipped services.toml (11 for person).

Workloads, each timed from Python dicts to committed rows:
- plain COPY: the same payloads COPYed into a bare table with one jsonb column (the limit);
- per-row design: BEFORE INSERT compares with the latest version, AFTER INSERT upserts the
  current row and derives every service with a recursive PL/pgSQL filter, row by row;
- ours: Lake.load in batches on a fresh lake: first load, reload unchanged, reload with 10%
  changed; each with shape tracking (the shape of every run and its drift, lake/shape.py) and,
  as its own competitor, without it (`Lake(track_shapes=False)`).
The machine is usually shared: COPY and the lake workloads (with and without shapes) run
--repeat times, interleaved, and the best time of each is kept; shape tracking's cost is also
given as the median (and range) of each turn's with/without ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from dataload.lake import Lake, db, migrate
from dataload.lake.filters import read_services, sync_services
from dataload.settings import Settings

FIRST = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai")
LAST = ("Smith", "Nguyen", "Garcia", "Kim", "Okafor", "Rossi", "Cohen", "Singh", "Silva")
CITIES = (("Boston", "MA", "02215"), ("Cambridge", "MA", "02139"), ("Newton", "MA", "02458"))
DEPTS = (
    ("CAS", "Computer Science", "CS"),
    ("ENG", "Mechanical Engineering", "ME"),
    ("QST", "Finance", "FE"),
    ("COM", "Journalism", "JO"),
    ("SPH", "Epidemiology", "EP"),
)
GRADES = ("A", "A-", "B+", "B", "B-", "C+", None)


def person(n: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic person document of about 5 KB."""
    rng = random.Random(seed * 1_000_003 + n)
    pick, r = rng.choice, rng.random
    first, last = pick(FIRST), pick(LAST)
    login = f"{first[0]}{last}{n % 100:02d}".lower()
    doc: dict[str, Any] = {
        "personid": f"U{n:08d}",
        "personBasic": {
            "buid": f"U{n:08d}",
            "emplid": f"{10_000_000 + n}",
            "name": {
                "prefix": None,
                "first": first,
                "middle": pick(FIRST),
                "last": last,
                "suffix": None,
                "display": f"{first} {last}",
            },
            "preferredName": {"first": first, "last": last},
            "birthDate": f"{1995 + n % 10}-0{1 + n % 9}-1{n % 10}",
            "gender": pick(("F", "M", "X")),
            "pronouns": pick(("she/her", "he/him", "they/them")),
            "ethnicity": [{"code": "ASIAN", "description": "Asian"}],
            "citizenship": {"country": "USA", "status": "Citizen", "visaType": None},
            "deceased": False,
        },
        "personDetails": {
            "primaryAffiliation": "student",
            "affiliations": ["student", "employee"] if n % 3 == 0 else ["student"],
            "kerberosName": login,
            "address": [
                {
                    "type": kind,
                    "street1": f"{100 + int(r() * 900)} Commonwealth Ave",
                    "street2": None,
                    "city": city,
                    "state": state,
                    "postalCode": zip_code,
                    "country": "USA",
                    "effectiveDate": "2021-09-01",
                }
                for kind, (city, state, zip_code) in zip(
                    ("HOME", "MAIL", "CAMPUS"), CITIES, strict=True
                )
            ],
            "emergencyContacts": [
                {
                    "name": f"{pick(FIRST)} {last}",
                    "relationship": "Parent",
                    "phone": f"617-555-{int(r() * 10000):04d}",
                }
            ],
            "maritalStatus": "S",
            "veteranStatus": "Not a Veteran",
            "ferpaRestricted": False,
            "directoryListing": {"showEmail": True, "showPhone": False},
        },
        "email": [
            {"type": "BU", "address": f"{login}@bu.edu", "primary": True},
            {
                "type": "PERSONAL",
                "address": f"{first}.{last}{n}@example.com".lower(),
                "primary": False,
            },
        ],
        "phone": [
            {
                "type": kind,
                "number": f"617-{200 + int(r() * 800)}-{int(r() * 9999):04d}",
                "primary": kind == "CELL",
            }
            for kind in ("CELL", "HOME")
        ],
        "studentInfo": {
            "studentCareer": [
                {
                    "academicCareer": "UGRD",
                    "academicProgram": "CASBA",
                    "admitTerm": "2228",
                    "expectedGraduationTerm": "2265",
                    "status": "Active",
                }
            ],
            "studentSemester": [
                {
                    "termCode": f"22{6 + t // 2}{8 if t % 2 else 2}",
                    "termDescription": f"{'Fall' if t % 2 else 'Spring'} 202{3 + t // 2}",
                    "academicCareer": "UGRD",
                    "studentSemesterInfo": {
                        "academicLevel": ("Freshman", "Sophomore", "Junior", "Senior")[t // 2],
                        "enrollmentStatus": "Full-Time",
                        "unitsEnrolled": 16,
                        "currentGpa": round(2.3 + r() * 1.7, 2),
                        "cumulativeGpa": round(2.5 + r() * 1.5, 2),
                        "academicStanding": "Good Standing",
                    },
                    "classes": [
                        {
                            "courseId": 100_000 + int(r() * 800_000),
                            "sessionCode": "1",
                            "subject": f"{d[0]} {d[2]}",
                            "catalogNumber": str(100 + int(r() * 700)),
                            "units": 4,
                            "grade": pick(GRADES),
                        }
                        for d in (pick(DEPTS) for _ in range(3))
                    ],
                }
                for t in range(5)
            ],
            "advisors": [{"buid": f"U{(n * 7 + 3) % 100_000:08d}", "role": "Academic Advisor"}],
        },
        "meta": {"source": "SnapLogic person", "lastModified": "2026-01-15"},
    }
    if n % 3 == 0:
        dept = pick(DEPTS)
        doc["employeeInfo"] = {
            "employeeStatus": "3 - Active",
            "hireDate": "2024-09-01",
            "employeeClass": "Student Employee",
            "jobs": [
                {
                    "positionNumber": f"{int(r() * 1e8):08d}",
                    "title": "Research Assistant",
                    "departmentId": f"{dept[0]}-{dept[2]}",
                    "department": dept[1],
                    "fte": 0.5,
                    "status": "Active",
                    "startDate": "2024-09-01",
                    "salaryGrade": "42",
                    "supervisorBuid": f"U{n + 11:08d}",
                }
            ],
            "benefits": [{"plan": "Medical", "coverage": "Employee"}],
        }
    return doc


def changed(doc: dict[str, Any], n: int) -> dict[str, Any]:
    """The same person after one nested field changed."""
    doc = copy.deepcopy(doc)
    doc["studentInfo"]["studentSemester"][-1]["studentSemesterInfo"]["currentGpa"] = 1 + n % 3
    doc["phone"][0]["number"] = f"857-555-{n % 10000:04d}"
    return doc


# The per-row design the lake replaces: every row fires triggers that compare with the latest
# version, upsert the current row, and walk the document once per path with recursive PL/pgSQL.
PER_ROW_SQL = r"""
CREATE SCHEMA perrow;
CREATE TABLE perrow.raw (id bigserial PRIMARY KEY, bu_uid text NOT NULL, data jsonb NOT NULL,
                         loaded timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON perrow.raw (bu_uid, id);
CREATE TABLE perrow.current (bu_uid text PRIMARY KEY, data jsonb NOT NULL);
CREATE TABLE perrow.curated (service text, bu_uid text, data jsonb NOT NULL,
                             PRIMARY KEY (service, bu_uid));
CREATE TABLE perrow.filters (service text PRIMARY KEY, paths text[] NOT NULL);

CREATE FUNCTION perrow.extract(doc jsonb, segments text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE result jsonb; element jsonb; part jsonb;
BEGIN
    IF doc IS NULL THEN RETURN NULL; END IF;
    IF cardinality(segments) = 0 THEN RETURN doc; END IF;
    IF jsonb_typeof(doc) = 'array' THEN
        result := '[]';
        FOR element IN SELECT * FROM jsonb_array_elements(doc) LOOP
            part := perrow.extract(element, segments);
            IF part IS NOT NULL THEN result := result || jsonb_build_array(part); END IF;
        END LOOP;
        RETURN CASE WHEN result = '[]' THEN NULL ELSE result END;
    ELSIF jsonb_typeof(doc) = 'object' THEN
        part := perrow.extract(doc -> segments[1], segments[2:]);
        RETURN CASE WHEN part IS NULL THEN NULL ELSE jsonb_build_object(segments[1], part) END;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION perrow.merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE result jsonb := a; key text; value jsonb; i int;
BEGIN
    IF a IS NULL THEN RETURN b; END IF;
    IF b IS NULL THEN RETURN a; END IF;
    IF jsonb_typeof(a) = 'object' AND jsonb_typeof(b) = 'object' THEN
        FOR key, value IN SELECT * FROM jsonb_each(b) LOOP
            result := jsonb_set(result, ARRAY[key], perrow.merge(result -> key, value));
        END LOOP;
        RETURN result;
    ELSIF jsonb_typeof(a) = 'array' AND jsonb_typeof(b) = 'array'
          AND jsonb_array_length(a) = jsonb_array_length(b) THEN
        FOR i IN 0 .. jsonb_array_length(a) - 1 LOOP
            result := jsonb_set(result, ARRAY[i::text], perrow.merge(a -> i, b -> i));
        END LOOP;
        RETURN result;
    END IF;
    RETURN b;
END $$;

CREATE FUNCTION perrow.skip_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM perrow.raw WHERE bu_uid = NEW.bu_uid AND id = (
                   SELECT max(id) FROM perrow.raw WHERE bu_uid = NEW.bu_uid)
               AND data = NEW.data) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION perrow.propagate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE f record; path text; filtered jsonb;
BEGIN
    INSERT INTO perrow.current VALUES (NEW.bu_uid, NEW.data)
    ON CONFLICT (bu_uid) DO UPDATE SET data = excluded.data;
    INSERT INTO perrow.curated VALUES ('full', NEW.bu_uid, NEW.data)
    ON CONFLICT (service, bu_uid) DO UPDATE SET data = excluded.data;
    FOR f IN SELECT * FROM perrow.filters LOOP
        filtered := NULL;
        FOREACH path IN ARRAY f.paths LOOP
            filtered := perrow.merge(filtered,
                perrow.extract(NEW.data, string_to_array(substr(path, 2), '/')));
        END LOOP;
        IF filtered - 'personid' <> '{}' THEN
            INSERT INTO perrow.curated VALUES (f.service, NEW.bu_uid, filtered)
            ON CONFLICT (service, bu_uid) DO UPDATE SET data = excluded.data;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER skip_unchanged BEFORE INSERT ON perrow.raw
FOR EACH ROW EXECUTE FUNCTION perrow.skip_unchanged();
CREATE TRIGGER propagate AFTER INSERT ON perrow.raw
FOR EACH ROW EXECUTE FUNCTION perrow.propagate();
"""


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def plain_copy(
    pool: asyncpg.Pool, docs: list[dict[str, Any]], batch: int, concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def copy_batch(part: list[dict[str, Any]]) -> None:
        async with gate, pool.acquire() as conn:
            rows = [(orjson.dumps(d).decode(),) for d in part]
            await conn.copy_records_to_table("bench_plain", records=rows, columns=["doc"])

    await asyncio.gather(*(copy_batch(docs[i : i + batch]) for i in range(0, len(docs), batch)))


async def per_row(pool: asyncpg.Pool, docs: list[dict[str, Any]]) -> None:
    async with pool.acquire() as conn:
        for doc in docs:
            await conn.execute(
                "INSERT INTO perrow.raw (bu_uid, data) VALUES ($1, $2::jsonb)",
                doc["personid"],
                orjson.dumps(doc).decode(),
            )


async def ours(lake: Lake, docs: list[dict[str, Any]], batch: int, concurrency: int) -> None:
    async def batches():
        for start in range(0, len(docs), batch):
            yield docs[start : start + batch]

    run = await lake.start_run("person", flow="benchmark")
    await run.load_stream(batches(), concurrency=concurrency)
    # Ended as partial, which only clears the run's seen keys: the next workload's run takes
    # the domain's writer lock, and deleting is not the write path.
    await run.finish(complete=False)


class Databases:
    """Throwaway databases on the benchmark's server, all dropped at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names: list[str] = []

    async def create(self, template: str | None = None) -> Settings:
        name = f"dataload_bench_{uuid.uuid4().hex[:8]}"
        admin = await db.connect(self.settings, database="postgres")
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await admin.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await admin.close()
        self.names.append(name)
        return self.settings.model_copy(update={"postgres_db": name})

    async def drop_all(self) -> None:
        admin = await db.connect(self.settings, database="postgres")
        try:
            for name in self.names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def lake_template(databases: Databases, services: dict[str, Any]) -> str:
    """A migrated database with the shipped services, to clone fresh lakes from."""
    settings = await databases.create()
    conn = await db.connect(settings)
    try:
        await migrate(conn)
        await sync_services(conn, services)
    finally:
        await conn.close()
    return settings.postgres_db


async def lake_workloads(
    databases: Databases,
    template: str,
    docs: list[dict[str, Any]],
    changed_docs: list[dict[str, Any]],
    args: argparse.Namespace,
    *,
    track_shapes: bool = True,
) -> dict[str, float]:
    """Seconds of each load workload, on a fresh lake cloned from `template`."""
    settings = await databases.create(template)
    pool = await db.create_pool(settings, min_size=2, max_size=max(2, args.concurrency + 1))
    try:
        lake = Lake(pool, track_shapes=track_shapes)
        return {
            "first load": await timed(lambda: ours(lake, docs, args.batch, args.concurrency)),
            "reload unchanged": await timed(lambda: ours(lake, docs, args.batch, args.concurrency)),
            "reload, 10% changed": await timed(
                lambda: ours(lake, changed_docs, args.batch, args.concurrency)
            ),
        }
    finally:
        await pool.close()


async def main(args: argparse.Namespace) -> None:
    databases = Databases(Settings())
    services = read_services()
    docs = [person(n) for n in range(args.people)]
    size = sum(len(orjson.dumps(d)) for d in docs) / len(docs)
    step = 10  # one record in ten changes
    changed_docs = [changed(d, n) if n % step == 0 else d for n, d in enumerate(docs)]
    n = len(docs)
    try:
        template = await lake_template(databases, services)
        settings = await databases.create()
        pool = await db.create_pool(settings, min_size=2, max_size=max(2, args.concurrency + 1))
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                # The same column compression as the lake's payload columns (lz4 if available).
                await conn.execute("CREATE TABLE bench_plain (doc jsonb)")
                await conn.execute("SELECT lake.prefer_lz4('bench_plain', 'doc')")
                compression = await conn.fetchval(
                    "SELECT attcompression = 'l' FROM pg_attribute"
                    " WHERE attrelid = 'bench_plain'::regclass AND attname = 'doc'"
                )
                await conn.execute(PER_ROW_SQL)
                for service, paths in services["person"].items():
                    await conn.execute("INSERT INTO perrow.filters VALUES ($1, $2)", service, paths)
                server = await conn.fetchval("SHOW server_version")
            small = docs[: args.per_row_people]
            per_row_s = await timed(lambda: per_row(pool, small))
            # Every other workload is repeated, COPY's and the lake's turns interleaved, and the
            # best time kept: the machine is shared, and the best run is the one least disturbed.
            copy_s: list[float] = []
            runs: list[dict[str, float]] = []
            unshaped: list[dict[str, float]] = []
            for turn in range(args.repeat):
                async with pool.acquire() as conn:
                    await conn.execute("TRUNCATE bench_plain")
                copy_s.append(
                    await timed(lambda: plain_copy(pool, docs, args.batch, args.concurrency))
                )
                # With and without shape tracking, the first of the pair alternating.
                for shaped in (turn % 2 == 0, turn % 2 == 1):
                    times = await lake_workloads(
                        databases, template, docs, changed_docs, args, track_shapes=shaped
                    )
                    (runs if shaped else unshaped).append(times)
        finally:
            await pool.close()
    finally:
        await databases.drop_all()

    rows = [
        ("plain COPY into a bare jsonb table", n, min(copy_s)),
        ("per-row trigger design, first load", len(small), per_row_s),
    ]
    for workload in runs[0]:
        rows.append((f"ours: {workload}", n, min(r[workload] for r in runs)))
        rows.append(("  without shape tracking", n, min(r[workload] for r in unshaped)))
    copy_rate = n / min(copy_s)
    per_row_rate = len(small) / per_row_s
    print(
        f"PostgreSQL {server}; {n} person records of {size / 1024:.1f} KB on average; "
        f"{len(services['person'])} person services + full; batches of {args.batch}, "
        f"{args.concurrency} at a time; payload compression "
        f"{'lz4' if compression else 'pglz'}; best of {args.repeat} runs, interleaved"
    )
    print(
        f"{'workload':40} {'records':>8} {'seconds':>8} {'records/s':>10} "
        f"{'x plain COPY':>12} {'x per-row':>10}"
    )
    for label, count, seconds in rows:
        rate = count / seconds
        print(
            f"{label:40} {count:8d} {seconds:8.2f} {rate:10.0f} "
            f"{rate / copy_rate:12.2f} {rate / per_row_rate:10.0f}"
        )
    print()
    # Best of each, and each turn's pair (run back to back) compared: the median and range of
    # those ratios say how much of the difference is the machine's noise.
    print(
        f"{'shape tracking costs':28} {'with (s)':>8} {'without':>8} {'slower by':>10}"
        f" {'pairs: median':>14} {'(min to max)':>17}"
    )
    for workload in runs[0]:
        with_s = min(r[workload] for r in runs)
        without_s = min(r[workload] for r in unshaped)
        pairs = sorted(r[workload] / u[workload] - 1 for r, u in zip(runs, unshaped, strict=True))
        print(
            f"{workload:28} {with_s:8.3f} {without_s:8.3f} {with_s / without_s - 1:10.1%}"
            f" {statistics.median(pairs):14.1%} {f'({pairs[0]:.1%} to {pairs[-1]:.1%})':>17}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--per-row-people", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2, help="batches in flight at once")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each workload; best kept")
    asyncio.run(main(parser.parse_args()))
