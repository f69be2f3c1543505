"""The feature document's service calls as Python functions; ``convopt serve`` maps each to an endpoint.

Every function takes an :class:`ApiContext` (which warehouse, landing folder and rules file; the snapshot
reader and the collector) first. Reads answer from the published snapshot of the marts and say which build
it reflects; writes go where the CLI's writes go: rows to the landing zone (loaded by the next
``convopt run``), rules to the rules file (``convopt rules``), Meta deliveries through the delivery log of
``convopt export-meta``. JSON shapes use the marts' column names. Identity fields are never returned: the
marts hold only their hashes, and the hashes, the client's IP address and city are left out as well.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.api.collect import Collector, RowOutcome
from pipelines.api.reads import (
    Answer,
    ApiUsageError,
    BusyError,
    NotFoundError,
    SnapshotReader,
    decode_cursor,
    encode_cursor,
    fetch_rows,
    jsonable,
    parse_instant,
)
from pipelines.api.snapshot import snapshot_path
from pipelines.contract import CONVERSION_TYPES, PII_FIELDS
from pipelines.conversions import LIST_COLUMNS
from pipelines.warehouse import landing_path, warehouse_path

# conversion_event columns an answer carries: the document's fields and the deduplication and
# reporting-currency columns (as `convopt conversions`), without personal data.
CONVERSION_COLUMNS = tuple(c for c in LIST_COLUMNS if c not in PII_FIELDS)
PERIOD_TYPES = ("daily", "weekly", "monthly")
FUNNEL_PERIOD_TYPES = ("all_time", "daily", "weekly", "monthly")
MAX_LIMIT = 1000
MAX_OPTIMIZE_IDS = 10_000


@dataclass
class ApiContext:
    """Where the API reads and writes, and its long-lived parts (one per server)."""

    warehouse: Path
    landing: Path
    rules_file: Path | None = None
    reader: SnapshotReader = field(init=False)
    _collector: Collector | None = field(default=None, init=False)
    _collector_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    optimize_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.reader = SnapshotReader(snapshot_path(self.warehouse))

    @property
    def collector(self) -> Collector:
        with self._collector_lock:
            if self._collector is None:
                self._collector = Collector(self.landing)
            return self._collector

    def close(self) -> None:
        if self._collector is not None:
            self._collector.seal()
            self._collector.close()


@contextmanager
def open_api(
    warehouse: str | os.PathLike[str] | None = None,
    landing: str | os.PathLike[str] | None = None,
    rules_file: str | os.PathLike[str] | None = None,
) -> Iterator[ApiContext]:
    """An ApiContext for the warehouse and landing folder (defaults as the CLI's); sealed when done."""
    ctx = ApiContext(
        warehouse_path(warehouse), landing_path(landing), Path(rules_file) if rules_file else None
    )
    try:
        yield ctx
    finally:
        ctx.close()


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiUsageError(f"limit: expected 1 to {MAX_LIMIT}, got {limit}", field="limit")


def _check_choice(value: str | None, allowed: Sequence[str], name: str) -> None:
    if value is not None and value not in allowed:
        raise ApiUsageError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}", field=name)


# ---- collect --------------------------------------------------------------------------------------


def track_conversion_event(ctx: ApiContext, conversion: dict | list) -> list[RowOutcome]:
    """Validate and land one conversion (a dict) or a batch (a list); each row's outcome, in order.

    ``event_id`` defaults to a new UUID and ``conversion_time`` to now; an accepted row carries the id the
    warehouse will give the conversion. Rows appear in the reads after the next ``convopt run``.
    """
    rows = conversion if isinstance(conversion, list) else [conversion]
    return ctx.collector.submit_and_wait("conversions", rows)


def track_events(ctx: ApiContext, events: dict | list) -> list[RowOutcome]:
    """Validate and land behavioural events (funnel steps come from these); ``event_time`` defaults to now."""
    rows = events if isinstance(events, list) else [events]
    return ctx.collector.submit_and_wait("events", rows)


# ---- conversions ------------------------------------------------------------------------------------


