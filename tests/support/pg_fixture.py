"""Session-scoped PostgreSQL for tests marked `postgres` (import `postgres_env` into a test module).

* CONVOPT_PG_HOST set (CI: `.ci/run` starts a server with `python -m pipelines.engines.servers
  postgres start` and exports it): that server is used.
* Otherwise, when PostgreSQL server binaries are installed: a throwaway server is started
  (pipelines.engines.servers.postgres) and stopped at the end of the session.
* Otherwise the tests are skipped, saying so.

Either way every session gets a database of its own (dropped at the end), so runs never see
each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from pipelines.engines.postgres import conninfo_from_env
from pipelines.engines.servers import postgres as pg_server


@pytest.fixture(scope="session")
def postgres_env() -> Iterator[dict[str, str]]:
    """CONVOPT_PG_* variables of a fresh, empty database on a running PostgreSQL."""
    psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    started: pg_server.PgServer | None = None
    if os.environ.get("CONVOPT_PG_HOST"):
        server_env = {key: value for key, value in os.environ.items() if key.startswith("CONVOPT_PG_")}
    else:
        if pg_server.find_bindir() is None:
            pytest.skip(
                "no PostgreSQL server binaries installed (initdb/pg_ctl; apt-get install postgresql) "
                "and CONVOPT_PG_HOST not set"
            )
        started = pg_server.start()
        server_env = started.env
    dbname = f"convopt_test_{uuid.uuid4().hex[:12]}"
    admin = conninfo_from_env({**server_env, "CONVOPT_PG_DBNAME": "postgres"})
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'create database "{dbname}"')
        yield {**server_env, "CONVOPT_PG_DBNAME": dbname}
    finally:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{dbname}" with (force)')
        finally:
            if started is not None:
                pg_server.stop(started.data_dir)
