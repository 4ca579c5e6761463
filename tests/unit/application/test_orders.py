"""Orders, end to end on the container's own wiring with a fake clock: a confirmation now, a
review request 30 minutes later unless cancelled, and the daily digest at 07:30 in Berlin
across the change to summer time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from application.jobs import JobState
from application.use_cases.orders import CancelOrder, PlaceOrder
from domain.orders import OrderJobs
from host.features import orders as feature
from tests.unit.application.conftest import Service

MINUTE = dt.timedelta(minutes=1)
ORDER_DIGEST = "orders@example.org"


def feature_of(service: Service) -> Any:
    """The orders feature's providers (added to the container by `host.features`)."""
    return cast(Any, service.container.orders)


def place(service: Service) -> PlaceOrder:
    placing: PlaceOrder = feature_of(service).place_order()
    return placing


def subjects(service: Service, to: str) -> list[str]:
    return [email.subject for email in service.adapters.email.sent if email.to == to]


async def test_an_order_is_confirmed_now_and_asked_for_a_review_30_minutes_later(
    service: Service,
) -> None:
    placed = await place(service)("ada@example.org", Decimal("42.50"))

    await service.drain()
    assert subjects(service, "ada@example.org") == ["Your order"]
    assert await service.state(placed.review_job_id) is JobState.SCHEDULED

    await service.advance_and_drain(29 * MINUTE)
    assert subjects(service, "ada@example.org") == ["Your order"]

    await service.advance_and_drain(MINUTE)
    assert subjects(service, "ada@example.org") == ["Your order", "How was your order?"]


async def test_a_cancelled_order_gets_no_review_request(service: Service) -> None:
    placed = await place(service)("ada@example.org", Decimal("42.50"))
    await service.drain()
    cancel: CancelOrder = feature_of(service).cancel_order()

    await cancel(placed.order_id)
    await service.advance_and_drain(30 * MINUTE)

    assert subjects(service, "ada@example.org") == ["Your order"]
    review = await service.job(placed.review_job_id)
    assert review.state is JobState.SUCCEEDED and review.result is False


async def test_the_daily_digest_runs_at_half_past_seven_in_berlin_across_summer_time(
    service: Service,
) -> None:
    # Berlin moves to summer time on Sunday 2026-03-29 (UTC+1 -> UTC+2): that day has 23 hours.
    service.clock.set(utc(2026, 3, 28, 6, 35))  # 07:35 in Berlin, after Saturday's digest
    for declaration in feature.recurring_jobs(service.container.settings()):
        await service.jobs.add_or_update_recurring(
            declaration.id, declaration.cron, declaration.handler
        )
    saturday_late = await place_at(service, utc(2026, 3, 28, 22, 30))  # 23:30 Sat in Berlin
    sunday_early = await place_at(service, utc(2026, 3, 28, 23, 30))  # 00:30 Sun in Berlin

    # Sunday's digest (of Saturday) is due at 07:30 summer time: 05:30 UTC, not 06:30.
    await at(service, utc(2026, 3, 29, 5, 29))
    assert digests(service) == []
    await at(service, utc(2026, 3, 29, 5, 30))
    assert digests(service) == [("Orders of 2026-03-28", [saturday_late])]

    sunday_late = await place_at(service, utc(2026, 3, 29, 21, 30))  # 23:30 Sun (summer time)
    monday_early = await place_at(service, utc(2026, 3, 29, 22, 30))  # 00:30 Mon
    # Monday's digest covers all of Sunday's 23 hours and nothing after.
    await at(service, utc(2026, 3, 30, 5, 29))
    assert len(digests(service)) == 1
    await at(service, utc(2026, 3, 30, 5, 30))
    assert digests(service)[1:] == [("Orders of 2026-03-29", [sunday_early, sunday_late])]
    assert monday_early not in digests(service)[1][1]


def utc(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


async def at(service: Service, instant: dt.datetime) -> None:
    service.clock.set(instant)
    await service.drain()


async def place_at(service: Service, instant: dt.datetime) -> UUID:
    await at(service, instant)
    return (await place(service)("ada@example.org", Decimal("10.00"))).order_id


def digests(service: Service) -> list[tuple[str, list[UUID]]]:
    """Each digest sent: its subject and the order ids it lists."""
    return [
        (email.subject, [UUID(line.split()[1]) for line in email.body.splitlines()[1:]])
        for email in service.adapters.email.sent
        if email.to == ORDER_DIGEST
    ]


def test_the_digest_handler_is_the_features_recurring_job(service: Service) -> None:
    declared = feature.recurring_jobs(service.container.settings())
    assert [(d.id, d.handler) for d in declared] == [
        ("orders-daily-digest", OrderJobs.send_daily_digest)
    ]
