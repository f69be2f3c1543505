"""The Meta optimization rules (``seeds/optimization_rules.csv``): read, validate, edit (``convopt rules``).

One rule per conversion_type says whether its conversions are sent to Meta's Conversions API, under which
event name and action_source, from which conversion sources, above which value, and with which value
multiplier. ``marts.meta_capi_events`` reads the seed; the dbt tests on the seed repeat the checks here, so a
file edited by hand is rejected by ``dbt build`` as well. Every change is validated as a whole file and
written atomically (a temporary file in the same folder, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_RULES_PATH = Path("seeds/optimization_rules.csv")
RULES_ENV = "CONVOPT_RULES_FILE"

COLUMNS = (
    "conversion_type",
    "meta_event_name",
    "is_sent",
    "min_value_cents",
    "value_multiplier",
    "action_source",
    "qualifying_sources",
)
# Columns a rules file may leave out (a file written before they existed keeps working).
OPTIONAL_COLUMNS = ("limited_data_use",)
CONVERSION_TYPES = ("purchase", "signup", "video_render", "subscription")
CONVERSION_SOURCES = ("pixel", "capi", "webhook")
ACTION_SOURCES = (
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
)
EVENT_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,49}")


class RuleError(ValueError):
    """A rule or rules file a user wrote is invalid; the message is one line saying what and where."""


@dataclass(frozen=True)
class Rule:
    """One row of the rules file."""

    conversion_type: str
    meta_event_name: str
    is_sent: bool
    min_value_cents: int
    value_multiplier: float
    action_source: str
    qualifying_sources: tuple[str, ...]
    limited_data_use: bool = False  # ask Meta for Limited Data Use on every event of the rule

    def as_row(self) -> dict[str, str]:
        return {
            "conversion_type": self.conversion_type,
            "meta_event_name": self.meta_event_name,
            "is_sent": "true" if self.is_sent else "false",
            "min_value_cents": str(self.min_value_cents),
            "value_multiplier": repr(float(self.value_multiplier)),
            "action_source": self.action_source,
            "qualifying_sources": "|".join(self.qualifying_sources),
            "limited_data_use": "true" if self.limited_data_use else "false",
        }


def rules_path(path: Path | None = None) -> Path:
    """The rules file: ``path``, else ``$CONVOPT_RULES_FILE``, else ``seeds/optimization_rules.csv``."""
    return path or Path(os.environ.get(RULES_ENV) or DEFAULT_RULES_PATH)


def parse_sources(text: str, where: str = "") -> tuple[str, ...]:
    """``pixel|capi`` → ('pixel', 'capi'); unknown or repeated sources are a RuleError."""
    sources = tuple(s.strip() for s in text.split("|"))
    for source in sources:
        if source not in CONVERSION_SOURCES:
            raise RuleError(
                f"{where}unknown conversion source {source!r} in qualifying_sources {text!r} "
                f"(expected {'|'.join(CONVERSION_SOURCES)})"
            )
    if len(set(sources)) != len(sources):
        raise RuleError(f"{where}qualifying_sources {text!r} repeats a source")
    return sources


def validate_rule(rule: Rule, where: str = "", *, sendable: bool = True) -> Rule:
    """The rule unchanged, or a RuleError naming the first invalid field. ``sendable=False`` lets a rule
    Meta would reject when sent (an ``app`` rule) pass, so that it can be read in order to disable it."""
    if rule.conversion_type not in CONVERSION_TYPES:
        raise RuleError(
            f"{where}unknown conversion_type {rule.conversion_type!r} (expected one of {', '.join(CONVERSION_TYPES)})"
        )
    if not EVENT_NAME_PATTERN.fullmatch(rule.meta_event_name):
        raise RuleError(
            f"{where}invalid meta_event_name {rule.meta_event_name!r} "
            "(letters, digits and _, starting with a letter, at most 50 characters)"
        )
    if rule.action_source not in ACTION_SOURCES:
        raise RuleError(
            f"{where}unknown action_source {rule.action_source!r} (expected one of {', '.join(ACTION_SOURCES)})"
        )
    if rule.min_value_cents < 0:
        raise RuleError(f"{where}min_value_cents must be >= 0, got {rule.min_value_cents}")
    if not rule.value_multiplier >= 0 or rule.value_multiplier == float("inf"):
        raise RuleError(f"{where}value_multiplier must be a finite number >= 0, got {rule.value_multiplier}")
    if not rule.qualifying_sources:
        raise RuleError(f"{where}qualifying_sources is empty")
    if sendable and rule.action_source == "app" and rule.is_sent:
        raise RuleError(
            f"{where}action_source app cannot be sent: Meta rejects an app event without app_data "
            "(advertiser_tracking_enabled, application_tracking_enabled, extinfo), which convopt does not "
            "build; set is_sent to false or choose another action_source"
        )
    return rule


def validate_rules(rules: list[Rule], *, sendable: bool = True) -> list[Rule]:
    """The rules unchanged, or a RuleError: an invalid rule, two rules for one conversion_type (duplicate or
    contradictory), or one Meta event name used for two conversion types (Meta would merge them)."""
    by_type: dict[str, Rule] = {}
    by_event_name: dict[str, str] = {}
    for rule in rules:
        validate_rule(rule, f"rule for {rule.conversion_type!r}: ", sendable=sendable)
        previous = by_type.get(rule.conversion_type)
        if previous is not None:
            kind = "duplicate" if previous == rule else "contradictory"
            raise RuleError(f"{kind} rule: conversion_type {rule.conversion_type!r} already has a rule")
        other_type = by_event_name.get(rule.meta_event_name)
        if other_type is not None:
            raise RuleError(
                f"contradictory rule: meta_event_name {rule.meta_event_name!r} is already used by "
                f"conversion_type {other_type!r}"
            )
        by_type[rule.conversion_type] = rule
        by_event_name[rule.meta_event_name] = rule.conversion_type
    return rules


def _parse_bool(text: str, where: str, column: str = "is_sent") -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise RuleError(f"{where}{column} must be true or false, got {text!r}")


def _parse_number(text: str, column: str, where: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text.strip())
    except ValueError:
        raise RuleError(
            f"{where}{column} must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None


def read_rules(path: Path, *, sendable: bool = True) -> list[Rule]:
    """The validated rules of the file, in file order; RuleError when it is missing or invalid
    (``sendable=False``: a sent ``app`` rule is not an error, see :func:`validate_rule`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleError(f"{path}: rules file not found") from None
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if header != COLUMNS and header != COLUMNS + OPTIONAL_COLUMNS:
        raise RuleError(
            f"{path}: header must be {','.join(COLUMNS)} (optionally followed by "
            f"{','.join(OPTIONAL_COLUMNS)}), got {','.join(header)}"
        )
    rules = []
    for line_no, row in enumerate(reader, start=2):
        where = f"{path}:{line_no}: "
        if None in row or any(value is None for value in row.values()):
            raise RuleError(f"{where}expected {len(header)} fields")
        ldu_text = row.get("limited_data_use")
        rules.append(
            validate_rule(
                Rule(
                    conversion_type=row["conversion_type"].strip(),
                    meta_event_name=row["meta_event_name"].strip(),
                    is_sent=_parse_bool(row["is_sent"], where),
                    min_value_cents=int(_parse_number(row["min_value_cents"], "min_value_cents", where, int)),
                    value_multiplier=float(
                        _parse_number(row["value_multiplier"], "value_multiplier", where, float)
                    ),
                    action_source=row["action_source"].strip(),
                    qualifying_sources=parse_sources(row["qualifying_sources"], where),
                    limited_data_use=bool(ldu_text and _parse_bool(ldu_text, where, "limited_data_use")),
                ),
                where,
                sendable=sendable,
            )
        )
    try:
        return validate_rules(rules, sendable=sendable)
    except RuleError as exc:
        raise RuleError(f"{path}: {exc}") from None


def write_rules(path: Path, rules: list[Rule]) -> None:
    """Validate the rules and replace the file atomically (temporary file in the same folder + rename)."""
    validate_rules(rules)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS + OPTIONAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rule.as_row() for rule in rules)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as tmp:
            tmp.write(buffer.getvalue())
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def add_rule(path: Path, rule: Rule, *, replace_existing: bool = False) -> list[Rule]:
    """Add ``rule`` to the file (or replace the conversion_type's rule with ``replace_existing``); the new rules."""
    rules = read_rules(path)
    validate_rule(rule)
    if replace_existing:
        rules = [rule if r.conversion_type == rule.conversion_type else r for r in rules]
        if rule not in rules:
            rules.append(rule)
    else:
        rules = [*rules, rule]
    write_rules(path, rules)
    return rules


def disable_rule(path: Path, conversion_type: str) -> list[Rule]:
    """Set is_sent = false on the conversion_type's rule (its conversions then show as skipped); the new rules.
    Works on a file whose rules Meta would reject when sent, so such a rule can be switched off."""
    rules = read_rules(path, sendable=False)
    if conversion_type not in {r.conversion_type for r in rules}:
        known = ", ".join(r.conversion_type for r in rules)
        raise RuleError(
            f"no rule for conversion_type {conversion_type!r} in {path} (rules exist for {known})"
        )
    rules = [replace(r, is_sent=False) if r.conversion_type == conversion_type else r for r in rules]
    write_rules(path, rules)
    return rules
