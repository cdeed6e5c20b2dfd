"""Run the sandbox over a real socket: in a background thread for tests, or in the foreground.

with running_sandbox(SandboxConfig(people=500)) as sandbox:
    env = sandbox.env()          # PEOPLE_SOFT_URL=..., SNAPLOGIC_*, SAP_*, VDS_*, CS_ENV
    sandbox.config.day = 2       # takes effect on the next request
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from dataload.sandbox import examples
from dataload.sandbox.app import create_app
from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Stats

__all__ = ["SandboxHandle", "environment", "running_sandbox", "serve"]


def environment(config: SandboxConfig, base_url: str) -> dict[str, str]:
    """Every environment variable that points the product at a sandbox at `base_url`."""
    c = config.credentials
    return {
        "CS_ENV": config.cs_env,
        "PEOPLE_SOFT_URL": f"{base_url}/ps",
        "PEOPLE_SOFT_USER": c.peoplesoft_user,
        "PEOPLE_SOFT_PASS": c.peoplesoft_password,
        "SNAPLOGIC_COURSE_URL": f"{base_url}/snaplogic/course",
        "SNAPLOGIC_COURSE_KEY": c.snaplogic_course_key,
        "SNAPLOGIC_PERSON_URL": f"{base_url}/snaplogic/person",
        "SNAPLOGIC_PERSON_KEY": c.snaplogic_person_key,
        "SAP_URL": f"{base_url}/sap",
        "SAP_KEY": c.sap_key,
        "VDS_URL": f"{base_url}/vds",
        "VDS_USERNAME": c.vds_user,
        "VDS_PASSWORD": c.vds_password,
        "VDS_BASE_DN": config.vds_base_dn,
        **examples.environment(config, base_url),
    }


@dataclass
class SandboxHandle:
    base_url: str
    config: SandboxConfig
    stats: Stats

    def env(self) -> dict[str, str]:
        return environment(self.config, self.base_url)


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # The C parser, not h11: the sandbox's CPU per call lengthens every call it answers.
            http="httptools",
            # Hung requests must not hold a shutdown hostage.
            timeout_graceful_shutdown=1,
        )
    )


@contextlib.contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SandboxHandle]:
    """Serve the sandbox in a background thread; port 0 picks a free port."""
    config = config or SandboxConfig()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    app = create_app(config)
    server = _server(app, host, bound_port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"sandbox did not start on {host}:{bound_port}")
        time.sleep(0.005)
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield SandboxHandle(f"http://{url_host}:{bound_port}", config, app.state.gate.stats)
    finally:
        app.state.gate.close()
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8800) -> None:
    """Serve in the foreground until interrupted (for `dataload sandbox`).

    SIGTERM ends the process through the interpreter's exit, as Ctrl-C does, so that what the
    sandbox made on disk (the taxi files' folder) is removed by its atexit hook: uvicorn
    re-raises the signal once it has shut down, and the default action of SIGTERM would kill
    the process before that hook runs.
    """
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _server(create_app(config), host, port).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
