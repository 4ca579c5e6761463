"""Cron evaluation (fields, time zones, DST) and the scheduler's misfire planning."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from application.jobs import Cron, InvalidSchedule, MisfirePolicy
from infrastructure.jobs.cron import iter_fires, next_fire, validate
from infrastructure.jobs.engine.scheduler import plan_ticks

UTC = dt.UTC


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(cron: Cron, start: dt.datetime, count: int, *, backwards: bool = False):
    return list(itertools.islice(iter_fires(cron, start, backwards=backwards), count))


def fires_between(cron: Cron, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    return list(itertools.takewhile(lambda t: t < end, iter_fires(cron, start)))


# --- fields --------------------------------------------------------------------------------------


def test_five_fields_fire_on_the_minute() -> None:
    assert fires(Cron("*/15 * * * *"), utc(2026, 1, 5, 9, 7, 30), 3) == [
        utc(2026, 1, 5, 9, 15),
        utc(2026, 1, 5, 9, 30),
        utc(2026, 1, 5, 9, 45),
    ]


def test_six_fields_have_seconds_first() -> None:
    assert fires(Cron("*/20 * * * * *"), utc(2026, 1, 5, 9, 0, 0), 3) == [
        utc(2026, 1, 5, 9, 0, 20),
        utc(2026, 1, 5, 9, 0, 40),
        utc(2026, 1, 5, 9, 1, 0),
    ]
    assert next_fire(Cron("30 0 6 * * *"), utc(2026, 1, 5, 9)) == utc(2026, 1, 6, 6, 0, 30)


def test_next_fire_is_strictly_after_the_given_instant() -> None:
    assert next_fire(Cron("0 * * * *"), utc(2026, 1, 5, 9)) == utc(2026, 1, 5, 10)
    assert next_fire(Cron("0 * * * *"), utc(2026, 1, 5, 8, 59, 59)) == utc(2026, 1, 5, 9)


def test_backwards_iteration_is_strictly_before_the_given_instant() -> None:
    assert fires(Cron("0 * * * *"), utc(2026, 1, 5, 9), 2, backwards=True) == [
        utc(2026, 1, 5, 8),
        utc(2026, 1, 5, 7),
    ]


def test_expression_whitespace_is_normalised() -> None:
    assert Cron("  0   6 *  * * ").expression == "0 6 * * *"


def test_day_of_month_and_weekday_fields() -> None:
    assert next_fire(Cron("0 6 1 * *"), utc(2026, 1, 5)) == utc(2026, 2, 1, 6)
    assert next_fire(Cron("0 8 * * mon"), utc(2026, 1, 5, 9)) == utc(2026, 1, 12, 8)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30W 2 *"])
def test_expression_that_never_fires_is_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="never fires"):
        validate(Cron(expression))


@pytest.mark.parametrize("expression", ["H * * * *", "0 H(0-5) * * *", "R/5 * * * *", "0 0 * * H"])
def test_jenkins_hashed_and_random_fields_are_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="Jenkins"):
        validate(Cron(expression))


def test_rare_expressions_are_accepted() -> None:
    assert next_fire(Cron("0 0 29 2 1"), utc(2026, 1, 1)) == utc(2044, 2, 29)  # a Monday


def test_last_fire_time_before_year_10000_is_followed_by_none() -> None:
    cron = Cron("0 0 31 12 *")

    assert next_fire(cron, utc(9998, 12, 31, 12)) == utc(9999, 12, 31)
    assert next_fire(cron, utc(9999, 12, 31, 12)) is None
    assert fires(Cron("0 0 1 1 *"), utc(1, 1, 1), 1, backwards=True) == []
    assert next_fire(Cron("0 0 * * *", "Asia/Tokyo"), dt.datetime.max.replace(tzinfo=UTC)) is None
    assert (
        fires(
            Cron("0 0 * * *", "America/New_York"),
            dt.datetime.min.replace(tzinfo=UTC),
            1,
            backwards=True,
        )
        == []
    )


@pytest.mark.parametrize(
    "expression",
    ["61 * * * *", "0 25 * * *", "0 0 * * 8", "*/0 * * * *", "a b c d e", "60 * * * * *"],
)
def test_malformed_expression_raises_invalid_schedule(expression: str) -> None:
    with pytest.raises(InvalidSchedule):
        validate(Cron(expression))
    with pytest.raises(InvalidSchedule):
        next_fire(Cron(expression), utc(2026, 1, 1))


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * * *", ""])
def test_wrong_number_of_fields_raises_invalid_schedule(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="fields"):
        Cron(expression)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "Not a zone", "../../etc/passwd"])
def test_unknown_time_zone_raises_invalid_schedule(zone: str) -> None:
    with pytest.raises(InvalidSchedule, match="time zone"):
        Cron("0 * * * *", timezone=zone)


# --- time zones ----------------------------------------------------------------------------------


def test_fire_times_follow_the_time_zone_and_are_returned_in_utc() -> None:
    kolkata = Cron("0 6 1 * *", timezone="Asia/Kolkata")  # UTC+05:30

    [first] = fires(kolkata, utc(2026, 1, 5), 1)

    assert first == utc(2026, 2, 1, 0, 30)
    assert first.tzinfo is UTC


def test_local_time_stays_fixed_across_a_dst_change() -> None:
    berlin = Cron("0 9 * * *", timezone="Europe/Berlin")

    assert fires(berlin, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 7),  # 09:00 CEST
        utc(2026, 3, 30, 7),
    ]
    assert fires(berlin, utc(2026, 3, 27, 12), 1) == [utc(2026, 3, 28, 8)]  # 09:00 CET


# --- DST: Europe/Berlin, 2026-03-29 (02:00 -> 03:00) and 2026-10-25 (03:00 -> 02:00) ------------

BERLIN_DAILY = Cron("30 2 * * *", timezone="Europe/Berlin")
BERLIN_HALF_HOURLY = Cron("*/30 * * * *", timezone="Europe/Berlin")


def test_time_in_the_spring_forward_gap_fires_once_at_the_first_valid_instant() -> None:
    fired = fires_between(BERLIN_DAILY, utc(2026, 3, 27, 12), utc(2026, 3, 31))

    assert fired == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_spring_forward_gap_going_backwards_also_fires_once() -> None:
    assert fires(BERLIN_DAILY, utc(2026, 3, 29, 12), 2, backwards=True) == [
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 28, 1, 30),
    ]


def test_fixed_hour_in_the_fall_back_hour_fires_once_not_twice() -> None:
    fired = fires_between(BERLIN_DAILY, utc(2026, 10, 24, 12), utc(2026, 10, 26))

    assert fired == [
        utc(2026, 10, 25, 0, 30),  # the first 02:30 (CEST); the second (CET, 01:30 UTC) is not
    ]


def test_fall_back_hour_going_backwards_also_fires_once() -> None:
    assert fires(BERLIN_DAILY, utc(2026, 10, 25, 12), 2, backwards=True) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 24, 0, 30),
    ]


def test_six_field_fixed_hour_fires_once_on_the_fall_back_day() -> None:
    cron = Cron("0 30 2 * * *", timezone="Europe/Berlin")

    assert fires_between(cron, utc(2026, 10, 24, 12), utc(2026, 10, 26)) == [
        utc(2026, 10, 25, 0, 30),
    ]


def test_wildcard_hour_fires_in_both_ambiguous_hours() -> None:
    fired = fires_between(BERLIN_HALF_HOURLY, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15))

    assert fired == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 0),  # 02:00 CET
        utc(2026, 10, 25, 1, 30),  # 02:30 CET
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
    ]


def test_wildcard_hour_skips_the_spring_forward_gap_without_duplicates() -> None:
    fired = fires_between(BERLIN_HALF_HOURLY, utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 45))

    assert fired == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST
    ]


# --- DST: America/New_York, 2026-03-08 (02:00 -> 03:00) and 2026-11-01 (02:00 -> 01:00) ---------


def test_new_york_spring_forward_gap_fires_once_at_three() -> None:
    cron = Cron("30 2 * * *", timezone="America/New_York")

    assert fires_between(cron, utc(2026, 3, 7, 12), utc(2026, 3, 10)) == [
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_new_york_fall_back_fires_once_for_a_fixed_hour() -> None:
    cron = Cron("30 1 * * *", timezone="America/New_York")

    assert fires_between(cron, utc(2026, 10, 31, 12), utc(2026, 11, 2)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; 01:30 EST (06:30 UTC) does not fire
    ]


def test_new_york_fall_back_fires_twice_for_a_wildcard_hour() -> None:
    cron = Cron("30 * * * *", timezone="America/New_York")

    assert fires_between(cron, utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 6, 30),  # 01:30 EST
    ]


# --- misfire planning ----------------------------------------------------------------------------
# A minutely job, last planned for 00:01; the scheduler comes back at 00:03:35. The 00:01 and
# 00:02 ticks are more than the 60 s grace late (missed); 00:03 is 35 s late (on time).

MINUTELY_DUE = utc(2026, 1, 5, 0, 1)
BACK_AT = utc(2026, 1, 5, 0, 3, 35)


def minutely(misfire: MisfirePolicy) -> Cron:
    return Cron("* * * * *", misfire=misfire)


def test_plan_on_time_is_the_due_tick_alone() -> None:
    assert plan_ticks(minutely(MisfirePolicy()), MINUTELY_DUE, MINUTELY_DUE).fire_times == [
        MINUTELY_DUE
    ]
    assert plan_ticks(
        minutely(MisfirePolicy()), MINUTELY_DUE, MINUTELY_DUE + dt.timedelta(seconds=59)
    ).fire_times == [MINUTELY_DUE]


def test_plan_run_once_keeps_the_latest_missed_tick_and_the_on_time_one() -> None:
    assert plan_ticks(minutely(MisfirePolicy.run_once()), MINUTELY_DUE, BACK_AT).fire_times == [
        utc(2026, 1, 5, 0, 2),
        utc(2026, 1, 5, 0, 3),
    ]


def test_plan_run_all_keeps_every_missed_tick() -> None:
    assert plan_ticks(minutely(MisfirePolicy.run_all()), MINUTELY_DUE, BACK_AT).fire_times == [
        utc(2026, 1, 5, 0, 1),
        utc(2026, 1, 5, 0, 2),
        utc(2026, 1, 5, 0, 3),
    ]


def test_plan_run_all_keeps_only_the_latest_limit_missed_ticks() -> None:
    hours_later = utc(2026, 1, 5, 5, 0, 30)

    planned = plan_ticks(minutely(MisfirePolicy.run_all(limit=10)), MINUTELY_DUE, hours_later)

    assert planned.fire_times == [
        utc(2026, 1, 5, 4, 50) + dt.timedelta(minutes=n) for n in range(11)
    ]
    assert planned.next_run_at == utc(2026, 1, 5, 5, 1)


def test_plan_skip_keeps_only_ticks_within_grace() -> None:
    assert plan_ticks(minutely(MisfirePolicy.skip()), MINUTELY_DUE, BACK_AT).fire_times == [
        utc(2026, 1, 5, 0, 3)
    ]
    hourly = Cron("0 * * * *", misfire=MisfirePolicy.skip())
    assert plan_ticks(hourly, utc(2026, 1, 5, 1), utc(2026, 1, 5, 3, 30)).fire_times == []


def test_plan_never_reaches_before_the_first_due_tick() -> None:
    assert plan_ticks(
        minutely(MisfirePolicy.run_all()), utc(2026, 1, 5, 0, 3), BACK_AT
    ).fire_times == [utc(2026, 1, 5, 0, 3)]


def test_plan_grace_is_configurable() -> None:
    wide = MisfirePolicy(grace=dt.timedelta(minutes=5))

    assert plan_ticks(minutely(wide), MINUTELY_DUE, BACK_AT).fire_times == [
        utc(2026, 1, 5, 0, 1),
        utc(2026, 1, 5, 0, 2),
        utc(2026, 1, 5, 0, 3),
    ]


def test_plan_is_dst_correct() -> None:
    cron = Cron("30 2 * * *", timezone="Europe/Berlin", misfire=MisfirePolicy.run_all())

    assert plan_ticks(cron, utc(2026, 10, 24, 0, 30), utc(2026, 10, 26, 12)).fire_times == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_misfire_run_all_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MisfirePolicy.run_all(limit=0)


# --- Cronos's rules (issue 13, items 13-15) ------------------------------------------------------


def test_fall_back_fires_twice_for_a_step_in_the_hour_field() -> None:
    cron = Cron("0 30 0/1 * * *", timezone="America/New_York")
    start = dt.datetime(2016, 11, 6, 1, 59, tzinfo=dt.timezone(dt.timedelta(hours=-4)))

    assert next_fire(cron, start) == utc(2016, 11, 6, 6, 30)  # 01:30 EST, the second copy


def test_fall_back_fires_in_both_copies_for_a_step_in_the_minute_field() -> None:
    cron = Cron("0 */30 1 * * *", timezone="America/New_York")

    assert fires_between(cron, utc(2016, 11, 6, 4), utc(2016, 11, 7)) == [
        utc(2016, 11, 6, 5, 0),  # 01:00 EDT
        utc(2016, 11, 6, 5, 30),  # 01:30 EDT
        utc(2016, 11, 6, 6, 0),  # 01:00 EST
        utc(2016, 11, 6, 6, 30),  # 01:30 EST
    ]


def test_fall_back_going_backwards_mirrors_forwards() -> None:
    cron = Cron("0 */30 1 * * *", timezone="America/New_York")

    assert fires(cron, utc(2016, 11, 6, 7), 5, backwards=True) == [
        utc(2016, 11, 6, 6, 30),
        utc(2016, 11, 6, 6, 0),
        utc(2016, 11, 6, 5, 30),
        utc(2016, 11, 6, 5, 0),
        utc(2016, 11, 5, 5, 30),
    ]


def test_half_hour_fall_back_of_lord_howe() -> None:
    # 2026-04-05 02:00 (+11:00) -> 01:30 (+10:30): 01:30-02:00 happens twice
    interval = Cron("*/20 1 * * *", timezone="Australia/Lord_Howe")
    fixed = Cron("40 1 * * *", timezone="Australia/Lord_Howe")

    assert fires_between(interval, utc(2026, 4, 4, 13, 59), utc(2026, 4, 4, 16)) == [
        utc(2026, 4, 4, 14, 0),  # 01:00 +11
        utc(2026, 4, 4, 14, 20),  # 01:20 +11
        utc(2026, 4, 4, 14, 40),  # 01:40 +11
        utc(2026, 4, 4, 15, 10),  # 01:40 +10:30
    ]
    assert fires_between(fixed, utc(2026, 4, 4, 12), utc(2026, 4, 5, 12)) == [
        utc(2026, 4, 4, 14, 40)
    ]


def test_spring_forward_moves_a_wildcard_hour_run_to_the_first_valid_instant() -> None:
    cron = Cron("0 30 * * * *", timezone="Europe/Berlin")

    assert fires_between(cron, utc(2026, 3, 29, 0), utc(2026, 3, 29, 2)) == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST
    ]
    assert fires(cron, utc(2026, 3, 29, 1, 30), 2, backwards=True) == [
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 0, 30),
    ]


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    fridays_the_13th = fires(Cron("0 5 13 * 5"), utc(2026, 1, 1), 3)

    assert fridays_the_13th == [utc(2026, 2, 13, 5), utc(2026, 3, 13, 5), utc(2026, 11, 13, 5)]


def test_wrap_around_hour_range_with_a_step() -> None:
    assert fires(Cron("0 23-3/2 * * *"), utc(2026, 1, 5, 12), 3) == [
        utc(2026, 1, 5, 23),
        utc(2026, 1, 6, 1),
        utc(2026, 1, 6, 3),
    ]


def test_wrap_around_weekday_range_with_a_step() -> None:
    # sat-tue/2: Saturday and Monday; 2026-01-03 is a Saturday
    assert fires(Cron("0 0 * * sat-tue/2"), utc(2026, 1, 1), 4) == [
        utc(2026, 1, 3),
        utc(2026, 1, 5),
        utc(2026, 1, 10),
        utc(2026, 1, 12),
    ]


def test_nearest_weekday_does_not_fire_in_a_month_without_that_day() -> None:
    assert fires(Cron("0 0 30W * *"), utc(2026, 1, 31), 2) == [
        utc(2026, 3, 30),  # February has no 30th
        utc(2026, 4, 30),
    ]


def test_last_weekday_of_the_month_in_cronos_spelling() -> None:
    assert fires(Cron("0 0 * * 5L"), utc(2026, 1, 1), 2) == [utc(2026, 1, 30), utc(2026, 2, 27)]


@pytest.mark.parametrize("expression", ["0 0 L-3 * *", "0 0 LW * *"])
def test_unsupported_last_day_forms_are_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="not supported"):
        validate(Cron(expression))


def test_plan_is_bounded_per_round_and_resumes_at_the_first_tick_left_over() -> None:
    # An every-second schedule with a day of grace, back after a day: 86,400 on-time ticks
    every_second = Cron("* * * * * *", misfire=MisfirePolicy(grace=dt.timedelta(days=1)))
    due, back = utc(2026, 1, 5), utc(2026, 1, 6)

    plan = plan_ticks(every_second, due, back, limit=500)

    assert plan.fire_times == [due + dt.timedelta(seconds=n) for n in range(500)]
    assert plan.next_run_at == due + dt.timedelta(seconds=500)


def test_bounded_plan_keeps_the_missed_tick_of_run_once_first() -> None:
    every_second = Cron("* * * * * *", misfire=MisfirePolicy.run_once())
    back = utc(2026, 1, 6)

    plan = plan_ticks(every_second, utc(2026, 1, 5), back, limit=10)

    oldest_on_time = back - dt.timedelta(seconds=60)
    assert plan.fire_times == [oldest_on_time - dt.timedelta(seconds=1)] + [
        oldest_on_time + dt.timedelta(seconds=n) for n in range(9)
    ]
    assert plan.next_run_at == oldest_on_time + dt.timedelta(seconds=9)
