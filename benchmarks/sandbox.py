"""Benchmark of the sandbox at production scale: documents per second on one core, flat memory.

    uv run python benchmarks/sandbox.py [--people 200000] [--documents 40000] [--batch 1000]

The sandbox runs as `dataload sandbox` in a subprocess pinned to one CPU core; this process is
the client (on the other core when there is one), calling as the person flow does: SnapLogic
person POSTs of `--batch` people, 8 at once; BU_TERM_STD_FULL_TERM per student, 10 at once;
the big lists (BU_PARM_0216_QRY, SAP, VDS staff pages).

Competitor, measured in the same run: the obvious generator that calls Faker for every field
of every document (one core, no HTTP at all), against which the sandbox's precomputed pools
and per-person generators are compared. Memory: the server's resident set before and after
serving `--documents` documents out of `--people` people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import orjson
import psutil
from faker import Faker

PERSON_PARAMS = {"objects": "['student','affiliate','faculty','employee']", "csEnv": "test"}
PERSON_KEY = {"x-api-key": "sandbox-person-key"}
PS_QUERY = "/ps/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{}/JSON/NONFILE"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(people: int, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "dataload.cli",
        "sandbox",
        "--port",
        str(port),
        "--people",
        str(people),
        "--empty-object-rate",
        "0",
    ]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),  # one core
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the sandbox did not start within 30 s")


def faker_document(fake: Faker, n: int) -> dict:
    """The competitor: a person document of the same shape, every value from Faker."""
    semesters = [
        {
            "termCode": str(2250 + k),
            "studentSemesterInfo": {
                "currentGpa": fake.pyfloat(min_value=2, max_value=4, right_digits=2),
                "unitsEnrolled": fake.random_int(8, 20),
                "finAidStatus": fake.random_element(("Packaged", "Disbursed")),
            },
            "classes": [
                {
                    "courseId": fake.random_int(100000, 900000),
                    "subject": fake.bothify("??? ??"),
                    "catalogNumber": fake.numerify("###"),
                    "grade": fake.random_element("ABC"),
                }
                for _ in range(4)
            ],
        }
        for k in range(5)
    ]
    return {
        "personid": f"U{n:08d}",
        "personBasic": {
            "name": {
                "first": fake.first_name(),
                "middle": fake.first_name(),
                "last": fake.last_name(),
            },
            "birthDate": fake.date_of_birth().isoformat(),
            "ssn": fake.ssn(),
        },
        "personDetails": {
            "address": [
                {
                    "street1": fake.street_address(),
                    "city": fake.city(),
                    "state": fake.state_abbr(),
                    "postalCode": fake.postcode(),
                }
                for _ in range(2)
            ],
            "emergencyContacts": [{"name": fake.name(), "phone": fake.phone_number()}],
        },
        "email": [{"address": fake.email()}, {"address": fake.email()}],
        "phone": [{"number": fake.phone_number()}],
        "studentInfo": {"studentSemester": semesters},
    }


def measure_faker(count: int) -> tuple[float, float]:
    fake = Faker("en_US")
    fake.seed_instance(1)
    started = time.perf_counter()
    size = sum(len(orjson.dumps(faker_document(fake, n))) for n in range(count))
    elapsed = time.perf_counter() - started
    return count / elapsed, size / count


async def person_rate(base: str, ids: list[str], batch: int) -> tuple[float, float]:
    batches = [ids[k : k + batch] for k in range(0, len(ids), batch)]
    gate = asyncio.Semaphore(8)
    served = size = 0

    async def post(client: httpx.AsyncClient, chunk: list[str]) -> None:
        nonlocal served, size
        body = {"uidCarTerm": json.dumps([{"CAMPUS_ID": buid} for buid in chunk])}
        async with gate:
            response = await client.post(
                "/snaplogic/person", params=PERSON_PARAMS, json=body, headers=PERSON_KEY
            )
        response.raise_for_status()
        served += len(response.json())
        size += len(response.content)

    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        started = time.perf_counter()
        await asyncio.gather(*(post(client, chunk) for chunk in batches))
        elapsed = time.perf_counter() - started
    return served / elapsed, size / served


async def uid_car_term_rate(base: str, students: list[str]) -> float:
    gate = asyncio.Semaphore(10)
    auth = ("sandbox", "sandbox")

    async def one(client: httpx.AsyncClient, buid: str) -> None:
        params = {
            "isconnectedquery": "N",
            "maxrows": "0",
            "json_resp": "true",
            "prompt_uniquepromptname": "BUID",
            "prompt_fieldvalue": buid,
        }
        async with gate:
            response = await client.get(
                PS_QUERY.format("BU_TERM_STD_FULL_TERM"), params=params, auth=auth
            )
        response.raise_for_status()

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, buid) for buid in students))
        return len(students) / (time.perf_counter() - started)


def vds_all_pages(base: str, affiliation: str) -> tuple[int, int]:
    params = {
        "filter": f"(PersonPrimaryAffiliation={affiliation})",
        "attributes": "PersonBuid",
        "scope": "sub",
        "sizeLimit": "25000",
    }
    ids, pages, cookie = 0, 0, None
    with httpx.Client(base_url=base, auth=("sandbox", "sandbox"), timeout=600) as client:
        while True:
            query = dict(params, cookie=cookie) if cookie else params
            body = client.get("/vds/adap/ou=people,dc=bu,dc=edu", params=query).json()
            ids += len(body["resources"])
            pages += 1
            cookie = body.get("cookie")
            if not cookie:
                return ids, pages


class Meter:
    """Wall time and the server's CPU time (user + system) of one workload."""

    def __init__(self, server: psutil.Process) -> None:
        self.server = server

    def __enter__(self) -> Meter:
        self._wall = time.perf_counter()
        self._cpu = sum(self.server.cpu_times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = sum(self.server.cpu_times()[:2]) - self._cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--documents", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--uid-car-term", type=int, default=5000)
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.people, port)
    process = psutil.Process(server.pid)
    mb = 2**20
    rows: list[tuple[str, str, str, str]] = []

    def rate(count: int, meter: Meter, unit: str) -> str:
        return f"{count / meter.cpu:,.0f} {unit}/CPU-s ({count / meter.wall:,.0f}/s wall)"

    try:
        rss_start = process.memory_info().rss
        with Meter(process) as meter:
            truth = httpx.get(f"{base}/_sandbox/truth/persons", timeout=600).json()
        print(f"truth of {len(truth['persons']):,} people: {meter.wall:.1f} s")
        ids = truth["persons"][: args.documents]
        half = len(ids) // 2
        with Meter(process) as first:
            _, size = asyncio.run(person_rate(base, ids[:half], args.batch))
        rss_half = process.memory_info().rss
        with Meter(process) as second:
            asyncio.run(person_rate(base, ids[half:], args.batch))
        rss_after = process.memory_info().rss
        meter.wall, meter.cpu = first.wall + second.wall, first.cpu + second.cpu
        theirs, their_size = measure_faker(2000)
        per_cpu = len(ids) / meter.cpu
        rows.append(
            (
                f"person documents, batches of {args.batch}, 8 at once ({size / 1000:.1f} KB each)",
                rate(len(ids), meter, "docs"),
                f"Faker per document, no HTTP: {theirs:,.0f} docs/s ({their_size / 1000:.1f} KB)",
                f"{per_cpu / theirs:.1f}x",
            )
        )
        rows.append(
            (
                f"server RSS after {half:,} / {len(ids):,} documents of {args.people:,} people",
                f"{rss_half / mb:,.0f} / {rss_after / mb:,.0f} MB",
                f"documents served: {len(ids) * size / mb:,.0f} MB",
                f"growth {(rss_after - rss_half) / mb:+,.0f} MB",
            )
        )

        students = truth["students"][: args.uid_car_term]
        with Meter(process) as meter:
            asyncio.run(uid_car_term_rate(base, students))
        rows.append(
            (
                "BU_TERM_STD_FULL_TERM, one student per request, 10 at once",
                rate(len(students), meter, "req"),
                "-",
                "-",
            )
        )

        ps_params = {"isconnectedquery": "N", "maxrows": "0", "json_resp": "true"}
        with Meter(process) as meter:
            response = httpx.get(
                base + PS_QUERY.format("BU_PARM_0216_QRY"),
                params=ps_params,
                auth=("sandbox", "sandbox"),
                timeout=600,
            )
        count = response.json()["data"]["query"]["numrows"]
        rows.append(
            (
                f"BU_PARM_0216_QRY: {count:,} students in one answer",
                rate(count, meter, "rows"),
                "-",
                "-",
            )
        )
        with Meter(process) as meter:
            response = httpx.post(
                base + "/sap",
                json={},
                headers={"x-api-key": "sandbox-sap-key"},
                timeout=600,
                params={"BAPIName": "Z_HR_EMPLOYEE_OBJ_LIST", "account": "HR"},
            )
        count = len(response.json()["ET_EMP_LIST"])
        rows.append(
            (
                f"SAP employee list: {count:,} employees in one answer",
                rate(count, meter, "rows"),
                "-",
                "-",
            )
        )
        with Meter(process) as meter:
            count, pages = vds_all_pages(base, "staff")
        rows.append(
            (
                f"VDS staff: {count:,} entries in {pages} pages",
                rate(count, meter, "entries"),
                "-",
                "-",
            )
        )
        rss_end = process.memory_info().rss
        rows.append(
            ("server RSS: start / end", f"{rss_start / mb:,.0f} / {rss_end / mb:,.0f} MB", "-", "-")
        )
    finally:
        server.terminate()
        server.wait(timeout=10)

    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    header = ("workload", "sandbox (server on one core)", "competitor (same run)", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
