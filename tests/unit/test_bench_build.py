"""benchmarks/build.py's pure parts: reading dbt's run_results.json, the Markdown table, and putting the
table into BENCHMARKS.md without touching anything else in the file."""

from __future__ import annotations

import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("build")


def result(unique_id: str, seconds: float) -> dict:
    return {"unique_id": unique_id, "execution_time": seconds, "status": "success"}


RUN_RESULTS = {
    "results": [
        result("operation.convopt.convopt-on-run-start-0", 0.1),
        result("seed.convopt.exchange_rates", 1.5),
        result("model.convopt.int_funnel_steps_matched", 12.0),
        result("model.convopt.conversion_metrics", 8.0),
        result("model.convopt.stg_events", 0.2),
        result("test.convopt.unique_conversion_event_id.5f2a1b", 0.5),
        result("test.convopt.not_null_meta_capi_events_payload", 0.25),
        result("model.convopt.meta_capi_events", 3.0),
        result("model.convopt.funnel_stats", 3.0),
    ]
}


def test_node_times_sum_per_resource_type_and_list_the_slowest(bench) -> None:
    seconds, counts, slowest = bench.node_times(RUN_RESULTS)
    assert seconds == {
        "models": pytest.approx(26.2),
        "data tests": pytest.approx(0.75),
        "unit tests": 0.0,
        "seeds": 1.5,
        "hooks": 0.1,
    }
    assert counts == {"models": 5, "data tests": 2, "unit tests": 0, "seeds": 1, "hooks": 1}
    # Slowest first; equal times by name.
    assert slowest == [
        ("int_funnel_steps_matched", "models", 12.0),
        ("conversion_metrics", "models", 8.0),
        ("funnel_stats", "models", 3.0),
        ("meta_capi_events", "models", 3.0),
        ("exchange_rates", "seeds", 1.5),
    ]


def test_node_times_of_an_empty_run(bench) -> None:
    seconds, counts, slowest = bench.node_times({"results": []})
    assert set(seconds.values()) == {0.0} and set(counts.values()) == {0} and slowest == []


def build_result(bench, name: str, wall: float, models: float, floor_seconds: float):
    seconds, counts, slowest = bench.node_times(RUN_RESULTS)
    seconds["models"] = models
    return bench.BuildResult(name, wall, 1234.0, seconds, counts, slowest[:2], (floor_seconds, 4200, 0, 0))


def render_builds(bench, *unchanged) -> str:
    """The Markdown of a full build of 120 s and an incremental one of 30 s (and `unchanged`, when given)."""
    return bench.render(
        {"history": 990_000, "later": 8_900, "late": 1_000},
        {"full": 40.0, "incremental": 1.5},
        build_result(bench, "full", 120.0, 90.0, 0.3),
        build_result(bench, "incremental", 30.0, 18.0, 0.32),
        *unchanged,
    )


def test_render_compares_the_builds(bench) -> None:
    text = render_builds(bench)
    lines = text.splitlines()
    assert lines[0] == (
        "990,000 events landed first, then 9,900 more (1.0%: 8,900 for the next day, 1,000 late for old days)."
    )
    assert "| **dbt build, wall (s)** | **120.0** | **30.0** | **0.25** |" in lines
    assert "| node time: models, 5 nodes (s) | 90.0 | 18.0 | 0.20 |" in lines
    assert "| node time: unit tests (s) | none in `scheduled` | none in `scheduled` | |" in lines
    assert "| peak memory of dbt (MiB) | 1,234 | 1,234 | 1.00 |" in lines
    assert "| full | 1. int_funnel_steps_matched | models | 12.0 |" in lines
    assert "|  | 2. conversion_metrics | models | 8.0 |" in lines
    assert "| incremental | 1. int_funnel_steps_matched | models | 12.0 |" in lines
    assert "(0 only in the query, 0 only in the mart); the build took 400 times as long" in text
    assert "with nothing new" not in text
    # A Markdown table: every row of a table has as many cells as its header.
    for table in text.split("\n\n"):
        rows = [line for line in table.splitlines() if line.startswith("|")]
        assert len({row.count("|") for row in rows}) <= 1, table


