"""What every input must be before it reaches the ports and the database.

Strings refuse NUL characters and lone surrogates (PostgreSQL and the drivers cannot store
them) and are no longer than their columns; instants must be ISO 8601 with an offset and
representable in UTC; JSON arguments must be finite and not too deep.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from functools import cache
from typing import Annotated

from fastapi import Header
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, JsonValue, StringConstraints

from application.jobs.windows_zones import WINDOWS_TO_IANA

NO_NUL = r"^[^\x00]*$"
MAX_JSON_DEPTH = 64
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _storable(text: str) -> str:
    try:  # lone surrogates (JSON allows them) have no UTF-8 form
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return text


def _iso_string(value: object) -> object:
    if not isinstance(value, str) or not _ISO_INSTANT.match(value):
        raise ValueError("must be an ISO 8601 date and time with an offset")
    return value


def _in_utc_range(value: dt.datetime) -> dt.datetime:
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not _EARLIEST <= utc < _LATEST:
        raise ValueError("must be between 1970 and 9000")
    return utc


HOST_DEPENDENT_ZONES = frozenset({"localtime", "Factory", "posixrules"})
"""Names some systems' zone databases hold that are no place: `localtime` is whatever the
host is set to (replicas may differ), `Factory` a placeholder."""


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - HOST_DEPENDENT_ZONES


def _known_time_zone(name: str) -> str:
    """The zone's IANA name; a Windows id ("Turkey Standard Time") is taken and mapped."""
    iana = name if name in _time_zones() else WINDOWS_TO_IANA.get(name)
    if iana is None or iana not in _time_zones():
        raise ValueError(f"{name!r} is neither an IANA time zone nor a Windows time-zone id")
    return iana


_STORABLE = AfterValidator(_storable)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL), _STORABLE]
"""A name, key or search text: a column of 200 characters at most."""
QueueName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL), _STORABLE
]
IdempotencyKey = Annotated[
    Name | None,
    Header(
        alias="Idempotency-Key",
        description="Repeat the request with the same key (up to 200 characters) to get the "
        "first one's answer, also after its job finished, for the retention period; the same "
        "key with another request is a 422 problem.",
    ),
]
"""The standard `Idempotency-Key` request header."""
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_string), AfterValidator(_in_utc_range)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_time_zone)]


def unstorable_argument(args: list[JsonValue], kwargs: dict[str, JsonValue]) -> str | None:
    """The first argument (`args[i]` or its keyword) whose JSON cannot be stored safely:
    too deep, a non-finite number, or a string with NUL or lone surrogates. None if all can."""
    named: list[tuple[str, JsonValue]] = [(f"args[{i}]", value) for i, value in enumerate(args)]
    named += list(kwargs.items())
    for name, value in named:
        if not _storable_json(value) or not _storable_text(name):
            return name
    return None


def _storable_json(value: JsonValue) -> bool:
    pending: list[tuple[JsonValue, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        if isinstance(item, str) and not _storable_text(item):
            return False
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            if not all(_storable_text(key) for key in item):
                return False
            pending.extend((child, depth + 1) for child in item.values())
    return True


def _storable_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


EmailAddress = Annotated[
    str, StringConstraints(min_length=3, max_length=320, pattern=NO_NUL), _STORABLE
]
"""An email address (its form is the domain's to check): 320 characters at most."""
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_NUL), _STORABLE]
"""A message or free text: 2,000 characters at most."""
