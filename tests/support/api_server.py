"""For the API tests: `convopt serve` started as a real process on a free loopback port, and a client for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log: Path

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def kill_9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def start_server(
    warehouse: Path,
    landing: Path,
    *,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    log: Path,
    wait: bool = True,
) -> Server:
    """Start `convopt serve` and wait until it answers /api/health."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVOPT_API_", "META_"))}
    full_env.update(env or {})
    out = log.open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "pipelines.cli", "serve", "--host", host, "--port", str(port)),
            *("--warehouse", str(warehouse), "--landing", str(landing)),
        ],
        cwd=REPO,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    server = Server(process, f"http://127.0.0.1:{port}", log)
    if not wait:
        return server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"convopt serve exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/api/health", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"convopt serve did not answer within 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def running_server(warehouse: Path, landing: Path, **kwargs) -> Iterator[Server]:
    server = start_server(warehouse, landing, **kwargs)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
