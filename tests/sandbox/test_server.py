"""The sandbox over a real socket: start, environment, run-time changes, clean shutdown, CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
from typer.testing import CliRunner

from dataload.cli import app as cli
from dataload.sandbox.app import SandboxConfig
from dataload.sandbox.config import Faults
from dataload.sandbox.server import running_sandbox


def test_starts_within_a_second_on_a_free_port_and_names_every_variable():
    started = time.perf_counter()
    with running_sandbox(SandboxConfig(people=100)) as one, running_sandbox() as two:
        assert time.perf_counter() - started < 1.0
        assert one.base_url != two.base_url
        env = one.env()
        assert env["PEOPLE_SOFT_URL"] == f"{one.base_url}/ps"
        assert env["SNAPLOGIC_COURSE_URL"] == f"{one.base_url}/snaplogic/course"
        assert env["SNAPLOGIC_PERSON_URL"] == f"{one.base_url}/snaplogic/person"
        assert env["SAP_URL"] == f"{one.base_url}/sap"
        assert env["VDS_URL"] == f"{one.base_url}/vds"
        assert env["CS_ENV"] == "test"
        assert env["SAP_KEY"] == "sandbox-sap-key"
        index = httpx.get(one.base_url + "/").json()
        assert index["systems"]["VDS_URL"] == "/vds"


def test_config_changes_reach_the_next_request_over_the_socket():
    with running_sandbox(SandboxConfig(people=100)) as sandbox:
        url = sandbox.base_url + "/_sandbox/truth"
        assert httpx.get(url).json()["day"] == 1
        sandbox.config.day = 5
        assert httpx.get(url).json()["day"] == 5


def test_shutdown_is_prompt_and_frees_the_port_despite_a_hung_request():
    config = SandboxConfig(people=100, hang_s=60)
    config.endpoint_faults["sap"] = Faults(hang_rate=1.0)
    with running_sandbox(config) as sandbox:
        port = int(sandbox.base_url.rsplit(":", 1)[1])
        hung = threading.Thread(
            target=lambda: httpx.post(sandbox.base_url + "/sap", timeout=30), daemon=True
        )
        hung.start()
        while sandbox.stats.snapshot()["in_flight"] == 0:
            time.sleep(0.01)
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 2.0
    hung.join(timeout=5)
    assert not hung.is_alive()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_cli_refuses_an_unknown_fault_with_one_line():
    result = CliRunner().invoke(cli, ["sandbox", "--fault", "ldap:hang=1"])
    assert result.exit_code == 1
    assert "unknown endpoint 'ldap'" in result.output
    result = CliRunner().invoke(cli, ["sandbox", "--latency-ms", "soon"])
    assert result.exit_code == 1
    assert "latency" in result.output


def test_cli_serves_the_configured_sandbox_until_terminated(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "dataload.cli",
        "sandbox",
        "--port",
        str(port),
        "--people",
        "150",
        "--day",
        "3",
        "--fault",
        "sap:http_5xx=1",
    ]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the taxi files are made
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                shown = httpx.get(base + "/_sandbox/config").json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        assert (shown["people"], shown["day"]) == (150, 3)
        assert shown["endpoint_faults"]["sap"]["http_5xx_rate"] == 1.0
        assert httpx.post(base + "/sap").status_code >= 500
        taxi = httpx.get(base + "/trip-data/yellow_tripdata_2024-01.parquet", timeout=60)
        assert taxi.status_code == 200 and list(tmp_path.glob("dataload-sandbox-taxi-*"))
    finally:
        server.terminate()  # SIGTERM
        output, _ = server.communicate(timeout=10)
    # Before: uvicorn re-raised SIGTERM once shut down, killing the process before its atexit
    # hooks ran, and the taxi folder stayed in the temporary directory.
    assert list(tmp_path.glob("dataload-sandbox-taxi-*")) == []
    # Ready to paste: the sandbox's credentials are its own defaults, not secrets.
    assert f"export SAP_URL={base}/sap" in output
    assert "export SAP_KEY=sandbox-sap-key" in output
