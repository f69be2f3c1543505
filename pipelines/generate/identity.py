"""Who each person is: the ids and network fields every event carries, and the identity fields of converters.

person_id, IP address and the _fbp cookie go on every event; email, phone, names, date of birth, gender,
state and postcode (only for persons with conversions) come in the spellings Meta's normalization has to
undo.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import polars as pl

from pipelines.generate.randomness import Rng, uuids
from pipelines.generate.reference import FIRST_NAMES, LAST_NAMES


def person_network(persons: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """What every event of a person carries: person_id, IP address (15% IPv6) and the _fbp cookie."""
    n = persons.height
    # public IPv4 (stepping over loopback and the private blocks), or IPv6 from a few providers' prefixes
    octets = [
        rng.integers(f"person.ipv4_{i}", n, low, high)
        for i, (low, high) in enumerate(((11, 224), (0, 256), (0, 256), (1, 255)))
    ]
    octets[0] = octets[0] + octets[0].is_in([127, 169, 172, 192]).cast(pl.Int64)
    hex_groups = pl.Series([f"{value:x}" for value in range(1 << 16)])
    groups = [pl.lit(hex_groups.gather(rng.integers(f"person.ipv6_{i}", n, 0, 1 << 16))) for i in range(4)]
    prefixes = pl.Series(["2600:1700:", "2601:646:", "2a00:23c5:", "2003:e2:", "2a01:cb00:", "2804:14c:"])
    prefix = pl.lit(prefixes.gather(rng.integers("person.ipv6_prefix", n, 0, prefixes.len())))
    ip = pl.select(
        pl.when(pl.lit(rng.uniform("person.ipv6", n)) < 0.15)
        .then(
            pl.concat_str(
                [prefix, groups[0], pl.lit(":"), groups[1], pl.lit("::"), groups[2], pl.lit(":"), groups[3]]
            )
        )
        .otherwise(pl.concat_str([pl.lit(o).cast(pl.String) for o in octets], separator="."))
    ).to_series()
    fbp = pl.select(
        pl.concat_str(
            [
                pl.lit("fb.1."),
                pl.lit(persons["arrival"]).cast(pl.String),
                pl.lit("."),
                pl.lit(rng.integers("person.fbp", n, 1_000_000_000, 10_000_000_000)).cast(pl.String),
            ]
        )
    ).to_series()
    return persons.with_columns(person_id=uuids(persons["p"], rng.key("person.id")), ip=ip, fbp=fbp)


def person_pii(persons: pl.DataFrame, cities: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """Identity fields of the given persons, each in several spellings (``email0`` … ``email2``, ...).

    Only persons with conversions need them. The spellings are what Meta's normalization has to undo: mixed
    case and stray spaces, phones with and without country code, dates of birth in three formats, genders as
    F/f/female/Female, states as names and codes, postcodes with and without spaces or ZIP+4.
    """
    n, city = persons.height, persons["city"]
    first = rng.integers("pii.first_name", n, 0, len(FIRST_NAMES))
    last = rng.integers("pii.last_name", n, 0, len(LAST_NAMES))
    domains = cities["email_domains"].gather(city).str.split(" ")
    parts = pl.DataFrame(
        {
            "f": pl.Series([_email_slug(x) for x in FIRST_NAMES]).gather(first),
            "l": pl.Series([_email_slug(x) for x in LAST_NAMES]).gather(last),
            "n": rng.integers("pii.email_number", n, 1, 100).cast(pl.String),
            "style": rng.integers("pii.email_style", n, 0, 5),
            "domain": domains.list.get(
                (rng.uniform("pii.email_domain", n) * domains.list.len()).floor().cast(pl.Int64)
            ),
            "tag": pl.Series(["", "+shop", "+framecraft", "+promo"]).gather(
                rng.choice("pii.email_tag", n, (88, 4, 4, 4))
            ),
        }
    )
    f, surname, number = pl.col("f"), pl.col("l"), pl.col("n")
    local = (
        pl.when(pl.col("style") == 0)
        .then(pl.concat_str([f, pl.lit("."), surname]))
        .when(pl.col("style") == 1)
        .then(pl.concat_str([f, surname, number]))
        .when(pl.col("style") == 2)
        .then(pl.concat_str([f.str.head(1), surname]))
        .when(pl.col("style") == 3)
        .then(pl.concat_str([f, pl.lit("_"), surname, number]))
        .otherwise(pl.concat_str([f, number]))
    )
    email = parts.select(pl.concat_str([local, pl.col("tag"), pl.lit("@"), pl.col("domain")])).to_series()
    first_name = pl.Series(FIRST_NAMES).gather(first)
    last_name = pl.Series(LAST_NAMES).gather(last)
    birth = rng.integers(
        "pii.birth", n, _days_since_epoch(dt.date(1958, 1, 1)), _days_since_epoch(dt.date(2007, 1, 1))
    ).cast(pl.Date)
    gender = pl.Series(["F", "M", None]).gather(rng.choice("pii.gender", n, (47, 45, 8)))
    state_name, state_code = cities["state_name"].gather(city), cities["state_code"].gather(city)
    female = pl.lit(gender) == "F"
    return pl.DataFrame(
        {
            "crm_id": "crm_" + ((persons["p"] * 7919) % 90_000_000 + 10_000_000).cast(pl.String),
            "email0": email,
            "email1": email.str.to_titlecase(),
            "email2": "  " + email.str.to_uppercase() + " ",
            "first_name0": first_name,
            "first_name1": first_name.str.to_uppercase(),
            "first_name2": " " + first_name.str.to_lowercase(),
            "last_name0": last_name,
            "last_name1": last_name.str.to_uppercase(),
            "last_name2": last_name.str.to_lowercase(),
            "date_of_birth0": birth.dt.strftime("%Y-%m-%d"),
            "date_of_birth1": birth.dt.strftime("%m/%d/%Y"),
            "date_of_birth2": birth.dt.strftime("%Y%m%d"),
            "gender0": gender,
            "gender1": gender.str.to_lowercase(),
            "gender2": pl.select(
                pl.when(female).then(pl.lit("female")).when(pl.lit(gender) == "M").then(pl.lit("male"))
            ).to_series(),
            "gender3": pl.select(
                pl.when(female).then(pl.lit("Female")).when(pl.lit(gender) == "M").then(pl.lit("Male"))
            ).to_series(),
            "state0": state_name,
            "state1": state_code,
            "state2": state_code.str.to_lowercase(),
            **_phones(persons, cities, rng),
            **_postcodes(persons, cities, rng),
        }
    )


def _days_since_epoch(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _phones(persons: pl.DataFrame, cities: pl.DataFrame, rng: Rng) -> dict[str, pl.Series]:
    """Each person's phone number written three ways: international, with 00 or dots, national."""
    n, city = persons.height, persons["city"]
    frame = pl.DataFrame(
        {
            "area": cities["phone_area"].gather(city),
            "cc": cities["calling_code"].gather(city),
            "digits": cities["phone_digits"].gather(city).cast(pl.Int64),
            "local": cities["phone_prefix"].gather(city)
            + rng.integers("pii.phone", n, 0, 10**9).cast(pl.String).str.zfill(9),
        }
    ).with_columns(local=pl.col("local").str.head(pl.col("digits")))
    frame = frame.with_columns(
        head=pl.col("local").str.head(
            pl.when(pl.col("digits") >= 7).then(pl.col("digits") - 4).otherwise(pl.col("digits") // 2)
        )
    ).with_columns(tail=pl.col("local").str.slice(pl.col("head").str.len_chars()))
    nanp = pl.col("cc") == "1"
    area, head, tail, cc, local = (
        pl.col("area"),
        pl.col("head"),
        pl.col("tail"),
        pl.col("cc"),
        pl.col("local"),
    )
    out = frame.select(
        phone0=pl.when(nanp)
        .then(pl.format("+1 ({}) {}-{}", area, local.str.head(3), local.str.slice(3)))
        .otherwise(pl.format("+{} {} {} {}", cc, area, head, tail)),
        phone1=pl.when(nanp)
        .then(pl.format("{}.{}.{}", area, local.str.head(3), local.str.slice(3)))
        .otherwise(pl.format("00{} {} {}{}", cc, area, head, tail)),
        phone2=pl.when(nanp)
        .then(pl.format("({}) {}-{}", area, local.str.head(3), local.str.slice(3)))
        .when(cc == "55")
        .then(pl.format("({}) {}-{}", area, head, tail))
        .otherwise(pl.format("0{} {} {}", area, head, tail)),
    )
    return {name: out[name] for name in out.columns}


def _postcodes(persons: pl.DataFrame, cities: pl.DataFrame, rng: Rng) -> dict[str, pl.Series]:
    """Each person's postcode: the city's prefix plus random characters, in three spellings."""
    n, city = persons.height, persons["city"]
    prefixes = cities["zip_prefixes"].gather(city).str.split("|")
    letters = pl.Series(list("ABDEFGHJLNPQRSTUWXYZ"))
    frame = pl.DataFrame(
        {
            "kind": cities["zip_kind"].gather(city),
            "prefix": prefixes.list.get(
                (rng.uniform("pii.zip_prefix", n) * prefixes.list.len()).floor().cast(pl.Int64)
            ),
            "d": rng.integers("pii.zip_digits", n, 0, 10_000).cast(pl.String).str.zfill(4),
            "l1": letters.gather(rng.integers("pii.zip_letter1", n, 0, letters.len())),
            "l2": letters.gather(rng.integers("pii.zip_letter2", n, 0, letters.len())),
            "plus4": rng.integers("pii.zip_plus4", n, 1, 10_000).cast(pl.String).str.zfill(4),
        }
    )
    kind, prefix, d, l1, l2 = pl.col("kind"), pl.col("prefix"), pl.col("d"), pl.col("l1"), pl.col("l2")
    canonical = (
        pl.when(kind == "us")
        .then(pl.concat_str([prefix, d.str.slice(2, 2)]))
        .when(kind == "uk")
        .then(pl.concat_str([prefix, pl.lit(" "), d.str.slice(3, 1), l1, l2]))
        .when(kind == "ca")
        .then(pl.concat_str([prefix, pl.lit(" "), d.str.slice(2, 1), l1, d.str.slice(3, 1)]))
        .when(kind == "d4")
        .then(pl.concat_str([prefix, d.str.slice(2, 2)]))
        .when(kind == "br")
        .then(pl.concat_str([prefix, pl.lit("-"), d.str.slice(1, 3)]))
        .when(kind == "nl")
        .then(pl.concat_str([prefix, pl.lit(" "), l1, l2]))
        .when(kind == "ie")
        .then(pl.concat_str([prefix, pl.lit(" "), l1, d.str.slice(1, 3)]))
        .otherwise(pl.concat_str([prefix, d]).str.head(5))
    )
    spaced = kind.is_in(["uk", "ca", "nl", "ie"])
    out = frame.with_columns(zip0=canonical).select(
        "zip0",
        zip1=pl.when(kind == "us")
        .then(pl.concat_str([pl.col("zip0"), pl.lit("-"), pl.col("plus4")]))
        .when(spaced)
        .then(pl.col("zip0").str.replace(" ", "", literal=True))
        .when(kind == "br")
        .then(pl.col("zip0").str.replace("-", "", literal=True))
        .otherwise(pl.col("zip0")),
        zip2=pl.when(kind == "us")
        .then(pl.concat_str([pl.col("zip0"), pl.col("plus4")]))
        .when(spaced)
        .then(pl.col("zip0").str.to_lowercase())
        .otherwise(pl.col("zip0")),
    )
    return {name: out[name] for name in out.columns}


def _email_slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())
