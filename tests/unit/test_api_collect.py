"""Collecting rows over the API without a server: the same checks as ingest, the conversion id, durable
landing segments that ingest seals and loads, and replays."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from ingest_helpers import MISSING, record
from test_ingest_validation import CASES

from pipelines.api.collect import WHITESPACE, Collector, conversion_id
from pipelines.api.landing import SegmentWriter, open_dir, seal_open_segments, sealed_dir
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths
from pipelines.ingest.readers import jsonl_lines_source, objects_source
from pipelines.ingest.typed import typed_frame
from pipelines.ingest.validation import failure_cases, failure_cases_one_pass
from pipelines.warehouse import PROJECT_DIR


def _cases(lines: list[str], stream: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    with duckdb.connect() as con:
        typed = typed_frame(jsonl_lines_source(con, lines, stream).values, stream)
    order = ["_idx", "column", "check"]
    return failure_cases(typed, stream).sort(order), failure_cases_one_pass(typed, stream).sort(order)


@pytest.mark.parametrize("stream", ["events", "conversions", "ad_spend"])
def test_one_pass_checks_fail_exactly_the_rows_and_checks_pandera_fails(tmp_path: Path, stream: str) -> None:
    config = GeneratorConfig(persons=60, seed=3, start=dt.date(2026, 3, 1), days=5, bad_rows_ratio=0.4)
    generate_dataset(tmp_path, config)
    (path,) = tmp_path.glob(f"{stream}*.jsonl")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    lines += [
        json.dumps({k: v for k, v in record(s, n, **overrides).items() if v is not MISSING})
        for n, (_, s, overrides, _, _) in enumerate(CASES)
        if s == stream
    ]
    pandera, one_pass = _cases(lines, stream)
    assert pandera.height > 10
    assert one_pass.equals(pandera)


def test_the_conversion_id_is_the_uuid_from_columns_macro() -> None:
    macro = (PROJECT_DIR / "macros" / "uuid_from_columns.sql").read_text()
    assert "md5(" in macro and "'|'" in macro  # the formula below is the macro's, on staged values
    with duckdb.connect() as con:
        for ctype, eid in [("purchase", "e1"), (" Purchase ", "\u00a0e-2\t"), ("signup", "")]:
            staged = ctype.strip().lower() + "|" + eid.strip()
            digest = con.execute("select md5(?)", [staged]).fetchone()[0]
            expected = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"
            assert conversion_id(ctype, eid) == expected


def test_keys_are_trimmed_of_what_staging_trims() -> None:
    macro = (PROJECT_DIR / "macros" / "clean_string.sql").read_text()
    listed = macro[macro.index("macro whitespace_characters") :]
    assert "[9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760]" in listed
    assert "range(8192, 8203)" in listed and "[8232, 8233, 8239, 8287, 12288]" in listed
    staged = {
        9,
        10,
        11,
        12,
        13,
        28,
        29,
        30,
        31,
        32,
        133,
        160,
        5760,
        *range(8192, 8203),
        8232,
        8233,
        8239,
        8287,
        12288,
    }
    assert {ord(c) for c in WHITESPACE} == staged
    assert all(chr(c).isspace() == (c in staged) for c in range(0x110000))  # = Python's str.strip()


def _row(n: int, **overrides: object) -> dict:
    base = {
        "event_id": f"e{n}",
        "person_id": "p1",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 100,
        "currency": "USD",
        "conversion_time": "2026-03-01T12:00:00Z",
    }
    return {**base, **overrides}


def test_accepted_rows_land_in_segments_that_ingest_seals_and_loads_once(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    collector = Collector(landing)
    try:
        first = collector.submit_and_wait("conversions", [_row(1), _row(2, value_cents=-1), _row(3)])
        assert [o.status for o in first] == ["accepted", "rejected", "accepted"]
        assert first[1].errors[0]["rule"] == "min_value"
        assert not list(landing.glob("*.jsonl")) and not (landing / "api").exists()  # still open
        ingest_paths([landing], warehouse=warehouse, progress=False)
        later = collector.submit_and_wait("conversions", [_row(4), _row(1)])  # a new segment; a replay
        assert [o.status for o in later] == ["accepted", "replayed"]
        ingest_paths([landing], warehouse=warehouse, progress=False)
        ingest_paths([landing], warehouse=warehouse, progress=False)  # nothing new: nothing loaded twice
    finally:
        collector.close()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = sorted(r[0] for r in con.execute("select event_id from raw.conversions").fetchall())
        rejected = con.execute("select count(*) from raw.rejected_rows").fetchone()[0]
    assert loaded == ["e1", "e3", "e4"] and rejected == 0
    assert len(list(sealed_dir(landing).glob("conversions-api-*.jsonl"))) == 2


def test_sealing_cuts_a_torn_last_line_and_waits_for_the_writer(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    writer = SegmentWriter(landing, "events")
    writer.append([b'{"event_id": "a"}\n'])
    (segment,) = open_dir(landing).glob("events-api-*.jsonl")
    with segment.open("ab") as f:  # a write cut short by a crash: never acknowledged
        f.write(b'{"event_id": "b", "per')
    fd = os.open(segment, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the writer is appending
    sealed: list[Path] = []
    sealer = threading.Thread(target=lambda: sealed.extend(seal_open_segments(landing)))
    sealer.start()
    sealer.join(timeout=0.3)
    assert sealer.is_alive()  # waits for the writer's lock
    os.close(fd)
    sealer.join(timeout=10)
    assert [p.read_bytes() for p in sealed] == [b'{"event_id": "a"}\n']
    writer.append([b'{"event_id": "c"}\n'])  # the writer notices its segment moved and starts another
    (again,) = open_dir(landing).glob("events-api-*.jsonl")
    assert again != segment and again.read_bytes() == b'{"event_id": "c"}\n'
    writer.close()


def test_a_restarted_collector_answers_replays_as_the_first_time(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    collector = Collector(landing)
    (first,) = collector.submit_and_wait("conversions", [_row(7)])
    (event,) = collector.submit_and_wait("events", [{"person_id": "p", "event_name": "signup"}])
    collector.close()
    seal_open_segments(landing)
    again = Collector(landing)
    try:
        (replay,) = again.submit_and_wait("conversions", [_row(7, value_cents=5)])
        (event_replay,) = again.submit_and_wait(
            "events", [{"person_id": "p", "event_name": "signup", "event_id": event.event_id}]
        )
    finally:
        again.close()
    assert (replay.status, replay.id, replay.event_id) == ("replayed", first.id, "e7")
    assert event_replay.status == "replayed"
    assert first.id == conversion_id("purchase", "e7")


@pytest.mark.parametrize(
    "text",
    [
        '{"value_cents": 2999, "properties": {"items": [1, 2.5, null, true]}}',
        '{"value_cents": 123456789012345678901234567890}',  # beyond 64 bits: an exact integer
        '{"value_cents": 18446744073709551616}',  # one past the largest unsigned 64-bit integer
        '{"event_id": "00000000000000000000000001"}',  # a long digit run inside a string
        '{"value_cents": NaN, "x": Infinity}',
        '{"event_id": "\\ud800"}',  # a lone surrogate escape
        '{"a": 1, "a": 2}',  # a repeated key: the last one counts (the server then rejects the row)
        '[{"a": 1e400}, {"b": -0.0}]',
    ],
)
def test_request_bodies_parse_to_what_the_standard_library_parses(text: str) -> None:
    from pipelines.api.server import _loads

    parsed, expected = _loads(text), json.loads(text)
    assert repr(parsed) == repr(expected)  # repr: NaN != NaN, and 1 == 1.0 would hide a float


@pytest.mark.parametrize("text", ['{"a": 1,}', '{"a": }', "[1, 2", ""])
def test_invalid_request_bodies_fail_with_the_standard_librarys_message(text: str) -> None:
    from pipelines.api.server import _loads

    with pytest.raises(json.JSONDecodeError) as ours:
        _loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.lineno, ours.value.colno) == (
        theirs.value.msg,
        theirs.value.lineno,
        theirs.value.colno,
    )


@pytest.mark.parametrize("stream", ["events", "conversions"])
def test_serialized_lines_read_as_the_same_lines_read_strictly(tmp_path: Path, stream: str) -> None:
    """The API skips the strict-JSON check for lines it serialized itself; the values are the same."""
    config = GeneratorConfig(persons=40, seed=5, start=dt.date(2026, 3, 1), days=4, bad_rows_ratio=0.3)
    generate_dataset(tmp_path, config)
    (path,) = tmp_path.glob(f"{stream}*.jsonl")
    lines = [json.dumps(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    with duckdb.connect() as con:
        strict = jsonl_lines_source(con, lines, stream).values
        serialized = jsonl_lines_source(con, lines, stream, serialized=True).values
    assert strict.height == len(lines)
    assert serialized.equals(strict)


@pytest.mark.parametrize("rows", [3, 2_000])  # hashed in Python / by one DuckDB query for the group
def test_every_row_of_a_group_gets_its_own_conversion_id(tmp_path: Path, rows: int) -> None:
    collector = Collector(tmp_path)
    try:
        posted = [_row(n, event_id=f" order-{n} ", conversion_type=" Purchase") for n in range(rows)]
        outcomes = collector.submit_and_wait("conversions", posted)
    finally:
        collector.close()
    assert [o.status for o in outcomes] == ["accepted"] * rows
    assert [o.id for o in outcomes] == [conversion_id(" Purchase", f" order-{n} ") for n in range(rows)]
    assert [o.event_id for o in outcomes] == [f"order-{n}" for n in range(rows)]


# Values whose reading the API must not change: numbers of every shape (floats are read by DuckDB, as in
# a file), booleans, objects and arrays in string fields, JSON text in a json field, long and odd text.
ODD_VALUES: list[object] = [
    0,
    -7,
    2**63,
    10**25,
    2.0,
    29.99,
    1e16,
    -0.0,
    float("nan"),
    float("inf"),
    True,
    False,
    "",
    "  ",
    " x ",
    "true",
    "{oops",
    '{"a": 1}',
    "a\x00b",
    "\u2028é",
    {"a": 1.0, "b": [1, None]},
    [1, "2"],
    {},
]


def _serialized(row: dict) -> str:
    """The line the API writes of a row: orjson's (NaN and infinities as null); the standard library's
    for integers beyond 64 bits."""
    try:
        return orjson.dumps(row).decode()
    except TypeError:
        return json.dumps(row, ensure_ascii=False)


def _read_both_ways(objects: list[dict], stream: str) -> None:
    """The objects read as the API reads them and as their serialized lines: the same typed frame, the
    same failed checks, the same values shown in messages."""
    lines = [_serialized(o) for o in objects]
    with duckdb.connect() as con:
        as_lines = jsonl_lines_source(con, lines, stream, serialized=True).values
        as_objects = objects_source(con, objects, stream).values
    typed_lines, typed_objects = typed_frame(as_lines, stream), typed_frame(as_objects, stream)
    assert typed_objects.equals(typed_lines)
    order = ["_idx", "column", "check"]
    one_pass = failure_cases_one_pass(typed_objects, stream).sort(order)
    assert one_pass.equals(failure_cases(typed_lines, stream).sort(order))
    for name in as_lines.columns:  # what rejection messages show of a value, and its JSON type
        if name in as_objects.columns and as_objects.schema[name] != pl.Null:
            assert as_objects[name].to_list() == as_lines[name].to_list(), name
        elif name.endswith("__jtype"):  # no such column: no value is an object, array or boolean
            assert set(as_lines[name].drop_nulls().to_list()) <= {"VARCHAR", "BIGINT", "UBIGINT", "DOUBLE"}, (
                name
            )
        else:
            assert as_lines[name].null_count() == as_lines.height, name


@pytest.mark.parametrize("stream", ["events", "conversions"])
def test_objects_read_as_the_lines_a_serializer_writes_of_them(tmp_path: Path, stream: str) -> None:
    """The API validates parsed objects without writing them as JSON first; typing and checks see what
    they would see in the lines written of the objects, read as a landing file's lines."""
    config = GeneratorConfig(persons=40, seed=9, start=dt.date(2026, 3, 1), days=4, bad_rows_ratio=0.3)
    generate_dataset(tmp_path, config)
    (path,) = tmp_path.glob(f"{stream}*.jsonl")
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    objects += [
        {k: v for k, v in record(s, n, **overrides).items() if v is not MISSING}
        for n, (_, s, overrides, _, _) in enumerate(CASES)
        if s == stream
    ]
    _read_both_ways(objects, stream)


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_each_kind_of_value_reads_as_its_serialized_line(value: object) -> None:
    """One odd value per group (a field holding floats, objects... is read by DuckDB as a line is)."""
    for stream, fields in [
        ("events", ["person_id", "properties", "opt_out", "event_time"]),
        ("conversions", ["event_id", "value_cents", "currency", "properties"]),
    ]:
        odd = record(stream, 1, **dict.fromkeys(fields, value))
        _read_both_ways([odd, record(stream, 2), record(stream, 3, **dict.fromkeys(fields, MISSING))], stream)


