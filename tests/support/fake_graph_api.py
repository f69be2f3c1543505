"""A fake Graph API for the Conversions API tests: a real HTTP server on 127.0.0.1, scripted per request.

It answers ``POST /{version}/{pixel_id}/events`` as Meta does: ``{"events_received": n, "messages": [],
"fbtrace_id": …}`` on success, the Graph error envelope otherwise. Each request takes the next scripted
action (default: answer normally); a normal answer is a 400 error when the batch holds an event_id listed in
``bad_events`` (so batch splitting can be tested) or an ``app`` event without ``app_data`` (as Meta does).
Every request is recorded, and ``accepted`` counts how
many times each event_id was taken in by a successful (or slow but processed) request.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Action:
    """What the server does with one request.

    kind: ``ok`` (answer normally), ``error`` (``status`` + ``error`` envelope), ``drop`` (read the request,
    close the connection without answering), ``slow`` (process it, then answer after ``delay`` seconds:
    past the client's read timeout), ``block`` (hold the request until ``release()``, never processing it).
    """

    kind: str = "ok"
    status: int = 200
    error: dict[str, Any] | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def ok() -> Action:
    return Action("ok")


def error(
    status: int,
    code: int,
    *,
    subcode: int | None = None,
    message: str = "An error occurred",
    error_type: str = "OAuthException",
    is_transient: bool = False,
    headers: dict[str, str] | None = None,
) -> Action:
    envelope: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "is_transient": is_transient,
    }
    if subcode is not None:
        envelope["error_subcode"] = subcode
    return Action("error", status=status, error=envelope, headers=headers or {})


def drop() -> Action:
    return Action("drop")


def slow(delay: float) -> Action:
    return Action("slow", delay=delay)


def block() -> Action:
    return Action("block")


def accept_then_block() -> Action:
    """Meta processes the request (its events count as accepted), then the answer is held until
    ``release()``: a client killed meanwhile never learns that the events arrived."""
    return Action("accept_then_block")


@dataclass
class RecordedRequest:
    path: str
    pixel_id: str | None
    raw_body: bytes
    event_ids: list[str]
    access_token: str | None
    test_event_code: str | None
    action: str
    status: int | None = None


class FakeGraphAPI:
    """Start with ``start()``, point the client at ``base_url``, script with ``script(...)``, stop with ``stop()``."""

    def __init__(self, api_version: str = "v24.0") -> None:
        self.api_version = api_version
        self.requests: list[RecordedRequest] = []
        self.accepted: Counter[str] = Counter()
        self.bad_events: dict[str, Action] = {}
        self.blocked = threading.Event()  # set when a request is being held by a ``block`` action
        self._release = threading.Event()
        self._actions: deque[Action] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------------------
    def start(self) -> FakeGraphAPI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-graph-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, in order; afterwards requests are answered normally."""
        with self._lock:
            self._actions.extend(actions)

    def reject_event(
        self, event_id: str, *, code: int = 100, subcode: int = 2804016, message: str | None = None
    ) -> None:
        """Answer 400 to any normal request whose batch contains ``event_id`` (Meta rejects the whole batch)."""
        self.bad_events[event_id] = error(
            400,
            code,
            subcode=subcode,
            message=message or f"Invalid parameter: user_data of event {event_id} is not hashed",
        )

    def release(self) -> None:
        """Let every held (``block``) request end: the connection is closed without an answer."""
        self._release.set()

    @property
    def bodies(self) -> list[bytes]:
        return [r.raw_body for r in self.requests]

    # -- request handling ------------------------------------------------------------------------------
    def _next_action(self) -> Action:
        with self._lock:
            return self._actions.popleft() if self._actions else ok()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _accept(self, event_ids: list[str]) -> None:
        with self._lock:
            self.accepted.update(event_ids)


def _handler_for(fake: FakeGraphAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout): nothing to answer to
                self.close_connection = True

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.strip("/").split("/")
            pixel_id = parts[1] if len(parts) == 3 and parts[2] == "events" else None
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            data = body.get("data") if isinstance(body, dict) else None
            event_ids = [str(e.get("event_id")) for e in data] if isinstance(data, list) else []
            action = fake._next_action()
            request = RecordedRequest(
                path=self.path,
                pixel_id=pixel_id,
                raw_body=raw,
                event_ids=event_ids,
                access_token=body.get("access_token") if isinstance(body, dict) else None,
                test_event_code=body.get("test_event_code") if isinstance(body, dict) else None,
                action=action.kind,
            )
            fake._record(request)
            fbtrace_id = "A" + secrets.token_hex(8)

            if action.kind == "drop":
                self.close_connection = True
                return
            if action.kind == "accept_then_block":
                fake._accept(event_ids)
            if action.kind in ("block", "accept_then_block"):
                fake.blocked.set()
                fake._release.wait(timeout=60)
                self.close_connection = True
                return
            if action.kind == "error":
                request.status = action.status
                self._answer(
                    action.status,
                    {"error": {**(action.error or {}), "fbtrace_id": fbtrace_id}},
                    action.headers,
                )
                return
            if pixel_id is None or parts[0] != fake.api_version:
                request.status = 400
                envelope = {"message": "Unknown path components", "type": "OAuthException", "code": 2500}
                self._answer(400, {"error": {**envelope, "fbtrace_id": fbtrace_id}})
                return
            if not isinstance(data, list) or not data or len(data) > 1000:
                request.status = 400
                envelope = {"message": "Invalid parameter", "type": "OAuthException", "code": 100}
                self._answer(400, {"error": {**envelope, "fbtrace_id": fbtrace_id}})
                return
            # Meta's rule: an app event needs app_data; one such event fails the whole request.
            if any(
                isinstance(e, dict) and e.get("action_source") == "app" and "app_data" not in e for e in data
            ):
                request.status = 400
                envelope = {
                    "message": "Invalid parameter: app_data is required for action_source app",
                    "type": "OAuthException",
                    "code": 100,
                }
                self._answer(400, {"error": {**envelope, "fbtrace_id": fbtrace_id}})
                return
            bad = next((fake.bad_events[e] for e in event_ids if e in fake.bad_events), None)
            if bad is not None:
                request.status = bad.status
                self._answer(bad.status, {"error": {**(bad.error or {}), "fbtrace_id": fbtrace_id}})
                return
            fake._accept(event_ids)
            if action.kind == "slow":
                time.sleep(action.delay)
            request.status = 200
            self._answer(200, {"events_received": len(event_ids), "messages": [], "fbtrace_id": fbtrace_id})

    return Handler