def test_render_states_the_build_with_nothing_new(bench) -> None:
    text = render_builds(bench, build_result(bench, "unchanged", 24.0, 12.0, 0.3))
    assert (
        "The same build once more with nothing new landed: 24.0 s wall (0.20 of the full build, 0.80 of the"
        " incremental one); node time 12.0 s in models, 0.8 s in data tests; peak memory 1,234 MiB. What the"
        " incremental build costs beyond it, 6.0 s, is the cost of the new data."
    ) in text


def test_render_states_dbts_floor_as_a_share_of_the_full_build(bench) -> None:
    floor = bench.dbt_floor.Floor(models=5, tests=2, seeds=1, first_seconds=9.5, rerun_seconds=6.0)
    text = render_builds(bench, build_result(bench, "unchanged", 24.0, 12.0, 0.3), floor)
    assert (
        "dbt's own floor for as many nodes (benchmarks/dbt_floor.py: 5 table models that select a constant, 2"
        " data tests that read one and find nothing, 1 one-row seeds, the same adapter and threads): 6.0 s"
        " wall with its parse kept (9.5 s from nothing), 0.05 of the full build."
    ) in text
    assert "dbt's own floor" not in render_builds(bench)


BEFORE = "# Benchmarks\n\nIntro.\n\n## Engines\n\n### 1,000,000 events\n\nfigures\n"
AFTER = "## Later section\n\nkept  \n\n\n"


def test_replace_section_appends_when_absent_and_keeps_the_file(bench) -> None:
    heading = bench.section_heading(1_000_000)
    assert heading == "## Scheduled build at 1,000,000 events"
    written = bench.replace_section(BEFORE, heading, "table\n")
    assert written == BEFORE + "\n" + heading + "\n\ntable\n"
    # A file without a final newline gets one before the blank line.
    assert bench.replace_section("x", heading, "t").startswith("x\n\n" + heading)


def test_replace_section_replaces_only_that_section(bench) -> None:
    heading = bench.section_heading(1_000_000)
    old = f"{heading}\n\nold table\n\n### a subsection of it\n\nold words\n\n\n"
    other = "## Scheduled build at 10,000,000 events\n\nthe 10M figures\n\n"
    text = BEFORE + "\n" + old + other + AFTER
    written = bench.replace_section(text, heading, "new table")
    assert written == BEFORE + "\n" + f"{heading}\n\nnew table\n\n" + other + AFTER
    # Twice is the same as once.
    assert bench.replace_section(written, heading, "new table") == written


def test_replace_section_at_the_end_of_the_file(bench) -> None:
    heading = bench.section_heading(50_000)
    text = BEFORE + "\n" + f"{heading}\n\nold\n"
    assert bench.replace_section(text, heading, "new") == BEFORE + "\n" + f"{heading}\n\nnew\n"


def test_replace_section_matches_the_whole_heading_line(bench) -> None:
    heading = bench.section_heading(1_000)
    text = BEFORE + "\n## Scheduled build at 1,000 events (old notes)\n\nkept\n"
    assert bench.replace_section(text, heading, "t") == text + "\n" + heading + "\n\nt\n"


def test_a_history_within_one_part_is_generated_as_before(bench) -> None:
    assert bench.history_parts(10_000_000) == [("history", 10_000_000, 42, 100)]


def test_a_larger_history_is_split_into_parts_with_their_own_seeds(bench) -> None:
    parts = bench.history_parts(30_000_001)
    assert [folder for folder, *_ in parts] == ["history-01", "history-02", "history-03", "history-04"]
    assert sum(size for _, size, _, _ in parts) == 30_000_001
    assert max(size for _, size, _, _ in parts) <= 10_000_000
    assert max(size for _, size, _, _ in parts) - min(size for _, size, _, _ in parts) <= 1
    assert len({seed for _, _, seed, _ in parts}) == 4
    assert [files for *_, files in parts] == [25, 25, 25, 25]


def test_a_part_size_below_one_event_is_refused(bench) -> None:
    with pytest.raises(ValueError, match="part_events: expected a positive number of events, got 0"):
        bench.history_parts(1000, 0)
