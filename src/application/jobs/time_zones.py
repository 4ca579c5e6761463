"""Time zones by IANA name or Windows id: the one spelling stored and shown is the IANA one."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from application.jobs.errors import InvalidSchedule
from application.jobs.windows_zones import WINDOWS_TO_IANA


def iana_zone(name: str) -> str:
    """The IANA name of a zone given by its IANA name or its Windows id.

    Windows ids ("Turkey Standard Time", as Hangfire on Windows stores them) map through the
    CLDR table to one IANA zone ("Europe/Istanbul").

    Raises:
        InvalidSchedule: neither an IANA zone known here nor a Windows id.
    """
    if _is_iana(name):  # first: "UTC" is both, and stays "UTC"
        return name
    iana = WINDOWS_TO_IANA.get(name)
    if iana is None or not _is_iana(iana):
        raise InvalidSchedule(f"unknown time zone {name!r}")
    return iana


def _is_iana(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
