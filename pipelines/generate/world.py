"""The world of one random seed: the campaign tree and its daily calendar, the cities, the ``properties`` snippets."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from itertools import accumulate
from random import Random

import polars as pl

from pipelines.generate.config import GeneratorConfig
from pipelines.generate.reference import (
    AD_FORMATS,
    ALL_REFERRERS,
    CATALOG,
    CITIES,
    COUNTRIES,
    CURRENCIES,
    GOOGLE_CAMPAIGNS,
    MATCH_TYPES,
    META_AUDIENCES,
    META_CAMPAIGNS,
    META_CREATIVES,
    META_PLACEMENTS,
    PAGE_INDEX,
    PAGES,
    POOL_GOOGLE,
    POOL_META_PROSPECTING,
    POOL_META_RETARGETING,
    RESOLUTIONS,
    TEMPLATES,
)
from pipelines.generate.series import enum_series


@dataclass(frozen=True)
class World:
    """The fixed reference tables of one seed: places, devices, site, catalog and the campaign tree."""

    ads: pl.DataFrame  # one row per ad (Meta and Google) with its campaign, ad set and delivery model
    calendar: pl.DataFrame  # (pool, day, cum, ad): the ads active per pool and day, with cumulative weights
    cities: pl.DataFrame
    snippets: pl.Series  # every JSON ``properties`` object an event can carry (Enum)
    snippet_offsets: dict[str, int]  # where each kind of snippet starts in ``snippets``


def build_world(config: GeneratorConfig) -> World:
    """The world of ``config``'s seed and range (the campaign tree depends on both)."""
    ads = _campaign_tree(Random(f"convopt-campaigns/{config.seed}"), config.days)
    snippets, offsets = _property_snippets()
    return World(
        ads=ads,
        calendar=_ad_calendar(ads, config.days),
        cities=cities_table(),
        snippets=snippets,
        snippet_offsets=offsets,
    )


