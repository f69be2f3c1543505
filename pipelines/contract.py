"""The raw data contract: the one place that says which columns each landing stream has.

Generator, ingestion (validation + DDL of the ``raw`` tables) and the dbt sources all follow
these definitions; docs/landing.md documents them for producers.
"""

from __future__ import annotations

from dataclasses import dataclass

STREAMS: tuple[str, ...] = ("events", "conversions", "ad_spend", "adjustments", "identities")

EVENT_SOURCES: tuple[str, ...] = ("pixel", "capi", "webhook", "app")
CONVERSION_TYPES: tuple[str, ...] = ("purchase", "signup", "video_render", "subscription")
CONVERSION_SOURCES: tuple[str, ...] = ("pixel", "capi", "webhook")
# The person's answer to ads consent (cookie banner, consent platform): blank or absent means unknown.
CONSENT_VALUES: tuple[str, ...] = ("granted", "denied", "unknown")
DEVICE_TYPES: tuple[str, ...] = ("desktop", "mobile", "tablet")
# What happened to a conversion after it was reported: money returned to the buyer (refund), money taken
# back by the card network (chargeback), or the conversion's value stated anew (restatement).
ADJUSTMENT_TYPES: tuple[str, ...] = ("refund", "chargeback", "restatement")

# A person known only by an anonymous id (a cookie or device id seen before sign-up, with no identity
# observation yet) is carried in the warehouse as this prefix followed by the anonymous id: a pseudo-person.
# The prefix is reserved (a landed person_id may not start with it) and anonymous ids are at most
# 128 - len(prefix) characters, so a pseudo-person fits the 128 characters of a person_id and never
# equals a real one.
PSEUDO_PERSON_PREFIX = "anon:"
PERSON_ID_MAX_LENGTH = 128
ANONYMOUS_ID_MAX_LENGTH = PERSON_ID_MAX_LENGTH - len(PSEUDO_PERSON_PREFIX)