def list_conversions(
    ctx: ApiContext,
    *,
    person_id: str | None = None,
    conversion_type: str | None = None,
    campaign_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Answer:
    """Conversions, latest first (``conversion_time`` desc, then id), a page of ``limit`` at a time.

    ``since`` (inclusive) and ``until`` (exclusive) are dates (00:00 UTC) or ISO-8601 times.
    """
    _check_choice(conversion_type, CONVERSION_TYPES, "conversion_type")
    _check_limit(limit)
    where, params = ["true"], {}
    for column, value in (
        ("person_id", person_id),
        ("conversion_type", conversion_type),
        ("campaign_id", campaign_id),
    ):
        if value is not None:
            where.append(f"{column} = ${column}")
            params[column] = value
    if (start := parse_instant(since, "since")) is not None:
        where.append("conversion_time >= $since")
        params["since"] = start
    if (end := parse_instant(until, "until")) is not None:
        where.append("conversion_time < $until")
        params["until"] = end
    if cursor:
        after_time, after_id = decode_cursor(cursor, 2)
        where.append("(conversion_time < $after_time or (conversion_time = $after_time and id > $after_id))")
        params["after_time"] = parse_instant(after_time, "cursor")
        params["after_id"] = after_id
    params["limit"] = limit + 1
    with ctx.reader.read() as (con, build, _):
        rows = fetch_rows(
            con,
            f"select {', '.join(CONVERSION_COLUMNS)} from marts.conversion_event "
            f"where {' and '.join(where)} order by conversion_time desc, id limit $limit",
            params,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["conversion_time"], rows[-1]["id"]])
    return Answer(rows, build, next_cursor)


def get_conversion_event(ctx: ApiContext, conversion_id: str) -> Answer:
    """One conversion by its id (``conversion_event.id``); NotFoundError if the snapshot has none."""
    with ctx.reader.read() as (con, build, _):
        rows = fetch_rows(
            con,
            f"select {', '.join(CONVERSION_COLUMNS)} from marts.conversion_event where id = $id",
            {"id": conversion_id},
        )
    if not rows:
        raise NotFoundError(
            f"no conversion with id {conversion_id!r} in build {build.build_id} (a conversion posted since "
            "appears after the next `convopt run`)"
        )
    return Answer(rows[0], build)


def get_conversion_summary(ctx: ApiContext, person_id: str | None = None) -> Answer:
    """getConversionSummary: the person's ``person_conversion_summary`` row, or the same figures overall
    (exactly what ``convopt summary`` shows)."""
    from pipelines.conversions import PersonNotFoundError, conversion_summary

    with ctx.reader.read() as (_, build, file):
        try:
            frame = conversion_summary(warehouse=file, person=person_id)
        except PersonNotFoundError as exc:
            raise NotFoundError(str(exc)) from None
    row = {k: jsonable(v) for k, v in frame.row(0, named=True).items()}
    return Answer(row, build)


# ---- funnels --------------------------------------------------------------------------------------


def get_funnel_steps(ctx: ApiContext, funnel_id: str) -> Answer:
    """getFunnelSteps: the steps a person reached in one funnel attempt (``conversion_funnel_step``)."""
    with ctx.reader.read() as (con, build, _):
        rows = fetch_rows(
            con,
            "select * from marts.conversion_funnel_step where conversion_funnel_id = $id order by step_number",
            {"id": funnel_id},
        )
        if not rows and not fetch_rows(
            con, "select id from marts.conversion_funnel where id = $id", {"id": funnel_id}
        ):
            raise NotFoundError(f"no funnel with id {funnel_id!r} in build {build.build_id}")
    return Answer(rows, build)


def get_funnels_by_person(ctx: ApiContext, person_id: str, *, funnel_name: str | None = None) -> Answer:
    """getFunnelsByPerson: the person's funnel attempts (``conversion_funnel``), latest first, each with
    its ``steps``."""
    where, params = "person_id = $person", {"person": person_id}
    if funnel_name is not None:
        where += " and funnel_name = $funnel"
        params["funnel"] = funnel_name
    with ctx.reader.read() as (con, build, _):
        funnels = fetch_rows(
            con, f"select * from marts.conversion_funnel where {where} order by started_at desc, id", params
        )
        steps = fetch_rows(
            con,
            f"select * from marts.conversion_funnel_step where {where} order by conversion_funnel_id, step_number",
            params,
        )
    by_funnel: dict[str, list[dict]] = {}
    for step in steps:
        by_funnel.setdefault(step["conversion_funnel_id"], []).append(step)
    for funnel in funnels:
        funnel["steps"] = by_funnel.get(funnel["id"], [])
    return Answer(funnels, build)


def _filter_period_dates(
    where: list[str], params: dict[str, Any], since: str | None, until: str | None
) -> None:
    """Add ``period_date >= since`` and ``period_date < until`` (the days of the instants given) to a query's
    conditions and parameters."""
    for name, value, op in (("since", since, ">="), ("until", until, "<")):
        if (instant := parse_instant(value, name)) is not None:
            where.append(f"period_date {op} ${name}")
            params[name] = instant.date()


