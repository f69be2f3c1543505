"""Deterministic synthetic landing data: the ``events``, ``conversions`` and ``ad_spend`` streams.

``convopt generate``, the demo, the tests and the benchmarks use it to get realistic raw data without a
real pixel. The data imitate FrameCraft, a product that sells video templates and stock packs *and*
renders videos: Meta and Google Ads campaigns (plus a newsletter, organic search, referrals and direct
visits) bring visitors who browse, sign up, render videos, buy packs and subscribe. The pixel and a
server-side CAPI relay both report conversions (often the same one, with the same ``event_id``); payment
webhooks report purchases and renewals.

The simulation is columnar from start to end (polars expressions, ``int_ranges`` + ``explode``; no
Python loop per row or per person)::

    persons      one row per visitor: arrival (weekday and hour seasonality), device, place, identity
    sessions     1..10 per person: channel, ad (for paid visits), and how far the visit goes
    events       the sessions expanded into ordered steps with realistic gaps (seconds to minutes)
    conversions  signups, renders, purchases, subscriptions (+ monthly renewals) from the sessions,
                 then CAPI copies of pixel conversions, retries and late re-reports
    ad_spend     one row per day and ad with delivery; ``clicks`` = that ad's ``ad_click`` events that day

Randomness comes from named uniform streams (pyarrow's vectorised generator, seeded from the configured
seed and the stream's name), so the same configuration always writes byte-identical files and a draw
added in one place does not shift the others. Bad rows (``bad_rows_ratio``) are broken in exactly one way
each, cycling through :data:`BAD_ROW_KINDS`, so the ingest validator has something to reject.

Sizes: about 18.5 events per person for 60 days (fewer for short ranges, where later visits fall outside);
``events=N`` picks the number of persons from a small pilot run with the same seed and dates.

Modules, in the order the data flows through them: ``config`` (what to generate), ``randomness`` (seeded
draws), ``reference`` and ``world`` (the fixed tables and the campaigns of one random seed), ``behaviour``,
``conversions`` and ``identity`` (the simulation, put together by ``simulation``), ``streams`` (rows in the
raw contract), ``bad_rows``, ``writing`` (files), and ``dataset`` (:func:`generate_dataset`, all of it).
"""

from pipelines.generate.bad_rows import BAD_ROW_KINDS
from pipelines.generate.config import (
    DEFAULT_START,
    FORMATS,
    MAX_BAD_ROWS_RATIO,
    MAX_DAYS,
    MAX_EVENTS,
    MAX_FILES_PER_STREAM,
    MAX_PERSONS,
    GeneratorConfig,
)
from pipelines.generate.dataset import generate_dataset
from pipelines.generate.simulation import persons_for
from pipelines.generate.writing import WrittenFile

__all__ = [
    "BAD_ROW_KINDS",
    "DEFAULT_START",
    "FORMATS",
    "MAX_BAD_ROWS_RATIO",
    "MAX_DAYS",
    "MAX_EVENTS",
    "MAX_FILES_PER_STREAM",
    "MAX_PERSONS",
    "GeneratorConfig",
    "WrittenFile",
    "generate_dataset",
    "persons_for",
]