def _campaign_tree(r: Random, days: int) -> pl.DataFrame:
    """6-10 Meta campaigns (2-3 ad sets of 2-3 ads each) and 2-4 Google search campaigns, one row per ad.

    The first Meta prospecting and retargeting campaigns and the Google brand campaign run the whole range;
    the others run for part of it. Ids look like the platforms' (Meta: 15 digits starting 12021).
    """
    used_ids: set[str] = set()

    def new_id(prefix: str, digits: int) -> str:
        while True:
            value = prefix + "".join(r.choice("0123456789") for _ in range(digits))
            if value not in used_ids:
                used_ids.add(value)
                return value

    def flight(always_on: bool) -> tuple[int, int]:
        if always_on:
            return 0, days - 1
        start = r.randrange(0, max(1, days // 2))
        length = r.randint(max(1, min(days, 14)), days)
        return start, min(days - 1, start + length - 1)

    rows: list[dict[str, object]] = []
    n_meta = r.randint(6, 10)
    for rank, (name, kind, landing, medium) in enumerate(
        [*META_CAMPAIGNS[:2], *r.sample(META_CAMPAIGNS[2:], n_meta - 2)]
    ):
        campaign_id = new_id("12021", 10)
        start_day, end_day = flight(rank < 2)
        budget, cpm_cents = r.uniform(0.6, 2.0), r.randint(700, 2200)
        for audience in r.sample(META_AUDIENCES[kind], r.randint(2, 3)):
            ad_set_id = new_id("12021", 10)
            region = r.choice(["US+CA", "EU", "Worldwide", "Tier 1"])
            for creative, ad_format in r.sample(META_CREATIVES, r.randint(2, 3)):
                ad_id = new_id("12021", 10)
                rows.append(
                    {
                        "pool": POOL_META_RETARGETING if kind == "retargeting" else POOL_META_PROSPECTING,
                        "campaign_id": campaign_id,
                        "campaign_name": name,
                        "ad_set_id": ad_set_id,
                        "ad_set_name": f"{audience} | {region}",
                        "ad_id": ad_id,
                        "ad_name": creative,
                        "utm_medium": medium,
                        "utm_campaign": _slug(name),
                        "utm_content": f"{_slug(creative)}_{ad_id[-4:]}",
                        "utm_term": None,
                        "landing_page": PAGE_INDEX[landing],
                        "format_index": AD_FORMATS.index(ad_format),
                        "start_day": start_day,
                        "end_day": end_day,
                        "weight": budget * r.uniform(0.4, 1.6),
                        "ctr": r.uniform(0.006, 0.028),
                        "cpm_cents": cpm_cents,
                        "cpc_cents": None,
                    }
                )
    n_google = r.randint(2, len(GOOGLE_CAMPAIGNS))
    for rank, (name, landing, groups) in enumerate(
        [GOOGLE_CAMPAIGNS[0], *r.sample(GOOGLE_CAMPAIGNS[1:], n_google - 1)]
    ):
        campaign_id = new_id("2", 10)
        start_day, end_day = flight(rank == 0)
        budget = r.uniform(0.5, 1.5)
        for group_name, keyword, match_type in groups:
            ad_set_id = new_id("1", 11)
            for variant in ("RSA v1", "RSA v2"):
                ad_id = new_id("6", 11)
                rows.append(
                    {
                        "pool": POOL_GOOGLE,
                        "campaign_id": campaign_id,
                        "campaign_name": name,
                        "ad_set_id": ad_set_id,
                        "ad_set_name": group_name,
                        "ad_id": ad_id,
                        "ad_name": f"{group_name} | {variant}",
                        "utm_medium": "cpc",
                        "utm_campaign": _slug(name),
                        "utm_content": f"{_slug(group_name)}_{variant[-2:]}",
                        "utm_term": keyword,
                        "landing_page": PAGE_INDEX[landing],
                        "format_index": MATCH_TYPES.index(match_type),
                        "start_day": start_day,
                        "end_day": end_day,
                        "weight": budget * r.uniform(0.5, 1.5),
                        "ctr": r.uniform(0.015, 0.03),
                        "cpm_cents": None,
                        "cpc_cents": r.randint(60, 320),
                    }
                )
    return (
        pl.DataFrame(rows, infer_schema_length=None)
        .with_row_index("ad")
        .with_columns(pl.col("ad").cast(pl.Int64))
    )


def _ad_calendar(ads: pl.DataFrame, days: int) -> pl.DataFrame:
    """For each pool and day, the active ads with cumulative weights (pick one with a uniform draw)."""
    group = ["pool", "day"]
    return (
        ads.select("ad", "pool", "start_day", "end_day", "weight")
        .join(pl.DataFrame({"day": pl.int_range(days, dtype=pl.Int64, eager=True)}), how="cross")
        .filter(pl.col("day").is_between(pl.col("start_day"), pl.col("end_day")))
        .sort("pool", "day", "ad")
        .with_columns(cum=pl.col("weight").cum_sum().over(group) / pl.col("weight").sum().over(group))
        .with_columns(
            # the last ad of each group takes everything up to 2.0: no draw < 1 can fall off the end
            cum=pl.when(pl.int_range(pl.len()).over(group) == pl.len().over(group) - 1)
            .then(2.0)
            .otherwise(pl.col("cum"))
        )
        .select("pool", "day", "cum", "ad")
        .sort("cum")
    )


def cities_table() -> pl.DataFrame:
    """One row per city (row index = the city code used everywhere), with its country's currency and phone."""
    country_totals = {country: sum(c[2] for c in CITIES if c[0] == country) for country in COUNTRIES}
    return pl.DataFrame(
        {
            "country": [c[0] for c in CITIES],
            "city": [c[1] for c in CITIES],
            "weight": [COUNTRIES[c[0]][0] * c[2] / country_totals[c[0]] for c in CITIES],
            "state_name": [c[3] for c in CITIES],
            "state_code": [c[4] for c in CITIES],
            "tz_minutes": [c[5] for c in CITIES],
            "tz_suffix": [_offset_text(c[5]) for c in CITIES],
            "zip_kind": [c[6] for c in CITIES],
            "zip_prefixes": [c[7] for c in CITIES],
            "phone_area": [c[8] for c in CITIES],
            "phone_prefix": [c[9] for c in CITIES],
            "phone_digits": [c[10] for c in CITIES],
            "currency_index": [CURRENCIES.index(COUNTRIES[c[0]][1]) for c in CITIES],
            "calling_code": [COUNTRIES[c[0]][2] for c in CITIES],
            "email_domains": [COUNTRIES[c[0]][3] for c in CITIES],
        },
        schema_overrides={"state_name": pl.String, "state_code": pl.String},
    )


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _property_snippets() -> tuple[pl.Series, dict[str, int]]:
    """Every JSON ``properties`` object an event can carry, in one Enum table with an offset per kind."""
    parts: dict[str, list[str]] = {
        "click_meta": [
            _json({"placement": placement, "ad_format": ad_format})
            for group in META_PLACEMENTS
            for placement in group
            for ad_format in AD_FORMATS
        ],
        "click_google": [_json({"network": "search", "match_type": match}) for match in MATCH_TYPES],
        "landing": [
            _json({"path": path, "referrer": referrer or None, "landing": True})
            for path, _, _ in PAGES
            for referrer in ALL_REFERRERS
        ],
        "page": [_json({"path": path, "title": title}) for path, title, _ in PAGES],
        "cart": [_json({"sku": sku, "items": items}) for sku, _, _, _ in CATALOG for items in (1, 2, 3)],
        "checkout": [
            _json({"sku": sku, "items": items, "step": "payment"})
            for sku, _, _, _ in CATALOG
            for items in (1, 2, 3)
        ],
        "render": [
            _json({"template": template, "duration_seconds": seconds, "resolution": resolution})
            for template, seconds in TEMPLATES
            for resolution, _ in RESOLUTIONS
        ],
    }
    offsets = dict(zip(parts, accumulate([0, *(len(p) for p in parts.values())]), strict=False))
    return enum_series([snippet for part in parts.values() for snippet in part]), offsets


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