def get_funnel_stats(
    ctx: ApiContext,
    *,
    funnel_name: str | None = None,
    period_type: str = "all_time",
    campaign_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = MAX_LIMIT,
) -> Answer:
    """getFunnelStats: ``funnel_stats`` rows per funnel and step, for all campaigns or one entry campaign."""
    _check_choice(period_type, FUNNEL_PERIOD_TYPES, "period_type")
    _check_limit(limit)
    where = ["period_type = $period_type", "campaign_scope = $scope"]
    params: dict[str, Any] = {
        "period_type": period_type,
        "scope": "all" if campaign_id is None else "campaign",
    }
    if funnel_name is not None:
        where.append("funnel_name = $funnel_name")
        params["funnel_name"] = funnel_name
    if campaign_id is not None:
        where.append("campaign_id = $campaign_id")
        params["campaign_id"] = campaign_id
    _filter_period_dates(where, params, since, until)
    params["limit"] = limit
    with ctx.reader.read() as (con, build, _):
        rows = fetch_rows(
            con,
            f"select * from marts.funnel_stats where {' and '.join(where)} "
            "order by period_date desc nulls first, funnel_name, step_number limit $limit",
            params,
        )
    return Answer(rows, build)


# ---- metrics --------------------------------------------------------------------------------------


def get_conversion_metrics(
    ctx: ApiContext,
    *,
    period_type: str = "daily",
    attribution_model: str = "last_touch",
    campaign_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = MAX_LIMIT,
) -> Answer:
    """getConversionMetrics: ``conversion_metrics`` rows (per campaign and period) for one attribution model."""
    _check_choice(period_type, PERIOD_TYPES, "period_type")
    _check_limit(limit)
    where = ["period_type = $period_type", "attribution_model = $model"]
    params: dict[str, Any] = {"period_type": period_type, "model": attribution_model}
    if campaign_id is not None:
        where.append("campaign_id = $campaign_id")
        params["campaign_id"] = campaign_id
    _filter_period_dates(where, params, since, until)
    params["limit"] = limit
    with ctx.reader.read() as (con, build, _):
        models = [
            r[0]
            for r in con.execute("select distinct attribution_model from marts.conversion_metrics").fetchall()
        ]
        _check_choice(attribution_model, sorted(models), "attribution_model")
        rows = fetch_rows(
            con,
            f"select * from marts.conversion_metrics where {' and '.join(where)} "
            "order by period_date desc, campaign_id limit $limit",
            params,
        )
    return Answer(rows, build)


# ---- optimization rules ---------------------------------------------------------------------------


def _rule_json(rule: Any) -> dict[str, Any]:
    return {
        "conversion_type": rule.conversion_type,
        "meta_event_name": rule.meta_event_name,
        "is_sent": rule.is_sent,
        "min_value_cents": rule.min_value_cents,
        "value_multiplier": rule.value_multiplier,
        "action_source": rule.action_source,
        "qualifying_sources": list(rule.qualifying_sources),
        "limited_data_use": rule.limited_data_use,
    }


def list_optimization_rules(ctx: ApiContext) -> Answer:
    """listOptimizationRules: the rules file, validated as ``convopt rules list`` does."""
    from pipelines.rules import RuleError, read_rules, rules_path

    try:
        rules = read_rules(rules_path(ctx.rules_file))
    except RuleError as exc:
        raise ApiUsageError(str(exc), status=500) from None
    return Answer([_rule_json(r) for r in rules])


