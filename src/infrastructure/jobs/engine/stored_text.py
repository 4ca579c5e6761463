"""Text that handlers produce (exception messages, tracebacks, log lines, results), made fit
to store and to show: credentials redacted, and what a database refuses escaped.

Every store gets the same text, whatever it would accept: PostgreSQL refuses NUL characters
in text, and no UTF-8 database stores a lone surrogate (nor can a JSON response carry one).
Both are written as the backslash escapes Python would print (`\\x00`, `\\udc80`), so the
text stays readable and nothing else in it changes.
"""

from __future__ import annotations

import json
import math
import re
from typing import cast

from pydantic_core import to_jsonable_python

from application.jobs import JSONValue

REDACTED = "***"

_URL_PASSWORD = re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/?#@]*:)[^\s/?#]+@")
"""`scheme://user:password@host`: the password goes, the user name stays (it helps)."""

_SECRET_SETTING = re.compile(
    r"(?P<keep>\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token)['\"]?\s*[=:]\s*)"
    r"(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|[^\s'\"&;,]+)",
    re.IGNORECASE,
)
"""`password=...` and the like, as connection strings and settings dumps show them."""


def redacted(text: str) -> str:
    """The text with the credentials it shows replaced by `***`."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['keep']}{REDACTED}@", text)
    return _SECRET_SETTING.sub(_redact_setting, text)


def _redact_setting(match: re.Match[str]) -> str:
    quote = "'" if match["single"] is not None else '"' if match["double"] is not None else ""
    return f"{match['keep']}{quote}{REDACTED}{quote}"


def storable(text: str) -> str:
    """The text with NUL characters and lone surrogates escaped (`\\x00`, `\\udc80`)."""
    if text.isascii():
        return text.replace("\x00", "\\x00")
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


MAX_STORED_CHARS = 16_000
"""Handler text is stored in at most this many characters: 64,000 bytes of UTF-8 at worst,
within every database's plain text column (MariaDB's TEXT holds 65,535 bytes)."""

MAX_RESULT_BYTES = 64_000
"""A result's JSON must fit in this many bytes, for the same reason."""


def shortened(text: str, limit: int = MAX_STORED_CHARS) -> str:
    """The text within `limit` characters: its start and its end (where a traceback names
    the exception), what was cut said in between."""
    if len(text) <= limit:
        return text
    cut, marker = 0, ""
    while len(text) - (limit - len(marker)) != cut:  # the marker's own length counts
        cut = len(text) - (limit - len(marker))
        marker = f"\n[... {cut} characters cut ...]\n"
    keep = limit - len(marker)
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head) :]


def stored_text(text: str) -> str:
    """Handler text as it is stored and logged: redacted, made storable, shortened."""
    return shortened(storable(redacted(text)))


MAX_RESULT_DEPTH = 64
"""Nesting deeper than this is refused: every reader of the stored JSON must parse it."""


class UnstorableResult(ValueError):
    """A handler's result has no faithful JSON form: NaN, an infinity, or nesting deeper
    than `MAX_RESULT_DEPTH`."""


def storable_json(value: object, *, depth: int = 0) -> object:
    """The value (a handler's result) with the strings of its lists and dicts, keys
    included, made storable; other values as they are.

    Raises:
        UnstorableResult: the value holds NaN or an infinity, which JSON cannot carry (kept
            as they are, they would come back as null or fail a strict reader), or nests
            deeper than `MAX_RESULT_DEPTH` (a cyclic value nests without end).
    """
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise UnstorableResult(f"the result holds {value!r}, which JSON cannot represent")
    if isinstance(value, list | tuple | dict) and depth >= MAX_RESULT_DEPTH:
        raise UnstorableResult(f"the result nests deeper than {MAX_RESULT_DEPTH} levels")
    if isinstance(value, list | tuple):
        return [storable_json(item, depth=depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            storable_json(k, depth=depth + 1): storable_json(v, depth=depth + 1)
            for k, v in value.items()
        }
    return value


def storable_result(result: object) -> JSONValue:
    """A handler's result as it is stored: JSON, its text storable.

    Raises:
        UnstorableResult: see `storable_json`; or its JSON is over `MAX_RESULT_BYTES`.
        ValueError: the result cannot be made JSON (its text not even once escaped).
    """
    plain = to_jsonable_python(storable_json(result), fallback=repr)
    checked = cast(JSONValue, storable_json(plain))  # checks what models turned into, too
    if checked is not None and (size := len(json.dumps(checked).encode())) > MAX_RESULT_BYTES:
        raise UnstorableResult(
            f"the result's JSON has {size} bytes, over the limit of {MAX_RESULT_BYTES}: "
            "keep large output elsewhere and return a reference to it"
        )
    return checked


def readable_json(value: JSONValue) -> JSONValue:
    """A stored JSON value made safe to show: rows written before text was made storable
    may hold lone surrogates (kept by JSON's escapes) or NaN; they are shown escaped, and
    NaN or an infinity as its name."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [readable_json(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): readable_json(item) for key, item in value.items()}
    return value
