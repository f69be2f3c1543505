"""The whole simulation of one data set, and how many persons it takes to reach a number of events."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from pipelines.generate.behaviour import (
    SEG_CLICK,
    out_of_order_steps,
    session_ads,
    simulate_events,
    simulate_persons,
    simulate_sessions,
)
from pipelines.generate.config import MAX_PERSONS, MS_DAY, GeneratorConfig, epoch_ms
from pipelines.generate.conversions import simulate_conversions
from pipelines.generate.identity import person_network
from pipelines.generate.randomness import Rng
from pipelines.generate.world import World, build_world

_PILOT_PERSONS = 20_000  # persons simulated to measure events per person when --events is given


@dataclass(frozen=True)
class Simulation:
    """Everything simulated for one data set, before it is shaped into the streams' rows."""

    world: World
    persons: pl.DataFrame  # one row per person (row index = ``p``)
    sessions: pl.DataFrame  # one row per visit (row index = ``s``)
    events: pl.DataFrame  # one row per event in the range, sorted by time: s, seg, t, item
    conversions: pl.DataFrame  # one row per reported conversion in the range, sorted by time
    clicks: pl.DataFrame  # (day, ad, clicks) counted from the ad_click events


def simulate(config: GeneratorConfig, n_persons: int, rng: Rng) -> Simulation:
    """Simulate ``n_persons`` visitors over the configured range: visits, events in range, conversions."""
    t0, t1 = epoch_ms(config.start), epoch_ms(config.end)
    world = build_world(config)
    persons = simulate_persons(config, n_persons, rng)
    # independent steps run side by side (polars frees the GIL)
    with ThreadPoolExecutor(max_workers=2) as pool:
        network = pool.submit(person_network, persons, rng)
        sessions = session_ads(config, simulate_sessions(config, persons, rng), world, rng)
        events = simulate_events(sessions, rng)
        conversions = pool.submit(simulate_conversions, config, persons, sessions, events, rng)
        events = (
            out_of_order_steps(events, rng)
            .filter(pl.col("t").is_between(t0, t1 - 1))
            .sort("t", maintain_order=True)
            .select("s", "seg", "t", "item")
        )
        clicks = (
            events.filter(pl.col("seg") == SEG_CLICK)
            .select(day=(pl.col("t") - t0) // MS_DAY, ad=pl.lit(sessions["ad"]).gather(pl.col("s")))
            .group_by("day", "ad")
            .agg(clicks=pl.len().cast(pl.Int64))
        )
        return Simulation(world, network.result(), sessions, events, conversions.result(), clicks)


def persons_for(config: GeneratorConfig) -> int:
    """Number of persons to simulate: ``config.persons``, or what gives about ``config.events`` events."""
    if config.events is None:
        return config.persons
    pilot_persons = min(_PILOT_PERSONS, max(1_000, config.events))
    pilot = simulate_sessions(
        config, simulate_persons(config, pilot_persons, Rng(config.seed)), Rng(config.seed)
    )
    events_per_person = max(float(pilot["n_events"].sum()) / pilot_persons, 0.1)
    return max(1, min(MAX_PERSONS, round(config.events / events_per_person)))