def create_optimization_rule(ctx: ApiContext, rule: dict[str, Any], *, replace: bool = False) -> Answer:
    """createOptimizationRule: add a rule (or replace the type's with ``replace``), checked and written as
    ``convopt rules add`` does; it applies from the next build."""
    from pipelines.rules import Rule, RuleError, add_rule, parse_sources, rules_path

    if not isinstance(rule, dict):
        raise ApiUsageError("expected a JSON object with the rule's fields")
    known = {
        "conversion_type",
        "meta_event_name",
        "is_sent",
        "min_value_cents",
        "value_multiplier",
        "action_source",
        "qualifying_sources",
        "limited_data_use",
    }
    unknown = sorted(set(rule) - known)
    if unknown:
        raise ApiUsageError(f"unknown field(s) {', '.join(unknown)}: expected {', '.join(sorted(known))}")
    for name in ("conversion_type", "meta_event_name"):
        if not isinstance(rule.get(name), str):
            raise ApiUsageError(f"{name}: is required (a string)", field=name)
    sources = rule.get("qualifying_sources", "pixel|capi|webhook")
    checks = (
        ("is_sent", bool, rule.get("is_sent", True)),
        ("min_value_cents", int, rule.get("min_value_cents", 0)),
        ("action_source", str, rule.get("action_source", "website")),
        ("limited_data_use", bool, rule.get("limited_data_use", False)),
    )
    for name, kind, value in checks:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiUsageError(f"{name}: expected a {kind.__name__}, got {value!r}", field=name)
    multiplier = rule.get("value_multiplier", 1.0)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float):
        raise ApiUsageError(
            f"value_multiplier: expected a number, got {multiplier!r}", field="value_multiplier"
        )
    try:
        if isinstance(sources, list) and all(isinstance(s, str) for s in sources):
            sources = "|".join(sources)
        if not isinstance(sources, str):
            raise RuleError("qualifying_sources: expected a list of sources or a |-separated string")
        new_rule = Rule(
            conversion_type=rule["conversion_type"],
            meta_event_name=rule["meta_event_name"],
            is_sent=rule.get("is_sent", True),
            min_value_cents=rule.get("min_value_cents", 0),
            value_multiplier=float(multiplier),
            action_source=rule.get("action_source", "website"),
            qualifying_sources=parse_sources(sources),
            limited_data_use=rule.get("limited_data_use", False),
        )
        rules = add_rule(rules_path(ctx.rules_file), new_rule, replace_existing=replace)
    except RuleError as exc:
        raise ApiUsageError(str(exc)) from None
    return Answer([_rule_json(r) for r in rules])


# ---- optimize for Meta ----------------------------------------------------------------------------


def optimize_conversion_for_meta(
    ctx: ApiContext, conversion_id: str, *, dry_run: bool | None = None
) -> Answer:
    """optimizeConversionForMeta: send one conversion to Meta through ``convopt export-meta``'s delivery
    log (exactly once); a dry run without ``META_ACCESS_TOKEN``. NotFoundError if it is not in the marts."""
    answer = optimize_batch_conversions(ctx, [conversion_id], dry_run=dry_run)
    outcome = answer.data[0]
    if outcome["outcome"] == "not_found":
        raise NotFoundError(outcome["detail"])
    return Answer(outcome, answer.build, extra=answer.extra)


def optimize_batch_conversions(
    ctx: ApiContext,
    conversion_ids: Sequence[str] | None = None,
    *,
    person_id: str | None = None,
    conversion_type: str | None = None,
    campaign_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = MAX_LIMIT,
    dry_run: bool | None = None,
) -> Answer:
    """optimizeBatchConversions: the given conversions, or those the filter selects (as list_conversions,
    at most ``limit``), sent to Meta as ``convopt export-meta --conversion-id …`` does; one outcome each.

    Outcomes: ``sent``, ``would_send`` (dry run), ``already_delivered``, ``expired``, ``skipped``,
    ``failed``, ``unknown`` (resent by the next export), ``not_found`` (not in the marts yet) or
    ``not_sent`` (left for a later export). Real delivery needs ``META_ACCESS_TOKEN`` and the warehouse:
    BusyError while a build or another export holds it.
    """
    from pipelines.meta.export import TOKEN_ENV

    if conversion_ids is None:
        if not 1 <= limit <= MAX_OPTIMIZE_IDS:
            raise ApiUsageError(f"limit: expected 1 to {MAX_OPTIMIZE_IDS}, got {limit}", field="limit")
        ids: list[str] = []
        cursor = None
        while len(ids) < limit:
            page = list_conversions(
                ctx,
                person_id=person_id,
                conversion_type=conversion_type,
                campaign_id=campaign_id,
                since=since,
                until=until,
                limit=min(MAX_LIMIT, limit - len(ids)),
                cursor=cursor,
            )
            ids += [row["id"] for row in page.data]
            cursor = page.next_cursor
            if cursor is None:
                break
    else:
        ids = list(dict.fromkeys(conversion_ids))
        if not all(isinstance(i, str) for i in ids):
            raise ApiUsageError(
                "conversion_ids: expected a list of conversion ids (strings)", field="conversion_ids"
            )
        if len(ids) > MAX_OPTIMIZE_IDS:
            raise ApiUsageError(f"conversion_ids: at most {MAX_OPTIMIZE_IDS} per request, got {len(ids)}")
    token = os.environ.get(TOKEN_ENV) or None
    if dry_run is None:
        dry_run = token is None
    if not dry_run and token is None:
        raise ApiUsageError(f"no Meta access token: set {TOKEN_ENV} for the server, or ask for a dry run")
    if not ids:
        with ctx.reader.read() as (_, build, _file):
            return Answer([], build, extra={"dry_run": dry_run})
    with ctx.optimize_lock:  # one export at a time in this process (DuckDB: one writer)
        if dry_run:
            return _optimize_dry_run(ctx, ids)
        return _optimize_for_real(ctx, ids, token or "")


