"""The read-only snapshot of the marts that ``convopt serve`` answers from.

DuckDB lets one process write a file, or many processes read it, never both: a server reading the
warehouse itself would block every scheduled build (and be blocked by it). So after each successful
``dbt build``, ``convopt run`` copies the marts into a new DuckDB file in the snapshot folder beside the
warehouse (``warehouse/convopt.snapshots/``) and swaps it in with one ``rename`` of the ``current``
link: a reader sees the previous snapshot or the new one, never half of one. A running build, or a
failed one, leaves the last good snapshot in place. Each snapshot file has its own name and is never
rewritten, so a reader that opened the previous one keeps a consistent view until it reopens; the
publisher removes files older than the previous snapshot.

The snapshot holds every table and view of the ``marts`` schema (as tables), the Meta delivery state
per conversion (``intermediate.int_meta_delivery_state``, so a dry-run optimize can be planned from it),
the build log (``audit.dbt_build_log``) and one row in ``snapshot.build``: the dbt invocation id and
finish time of the build it reflects, and when it was published.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.report.build_log import latest_build

SNAPSHOTS_SUFFIX = ".snapshots"
CURRENT = "current"
KEEP_SNAPSHOTS = 2  # the current one and the previous one (a reader may still be on it)
# Besides every relation of the `marts` schema: (schema, name) copied when the warehouse has them.
EXTRA_RELATIONS = (("intermediate", "int_meta_delivery_state"), ("audit", "dbt_build_log"))


class SnapshotError(RuntimeError):
    """No snapshot can be published (no build recorded) or read (none published yet)."""


@dataclass(frozen=True)
class BuildInfo:
    """Which build a snapshot reflects."""

    build_id: str
    finished_at: str  # ISO-8601, UTC
    published_at: str


def snapshot_dir(warehouse: str | os.PathLike[str]) -> Path:
    """The snapshot folder of a warehouse: ``warehouse/convopt.duckdb`` → ``warehouse/convopt.snapshots/``."""
    path = Path(warehouse)
    return path.with_name(path.name.removesuffix(".duckdb") + SNAPSHOTS_SUFFIX)


def snapshot_path(warehouse: str | os.PathLike[str]) -> Path:
    """The link to the current snapshot file (``<snapshot folder>/current``)."""
    return snapshot_dir(warehouse) / CURRENT


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def publish_snapshot(warehouse: str | os.PathLike[str]) -> BuildInfo:
    """Copy the marts of ``warehouse`` into a new snapshot file and swap it in atomically.

    The warehouse is opened read-only (so call it while nothing writes, e.g. right after a build). The
    new file is written beside the snapshot under a temporary name, closed (checkpointed: no WAL left),
    synced, and renamed over the previous one. Raises SnapshotError when the warehouse records no build.
    """
    warehouse = Path(warehouse)
    folder = snapshot_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    tmp = folder / f".{stamp}-{secrets.token_hex(4)}.tmp"  # hidden until complete
    final = folder / f"{stamp}-{secrets.token_hex(4)}.duckdb"
    link = folder / f".{CURRENT}.{secrets.token_hex(4)}.tmp"
    source = duckdb.connect(str(warehouse), read_only=True)
    try:
        build = latest_build(source)
        if build is None:
            raise SnapshotError(f"{warehouse} records no dbt build: run `convopt run` first")
        relations = source.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema = 'marts' order by table_name"
        ).fetchall()
        present = set(
            source.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_catalog = current_database()"
            ).fetchall()
        )
    finally:
        source.close()
    relations += [r for r in EXTRA_RELATIONS if r in present]
    published = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    info = BuildInfo(str(build["invocation_id"]), str(build["finished_at"]), published)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"attach {_literal(str(warehouse.resolve()))} as wh (read_only)")
            for schema in sorted({s for s, _ in relations}):
                con.execute(f"create schema {_quoted(schema)}")
            for schema, name in relations:
                qualified = f"{_quoted(schema)}.{_quoted(name)}"
                con.execute(f"create table {qualified} as select * from wh.{qualified}")
            con.execute("detach wh")
            con.execute("create schema snapshot")
            con.execute(
                "create table snapshot.build as select $build_id as build_id, $finished_at as finished_at, "
                "$published_at as published_at",
                {"build_id": info.build_id, "finished_at": info.finished_at, "published_at": published},
            )
            con.execute("checkpoint")
        finally:
            con.close()
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, final)
        os.symlink(final.name, link)
        os.replace(link, folder / CURRENT)  # the one rename readers see
        _fsync_dir(folder)
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".wal"), link):
            leftover.unlink(missing_ok=True)
        raise
    _remove_old_snapshots(folder)
    return info


def _remove_old_snapshots(folder: Path) -> None:
    """Delete all but the newest KEEP_SNAPSHOTS snapshot files (never the current one)."""
    current = (folder / CURRENT).resolve()
    files = sorted(folder.glob("*.duckdb"), reverse=True)  # names start with the publish time
    for old in files[KEEP_SNAPSHOTS:]:
        if old.resolve() != current:
            old.unlink(missing_ok=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_snapshot_file(link: Path) -> Path:
    """The snapshot file the ``current`` link names now; SnapshotError if none was published."""
    try:
        return link.parent / os.readlink(link)
    except (FileNotFoundError, NotADirectoryError):
        raise SnapshotError(
            "no snapshot of the marts yet: `convopt run` publishes one after each successful build "
            "(or run `convopt serve --publish` once on a built warehouse)"
        ) from None


def open_snapshot(file: Path) -> tuple[duckdb.DuckDBPyConnection, BuildInfo]:
    """A read-only connection to one snapshot file and the build it reflects."""
    con = duckdb.connect(str(file), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    row = con.execute("select build_id, finished_at, published_at from snapshot.build").fetchall()[0]
    return con, BuildInfo(*row)
