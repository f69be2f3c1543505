"""``convopt serve``: the conversions API over HTTP (FastAPI on uvicorn), a thin layer over
:mod:`pipelines.api.service`.

* Auth: ``Authorization: Bearer <token>``. ``CONVOPT_API_TOKEN`` may do everything; ``CONVOPT_API_READ_TOKEN``
  (if set) only GETs. Without any token the server refuses to listen on anything but loopback, and then
  answers every local caller. ``/docs`` and ``/openapi.json`` need no token (they hold no data).
* Reads answer from the published snapshot and say which build it reflects in the headers
  ``Convopt-Build-Id`` and ``Convopt-Build-Finished-At``.
* Errors are JSON ``{"error": {"status", "message", ...}}``, never a stack trace (those go to the log).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as _StarletteJSONResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.api.collect import MAX_BATCH_ROWS, MAX_BODY_BYTES, Outcomes, RepeatedKey
from pipelines.api.reads import Answer, ApiUsageError, BusyError
from pipelines.api.service import ApiContext
from pipelines.api.snapshot import SnapshotError

log = logging.getLogger("convopt.api")

TOKEN_ENV = "CONVOPT_API_TOKEN"
READ_TOKEN_ENV = "CONVOPT_API_READ_TOKEN"
BUILD_ID_HEADER = "Convopt-Build-Id"
BUILD_FINISHED_HEADER = "Convopt-Build-Finished-At"
SMALL_BODY_BYTES = 1 << 20  # optimize and rule requests: ids and fields, never rows
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")

_ROW_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": (
            f"One row (a JSON object), a batch (a JSON array), or NDJSON (one object per line, content type "
            f"application/x-ndjson); at most {MAX_BATCH_ROWS:,} rows and {MAX_BODY_BYTES >> 20} MiB."
        ),
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
                "example": {
                    "person_id": "0b7c5c38-4d0e-4f0e-9d57-3f9a1f6f0c11",
                    "conversion_type": "purchase",
                    "conversion_source": "capi",
                    "value_cents": 2999,
                    "currency": "USD",
                    "campaign_id": "campaign_123",
                },
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


class JSONResponse(_StarletteJSONResponse):
    """JSON written by orjson (a batch answer lists up to 10,000 rows)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # an integer beyond 64 bits
            return super().render(content)


# Every ASCII digit to "0", everything else to a space: 20 zeros in a row then mark a run of 20 digits,
# possibly an integer beyond 64 bits, which orjson would read as a float. (A regular expression over a
# batch's body costs ten times what orjson's whole parse does.)
_DIGITS_AS_ZEROS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_TWENTY_DIGITS = b"0" * 20


def _loads(text: str) -> Any:
    """Parse JSON text as the standard library does, with orjson's speed where the two agree.

    orjson refuses what the standard library accepts (NaN and Infinity, lone surrogate escapes) and
    reads an integer beyond 64 bits as a float: a text with 20 digits in a row, a text orjson refuses,
    and every invalid text is parsed by the standard library, so values and error messages are its own."""
    if _TWENTY_DIGITS not in text.encode(errors="surrogatepass").translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


class _Pairs(dict):
    """A parsed JSON object that remembers the first key its text gave twice (``repeated``)."""

    repeated: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    found = _Pairs(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        found.repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return found


def _may_repeat_keys(body: bytes, rows: list[Any]) -> bool:
    """Whether some object of the body may give a key twice (parsing keeps the last value silently).

    Without an escaped quote in the body, every quote char delimits a key or a string value; writing
    the parsed rows back gives one pair of quotes per key and string value they hold, so the two
    counts differ exactly when parsing dropped a repeated key (and its value)."""
    if b"\\" in body and (b'\\"' in body or b"\\u0022" in body):  # one fast scan for most bodies
        return True
    try:
        return orjson.dumps(rows).count(b'"') != body.count(b'"')
    except TypeError:  # an integer beyond 64 bits, or a lone surrogate
        return True


def _repeated_keys(text: str, lines: list[str] | None) -> dict[int, str]:
    """Row (0-based) -> the first key its object gives twice, for the rows of a JSON body (``lines``
    None) or of NDJSON lines; only a row's own keys count, as in ``convopt ingest``."""
    if lines is None:
        parsed = json.loads(text, object_pairs_hook=_pairs)
        rows = parsed if isinstance(parsed, list) else [parsed]
    else:
        rows = [json.loads(line, object_pairs_hook=_pairs) for line in lines]
    return {
        n: row.repeated for n, row in enumerate(rows) if isinstance(row, _Pairs) and row.repeated is not None
    }


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, **extra}}, status, headers=headers)


