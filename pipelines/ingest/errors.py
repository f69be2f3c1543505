"""The errors an ingest raises, and how their messages quote a value that was found."""

from __future__ import annotations

REASON_VALUE_CHARS = 60  # longer values are cut in reasons (the payload keeps them whole)


class IngestUsageError(ValueError):
    """Bad arguments: a path that does not exist, an unknown ``--stream`` (CLI exit code 2)."""


class IngestFileError(Exception):
    """One landing file cannot be read; the message says where and what was expected."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def snippet(text: str, limit: int = REASON_VALUE_CHARS) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
