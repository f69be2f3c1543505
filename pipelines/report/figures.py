"""The numbers a report shows besides its files: the headline figures and the small tables the charts draw.

Days are days in the reporting time zone the marts were built with (recorded in ``audit.dbt_build_log``).
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from pipelines.report.datasets import datasets, range_sql
from pipelines.report.options import ReportRange


def _local_day(tz: str, column: str) -> str:
    return f"cast(timezone('{tz}', {column}) as date)"


def headline(con: duckdb.DuckDBPyConnection, rng: ReportRange, tz: str, build: dict | None) -> dict[str, Any]:
    """Conversions, revenue (gross and net of refunds), refunded conversions, persons converting, ad spend and
    ROAS (gross and net) of the range."""
    if rng.since is None:
        return {
            "conversions": 0,
            "revenue_cents": 0,
            "net_revenue_cents": 0,
            "refunded_conversions": 0,
            "persons_converting": 0,
            "spend_cents": 0,
            "roas": None,
            "net_roas": None,
        }
    day = _local_day(tz.replace("'", "''"), "conversion_time")
    conversions, revenue, net_revenue, refunded, persons = con.execute(
        f"""select count(*), coalesce(sum(value_cents_reporting), 0), coalesce(sum(net_value_cents_reporting), 0),
                count(*) filter (where is_refunded), count(distinct person_id)
            from marts.conversion_event where {day} between ? and ?""",
        [rng.since, rng.end],
    ).fetchall()[0]
    (spend,) = con.execute(
        """select coalesce(sum(spend_cents), 0) from marts.conversion_metrics
           where period_type = 'daily' and attribution_model = 'reported' and period_date between ? and ?""",
        [rng.since, rng.end],
    ).fetchall()[0]
    return {
        "conversions": int(conversions),
        "revenue_cents": int(revenue),
        "net_revenue_cents": int(net_revenue),
        "refunded_conversions": int(refunded),
        "persons_converting": int(persons),
        "spend_cents": int(spend),
        "roas": round(revenue / spend, 2) if spend else None,
        "net_roas": round(net_revenue / spend, 2) if spend else None,
        "reporting_currency": (build or {}).get("reporting_currency", "USD"),
    }


def chart_frames(con: duckdb.DuckDBPyConnection, rng: ReportRange, tz: str) -> dict[str, pl.DataFrame]:
    """The small aggregates the charts draw (daily grain for the time series, whatever --period is)."""
    if rng.since is None:
        empty = pl.DataFrame()
        return {"daily": empty, "funnels": empty, "attribution": empty, "meta": empty, "match": empty}
    params = [rng.since, rng.end]
    daily = con.sql(
        """select period_date, cast(sum(conversions) as bigint) as conversions,
                  cast(sum(revenue_cents) as bigint) as revenue_cents
           from marts.conversion_rollup_daily where period_date between ? and ? group by 1 order by 1""",
        params=params,
    ).pl()
    # conversion_funnel has one row per person x funnel, counted in the period of its start, so the daily
    # rows of funnel_stats add up exactly over a range.
    funnels = con.sql(
        """select funnel_name, step_number, any_value(step_name) as step_name,
                  cast(sum(persons_reached) as bigint) as persons_reached
           from marts.funnel_stats
           where period_type = 'daily' and campaign_scope = 'all' and period_date between ? and ?
           group by 1, 2 order by 1, 2""",
        params=params,
    ).pl()
    day = _local_day(tz.replace("'", "''"), "conversion_time")
    attribution = con.sql(
        # Campaign ids are opaque (Meta's are 15+ digits): label each with its most common utm_campaign.
        f"""with credited as (
                select attribution_model, campaign_id, utm_campaign, credited_value_cents
                from marts.conversion_attribution where {day} between ? and ?
            ),
            names as (
                select campaign_id, mode(utm_campaign) as campaign_name
                from credited where utm_campaign is not null and campaign_id <> '(unattributed)' group by 1
            )
            select attribution_model, campaign_id,
                   coalesce(names.campaign_name || chr(10) || campaign_id, campaign_id) as campaign_label,
                   cast(sum(credited_value_cents) as bigint) as credited_value_cents
            from credited left join names using (campaign_id) group by 1, 2, 3""",
        params=params,
    ).pl()
    meta_spec = next(s for s in datasets(rng.period) if s.name == "meta_delivery_status")
    meta = con.sql(range_sql(meta_spec.sql, rng)).pl()
    # The mart's daily shares over the range: each day weighted by its sendable events.
    shares = ", ".join(
        f"cast(sum(share_with_{i} * sendable_events) / sum(sendable_events) as double) as {i}"
        for i in ("em", "ph", "external_id", "fbp", "fbc", "client_ip_address", "client_user_agent")
    )
    match = con.sql(
        f"""select event_name, {shares},
                  cast(sum(pixel_overlap_share * sendable_events) / sum(sendable_events) as double)
                      as pixel_overlap
           from marts.meta_match_quality
           where event_date between ? and ? and sendable_events > 0
           group by event_name order by event_name""",
        params=params,
    ).pl()
    return {"daily": daily, "funnels": funnels, "attribution": attribution, "meta": meta, "match": match}
