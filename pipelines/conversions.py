"""`convopt conversions` and `convopt summary`: listConversions and getConversionSummary of the feature document.

Both read the marts on a read-only connection (pipelines.adhoc.run_query); the CLI prints their results
with the renderers `convopt sql` uses (pipelines.cli_output). Days (--since/--until) are days in the
reporting time zone the marts were built with (audit.dbt_build_log), like the report's; --until is
inclusive.
"""

from __future__ import annotations

import datetime as dt
import os

import polars as pl

from pipelines.adhoc import run_query
from pipelines.warehouse import connect

CONVERSION_TYPES = ("purchase", "signup", "video_render", "subscription")

# The conversion_event fields of the feature document, plus the deduplication and reporting-currency columns.
LIST_COLUMNS = (
    "id",
    "person_id",
    "event_id",
    "conversion_type",
    "conversion_source",
    "reported_by_sources",
    "value_cents",
    "currency",
    "value_cents_reporting",
    "reporting_currency",
    "campaign_id",
    "ad_set_id",
    "ad_id",
    "utm_source",
    "utm_campaign",
    "utm_medium",
    "utm_content",
    "device_type",
    "browser",
    "os",
    "country",
    "city",
    "properties",
    "meta_pixel_id",
    "meta_conversion_id",
    "is_optimized",
    "conversion_time",
    "created_at",
)


class ConversionsUsageError(ValueError):
    """A filter the user must fix."""


def reporting_timezone(warehouse: str | os.PathLike[str] | None) -> str:
    """The reporting time zone of the latest build (audit.dbt_build_log), UTC if unknown."""
    from pipelines.report import latest_build

    with connect(warehouse, read_only=True) as con:
        build = latest_build(con)
    return (build or {}).get("reporting_timezone") or "UTC"


def _check_range(since: dt.date | None, until: dt.date | None) -> None:
    if since is not None and until is not None and since > until:
        raise ConversionsUsageError(f"--since {since} is after --until {until}")


def list_conversions(
    *,
    warehouse: str | os.PathLike[str] | None = None,
    person: str | None = None,
    conversion_type: str | None = None,
    campaign: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 50,
) -> pl.DataFrame:
    """Conversions (marts.conversion_event), latest first, filtered like the feature document's listConversions."""
    if conversion_type is not None and conversion_type not in CONVERSION_TYPES:
        raise ConversionsUsageError(
            f"--type must be one of {', '.join(CONVERSION_TYPES)}, not {conversion_type!r}"
        )
    if limit < 1:
        raise ConversionsUsageError(f"--limit must be at least 1, not {limit}")
    _check_range(since, until)
    where, params = ["true"], {}
    if person is not None:
        where.append("person_id = $person")
        params["person"] = person
    if conversion_type is not None:
        where.append("conversion_type = $type")
        params["type"] = conversion_type
    if campaign is not None:
        where.append("campaign_id = $campaign")
        params["campaign"] = campaign
    if since is not None or until is not None:
        tz = reporting_timezone(warehouse).replace("'", "''")
        day = f"cast(timezone('{tz}', conversion_time) as date)"
        if since is not None:
            where.append(f"{day} >= $since")
            params["since"] = since
        if until is not None:
            where.append(f"{day} <= $until")
            params["until"] = until
    params["limit"] = limit
    sql = f"""
        select {", ".join(LIST_COLUMNS)}
        from marts.conversion_event
        where {" and ".join(where)}
        order by conversion_time desc, id
        limit $limit
    """
    return run_query(sql, warehouse=warehouse, params=params)


class PersonNotFoundError(LookupError):
    """No conversion and no funnel row for the person."""


def conversion_summary(
    *,
    warehouse: str | os.PathLike[str] | None = None,
    person: str | None = None,
) -> pl.DataFrame:
    """One row: the person's getConversionSummary (person_conversion_summary), or the same figures overall."""
    if person is not None:
        frame = run_query(
            "select * from marts.person_conversion_summary where person_id = $person",
            warehouse=warehouse,
            params={"person": person},
        )
        if frame.is_empty():
            raise PersonNotFoundError(f"person {person!r} has no conversion and no funnel in the warehouse")
        return frame
    return run_query(
        """
        with persons as (
            select
                count(*) as persons,
                count(*) filter (where total_conversions > 0) as persons_converting,
                count(*) filter (where is_repeat_purchaser) as repeat_purchasers,
                cast(sum(funnels_entered) as bigint) as funnels_entered,
                cast(sum(funnels_converted) as bigint) as funnels_converted
            from marts.person_conversion_summary
        ),

        conversions as (
            select
                any_value(reporting_currency) as reporting_currency,
                count(*) as total_conversions,
                count(*) filter (where conversion_type = 'purchase') as purchases,
                count(*) filter (where conversion_type = 'signup') as signups,
                count(*) filter (where conversion_type = 'video_render') as video_renders,
                count(*) filter (where conversion_type = 'subscription') as subscriptions,
                -- null, never a partial sum, when a conversion has no reporting-currency value
                case when count(*) = count(value_cents_reporting)
                    then cast(coalesce(sum(value_cents_reporting), 0) as bigint) end as total_revenue_cents,
                count(*) filter (where value_cents_reporting is null) as conversions_without_reporting_value,
                count(*) filter (where is_optimized) as optimized_conversions,
                min(conversion_time) as first_conversion_at,
                max(conversion_time) as last_conversion_at
            from marts.conversion_event
        )

        select
            conversions.reporting_currency,
            conversions.total_conversions,
            conversions.purchases,
            conversions.signups,
            conversions.video_renders,
            conversions.subscriptions,
            conversions.total_revenue_cents,
            conversions.conversions_without_reporting_value,
            persons.persons,
            persons.persons_converting,
            persons.repeat_purchasers,
            persons.funnels_entered,
            persons.funnels_converted,
            conversions.optimized_conversions,
            conversions.first_conversion_at,
            conversions.last_conversion_at
        from conversions cross join persons
        """,
        warehouse=warehouse,
    )
