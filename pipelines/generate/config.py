"""What to generate: :class:`GeneratorConfig`, its limits, and the millisecond units times are counted in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
DEFAULT_START = dt.date(2026, 1, 1)
MAX_PERSONS = 20_000_000
MAX_EVENTS = 400_000_000
MAX_DAYS = 3660
MAX_FILES_PER_STREAM = 1000
MAX_BAD_ROWS_RATIO = 0.5

MS_SECOND = 1_000
MS_MINUTE = 60 * MS_SECOND
MS_HOUR = 60 * MS_MINUTE
MS_DAY = 24 * MS_HOUR


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; invalid values raise ``ValueError`` when the config is built.

    ``events`` (approximate number of behavioural events), when given, replaces ``persons``: a small pilot
    simulation with the same seed and dates measures events per person (about 18.5 for 60 days) and sets
    ``persons = events / that ratio``. ``start`` is the first UTC day; the range is ``days`` long.
    """

    persons: int = 2000
    events: int | None = None
    seed: int = 42
    start: dt.date = DEFAULT_START
    days: int = 60
    fmt: str = "jsonl"
    bad_rows_ratio: float = 0.0
    files_per_stream: int = 1

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid generator config: " + "; ".join(problems))

    @property
    def end(self) -> dt.date:
        """The first day after the range."""
        return self.start + dt.timedelta(days=self.days)


def _config_problems(config: GeneratorConfig) -> list[str]:
    problems = []

    def is_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not is_int(config.persons) or not 1 <= config.persons <= MAX_PERSONS:
        problems.append(f"persons must be an integer from 1 to {MAX_PERSONS:,}, got {config.persons!r}")
    if config.events is not None and (not is_int(config.events) or not 1 <= config.events <= MAX_EVENTS):
        problems.append(f"events must be None or an integer from 1 to {MAX_EVENTS:,}, got {config.events!r}")
    if not is_int(config.seed):
        problems.append(f"seed must be an integer, got {config.seed!r}")
    if not isinstance(config.start, dt.date) or isinstance(config.start, dt.datetime):
        problems.append(f"start must be a datetime.date, got {config.start!r}")
    elif config.start < dt.date(1970, 1, 1):
        problems.append(f"start must be on or after 1970-01-01, got {config.start.isoformat()}")
    if not is_int(config.days) or not 1 <= config.days <= MAX_DAYS:
        problems.append(f"days must be an integer from 1 to {MAX_DAYS}, got {config.days!r}")
    elif isinstance(config.start, dt.date) and config.start.year > 9999 - 11:
        problems.append(f"start {config.start.isoformat()} + {config.days} days is past the year 9999")
    if config.fmt not in FORMATS:
        problems.append(f"fmt must be one of {', '.join(FORMATS)}, got {config.fmt!r}")
    ratio = config.bad_rows_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= MAX_BAD_ROWS_RATIO:
        problems.append(f"bad_rows_ratio must be a number from 0 to {MAX_BAD_ROWS_RATIO}, got {ratio!r}")
    if not is_int(config.files_per_stream) or not 1 <= config.files_per_stream <= MAX_FILES_PER_STREAM:
        problems.append(
            f"files_per_stream must be an integer from 1 to {MAX_FILES_PER_STREAM}, "
            f"got {config.files_per_stream!r}"
        )
    return problems


def epoch_ms(day: dt.date) -> int:
    """Midnight UTC at the start of ``day`` in epoch milliseconds."""
    return (day - dt.date(1970, 1, 1)).days * MS_DAY