def test_checks_of_fields_no_row_gave_are_decided_once(tmp_path: Path) -> None:
    """A check reading only fields null in every row fails all rows or none, as evaluated on each row."""
    rows = [record("conversions", n, conversion_source=MISSING, currency=MISSING) for n in range(3)]
    rows[1]["value_cents"] = 0  # currency_required reads value_cents, which rows give: per row
    with duckdb.connect() as con:
        typed = typed_frame(objects_source(con, rows, "conversions").values, "conversions")
    order = ["_idx", "column", "check"]
    expected = failure_cases(typed, "conversions").sort(order)
    assert failure_cases_one_pass(typed, "conversions").sort(order).equals(expected)
    assert set(expected.select("column", "check").unique().rows()) == {
        ("conversion_source", "required"),
        ("currency", "currency_required"),
    }


def test_a_group_writes_exactly_its_accepted_rows_and_answers_each(tmp_path: Path) -> None:
    """Rows of several requests committed together: the landing file holds each accepted row once, as
    its JSON line (values exact), and each request gets its rows' outcomes in order."""
    odd_text = {"utm_content": 'a "},{" b', "properties": {"items": [{"a": 1}, {"b": 2}]}}
    requests = [
        [_row(1), _row(2, value_cents=-1), _row(3, **odd_text)],
        [_row(1), _row(4, extra=10**25), 42, _row(5, city="\ud800"), _row(6)],
        [_row(6, conversion_type=" PURCHASE "), _row(7)],
    ]
    collector = Collector(tmp_path)
    try:
        with collector._lock:
            outcomes = collector.process_group("conversions", requests)
    finally:
        collector.close()
    statuses = [[o.status for o in request.rows()] for request in outcomes]
    assert statuses == [
        ["accepted", "rejected", "accepted"],
        ["replayed", "accepted", "rejected", "rejected", "accepted"],
        ["replayed", "accepted"],
    ]
    (segment,) = open_dir(tmp_path).glob("conversions-api-*.jsonl")
    written = [json.loads(line) for line in segment.read_text().splitlines()]
    assert written == [_row(1), _row(3, **odd_text), _row(4, extra=10**25), _row(6), _row(7)]
    rejected = outcomes[1].rows()
    assert [e["rule"] for e in rejected[2].errors] == ["json_object"]
    assert [(e["field"], e["rule"]) for e in rejected[3].errors] == [("city", "unicode")]
    for request in outcomes:  # the batch answer the HTTP layer writes is the outcomes' own JSON
        assert json.loads(request.rows_json()) == [o.as_json() for o in request.rows()]
        assert request.counts() == {s: [o.status for o in request.rows()].count(s) for s in request.counts()}
    replay = outcomes[2].rows()[0]
    assert (replay.event_id, replay.id) == ("e6", conversion_id("purchase", "e6"))


