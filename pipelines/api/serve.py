"""Starting ``convopt serve``: the checks before listening (token or loopback, one server per landing
folder, a snapshot to answer from), then uvicorn until interrupted, then sealing the open landing files."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from pipelines.api.landing import open_dir
from pipelines.api.server import READ_TOKEN_ENV, TOKEN_ENV, create_app, is_loopback
from pipelines.api.service import ApiContext
from pipelines.api.snapshot import SnapshotError, current_snapshot_file, publish_snapshot, snapshot_path
from pipelines.warehouse import WarehouseLockedError

LOCK_FILE = "server.lock"


class ServeUsageError(ValueError):
    """The server cannot start as asked (exit 2)."""


def _hold_server_lock(landing: Path) -> int:
    folder = open_dir(landing)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ServeUsageError(
            f"another `convopt serve` already writes to the landing folder {landing}: one server per folder"
        ) from None
    return fd


def serve_api(
    *, host: str, port: int, warehouse: Path, landing: Path, log_level: str = "warning", console: Console
) -> None:
    """Check, then serve until interrupted (SIGINT/SIGTERM); ServeUsageError when it cannot start."""
    import uvicorn

    has_token = bool(os.environ.get(TOKEN_ENV) or os.environ.get(READ_TOKEN_ENV))
    if not has_token and not is_loopback(host):
        raise ServeUsageError(
            f"refusing to listen on {host} without a token: set {TOKEN_ENV} (and optionally {READ_TOKEN_ENV}), "
            "or listen on 127.0.0.1"
        )
    try:
        current_snapshot_file(snapshot_path(warehouse))
    except SnapshotError:
        if warehouse.exists():  # built before snapshots existed: publish one now if nothing writes
            try:
                info = publish_snapshot(warehouse)
                console.print(f"published a snapshot of build {escape(info.build_id)} ({info.finished_at})")
            except (SnapshotError, WarehouseLockedError, OSError) as exc:
                console.print(
                    f"[yellow]no snapshot yet[/yellow] ({escape(str(exc))}): reads answer 503 until one"
                )
            except Exception as exc:  # DuckDB lock errors and the like: reads wait for the next run
                console.print(f"[yellow]no snapshot yet[/yellow] ({escape(str(exc).splitlines()[0])})")
    lock_fd = _hold_server_lock(landing)
    ctx = ApiContext(warehouse, landing)
    try:
        app = create_app(ctx)
        console.print(
            f"convopt serve on http://{host}:{port} (docs: /docs); warehouse {warehouse}, landing {landing}"
            + ("" if has_token else "; no token: loopback only")
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level in ("info", "debug"))
    finally:
        ctx.close()  # seals the open landing files: the next ingest loads them at once
        os.close(lock_fd)
