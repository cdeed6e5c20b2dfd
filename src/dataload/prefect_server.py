"""A Prefect server in the background: the API and UI that `run`, `serve` and `demo` use.

`PrefectServer` is one `prefect server start` child process in a session of its own (Ctrl-C in
the terminal reaches us, not it), with its own PREFECT_HOME and its output in a log file, so its
startup noise stays out of the user's terminal. Tests and benchmarks start one for themselves.

`ManagedPrefectServer` is the local server managed like the embedded PostgreSQL: detached, its
state (database, log, pid and port) in `DATALOAD_HOME/prefect`, its port chosen at first start
and kept, started by the first command that needs it and reused by the later ones, stopped by
`dataload server stop`. Commands never rely on Prefect's ephemeral server, which takes 14-27 s
to start on every command here and timed out under load.

A server is ours only when it says so: its UI calls its own API (PREFECT_SERVER_UI_API_URL,
which Prefect would otherwise derive from port 4200 whatever port the server has), and before a
command uses the server it checks that the one answering on the port runs with this home as its
PREFECT_HOME (`/api/admin/settings`), not merely that something answers `/health`. Two homes
starting at the same moment may both find a port free; the one whose server then cannot bind it
starts again on another port, so they never share a server.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = [
    "DEFAULT_PORT",
    "ManagedPrefectServer",
    "ManagedStatus",
    "PrefectServer",
    "PrefectServerError",
    "free_port",
    "port_is_free",
    "signal_group",
    "use_prefect_api",
]

#: How long a first start may take (database migrations on a slow machine included).
DEFAULT_START_TIMEOUT = 120.0
#: The port the managed server asks for at its first start (Prefect's usual one).
DEFAULT_PORT = 4200


class PrefectServerError(RuntimeError):
    """The background Prefect server could not be started."""


class PortTaken(PrefectServerError):
    """Another program took the port the server was launched on, before the server bound it."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # As the server will: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class PrefectServer:
    """`prefect server start` on `host:port` with PREFECT_HOME=`home`, logging to `home`/server.log.

    `services=False` runs only the API and UI (no scheduler or other loop services): enough for
    flows run in-process, and lighter on a busy machine.
    """

    home: Path
    port: int
    host: str = "127.0.0.1"
    services: bool = True
    #: The address browsers reach the UI at (a reverse proxy's), when not its own: links in
    #: automations use it, and so does the UI to call the API (`<ui_url>/api`).
    ui_url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def public_url(self) -> str:
        return (self.ui_url or self.url).rstrip("/")

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start the server and wait until its API answers; raises PrefectServerError if not."""
        self.launch()
        self.wait_ready(timeout=timeout)

    def launch(self) -> None:
        """Start the server process without waiting for it (see `wait_ready`)."""
        if not port_is_free(self.port, self.host):
            raise PortTaken(f"port {self.port} on {self.host} is already in use")
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "prefect", "server", "start"]
        command += ["--host", self.host, "--port", str(self.port)]
        if not self.services:
            command.append("--no-services")
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # Its own UI: the links automations send (`{{ flow_run|ui_url }}`) point at it.
            "PREFECT_UI_URL": self.public_url,
            # And the UI calls its own API: by default Prefect derives the UI's API address
            # from PREFECT_SERVER_API_PORT (4200), not from the --port it listens on.
            "PREFECT_SERVER_UI_API_URL": f"{self.public_url}/api",
        }
        # The server must not try to talk to another server, nor inherit a client's logging.
        env.pop("PREFECT_API_URL", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Wait until the API answers; stops the server and raises PrefectServerError if not."""
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if not port_is_free(self.port, self.host):
                    raise PortTaken(
                        f"port {self.port} on {self.host} was taken by another program while "
                        "the Prefect server started"
                    )
                raise PrefectServerError(
                    f"the Prefect server exited with code {self.process.returncode} while "
                    f"starting; see {self.log_path}:\n{self._log_tail()}"
                )
            if self.answers_as_ours():
                return
            time.sleep(0.25)
        raise PrefectServerError(
            f"the Prefect server did not answer on {self.url} within {timeout:.0f} s; "
            f"see {self.log_path}"
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def answers_as_ours(self) -> bool:
        """Whether the server answering on the port is this one: a Prefect server whose
        PREFECT_HOME is `home` (another home's server, or any other program, is not)."""
        return serves_home(self.api_url, self.home)

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the server and every process it started (its whole session)."""
        if self.process is None or self.process.poll() is not None:
            return
        signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)

    @staticmethod
    def stop_recorded(state: dict[str, object], *, timeout: float = 15.0) -> bool:
        """Stop a server started by an earlier process from its recorded pid; False if it was
        gone."""
        pid = int(state["pid"])  # type: ignore[call-overload]
        if not _is_prefect_server(pid):
            return False
        signal_group(pid, signal.SIGTERM)
        # Done when every process of its session has exited, not only the first one: a
        # command that follows (`server start`, a test) must find the port and the files free.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            signal_group(pid, signal.SIGKILL)
        return True

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serves_home(api_url: str, home: Path) -> bool:
    """Whether the Prefect API at `api_url` is a server running with PREFECT_HOME `home`."""
    try:
        answer = httpx.get(f"{api_url}/admin/settings", timeout=2.0)
        return answer.status_code == 200 and Path(answer.json().get("home", "")) == home
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by `pid`, if it still exists. A child started in a session
    of its own leads a group whose id is its pid: signalling the group reaches the processes it
    started too, and nothing else."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pid: int) -> bool:
    """Whether a process of the session led by `pid` is still running."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child, or it stays a zombie
    except ChildProcessError:
        pass
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_prefect_server(pid: int) -> bool:
    """Whether `pid` is still a Prefect server (not a recycled pid of another program)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        # Popen returns while the child may still be inside execve, when its command line
        # reads empty for a moment (a server just launched looked dead): read it again.
        for _ in range(40):
            if raw:
                break
            time.sleep(0.05)
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return not Path("/proc").is_dir()  # no /proc (macOS): the pid exists, trust the record
    cmdline = raw.split(b"\0")
    return b"prefect" in raw and b"server" in cmdline


@dataclass(frozen=True)
class ManagedStatus:
    """What `dataload server status` says: whether it runs, where, and where its state is."""

    running: bool
    healthy: bool
    pid: int | None
    port: int | None
    home: Path

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def api_url(self) -> str | None:
        return f"{self.url}/api" if self.port else None


@dataclass(frozen=True)
class ManagedPrefectServer:
    """The local Prefect server whose state lives in `home` (DATALOAD_HOME/prefect).

    `ui_url`: the address browsers reach its UI at, when not its own (DATALOAD_UI_URL)."""

    home: Path
    ui_url: str | None = None

    #: Launches on another port when the chosen one was taken before the server bound it.
    RELAUNCHES = 3

    @classmethod
    def of(cls, dataload_home: Path, ui_url: str | None = None) -> ManagedPrefectServer:
        return cls(dataload_home / "prefect", ui_url)

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def status(self) -> ManagedStatus:
        state = self._read_state()
        pid, port = state.get("pid"), state.get("port")
        running = pid is not None and _is_prefect_server(int(pid))  # type: ignore[call-overload]
        healthy = running and port is not None and self._server(int(port)).answers_as_ours()  # type: ignore[call-overload]
        return ManagedStatus(
            running=running,
            healthy=healthy,
            pid=int(pid) if running else None,  # type: ignore[call-overload]
            port=int(port) if port is not None else None,  # type: ignore[call-overload]
            home=self.home,
        )

    def start(
        self,
        *,
        timeout: float = DEFAULT_START_TIMEOUT,
        port: int | None = None,
        on_launch: Callable[[int], None] | None = None,
        wait: bool = True,
    ) -> tuple[ManagedStatus, bool]:
        """Start the server unless it runs already; wait until it answers (unless `wait` is
        False: then call `wait_ready` before using it).

        Returns its status and whether this call started it. `port` is used for a first start
        (later starts keep the recorded port while it is free); `on_launch(port)` is called
        when a new process is launched, before the wait (a first start takes 15-30 s), and
        again if it must start over on another port.
        """
        with self._lock():
            status = self.status()
            started = not status.running
            if started:
                wanted = status.port or port or DEFAULT_PORT
                self._launch(wanted if port_is_free(wanted) else free_port(), on_launch)
        if wait:
            return self.wait_ready(timeout=timeout, on_launch=on_launch), started
        return self.status(), started

    def wait_ready(
        self,
        *,
        timeout: float = DEFAULT_START_TIMEOUT,
        on_launch: Callable[[int], None] | None = None,
    ) -> ManagedStatus:
        """Wait until the running server answers as this home's (it may still be starting);
        returns its status. A server that could not bind its port because another program
        took it first (another home's server starting at the same moment) is started again on
        a free port, and `on_launch(port)` called."""
        deadline = time.monotonic() + timeout
        relaunches = 0
        while not (status := self.status()).healthy:
            if not status.running:
                port_taken = status.port is not None and not port_is_free(status.port)
                if port_taken and relaunches < self.RELAUNCHES:
                    relaunches += 1
                    self._relaunch(on_launch)
                    continue
                tail = self._server(status.port or 0)._log_tail(5)
                raise PrefectServerError(
                    f"the Prefect server is not running (it may have failed to start: see "
                    f"{self.log_path}); start it with `dataload server start`"
                    + (f"; its log ends: {' / '.join(tail.splitlines())}" if tail else "")
                )
            if time.monotonic() > deadline:
                raise PrefectServerError(
                    f"the Prefect server on {status.url} does not answer as this home's server "
                    f"({self.home}); see {self.log_path}, or restart it with "
                    "`dataload server stop` and `dataload server start`"
                )
            time.sleep(0.25)
        return status

    def _relaunch(self, on_launch: Callable[[int], None] | None) -> None:
        """Launch again on a free port, unless another command of this home did already."""
        with self._lock():
            if not self.status().running:
                self._launch(free_port(), on_launch)

    def _launch(self, port: int, on_launch: Callable[[int], None] | None) -> None:
        server = self._server(port)
        server.launch()
        assert server.process is not None
        self._write_state({"pid": server.process.pid, "port": port, "host": server.host})
        if on_launch:
            on_launch(port)

    def stop(self) -> bool:
        """Stop the server; False when it was not running. The port stays recorded."""
        with self._lock():
            state = self._read_state()
            if state.get("pid") is None:
                return False
            stopped = PrefectServer.stop_recorded(state)
            self._write_state({"port": state.get("port")})
            return stopped

    def _server(self, port: int) -> PrefectServer:
        return PrefectServer(self.home, port, ui_url=self.ui_url)

    def _read_state(self) -> dict[str, object]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict[str, object]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state))

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two commands starting at once must not launch two servers.
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "server.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def use_prefect_api(
    dataload_home: Path,
    *,
    on_launch: Callable[[int], None] | None = None,
    ui_url: str | None = None,
) -> tuple[str, bool]:
    """Point this process at a Prefect API before Prefect is imported; returns (url, external).

    PREFECT_API_URL, when set, is used as it is (external: True). Otherwise the managed server
    is started or reused and PREFECT_API_URL set to it. Either way the ephemeral server is
    forbidden, so a command never waits for one. `ui_url` (DATALOAD_UI_URL), the address
    people reach the UI at, becomes PREFECT_UI_URL: the links Prefect makes point there.
    """
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    if ui_url:
        os.environ["PREFECT_UI_URL"] = ui_url.rstrip("/")
    if external := os.environ.get("PREFECT_API_URL"):
        try:  # any answer will do: Prefect Cloud answers 401 to a request without its key
            httpx.get(f"{external.rstrip('/')}/health", timeout=5.0)
        except httpx.TransportError as exc:
            raise PrefectServerError(
                f"the Prefect API in PREFECT_API_URL ({external}) does not answer "
                f"({type(exc).__name__}): check PREFECT_API_URL, or unset it to use the local "
                "server (`dataload server`)"
            ) from None
        return external, True
    status, _ = ManagedPrefectServer.of(dataload_home, ui_url).start(on_launch=on_launch)
    assert status.api_url is not None
    os.environ["PREFECT_API_URL"] = status.api_url
    return status.api_url, False
