"""Cron helpers (Hangfire's `Cron.Daily()` and kin) and Windows time-zone ids."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest
from tzlocal.windows_tz import win_tz

from application.jobs import NEVER, Cron, InvalidSchedule, MisfirePolicy, Weekday, iana_zone
from application.jobs.windows_zones import WINDOWS_TO_IANA
from infrastructure.jobs.cron import iter_fires, next_fire, validate

UTC = dt.UTC
START = dt.datetime(2026, 1, 7, 12, tzinfo=UTC)  # a Wednesday


def first_fires(cron: Cron, count: int = 2) -> list[dt.datetime]:
    return list(itertools.islice(iter_fires(cron, START), count))


@pytest.mark.parametrize(
    ("cron", "expression", "fires"),
    [
        (Cron.minutely(), "* * * * *", ["2026-01-07 12:01", "2026-01-07 12:02"]),
        (Cron.hourly(15), "15 * * * *", ["2026-01-07 12:15", "2026-01-07 13:15"]),
        (Cron.daily(2), "0 2 * * *", ["2026-01-08 02:00", "2026-01-09 02:00"]),
        (Cron.daily(6, 30), "30 6 * * *", ["2026-01-08 06:30", "2026-01-09 06:30"]),
        (Cron.weekly(), "0 0 * * 1", ["2026-01-12 00:00", "2026-01-19 00:00"]),
        (Cron.weekly(Weekday.FRIDAY, 9), "0 9 * * 5", ["2026-01-09 09:00", "2026-01-16 09:00"]),
        (Cron.monthly(), "0 0 1 * *", ["2026-02-01 00:00", "2026-03-01 00:00"]),
        (Cron.monthly(31, 6), "0 6 31 * *", ["2026-01-31 06:00", "2026-03-31 06:00"]),
        (Cron.yearly(), "0 0 1 1 *", ["2027-01-01 00:00", "2028-01-01 00:00"]),
        (Cron.yearly(2, 29, 8), "0 8 29 2 *", ["2028-02-29 08:00", "2032-02-29 08:00"]),
    ],
)
def test_helpers_build_the_expression_and_fire_as_expected(
    cron: Cron, expression: str, fires: list[str]
) -> None:
    assert cron.expression == expression
    assert [f"{t:%Y-%m-%d %H:%M}" for t in first_fires(cron)] == fires


def test_helpers_take_a_time_zone_and_a_misfire_policy() -> None:
    cron = Cron.daily(6, timezone="Asia/Kolkata", misfire=MisfirePolicy.skip())

    assert (cron.timezone, cron.misfire) == ("Asia/Kolkata", MisfirePolicy.skip())
    assert next_fire(cron, START) == dt.datetime(2026, 1, 8, 0, 30, tzinfo=UTC)


def test_never_is_accepted_and_has_no_fire_time() -> None:
    cron = Cron.never()

    assert cron.expression == NEVER == "0 0 31 2 *"
    validate(cron)
    assert next_fire(cron, START) is None
    assert first_fires(cron) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: Cron.hourly(60),
        lambda: Cron.daily(24),
        lambda: Cron.daily(-1),
        lambda: Cron.weekly(7),  # type: ignore[arg-type]
        lambda: Cron.monthly(0),
        lambda: Cron.monthly(32),
        lambda: Cron.yearly(13),
        lambda: Cron.daily(True),
        lambda: Cron.daily("2"),  # type: ignore[arg-type]
    ],
)
def test_helpers_refuse_values_out_of_range(build: object) -> None:
    with pytest.raises(InvalidSchedule, match="must be a whole number"):
        build()  # type: ignore[operator]


def test_a_date_that_never_comes_is_refused_when_registered() -> None:
    with pytest.raises(InvalidSchedule, match="never fires"):
        validate(Cron.yearly(2, 30))


# --- Windows time-zone ids --------------------------------------------------------------------


def test_the_kept_table_is_the_cldr_mapping_tzlocal_ships() -> None:
    assert dict(WINDOWS_TO_IANA) == win_tz


def test_every_windows_id_maps_to_a_zone_known_here() -> None:
    known = zoneinfo.available_timezones()

    assert {iana for iana in WINDOWS_TO_IANA.values() if iana not in known} == set()


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("Turkey Standard Time", "Europe/Istanbul"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Eastern Standard Time", "America/New_York"),
        ("India Standard Time", "Asia/Calcutta"),  # CLDR keeps the older name, an IANA link
        ("Lord Howe Standard Time", "Australia/Lord_Howe"),
    ],
)
def test_a_windows_id_is_kept_and_shown_as_its_iana_zone(windows: str, iana: str) -> None:
    cron = Cron("0 6 * * *", timezone=windows)

    assert (cron.timezone, iana_zone(windows)) == (iana, iana)
    assert next_fire(cron, START) == next_fire(Cron("0 6 * * *", timezone=iana), START)


def test_an_iana_name_wins_over_a_windows_id_of_the_same_spelling() -> None:
    assert Cron("0 6 * * *", timezone="UTC").timezone == "UTC"  # also a Windows id


@pytest.mark.parametrize("name", ["Mars Standard Time", "turkey standard time", ""])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        Cron.daily(2, timezone=name)