# ISO 4217 active codes (2024 list). Kept here rather than in a package so validation works offline.
ISO_4217: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XDR
    XOF XPD XPF XPT XSU XTS XUA XXX YER YEZ ZAR ZMW ZWL
    """.split()  # noqa: SIM905 - a block of codes reads better than 180 quoted strings
)


# The largest amount in minor units a landing row may carry (just under ten billion in major units):
# converted into any reporting currency, multiplied by a rule's value multiplier and summed, every
# model's casts (bigint, decimal(18, 2)) still hold it.
MAX_CENTS = 999_999_999_999


@dataclass(frozen=True)
class Column:
    """One column of a landing stream.

    ``kind`` is the logical type: ``str``, ``int`` (64-bit, whole numbers only), ``timestamp``
    (ISO-8601 with a UTC offset, or epoch milliseconds; stored as an instant in UTC), ``date``
    (YYYY-MM-DD), ``bool`` (true/false, also 1/0 and yes/no as text; a JSON or Parquet boolean) or
    ``json`` (a JSON object, stored as its JSON text).
    """

    name: str
    kind: str = "str"
    required: bool = False
    max_length: int = 256
    allowed: tuple[str, ...] | None = None  # enumeration, compared after trim + lower-case
    min_value: int | None = None
    max_value: int | None = None

    @property
    def duckdb_type(self) -> str:
        return {
            "str": "varchar",
            "int": "bigint",
            "timestamp": "timestamp with time zone",
            "date": "date",
            "bool": "boolean",
            "json": "varchar",
        }[self.kind]


_ATTRIBUTION = (
    Column("campaign_id", max_length=128),
    Column("ad_set_id", max_length=128),
    Column("ad_id", max_length=128),
    Column("utm_source", max_length=256),
    Column("utm_medium", max_length=256),
    Column("utm_campaign", max_length=256),
    Column("utm_content", max_length=256),
    Column("utm_term", max_length=256),
    Column("fbclid", max_length=512),
)
_DEVICE = (
    Column("device_type", allowed=DEVICE_TYPES),
    Column("browser", max_length=64),
    Column("os", max_length=64),
    Column("country", max_length=64),  # ISO alpha-2 preferred; names are normalized downstream
    Column("city", max_length=128),
)
_CLIENT = (
    Column("event_source_url", max_length=2048),
    Column("client_ip_address", max_length=64),
    Column("client_user_agent", max_length=1024),
    Column("fbp", max_length=256),
    Column("fbc", max_length=1024),
)

# Consent and privacy signals, all optional (a file without them means: unknown, not opted out, no Limited
# Data Use). ``consent_ads`` denied keeps a conversion away from Meta; ``opt_out`` sends it with Meta's
# opt_out flag (attribution only); ``limited_data_use`` asks Meta for Limited Data Use (docs/meta.md).
_CONSENT = (
    Column("consent_ads", allowed=CONSENT_VALUES),
    Column("opt_out", kind="bool"),
    Column("limited_data_use", kind="bool"),
)

EVENTS: tuple[Column, ...] = (
    Column("event_id", required=True, max_length=128),
    # person_id or anonymous_id (or both: then the row also says the two are one person).
    Column("person_id", max_length=PERSON_ID_MAX_LENGTH),
    Column("anonymous_id", max_length=ANONYMOUS_ID_MAX_LENGTH),
    Column("event_name", required=True, max_length=64),
    Column("event_time", kind="timestamp", required=True),
    Column("source", allowed=EVENT_SOURCES),
    *_ATTRIBUTION,
    *_DEVICE,
    *_CLIENT,
    Column("properties", kind="json", max_length=65536),
    *_CONSENT,
    Column("state", max_length=64),  # region code where known (US: USPS code or state name)
)

CONVERSIONS: tuple[Column, ...] = (
    Column("event_id", required=True, max_length=128),
    Column("person_id", max_length=PERSON_ID_MAX_LENGTH),  # or anonymous_id, as for events
    Column("anonymous_id", max_length=ANONYMOUS_ID_MAX_LENGTH),
    Column("conversion_type", required=True, allowed=CONVERSION_TYPES),
    Column("conversion_source", required=True, allowed=CONVERSION_SOURCES),
    Column("value_cents", kind="int", min_value=0, max_value=MAX_CENTS),
    Column("currency", max_length=3),  # ISO 4217; required when value_cents > 0
    Column("conversion_time", kind="timestamp", required=True),
    *_ATTRIBUTION,
    *_DEVICE,
    Column("meta_pixel_id", max_length=64),
    Column("order_id", max_length=128),
    # Identity fields for Meta matching: PII, kept in raw and staging only.
    Column("email", max_length=320),
    Column("phone", max_length=64),
    Column("first_name", max_length=128),
    Column("last_name", max_length=128),
    Column("date_of_birth", max_length=32),
    Column("gender", max_length=16),
    Column("state", max_length=64),
    Column("zip", max_length=32),
    Column("external_id", max_length=256),
    *_CLIENT,
    Column("properties", kind="json", max_length=65536),
    *_CONSENT,
)

AD_SPEND: tuple[Column, ...] = (
    Column("date", kind="date", required=True),
    Column("campaign_id", required=True, max_length=128),
    Column("campaign_name", max_length=256),
    Column("ad_set_id", max_length=128),
    Column("ad_set_name", max_length=256),
    Column("ad_id", max_length=128),
    Column("ad_name", max_length=256),
    Column("spend_cents", kind="int", required=True, min_value=0, max_value=MAX_CENTS),
    Column("currency", required=True, max_length=3),
    Column("impressions", kind="int", required=True, min_value=0),
    Column("clicks", kind="int", required=True, min_value=0),  # also: clicks <= impressions
)

# Refunds, chargebacks and restatements of conversions already reported. A row names its conversion by
# the conversion's own (conversion_type, event_id); amount_cents is the amount refunded or charged back,
# or for a restatement the conversion's new total value, in currency's minor units.
ADJUSTMENTS: tuple[Column, ...] = (
    Column("adjustment_id", required=True, max_length=128),
    Column("conversion_event_id", required=True, max_length=128),
    Column("conversion_type", required=True, allowed=CONVERSION_TYPES),
    Column("adjustment_type", required=True, allowed=ADJUSTMENT_TYPES),
    Column("amount_cents", kind="int", required=True, min_value=0, max_value=MAX_CENTS),
    Column("currency", required=True, max_length=3),
    Column("adjusted_at", kind="timestamp", required=True),
    Column("reason", max_length=256),
)

# Identity observations: "this anonymous id was seen being this person" (a login, a sign-up, a form that
# names the visitor). The warehouse maps each anonymous id to the person it was first observed with
# (int_identity_map); source says where the observation came from (free text: login, signup, ...).
IDENTITIES: tuple[Column, ...] = (
    Column("anonymous_id", required=True, max_length=ANONYMOUS_ID_MAX_LENGTH),
    Column("person_id", required=True, max_length=PERSON_ID_MAX_LENGTH),
    Column("observed_at", kind="timestamp", required=True),
    Column("source", max_length=64),
)

# Identity fields for Meta matching: kept in clear in raw and staging only; marts carry their SHA-256
# hashes (`*_sha256`) instead. person_id is the producer's pseudonym, not one of them.
IDENTITY_FIELDS: frozenset[str] = frozenset(
    {"email", "phone", "first_name", "last_name", "date_of_birth", "gender", "state", "zip", "external_id"}
)
# Personal data a report never exports in clear: the identity fields plus the client's city and IP
# address (conversion_event keeps those two for Meta's user_data and geography; reports do not).
PII_FIELDS: frozenset[str] = IDENTITY_FIELDS | {"city", "client_ip_address"}

CONTRACT: dict[str, tuple[Column, ...]] = {
    "events": EVENTS,
    "conversions": CONVERSIONS,
    "ad_spend": AD_SPEND,
    "adjustments": ADJUSTMENTS,
    "identities": IDENTITIES,
}

# Columns the loader adds to every raw table (lineage of each row).
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_load_id", "varchar"),  # raw.load_log.load_id of the file the row came from
    ("_source_file", "varchar"),  # path of the landing file as given to ingest
    ("_source_row", "bigint"),  # 1-based line (JSONL), data row (CSV) or row (Parquet) number
    ("_loaded_at", "timestamp with time zone"),
)


def columns(stream: str) -> tuple[Column, ...]:
    """The contract columns of ``stream`` (one of :data:`STREAMS`)."""
    try:
        return CONTRACT[stream]
    except KeyError:
        raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(STREAMS)}") from None


def column_names(stream: str) -> list[str]:
    return [c.name for c in columns(stream)]