def _build_headers(answer: Answer) -> dict[str, str]:
    if answer.build is None:
        return {}
    return {BUILD_ID_HEADER: answer.build.build_id, BUILD_FINISHED_HEADER: answer.build.finished_at}


def _json(answer: Answer, status: int = 200) -> JSONResponse:
    return JSONResponse(answer.as_json(), status, headers=_build_headers(answer))


def create_app(ctx: ApiContext, *, token: str | None = None, read_token: str | None = None) -> FastAPI:
    """The ASGI app over ``ctx``; ``token``/``read_token`` default to the environment's."""
    from pipelines.api import service

    # An empty token counts as none, whether passed or from the environment.
    token = (token if token is not None else os.environ.get(TOKEN_ENV)) or None
    read_token = (read_token if read_token is not None else os.environ.get(READ_TOKEN_ENV)) or None
    app = FastAPI(
        title="convopt conversions API",
        version="1",
        description=(
            "The feature document's REST and service API over the convopt warehouse. Reads answer from the "
            "snapshot published after each successful `convopt run`; posted rows are landed durably and "
            "appear in the reads after the next run."
        ),
    )

    def require(request: Request, write: bool) -> None:
        if token is None and read_token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>")
        given_bytes = given.strip().encode()
        if token is not None and hmac.compare_digest(given_bytes, token.encode()):
            return
        if read_token is not None and hmac.compare_digest(given_bytes, read_token.encode()):
            if write:
                raise ApiError(403, "this token may only read (GET); writes need CONVOPT_API_TOKEN's token")
            return
        raise ApiError(401, "invalid bearer token")

    # Coroutines, not functions: FastAPI runs a plain function dependency in a worker thread, a hop that
    # cost more than the check itself on every request.
    async def reader(request: Request) -> None:
        require(request, write=False)

    async def writer(request: Request) -> None:
        require(request, write=True)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers, **exc.extra)

    @app.exception_handler(ApiUsageError)
    async def usage_error(_: Request, exc: ApiUsageError) -> JSONResponse:
        extra = {"field": exc.field} if exc.field else {}
        return _error(exc.status, str(exc), **extra)

    @app.exception_handler(SnapshotError)
    async def no_snapshot(_: Request, exc: SnapshotError) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "60"})

    @app.exception_handler(BusyError)
    async def busy(_: Request, exc: BusyError) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "30"})

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return _error(422, "invalid request parameters", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (logged by the server)")

    # ---- collect ------------------------------------------------------------------------------------

    async def read_body(request: Request, limit: int) -> bytes:
        """The request body, or ApiError 413 beyond ``limit`` bytes (checked while it arrives)."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(413, f"request body of {int(length):,} bytes: at most {limit:,}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, f"request body larger than {limit:,} bytes")
        return bytes(body)

    async def read_rows(request: Request) -> tuple[list[Any], bool]:
        """The posted rows and whether the body was a single object; ApiError for a bad body."""
        body = await read_body(request, MAX_BODY_BYTES)
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"request body is not UTF-8 (byte {exc.start})") from None
        if content_type in NDJSON_TYPES:
            rows: list[Any] = []
            for number, line in enumerate(text.split("\n"), start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(_loads(line))
                except json.JSONDecodeError as exc:
                    raise ApiError(
                        400, f"NDJSON line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
                    ) from None
            single = False
        else:  # JSON, whatever else the content type says (curl -d sends a form type)
            try:
                parsed = _loads(text)
            except json.JSONDecodeError as exc:
                raise ApiError(
                    400, f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                ) from None
            single = not isinstance(parsed, list)
            rows = [parsed] if single else parsed
        if not rows:
            raise ApiError(422, "no rows in the request body")
        if len(rows) > MAX_BATCH_ROWS:
            raise ApiError(413, f"{len(rows):,} rows in one request: at most {MAX_BATCH_ROWS:,}")
        if _may_repeat_keys(body, rows):
            lines = (
                [line for line in text.split("\n") if line.strip()] if content_type in NDJSON_TYPES else None
            )
            for n, key in _repeated_keys(text, lines).items():
                rows[n] = RepeatedKey(key)
        return rows, single

    async def collect(stream: str, request: Request) -> JSONResponse:
        rows, single = await read_rows(request)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()

        def done(result: object) -> None:
            def settle() -> None:
                if not future.done():
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)

            loop.call_soon_threadsafe(settle)

        ctx.collector.submit(stream, rows, done)
        outcomes: Outcomes = await future  # type: ignore[assignment]
        if single:
            (outcome,) = outcomes.rows()
            if outcome.status == "rejected":
                return _error(
                    422, f"row 1 rejected: {outcome.errors[0]['message']}", row=1, errors=outcome.errors
                )
            return JSONResponse(outcome.as_json(), 200 if outcome.status == "replayed" else 201)
        counts = outcomes.counts()
        status = 201 if counts["rejected"] == 0 else (422 if counts["rejected"] == len(outcomes) else 207)
        # The answer is written from the outcomes' columns, not built row by row.
        head = orjson.dumps(counts)[:-1] + b',"rows":'
        return Response(head + outcomes.rows_json() + b"}", status, media_type="application/json")

    @app.post(
        "/api/conversions",
        tags=["collect"],
        summary="trackConversionEvent: land one conversion or a batch",
        openapi_extra=_ROW_BODY_DOC,
        dependencies=[Depends(writer)],
        status_code=201,
    )
    async def post_conversions(request: Request) -> JSONResponse:
        """Validated as `convopt ingest` validates a landing file; accepted rows are synced to the landing
        zone before the answer, which carries each row's `event_id` and the conversion's warehouse `id`.
        One object: 201 (200 for a replay of a known (conversion_type, event_id)) or 422. A batch: 201, 207
        when some rows were rejected (listed with row, field and rule), 422 when all were."""
        return await collect("conversions", request)

    @app.post(
        "/api/events",
        tags=["collect"],
        summary="Land behavioural events (funnel steps)",
        openapi_extra=_ROW_BODY_DOC,
        dependencies=[Depends(writer)],
        status_code=201,
    )
    async def post_events(request: Request) -> JSONResponse:
        """Behavioural events in the events contract (event_id, person_id, event_name, event_time, ...);
        answered as POST /api/conversions, keyed by event_id."""
        return await collect("events", request)

    # ---- conversions ----------------------------------------------------------------------------------

    @app.get("/api/conversions", tags=["conversions"], dependencies=[Depends(reader)])
    def get_conversions(
        person_id: str | None = None,
        conversion_type: str | None = None,
        campaign_id: str | None = None,
        since: str | None = Query(None, description="From this date or time (inclusive, UTC)."),
        until: str | None = Query(None, description="Before this date or time (exclusive, UTC)."),
        limit: int = Query(50, ge=1, le=1000),
        cursor: str | None = Query(None, description="next_cursor of the previous page."),
        summary: bool = Query(False, description="true: getConversionSummary for person_id (or everybody)."),
    ) -> JSONResponse:
        """listConversions (latest first, paged by cursor), or with `summary=true` getConversionSummary."""
        if summary:
            return _json(service.get_conversion_summary(ctx, person_id))
        answer = service.list_conversions(
            ctx,
            person_id=person_id,
            conversion_type=conversion_type,
            campaign_id=campaign_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        return _json(answer)

    @app.post("/api/conversions/optimize", tags=["optimize"], dependencies=[Depends(writer)])
    async def optimize_many(request: Request) -> JSONResponse:
        """optimizeBatchConversions: `{"conversion_ids": [...]}` or a filter `{"person_id", "conversion_type",
        "campaign_id", "since", "until", "limit"}`; optional `"dry_run"` (default: dry run unless the
        server has META_ACCESS_TOKEN). Sent through `convopt export-meta`'s exactly-once delivery log."""
        try:
            body = json.loads(await read_body(request, SMALL_BODY_BYTES) or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc.msg}") from None
        if not isinstance(body, dict):
            raise ApiError(422, "expected a JSON object with conversion_ids or filter fields")
        allowed = {
            "conversion_ids",
            "person_id",
            "conversion_type",
            "campaign_id",
            "since",
            "until",
            "limit",
            "dry_run",
        }
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(
                422, f"unknown field(s) {', '.join(unknown)}: expected {', '.join(sorted(allowed))}"
            )
        dry_run = body.get("dry_run")
        if dry_run is not None and not isinstance(dry_run, bool):
            raise ApiError(422, "dry_run: expected true or false", field="dry_run")
        ids = body.get("conversion_ids")
        if ids is not None and not isinstance(ids, list):
            raise ApiError(422, "conversion_ids: expected a list of ids", field="conversion_ids")
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ApiError(422, "limit: expected a whole number", field="limit")
        answer = await asyncio.to_thread(
            service.optimize_batch_conversions,
            ctx,
            ids,
            person_id=body.get("person_id"),
            conversion_type=body.get("conversion_type"),
            campaign_id=body.get("campaign_id"),
            since=body.get("since"),
            until=body.get("until"),
            limit=limit,
            dry_run=dry_run,
        )
        return _json(answer)

    @app.get("/api/conversions/{conversion_id}", tags=["conversions"], dependencies=[Depends(reader)])
    def get_conversion(conversion_id: str) -> JSONResponse:
        """getConversionEvent: one conversion by its id."""
        return _json(service.get_conversion_event(ctx, conversion_id))

    @app.post("/api/conversions/{conversion_id}/optimize", tags=["optimize"], dependencies=[Depends(writer)])
    def optimize_one(conversion_id: str, dry_run: bool | None = None) -> JSONResponse:
        """optimizeConversionForMeta: one conversion through the export's delivery log (`?dry_run=true` to
        only plan it; the default is a dry run when the server has no META_ACCESS_TOKEN)."""
        return _json(service.optimize_conversion_for_meta(ctx, conversion_id, dry_run=dry_run))

    # ---- funnels and metrics --------------------------------------------------------------------------

    @app.get("/api/funnels", tags=["funnels"], dependencies=[Depends(reader)])
    def get_funnels(person_id: str, funnel_name: str | None = None) -> JSONResponse:
        """getFunnelsByPerson: the person's funnel attempts, each with its steps."""
        return _json(service.get_funnels_by_person(ctx, person_id, funnel_name=funnel_name))

    @app.get("/api/funnels/stats", tags=["funnels"], dependencies=[Depends(reader)])
    def get_funnel_stats(
        funnel_name: str | None = None,
        period_type: str = "all_time",
        campaign_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = Query(1000, ge=1, le=1000),
    ) -> JSONResponse:
        """getFunnelStats: step counts, drop-off and conversion rates per funnel (funnel_stats)."""
        answer = service.get_funnel_stats(
            ctx,
            funnel_name=funnel_name,
            period_type=period_type,
            campaign_id=campaign_id,
            since=since,
            until=until,
            limit=limit,
        )
        return _json(answer)

    @app.get("/api/funnels/{funnel_id}/steps", tags=["funnels"], dependencies=[Depends(reader)])
    def get_steps(funnel_id: str) -> JSONResponse:
        """getFunnelSteps: the steps of one funnel attempt."""
        return _json(service.get_funnel_steps(ctx, funnel_id))

    @app.get("/api/metrics", tags=["metrics"], dependencies=[Depends(reader)])
    def get_metrics(
        period_type: str = "daily",
        attribution_model: str = "last_touch",
        campaign_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = Query(1000, ge=1, le=1000),
    ) -> JSONResponse:
        """getConversionMetrics: conversion_metrics per campaign and period for one attribution model."""
        answer = service.get_conversion_metrics(
            ctx,
            period_type=period_type,
            attribution_model=attribution_model,
            campaign_id=campaign_id,
            since=since,
            until=until,
            limit=limit,
        )
        return _json(answer)

    # ---- optimization rules ---------------------------------------------------------------------------

    @app.get("/api/optimization-rules", tags=["optimize"], dependencies=[Depends(reader)])
    def get_rules() -> JSONResponse:
        """listOptimizationRules."""
        return _json(service.list_optimization_rules(ctx))

    @app.post("/api/optimization-rules", tags=["optimize"], dependencies=[Depends(writer)], status_code=201)
    async def post_rule(request: Request, replace: bool = False) -> JSONResponse:
        """createOptimizationRule: one rule, checked as `convopt rules add` checks it (`?replace=true` replaces
        the type's rule); applies from the next build."""
        try:
            body = json.loads(await read_body(request, SMALL_BODY_BYTES) or b"null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc.msg}") from None
        answer = await asyncio.to_thread(service.create_optimization_rule, ctx, body, replace=replace)
        return _json(answer, 201)

    @app.get("/api/health", tags=["health"], include_in_schema=True)
    def health() -> Response:
        """Liveness, and the build the snapshot reflects (no token needed; no data)."""
        try:
            with ctx.reader.read() as (_, build, _file):
                return JSONResponse(
                    {"status": "ok", "build_id": build.build_id, "finished_at": build.finished_at}
                )
        except SnapshotError:
            return JSONResponse({"status": "ok", "build_id": None, "finished_at": None})

    return app
