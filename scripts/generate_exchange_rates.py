"""Write ``seeds/exchange_rates.csv``: deterministic, smooth, synthetic daily demo rates.

The rates are NOT market data. They stay near realistic 2024-2026 levels so demo reports look
plausible, and they are a pure function of the date, so rerunning this script reproduces the seed
byte for byte. Direction: ``units_per_usd`` = how many units of ``currency`` one US dollar buys
(USD is exactly 1). Six decimals, so ``units_per_usd * 1e6`` is an exact integer.

Run: ``python scripts/generate_exchange_rates.py`` (from the project root).
"""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from pathlib import Path

FIRST_DAY = date(2024, 1, 1)
LAST_DAY = date(2027, 12, 31)

# currency: (level in units per USD, yearly amplitude, quarterly amplitude, phase in days)
CURRENCIES: dict[str, tuple[float, float, float, int]] = {
    "AUD": (1.52, 0.030, 0.010, 40),
    "BRL": (5.30, 0.050, 0.015, 170),
    "CAD": (1.36, 0.020, 0.008, 90),
    "EUR": (0.92, 0.025, 0.008, 0),
    "GBP": (0.79, 0.025, 0.008, 120),
    "USD": (1.00, 0.0, 0.0, 0),
}

OUTPUT = Path(__file__).resolve().parent.parent / "seeds" / "exchange_rates.csv"


def units_per_usd(currency: str, day: date) -> str:
    """The demo rate of ``currency`` on ``day`` as a 6-decimal string."""
    level, yearly, quarterly, phase = CURRENCIES[currency]
    t = (day - FIRST_DAY).days + phase
    wave = yearly * math.sin(2 * math.pi * t / 365.25) + quarterly * math.sin(2 * math.pi * t / 91.3)
    factor = math.exp(wave)
    return f"{level * factor:.6f}"


def main() -> None:
    days = (LAST_DAY - FIRST_DAY).days + 1
    with OUTPUT.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["rate_date", "currency", "units_per_usd"])
        for offset in range(days):
            day = FIRST_DAY + timedelta(days=offset)
            for currency in sorted(CURRENCIES):
                writer.writerow([day.isoformat(), currency, units_per_usd(currency, day)])


if __name__ == "__main__":
    main()