def _statuses(con: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = fetch_rows(
        con,
        "select conversion_id, status, status_reason from marts.meta_capi_events "
        "where conversion_id in (select unnest($ids))",
        {"ids": ids},
    )
    return {r["conversion_id"]: r for r in rows}


def _optimize_dry_run(ctx: ApiContext, ids: list[str]) -> Answer:
    """Plan the export on the snapshot (read-only): what would be sent, and why the rest would not."""
    import pyarrow.parquet as pq

    from pipelines.meta.dry_run import DRY_RUN_EVENTS_FILE
    from pipelines.meta.export import export_meta

    with ctx.reader.read() as (con, build, file), tempfile.TemporaryDirectory(prefix="convopt-api-") as out:
        summary = export_meta(file, dry_run=True, conversion_ids=ids, out=Path(out))
        planned = Path(out) / DRY_RUN_EVENTS_FILE
        would_send = (
            set(pq.read_table(planned, columns=["conversion_id"]).column(0).to_pylist())
            if planned.exists()
            else set()
        )
        statuses = _statuses(con, ids)
    outcomes = []
    for cid in ids:
        if cid in summary.not_found:
            outcome, detail = (
                "not_found",
                f"conversion {cid!r} is not in marts.meta_capi_events of build {build.build_id}",
            )
        elif cid in summary.already_delivered:
            outcome, detail = "already_delivered", "delivered to Meta before"
        elif cid in would_send:
            outcome, detail = "would_send", "dry run: nothing sent"
        else:
            status = statuses.get(cid, {})
            outcome = status.get("status") if status.get("status") in ("expired", "skipped") else "failed"
            detail = status.get("status_reason") or "not sendable as it is"
        outcomes.append({"conversion_id": cid, "outcome": outcome, "detail": detail})
    return Answer(outcomes, build, extra={"dry_run": True, "run_id": summary.run_id})


def _optimize_for_real(ctx: ApiContext, ids: list[str], token: str) -> Answer:
    """Deliver through the warehouse's delivery log, under `convopt run`'s lock (never beside a build)."""
    from pipelines.meta.export import API_VERSION_ENV, GRAPH_BASE_URL_ENV, TEST_EVENT_CODE_ENV, export_meta
    from pipelines.meta.graph_client import DEFAULT_API_VERSION, DEFAULT_GRAPH_BASE_URL
    from pipelines.run import RunLockedError, run_lock
    from pipelines.warehouse import WarehouseLockedError, connect

    try:
        with run_lock(ctx.warehouse):
            summary = export_meta(
                ctx.warehouse,
                dry_run=False,
                access_token=token,
                test_event_code=os.environ.get(TEST_EVENT_CODE_ENV) or None,
                conversion_ids=ids,
                graph_base_url=os.environ.get(GRAPH_BASE_URL_ENV) or DEFAULT_GRAPH_BASE_URL,
                api_version=os.environ.get(API_VERSION_ENV) or DEFAULT_API_VERSION,
            )
            with connect(ctx.warehouse, read_only=True) as con:
                logged = fetch_rows(
                    con,
                    "select conversion_id, status, error_message, fbtrace_id from raw.meta_delivery_log "
                    "where run_id = $run order by recorded_at, attempt",
                    {"run": summary.run_id},
                )
                statuses = _statuses(con, ids)
    except (RunLockedError, WarehouseLockedError) as exc:
        raise BusyError(f"the warehouse is busy (a build or an export is running): {exc}") from None
    last = {row["conversion_id"]: row for row in logged}  # the last row per conversion is its outcome
    outcomes = []
    for cid in ids:
        if cid in summary.not_found:
            outcome, detail = "not_found", f"conversion {cid!r} is not in marts.meta_capi_events"
        elif cid in summary.already_delivered:
            outcome, detail = "already_delivered", "delivered to Meta before"
        elif cid in last:
            row = last[cid]
            outcome = row["status"]
            detail = row["error_message"] or (f"fbtrace_id {row['fbtrace_id']}" if row["fbtrace_id"] else "")
        else:
            outcome = "not_sent"
            detail = (statuses.get(cid) or {}).get("status_reason") or "left for a later export"
        outcomes.append({"conversion_id": cid, "outcome": outcome, "detail": detail})
    at = jsonable(dt.datetime.now(dt.UTC))
    return Answer(outcomes, None, extra={"dry_run": False, "run_id": summary.run_id, "finished_at": at})
