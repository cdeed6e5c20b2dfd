"""`dataload sandbox --env-file PATH` writes a .env that points dataload at it, ready to use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dataload.prefect_server import free_port
from dataload.settings import FLOW_VARIABLES, Settings, check_configuration


def test_the_env_file_holds_every_variable_with_the_sandbox_credentials(tmp_path: Path) -> None:
    port, env_file = free_port(), tmp_path / ".env"
    command = [sys.executable, "-m", "dataload.cli", "sandbox", "--people", "50"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--env-file", str(env_file)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_sandbox/truth", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        settings = Settings(_env_file=env_file)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)

    check_configuration(settings, tuple(FLOW_VARIABLES))  # nothing missing
    assert settings.people_soft_pass.get_secret_value() == "sandbox"
    assert settings.sap_url == f"http://127.0.0.1:{port}/sap"
    assert f"wrote {env_file}" in output
