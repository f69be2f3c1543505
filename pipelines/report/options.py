"""What a report covers: the options a user gives (period, format, days) and the range they resolve to.

``since`` is moved back to the first day of its period (the Monday of its ISO week, the first of its
month), and every period whose first day is in [since, until] is exported, whole. Without
``since``/``until`` the range is the data's (first and last day of ``conversion_metrics``' daily rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

PERIODS = ("daily", "weekly", "monthly")
FORMATS = ("csv", "parquet", "both")
DEFAULT_OUT = Path("reports")


class ReportUsageError(ValueError):
    """A problem the user fixes (bad range, unknown format, missing marts)."""


@dataclass(frozen=True)
class ReportRange:
    period: str
    since: dt.date | None  # first day of the first period (None: no data and no --since)
    until: dt.date | None  # last day asked for (the last period is exported whole)
    end: dt.date | None  # last day of the period containing `until`

    @property
    def folder_name(self) -> str:
        if self.since is None or self.until is None:
            return f"{self.period}_no-data"
        return f"{self.period}_{self.since.isoformat()}_{self.until.isoformat()}"


def period_start(period: str, day: dt.date) -> dt.date:
    """The first day of the period (day, ISO week from Monday, month) that contains ``day``."""
    if period == "weekly":
        return day - dt.timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return day


def period_end(period: str, day: dt.date) -> dt.date:
    """The last day of the period that contains ``day``."""
    start = period_start(period, day)
    if period == "weekly":
        return start + dt.timedelta(days=6)
    if period == "monthly":
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    return start


def parse_date(value: str | dt.date | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD date, or a one-line error naming the option and what was expected."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ReportUsageError(
            f"{option} must be a date as YYYY-MM-DD (e.g. 2026-11-01), not {value!r}"
        ) from None


def validate_options(period: str, fmt: str, since: dt.date | None, until: dt.date | None) -> None:
    if period not in PERIODS:
        raise ReportUsageError(f"--period must be one of {', '.join(PERIODS)}, not {period!r}")
    if fmt not in FORMATS:
        raise ReportUsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if since is not None and until is not None and since > until:
        raise ReportUsageError(f"--since {since} is after --until {until}: nothing to report")


def resolve_range(
    con: duckdb.DuckDBPyConnection, period: str, since: dt.date | None, until: dt.date | None
) -> ReportRange:
    """The whole periods to export; a missing end of the range is the data's first or last day."""
    if since is None or until is None:
        first, last = con.execute(
            "select min(period_date), max(period_date) from marts.conversion_metrics where period_type = 'daily'"
        ).fetchall()[0]
        since = since if since is not None else first
        until = until if until is not None else last
        if since is not None and until is not None and since > until:
            raise ReportUsageError(
                f"the range is empty: the data runs from {first} to {last}, the range asked is {since} to {until}"
            )
    if since is None or until is None:
        return ReportRange(period, None, None, None)
    return ReportRange(period, period_start(period, since), until, period_end(period, until))
