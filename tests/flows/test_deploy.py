"""The daily deployments: `dataload serve`'s and prefect.yaml's are the same three, and
`prefect deploy --all` with a process worker runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.flows.world import World

from dataload.flows.deploy import SERVED_BY, TIMEZONE, runner_deployments

REPO = Path(__file__).resolve().parents[2]


def _yaml_deployments() -> dict[str, dict]:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return {deployment["name"]: deployment for deployment in spec["deployments"]}


def test_served_deployments_run_daily_in_new_york_one_at_a_time() -> None:
    daily = {"term-raw-daily", "course-raw-daily", "person-raw-daily"}
    deployments = {d.name: d for d in runner_deployments() if d.name in daily}

    assert {name: d.schedules[0].schedule.cron for name, d in deployments.items()} == {
        "term-raw-daily": "0 1 * * *",
        "course-raw-daily": "0 2 * * *",
        "person-raw-daily": "0 3 * * *",
    }
    for deployment in deployments.values():
        assert deployment.schedules[0].schedule.timezone == TIMEZONE == "America/New_York"
        assert deployment.concurrency_limit == 1
        domain = deployment.name.split("-")[0]
        assert f"domain:{domain}" in deployment.tags
        assert any(tag.startswith("source:") for tag in deployment.tags)


def test_prefect_yaml_declares_the_same_deployments_as_dataload_serve() -> None:
    declared = _yaml_deployments()

    served_deployments = runner_deployments()
    assert list(declared) == [served.name for served in served_deployments]
    for served in served_deployments:
        spec = declared[served.name]
        schedule = served.schedules[0].schedule
        assert spec["entrypoint"] == served.entrypoint
        when = (
            {"cron": schedule.cron}
            if getattr(schedule, "cron", None)
            else {"interval": schedule.interval.total_seconds()}
        )
        assert spec["schedules"] == [{**when, "timezone": schedule.timezone}]
        assert spec.get("parameters", {}) == served.parameters
        assert spec["concurrency_limit"] == served.concurrency_limit
        assert spec["tags"] == served.tags
        # A served deployment also says why the UI shows it Not Ready while serve is stopped.
        assert served.description == f"{spec['description']} {SERVED_BY}"
        assert spec["work_pool"]["name"] == "dataload"


def _prefect(*args: str) -> subprocess.CompletedProcess[str]:
    # PWD is what prefect.yaml's pull step records as the flows' working directory.
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=REPO,
        env={**os.environ, "PWD": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.mark.slow
async def test_deploy_all_then_a_process_worker_runs_a_deployment(world: World) -> None:
    _prefect("work-pool", "create", "dataload", "--type", "process", "--overwrite")
    _prefect("--no-prompt", "deploy", "--all")
    _prefect("deployment", "run", "term-raw-flow/term-raw-daily")

    worker = _prefect("worker", "start", "--pool", "dataload", "--run-once")

    assert "term-raw-flow: complete" in worker.stdout + worker.stderr
    run = await world.last_run("term")
    assert run["status"] == "complete" and run["flow"] == "term-raw-flow"
    assert await world.count("SELECT count(*) FROM term_xform.current_term_data") > 0


async def test_serving_again_resumes_deployments_an_earlier_ctrl_c_paused(prefect_api: str) -> None:
    import asyncio

    from prefect import get_client

    def term_deployment():  # built outside the event loop, as `dataload serve` does
        return next(d for d in runner_deployments() if d.name == "term-raw-daily")

    deployment_id = await (await asyncio.to_thread(term_deployment)).apply()
    async with get_client() as client:
        await client.pause_deployment(deployment_id)  # what Ctrl-C on `dataload serve` does
        assert (await client.read_deployment(deployment_id)).paused

        await (await asyncio.to_thread(term_deployment)).apply()

        assert not (await client.read_deployment(deployment_id)).paused
        await client.delete_deployment(deployment_id)


def start_serve() -> subprocess.Popen[str]:
    """`dataload serve`, its output (stderr too) readable line by line."""
    import signal

    return subprocess.Popen(
        [sys.executable, "-m", "dataload.cli", "serve"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a terminal starts a command: Ctrl-C reaches it. Under `pytest &` the tests inherit
        # SIGINT ignored, and so did `dataload serve`, which then never saw the Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def serve_until(signal_number: int) -> tuple[str, str, int]:
    """`dataload serve` until `signal_number`: its first line, the rest, its exit status."""
    import time

    serve = start_serve()
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()  # "serving <every deployment> on <ui> ..." (or EOF)
        while first and not first.startswith("serving "):
            first = serve.stdout.readline()
        time.sleep(2)
        serve.send_signal(signal_number)
        rest, _ = serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    return first, rest, serve.returncode


def test_dataload_serve_stopped_while_it_registers_says_so_and_pauses_what_it_registered(
    world: World,
) -> None:
    import signal

    serve = start_serve()
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()
        while first and not first.startswith("registering "):
            first = serve.stdout.readline()
        serve.send_signal(signal.SIGTERM)  # before the runner serves (it failed the CI run)
        rest, _ = serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()

    assert first.startswith("registering "), first + rest
    assert "stopped by SIGTERM" in rest and "Traceback" not in rest, rest
    assert serve.returncode == 0


def test_dataload_serve_serves_every_deployment_until_ctrl_c(world: World) -> None:
    import signal

    first, rest, _ = serve_until(signal.SIGINT)

    assert first.startswith("serving "), first + rest
    assert all(d.name in first for d in runner_deployments())
    assert "stopped by Ctrl-C" in rest and "paused" in rest


async def test_dataload_serve_stops_on_sigterm_pausing_its_deployments(world: World) -> None:
    import asyncio
    import signal

    from prefect import get_client

    first, rest, status = await asyncio.to_thread(serve_until, signal.SIGTERM)

    assert first.startswith("serving "), first + rest
    # Before: "coroutine 'Runner.astop' was never awaited", and the schedules stayed active.
    assert "never awaited" not in rest and "Traceback" not in rest, rest
    assert "stopped by SIGTERM" in rest and status == 0, rest
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("term-raw-flow/term-raw-daily")
        assert deployment.paused
