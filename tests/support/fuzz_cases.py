"""Bad landing files for the fuzz suite: one case per kind of bad input, across JSONL, CSV and Parquet.

Every case is a landing file holding good rows around the bad input, and says what ingest must do with it:
fail the whole file with a message (``failed``), or load the good rows and reject the bad ones with a
reason (``rejected``), or load every row (``loaded``: inputs that look odd but are valid, such as a BOM,
CRLF line ends, blank lines or duplicate ids, which the dbt build deduplicates). Good rows carry event ids
unique to their case, so all cases can land in one warehouse and be built once.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

GOOD_TIME = "2026-03-05T12:00:00Z"


@dataclass
class Case:
    id: str
    file_name: str  # its stream prefix and extension matter
    write: Callable[[Path], None]
    outcome: str  # failed | rejected | loaded
    message: str = ""  # in load_log.error (failed) or in every rejected row's reason (rejected)
    loaded: int = 0  # rows expected in raw.<stream>
    rejected: int = 0
    fields: list[str] = field(default_factory=list)  # failing_fields of the rejected rows


def good(stream: str, case: str, n: int) -> dict:
    """A valid record of ``stream``, its id unique to the case."""
    if stream == "events":
        return {
            "event_id": f"fz-{case}-e{n}",
            "person_id": f"fz-{case}",
            "event_name": "page_view",
            "event_time": GOOD_TIME,
            "source": "pixel",
        }
    if stream == "conversions":
        return {
            "event_id": f"fz-{case}-c{n}",
            "person_id": f"fz-{case}",
            "conversion_type": "purchase",
            "conversion_source": "capi",
            "value_cents": 1999,
            "currency": "USD",
            "conversion_time": GOOD_TIME,
        }
    return {
        "date": "2026-03-05",
        "campaign_id": f"fz-{case}-{n}",
        "spend_cents": 1000,
        "currency": "USD",
        "impressions": 100,
        "clicks": 10,
    }


def _jsonl(lines: list[str | dict], *, newline: str = "\n") -> bytes:
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + newline for x in lines)
    return text.encode("utf-8", "surrogatepass")


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _csv(rows: list[dict], header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    names = header or list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _parquet(frame: Callable[[], pl.DataFrame]) -> Callable[[Path], None]:
    return lambda path: frame().write_parquet(path)


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


# (stream, field, bad value, failing field, words of the reason) of a row-level rejection.
ROW_FAULTS: list[tuple[str, str, object, str, str]] = [
    ("conversions", "value_cents", "abc", "value_cents", "expected a whole number >= 0"),
    ("conversions", "value_cents", 12.5, "value_cents", "expected a whole number >= 0"),
    ("conversions", "value_cents", "1e3", "value_cents", "expected a whole number >= 0"),
    ("conversions", "value_cents", -5, "value_cents", "expected a whole number >= 0"),
    ("conversions", "value_cents", 2**63 - 1, "value_cents", "expected at most 999,999,999,999"),
    ("conversions", "value_cents", 10**12, "value_cents", "expected at most 999,999,999,999"),
    ("conversions", "value_cents", "NaN", "value_cents", "expected a whole number"),
    ("conversions", "value_cents", "Infinity", "value_cents", "expected a whole number"),
    ("conversions", "value_cents", True, "value_cents", "expected a whole number"),
    ("conversions", "value_cents", [1], "value_cents", "expected a whole number"),
    ("conversions", "currency", "XYZ", "currency", "expected a 3-letter ISO 4217 currency code"),
    (
        "conversions",
        "currency",
        "JPY",
        "currency",
        "expected a currency the warehouse has exchange rates for",
    ),
    ("conversions", "currency", "", "currency", "is required when value_cents > 0"),
    ("conversions", "currency", "dollars", "currency", "ISO 4217"),
    ("conversions", "conversion_type", "refund", "conversion_type", "expected one of"),
    ("conversions", "conversion_type", "", "conversion_type", "is required"),
    ("conversions", "conversion_source", "email", "conversion_source", "expected one of"),
    ("conversions", "conversion_time", "2026-03-05T12:00:00", "conversion_time", "has no UTC offset"),
    ("conversions", "conversion_time", "2026-03-05", "conversion_time", "has no UTC offset"),
    ("conversions", "conversion_time", "2026-02-30T12:00:00Z", "conversion_time", "not a valid date or time"),
    ("conversions", "conversion_time", "2026-13-01T00:00:00Z", "conversion_time", "not a valid date or time"),
    ("conversions", "conversion_time", "2026-03-05T25:00:00Z", "conversion_time", "not a valid date or time"),
    ("conversions", "conversion_time", "2026-06-30T23:59:60Z", "conversion_time", "not a valid date or time"),
    ("conversions", "conversion_time", "yesterday", "conversion_time", "expected an ISO-8601 timestamp"),
    ("conversions", "conversion_time", 1772712000, "conversion_time", "epoch seconds?"),
    (
        "conversions",
        "conversion_time",
        "1899-12-31T00:00:00Z",
        "conversion_time",
        "expected a time from 2000-01-01",
    ),
    (
        "conversions",
        "conversion_time",
        "2150-01-01T00:00:00Z",
        "conversion_time",
        "expected a time from 2000-01-01",
    ),
    ("conversions", "conversion_time", 10**15, "conversion_time", "epoch milliseconds out of range"),
    ("conversions", "conversion_time", None, "conversion_time", "is required"),
    ("conversions", "event_id", {"a": 1}, "event_id", "a JSON object"),
    ("conversions", "event_id", ["x"], "event_id", "a JSON array"),
    ("conversions", "event_id", False, "event_id", "a JSON boolean"),
    ("conversions", "event_id", "   ", "event_id", "is required"),
    ("conversions", "event_id", "x" * 5000, "event_id", "expected at most"),
    ("conversions", "person_id", None, "person_id", "is required"),
    ("conversions", "properties", [1, 2], "properties", "expected a JSON object"),
    ("conversions", "properties", "not json", "properties", "expected a JSON object"),
    ("conversions", "properties", 42, "properties", "expected a JSON object"),
    ("conversions", "properties", {"blob": "y" * 70000}, "properties", "expected at most"),
    ("conversions", "email", "e" * 400, "email", "expected at most"),
    ("events", "event_time", "2026-03-05 12:00", "event_time", "has no UTC offset"),
    ("events", "event_time", "", "event_time", "is required"),
    ("events", "event_time", "2026-03-05T12:00:00+25:00", "event_time", "event_time"),
    ("events", "event_name", None, "event_name", "is required"),
    ("events", "source", "carrier pigeon", "source", "expected one of"),
    ("events", "device_type", "fridge", "device_type", "expected one of"),
    ("events", "properties", "[]", "properties", "expected a JSON object"),
    ("events", "event_id", "\u0000\u0001", "event_id", "expected text without NUL characters"),
    ("ad_spend", "clicks", 1000, "clicks", "expected at most impressions"),
    ("ad_spend", "spend_cents", -1, "spend_cents", "expected a whole number >= 0"),
    ("ad_spend", "spend_cents", 10**13, "spend_cents", "expected at most 999,999,999,999"),
    ("ad_spend", "currency", "JPY", "currency", "expected a currency the warehouse has exchange rates for"),
    ("ad_spend", "date", "05/03/2026", "date", "expected a date as YYYY-MM-DD"),
    ("ad_spend", "date", "2026-02-30", "date", "expected a date as YYYY-MM-DD"),
    ("ad_spend", "date", "1990-01-01", "date", "expected a date from 2000-01-01"),
    ("ad_spend", "impressions", "many", "impressions", "expected a whole number"),
]


def _row_fault_cases() -> list[Case]:
    cases = []
    for n, (stream, name, value, failing, words) in enumerate(ROW_FAULTS):
        cid = f"jsonl-{stream}-{name}-{n}"
        bad = good(stream, cid, 9)
        if value is None:
            bad.pop(name)
        else:
            bad[name] = value
        if stream == "ad_spend":
            bad["campaign_id"] = f"fz-{cid}-bad"
        content = _jsonl([good(stream, cid, 1), bad, good(stream, cid, 2)])
        cases.append(Case(cid, f"{stream}_{cid}.jsonl", _bytes(content), "rejected", words, 2, 1, [failing]))
    # The first two dozen faults again as CSV text (every value a string; JSON kinds have no CSV form).
    for n, (stream, name, value, failing, words) in enumerate(ROW_FAULTS[:24]):
        if isinstance(value, dict | list | bool):
            continue
        cid = f"csv-{stream}-{name}-{n}"
        rows = [good(stream, cid, 1), good(stream, cid, 9), good(stream, cid, 2)]
        rows[1][name] = "" if value is None else str(value)
        header = list(dict.fromkeys([*good(stream, cid, 1), name]))
        content = _bytes(_csv(rows, header))
        cases.append(Case(cid, f"{stream}_{cid}.csv", content, "rejected", words, 2, 1, [failing]))
    return cases


def _file_fault_cases() -> list[Case]:
    ev = lambda cid, n: good("events", cid, n)  # noqa: E731
    cases: list[Case] = []

    def failed(cid: str, name: str, content: bytes | Callable[[Path], None], message: str) -> None:
        write = _bytes(content) if isinstance(content, bytes) else content
        cases.append(Case(cid, name, write, "failed", message))

    def loaded(cid: str, name: str, content: bytes | Callable[[Path], None], rows: int) -> None:
        write = _bytes(content) if isinstance(content, bytes) else content
        cases.append(Case(cid, name, write, "loaded", "", rows))

    g = lambda cid: json.dumps(ev(cid, 1))  # noqa: E731
    failed(
        "invalid-utf8",
        "events_fz_utf8.jsonl",
        g("invalid-utf8").encode() + b"\n" + b'{"event_id": "\xff"}\n',
        "invalid UTF-8 at byte",
    )
    failed(
        "latin1-csv",
        "events_fz_latin1.csv",
        b"event_id,person_id,event_name,event_time\ne\xe9,p,page_view,2026-03-05T12:00:00Z\n",
        "invalid UTF-8",
    )
    failed("nul", "events_fz_nul.jsonl", g("nul").encode() + b"\n\x00\n", "line 2 contains a NUL byte")
    failed(
        "cr-only",
        "events_fz_cr.jsonl",
        (g("cr-only") + "\r" + g("cr-only") + "\r").encode(),
        "carriage return (CR) alone",
    )
    failed(
        "truncated-jsonl",
        "events_fz_trunc.jsonl",
        (g("truncated-jsonl") + "\n" + g("truncated-jsonl")[:30]).encode(),
        "line 2 is not valid JSON",
    )
    failed(
        "array-line",
        "events_fz_array.jsonl",
        (g("array-line") + "\n[1, 2]\n").encode(),
        "line 2 is a JSON array, not an object",
    )
    failed(
        "number-line",
        "events_fz_number.jsonl",
        (g("number-line") + "\n42\n").encode(),
        "line 2 is a JSON number, not an object",
    )
    failed(
        "string-line",
        "events_fz_string.jsonl",
        (g("string-line") + '\n"x"\n').encode(),
        "line 2 is a JSON string, not an object",
    )
    failed("plain-text", "events_fz_text.jsonl", b"hello world\n", "line 1 is not valid JSON")
    failed(
        "trailing-comma",
        "events_fz_comma.jsonl",
        (g("trailing-comma")[:-1] + ",}\n").encode(),
        "trailing comma",
    )
    failed(
        "duplicate-key",
        "events_fz_dupkey.jsonl",
        ('{"event_id": "a", ' + g("duplicate-key")[1:] + "\n").encode(),
        "has the key 'event_id' twice",
    )
    failed(
        "lone-surrogate",
        "events_fz_surrogate.jsonl",
        (g("lone-surrogate")[:-1] + ', "city": "\\udc00"}\n').encode(),
        "surrogate pair",
    )
    failed(
        "parquet-as-jsonl",
        "events_fz_pq.jsonl",
        _parquet_bytes(pl.DataFrame([ev("parquet-as-jsonl", 1)])),
        "a Parquet file, not JSONL",
    )
    failed(
        "gzip-as-jsonl",
        "events_fz_gz.jsonl",
        gzip.compress(g("gzip-as-jsonl").encode(), mtime=0),
        "a gzip-compressed file, not JSONL",
    )
    failed(
        "gz-extension",
        "events_fz.jsonl.gz",
        gzip.compress(g("gz-extension").encode(), mtime=0),
        "compressed files (.gz) are not read",
    )
    failed("zip-extension", "events_fz.zip", b"PK\x03\x04rest", "compressed files (.zip) are not read")
    failed("json-extension", "events_fz.json", g("json-extension").encode(), "unknown file type '.json'")
    failed("txt-extension", "events_fz.txt", b"notes\n", "unknown file type '.txt'")
    failed("no-extension", "events_fz_noext", b"x\n", "unknown file type '(no extension)'")
    failed(
        "no-stream",
        "clicks_fz.jsonl",
        g("no-stream").encode() + b"\n",
        "cannot tell the stream from the file name",
    )
    failed("empty-csv", "events_fz_empty.csv", b"", "the CSV file is empty")
    failed("empty-parquet", "events_fz_empty.parquet", b"", "not a readable Parquet file")
    failed(
        "truncated-parquet",
        "events_fz_trunc.parquet",
        _parquet_bytes(pl.DataFrame([ev("truncated-parquet", 1)]))[:-20],
        "not a readable Parquet file",
    )
    failed(
        "garbage-parquet",
        "events_fz_garbage.parquet",
        b"PAR1" + bytes(range(200)) + b"PAR1",
        "not a readable Parquet file",
    )
    failed(
        "csv-missing-column",
        "events_fz_missing.csv",
        b"event_id,person_id,event_name\ne1,p,page_view\n",
        "missing required column(s) event_time",
    )
    failed(
        "csv-ragged",
        "events_fz_ragged.csv",
        b"event_id,person_id,event_name,event_time\ne1,p,page_view,2026-03-05T12:00:00Z,extra,more\n",
        "has 6 fields",
    )
    failed(
        "csv-open-quote",
        "events_fz_quote.csv",
        b'event_id,person_id,event_name,event_time\ne1,"p,page_view,2026-03-05T12:00:00Z\ne2,p,page_view,2026-03-05T12:00:00Z\n',
        "data row 1 (line 2)",
    )
    failed(
        "parquet-missing-column",
        "events_fz_missing.parquet",
        _parquet(lambda: pl.DataFrame({"event_id": ["x"]})),
        "missing required column(s)",
    )
    failed(
        "parquet-naive-timestamp",
        "events_fz_naive.parquet",
        _parquet(
            lambda: pl.DataFrame(
                {
                    **{k: [v] for k, v in ev("parquet-naive-timestamp", 1).items() if k != "event_time"},
                    "event_time": [dt.datetime(2026, 3, 5, 12)],
                }
            )
        ),
        "is a timestamp without time zone",
    )
    failed(
        "parquet-list-column",
        "events_fz_list.parquet",
        _parquet(
            lambda: pl.DataFrame(
                {
                    **{k: [v] for k, v in ev("parquet-list-column", 1).items() if k != "person_id"},
                    "person_id": [["a"]],
                }
            )
        ),
        "column person_id has type",
    )
    failed(
        "binary-csv",
        "events_fz_binary.csv",
        b"\x00\x01\x02\x03\xff",
        "line 1 contains a NUL byte: expected CSV text",
    )

    # Odd but valid: every row loads.
    loaded(
        "bom-jsonl",
        "events_fz_bom.jsonl",
        b"\xef\xbb\xbf" + _jsonl([ev("bom-jsonl", 1), ev("bom-jsonl", 2)]),
        2,
    )
    loaded("bom-csv", "events_fz_bom.csv", b"\xef\xbb\xbf" + _csv([ev("bom-csv", 1)]), 1)
    loaded(
        "crlf-jsonl",
        "events_fz_crlf.jsonl",
        _jsonl([ev("crlf-jsonl", 1), ev("crlf-jsonl", 2)], newline="\r\n"),
        2,
    )
    loaded("crlf-csv", "events_fz_crlf.csv", _csv([ev("crlf-csv", 1)]).replace(b"\n", b"\r\n"), 1)
    loaded(
        "blank-lines",
        "events_fz_blank.jsonl",
        _jsonl(["", ev("blank-lines", 1), "   ", ev("blank-lines", 2), ""]),
        2,
    )
    loaded("empty-jsonl", "events_fz_empty.jsonl", b"", 0)
    loaded("no-final-newline", "events_fz_nonl.jsonl", _jsonl([ev("no-final-newline", 1)]).rstrip(b"\n"), 1)
    loaded(
        "duplicate-ids",
        "events_fz_dupids.jsonl",
        _jsonl([ev("duplicate-ids", 1), ev("duplicate-ids", 1), ev("duplicate-ids", 1)]),
        3,
    )
    loaded("header-only-csv", "events_fz_header.csv", b"event_id,person_id,event_name,event_time\n", 0)
    loaded(
        "extra-columns",
        "events_fz_extra.jsonl",
        _jsonl([{**ev("extra-columns", 1), "surprise": [1, {"x": 2}]}]),
        1,
    )
    loaded("unicode", "events_fz_unicode.jsonl", _jsonl([{**ev("unicode", 1), "city": "Zürich 東京 🚀"}]), 1)
    loaded(
        "numbers-as-strings",
        "conversions_fz_numstr.jsonl",
        _jsonl([{**good("conversions", "numbers-as-strings", 1), "value_cents": "1999"}]),
        1,
    )
    loaded(
        "epoch-ms", "events_fz_epoch.jsonl", _jsonl([{**ev("epoch-ms", 1), "event_time": 1772712000000}]), 1
    )
    loaded(
        "zero-value-no-currency",
        "conversions_fz_zero.jsonl",
        _jsonl([{**good("conversions", "zero-value-no-currency", 1), "value_cents": 0, "currency": None}]),
        1,
    )
    loaded(
        "parquet-typed",
        "events_fz_typed.parquet",
        _parquet(
            lambda: pl.DataFrame([ev("parquet-typed", 1)]).with_columns(
                pl.col("event_time").str.to_datetime(time_zone="UTC")
            )
        ),
        1,
    )
    # Row-level faults in Parquet: typed columns.
    cases.append(
        Case(
            "parquet-float-value",
            "conversions_fz_float.parquet",
            _parquet(
                lambda: pl.DataFrame(
                    [
                        good("conversions", "parquet-float-value", 1),
                        {**good("conversions", "parquet-float-value", 2), "value_cents": 12.5},
                    ]
                )
            ),
            "rejected",
            "expected a whole number",
            1,
            1,
            ["value_cents"],
        )
    )
    cases.append(
        Case(
            "parquet-nan-value",
            "conversions_fz_nan.parquet",
            _parquet(
                lambda: pl.DataFrame(
                    {
                        **{
                            k: [v, v]
                            for k, v in good("conversions", "parquet-nan-value", 1).items()
                            if k not in ("value_cents", "event_id")
                        },
                        "event_id": ["fz-pn-1", "fz-pn-2"],
                        "value_cents": [1999.0, float("nan")],
                    }
                )
            ),
            "rejected",
            "expected a whole number",
            1,
            1,
            ["value_cents"],
        )
    )
    cases.append(
        Case(
            "parquet-inf-value",
            "conversions_fz_inf.parquet",
            _parquet(
                lambda: pl.DataFrame(
                    {
                        **{
                            k: [v, v]
                            for k, v in good("conversions", "parquet-inf-value", 1).items()
                            if k not in ("value_cents", "event_id")
                        },
                        "event_id": ["fz-pi-1", "fz-pi-2"],
                        "value_cents": [1999.0, float("inf")],
                    }
                )
            ),
            "rejected",
            "expected a whole number",
            1,
            1,
            ["value_cents"],
        )
    )
    cases.append(
        Case(
            "parquet-bad-enum",
            "events_fz_enum.parquet",
            _parquet(
                lambda: pl.DataFrame(
                    [ev("parquet-bad-enum", 1), {**ev("parquet-bad-enum", 2), "source": "fax"}]
                )
            ),
            "rejected",
            "expected one of",
            1,
            1,
            ["source"],
        )
    )
    cases.append(
        Case(
            "jsonl-missing-everything",
            "events_fz_emptyobj.jsonl",
            _bytes(_jsonl([ev("jsonl-missing-everything", 1), {}])),
            "rejected",
            "is required",
            1,
            1,
            ["event_id", "person_id", "event_name", "event_time"],
        )
    )
    return cases


def all_cases() -> list[Case]:
    return _row_fault_cases() + _file_fault_cases()