@pytest.mark.parametrize(
    "rows",
    [
        [_row(1), _row(2)],  # every row accepted: the group's JSON cut at the objects' boundaries
        [_row(1), _row(2, utm_content='"},{"')],  # "},{" inside a string: row by row
        [_row(1), _row(2, properties={"a": [{"b": 1}, {"c": 2}]})],  # "},{" between nested objects
        [_row(1), _row(2, extra=2**70)],  # beyond 64 bits: the standard library writes it exactly
    ],
)
def test_every_accepted_group_is_written_row_for_row(tmp_path: Path, rows: list[dict]) -> None:
    collector = Collector(tmp_path)
    try:
        outcomes = collector.submit_and_wait("conversions", rows)
    finally:
        collector.close()
    assert [o.status for o in outcomes] == ["accepted"] * len(rows)
    (segment,) = open_dir(tmp_path).glob("conversions-api-*.jsonl")
    assert [json.loads(line) for line in segment.read_text().splitlines()] == rows


@pytest.mark.parametrize(
    ("body", "ndjson", "repeated"),
    [
        ('{"a": 1, "b": "x"}', False, {}),
        ('{"a": 1, "a": 2}', False, {0: "a"}),
        ('[{"a": 1}, {"b": "x", "c": 1, "b": "y"}]', False, {1: "b"}),
        ('{"a": {"b": 1, "b": 2}}', False, {}),  # inside a value: ingest reads such a line too
        ('{"a": "say \\"hi\\"", "a": 1}', False, {0: "a"}),  # escaped quotes: counted by parsing
        ('{"a": "\\"", "b": "\\u0022"}', False, {}),
        ('{"a": NaN, "b": 123456789012345678901234567890, "b": 1}', False, {0: "b"}),
        ('{"a": 1}\n\n{"a": 1, "a": 1}\n', True, {1: "a"}),
    ],
)
def test_a_key_given_twice_in_a_row_is_found(body: str, ndjson: bool, repeated: dict[int, str]) -> None:
    from pipelines.api.server import _loads, _may_repeat_keys, _repeated_keys

    lines = [line for line in body.split("\n") if line.strip()] if ndjson else None
    parsed = [_loads(line) for line in lines] if lines else _loads(body)
    rows = parsed if isinstance(parsed, list) else [parsed]
    found = _repeated_keys(body, lines) if _may_repeat_keys(body.encode(), rows) else {}
    assert found == repeated
    assert _repeated_keys(body, lines) == repeated  # the quick test never misses one


def test_a_row_naming_a_field_twice_is_rejected_alone(tmp_path: Path) -> None:
    from pipelines.api.collect import RepeatedKey

    collector = Collector(tmp_path)
    try:
        outcomes = collector.submit_and_wait("conversions", [RepeatedKey("currency"), _row(1)])
    finally:
        collector.close()
    assert [o.status for o in outcomes] == ["rejected", "accepted"]
    assert outcomes[0].errors == [
        {
            "field": "currency",
            "rule": "repeated_key",
            "message": "currency: expected each field once per JSON object, got it twice",
        }
    ]
