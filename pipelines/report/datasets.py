"""The datasets a report exports: which dbt model each reads and the select that picks the range's rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipelines.report.options import ReportRange

# The report models (models/reports/) the datasets read besides the marts.
REPORT_MODELS = (
    "reports.rpt_attribution_by_campaign",
    "reports.rpt_meta_delivery_status",
    "reports.rpt_identity_conflicts",
)


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the model it reads (marts.<mart> or reports.<report model>), for the manifest and exposures
    sql: str  # a select; {since}, {until}, {end} are date literals, {period} the period type
    partitioned: bool  # hive-partitioned by period_date in Parquet
    description: str


def datasets(period: str) -> list[Dataset]:
    """What a report exports. Row orders are total (by key columns), so reruns give identical files.

    Each dataset reads one dbt model: a mart, or a report model (schema ``reports``) where the dataset
    is more than the mart's rows. Python only picks the rows of the range (and, for the Meta delivery
    status, adds up the days of the range).
    """
    in_range = "period_date between {since} and {until}"
    specs = [
        Dataset(
            "conversion_metrics",
            "marts.conversion_metrics",
            f"""select * from marts.conversion_metrics
                where period_type = '{{period}}' and {in_range}
                order by period_date, attribution_model, campaign_id""",
            True,
            "The feature document's conversion_metrics: period x attribution model x campaign, with spend, CPA, ROAS.",
        ),
        Dataset(
            f"conversion_rollup_{period}",
            f"marts.conversion_rollup_{period}",
            f"""select * from marts.conversion_rollup_{period}
                where {in_range}
                order by period_date, id""",
            True,
            "Conversions and revenue per period x type x campaign x ad set x channel x source x device x country.",
        ),
        Dataset(
            "funnel_stats",
            "marts.funnel_stats",
            f"""select * from marts.funnel_stats
                where period_type = '{{period}}' and {in_range}
                order by period_date, funnel_name, campaign_scope, campaign_id nulls first, step_number""",
            True,
            "Persons per funnel step, drop-off and conversion rates, times between steps, per period.",
        ),
        Dataset(
            "attribution_by_campaign",
            "reports.rpt_attribution_by_campaign",
            f"""select * exclude (period_type) from reports.rpt_attribution_by_campaign
                where period_type = '{{period}}' and {in_range}
                order by period_date, attribution_model, campaign_id, channel, conversion_type""",
            True,
            "Credited conversions and revenue per period x attribution model x campaign x channel x type.",
        ),
        Dataset(
            "attribution_path_summary",
            "marts.attribution_path_summary",
            """select * from marts.attribution_path_summary order by path_type, conversions_rank, path""",
            False,
            "Channel paths (all time): conversions, paths that did not convert, conversion rate and revenue "
            "per path, ranked.",
        ),
        Dataset(
            "person_conversion_summary",
            "marts.person_conversion_summary",
            """select * from marts.person_conversion_summary order by person_id""",
            False,
            "The feature document's getConversionSummary per person (all time; no identity fields, clear or hashed).",
        ),
        Dataset(
            "meta_delivery_status",
            "reports.rpt_meta_delivery_status",
            """select
                    conversion_type,
                    event_name,
                    delivery_state,
                    cast(sum(conversions) as bigint) as conversions,
                    cast(sum(refunded_conversions) as bigint) as refunded_conversions
                from reports.rpt_meta_delivery_status
                where conversion_date between {since} and {end}
                group by conversion_type, event_name, delivery_state
                order by conversion_type, event_name, delivery_state""",
            False,
            "Conversions of the range by Meta delivery state: sent, pending (ready), failed, unknown, "
            "expired or skipped; refunded_conversions of them were refunded or charged back.",
        ),
        Dataset(
            "meta_match_quality",
            "marts.meta_match_quality",
            """select * from marts.meta_match_quality
                where event_date between {since} and {end}
                order by event_date, event_name, action_source""",
            False,
            "What Meta can match per UTC day x Meta event x action_source: share of sendable events with each "
            "identifier, pixel overlap, delivery delay, skipped and expired events by reason.",
        ),
        Dataset(
            "identity_conflicts",
            "reports.rpt_identity_conflicts",
            """select * from reports.rpt_identity_conflicts
                where cast(observed_at as date) between {since} and {end}
                order by observed_at, anonymous_id, conflicting_person_id, _source_file, _source_row""",
            False,
            "Identity observations of the range that the identity map ignores: an anonymous id seen with "
            "another person after its first observation, with the person it stays with, the landing file "
            "and row, and the reason.",
        ),
    ]
    return specs


def _date_literal(day: dt.date | None) -> str:
    return "null" if day is None else f"date '{day.isoformat()}'"


def range_sql(sql: str, rng: ReportRange) -> str:
    """A dataset's select with the range's days and period filled in."""
    return sql.format(
        since=_date_literal(rng.since),
        until=_date_literal(rng.until),
        end=_date_literal(rng.end),
        period=rng.period,
    )
