"""A throwaway PostgreSQL server on loopback, for tests, CI and benchmarks (target `postgres`).

``start()`` runs Debian's PostgreSQL binaries (``initdb`` + ``pg_ctl``) in a new temporary
directory, on a free port of 127.0.0.1 (and a Unix socket in that directory), with trust
authentication; as root it runs them as the ``postgres`` user, since PostgreSQL refuses to run as
root. ``stop()`` stops that server (``pg_ctl stop -m fast``, then the postmaster's pid if it is
still alive) and removes the directory. Nothing outside the directory is touched.

Command line (see ``pipelines.engines.servers``)::

    eval "$(python -m pipelines.engines.servers postgres start)"   # exports CONVOPT_PG_*
    python -m pipelines.engines.servers postgres status
    python -m pipelines.engines.servers postgres stop    # the server named by CONVOPT_PG_DATA

The environment variables are the ones the dbt profile (target ``postgres``) and
``convopt load-target --target postgres`` read: CONVOPT_PG_HOST, CONVOPT_PG_PORT, CONVOPT_PG_USER,
CONVOPT_PG_PASSWORD, CONVOPT_PG_DBNAME, plus CONVOPT_PG_DATA (the server's directory).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.engines.postgres import conninfo as libpq_conninfo

DEFAULT_DBNAME = "convopt"
DEFAULT_USER = "postgres"
SERVER_USER = "postgres"  # the OS user that runs the server when we are root
ENV_FILE = "convopt-pg.env"


class PgServerError(RuntimeError):
    """The server could not be found, started or stopped; the message says why."""


@dataclass(frozen=True)
class PgServer:
    data_dir: Path
    host: str
    port: int
    user: str = DEFAULT_USER
    password: str = ""
    dbname: str = DEFAULT_DBNAME

    @property
    def env(self) -> dict[str, str]:
        return {
            "CONVOPT_PG_HOST": self.host,
            "CONVOPT_PG_PORT": str(self.port),
            "CONVOPT_PG_USER": self.user,
            "CONVOPT_PG_PASSWORD": self.password,
            "CONVOPT_PG_DBNAME": self.dbname,
            "CONVOPT_PG_DATA": str(self.data_dir),
        }

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq connection string of this server's database (or of `dbname` on it)."""
        return libpq_conninfo(
            {
                "host": self.host,
                "port": self.port,
                "user": self.user,
                "password": self.password,
                "dbname": dbname or self.dbname,
            }
        )


def find_bindir() -> Path | None:
    """Folder holding initdb/pg_ctl: $CONVOPT_PG_BINDIR, else `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps the server binaries off PATH). None if absent."""
    candidates: list[Path] = []
    if os.environ.get("CONVOPT_PG_BINDIR"):
        candidates.append(Path(os.environ["CONVOPT_PG_BINDIR"]))
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(Path(p) for p in versions)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """The command as the `postgres` OS user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PgServerError(
            f"running as root but there is no '{SERVER_USER}' OS user to run PostgreSQL as "
            "(the Debian package creates it: apt-get install -y postgresql)"
        ) from exc
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command: list[str], what: str, cwd: Path, log: Path | None = None) -> None:
    # cwd: a directory the server user can read (the caller's may not be).
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        if log is not None and log.exists():
            detail += "\n--- " + str(log) + " ---\n" + log.read_text(errors="replace")[-4000:]
        raise PgServerError(f"{what} failed (exit {result.returncode}): {shlex.join(command)}\n{detail}")


def start(base_dir: Path | None = None, port: int | None = None, dbname: str = DEFAULT_DBNAME) -> PgServer:
    """initdb a new cluster in a temporary directory and start it on 127.0.0.1:`port` (a free one by default)."""
    bindir = find_bindir()
    if bindir is None:
        raise PgServerError(
            "no PostgreSQL server binaries (initdb, pg_ctl) found: install them "
            "(apt-get install -y postgresql) or set CONVOPT_PG_BINDIR"
        )
    data_dir = Path(tempfile.mkdtemp(prefix="convopt-pg-", dir=base_dir))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(data_dir, account.pw_uid, account.pw_gid)
    cluster = data_dir / "cluster"
    log = data_dir / "server.log"
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(cluster),
                "-U",
                DEFAULT_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
            data_dir,
        )
        for attempt in range(5):
            chosen = port or free_port()
            options = (
                f"-p {chosen} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC -c jit=off"
            )
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(cluster),
                        "-o",
                        options,
                        "-l",
                        str(log),
                        "-w",
                        "start",
                    ],
                    "pg_ctl start",
                    data_dir,
                    log,
                )
                break
            except PgServerError:
                if port is not None or attempt == 4:
                    raise
        server = PgServer(data_dir=data_dir, host="127.0.0.1", port=chosen, dbname=dbname)
        _create_database(server)
        (data_dir / ENV_FILE).write_text(
            "".join(f"export {key}={shlex.quote(value)}\n" for key, value in server.env.items())
        )
        return server
    except BaseException:
        with contextlib.suppress(Exception):
            _stop_dir(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        raise


def _create_database(server: PgServer) -> None:
    import psycopg

    admin = server.conninfo("postgres")
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                exists = conn.execute(
                    "select 1 from pg_database where datname = %s", [server.dbname]
                ).fetchone()
                if not exists:
                    conn.execute(f'create database "{server.dbname}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the server started in `data_dir` (from its pid file), None if it is not running."""
    pid_file = Path(data_dir) / "cluster" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stop_dir(data_dir: Path) -> None:
    cluster = data_dir / "cluster"
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    bindir = find_bindir()
    if bindir is not None:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
            cwd=data_dir,
        )
    # Still alive (pg_ctl missing or it failed): end the postmaster by its pid, and only that pid.
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast shutdown"
        time.sleep(0.2)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie or recycled pid is not our server: check the command name.
    try:
        return "postgres" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return True


def stop(data_dir: Path, remove: bool = True) -> None:
    """Stop the server started in `data_dir` (by `start`) and delete the directory."""
    data_dir = Path(data_dir)
    if not (data_dir / ENV_FILE).exists() and not (data_dir / "cluster").exists():
        raise PgServerError(f"{data_dir} is not a directory made by `servers postgres start`")
    _stop_dir(data_dir)
    if remove:
        shutil.rmtree(data_dir, ignore_errors=True)


def status(data_dir: Path) -> str:
    pid = postmaster_pid(Path(data_dir))
    if pid is not None and _pid_alive(pid):
        return f"running (pid {pid}, data {data_dir})"
    return f"not running (data {data_dir})"
