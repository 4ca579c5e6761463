"""Orders: a confirmation when one is placed, a review request 30 minutes later unless it
was cancelled, and a daily digest of the orders of the day before for the shop."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.clock import Clock, require_aware
from domain.errors import InvalidValue, NotFound
from domain.users import EmailSender

REVIEW_DELAY = dt.timedelta(minutes=30)
"""How long after an order is placed its customer is asked for a review."""


class OrderNotFound(NotFound):
    type = "order-not-found"
    kind = "order"


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    id: UUID
    customer_email: str
    total: Decimal
    placed_at: dt.datetime
    cancelled_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    review_requested_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if "@" not in self.customer_email:
            raise InvalidValue(f"not an email address: {self.customer_email!r}")
        if self.total <= 0:
            raise InvalidValue(f"an order total must be positive, got {self.total}")
        for name in ("placed_at", "cancelled_at", "confirmed_at", "review_requested_at"):
            require_aware(name, getattr(self, name))

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def cancel(self, at: dt.datetime) -> Order:
        """The order cancelled at `at`; an order cancelled already keeps its first time."""
        return self if self.cancelled else dataclasses.replace(self, cancelled_at=at)

    def confirmed(self, at: dt.datetime) -> Order:
        return dataclasses.replace(self, confirmed_at=at)

    def review_requested(self, at: dt.datetime) -> Order:
        return dataclasses.replace(self, review_requested_at=at)


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSettings:
    """Who gets the daily digest, and in which time zone a day starts and ends."""

    recipient: str
    timezone: str


class OrderRepository(Protocol):
    """Customers' orders."""

    async def add(self, order: Order) -> None:
        """Store a new order, or replace the stored one with the same id."""

    async def get(self, order_id: UUID) -> Order | None:
        """The order with this id, or None."""

    async def list_placed_between(self, start: dt.datetime, end: dt.datetime) -> list[Order]:
        """Orders placed in `[start, end)`, oldest first."""


class OrderJobs:
    """Emails about orders; each is sent once, whatever how often its job runs."""

    def __init__(
        self, orders: OrderRepository, email: EmailSender, clock: Clock, digest: DigestSettings
    ) -> None:
        self._orders = orders
        self._email = email
        self._clock = clock
        self._digest = digest

    async def send_confirmation(self, order_id: UUID) -> bool:
        """Confirm the order to its customer; False when already confirmed.

        Raises:
            OrderNotFound: no order has this id.
        """
        order = await self._order(order_id)
        if order.confirmed_at is not None:
            return False
        await self._email.send(
            order.customer_email, "Your order", f"We received your order {order.id}."
        )
        await self._orders.add(order.confirmed(self._clock.now()))
        return True

    async def send_review_request(self, order_id: UUID) -> bool:
        """Ask the customer for a review, unless the order was cancelled or asked already.

        Raises:
            OrderNotFound: no order has this id.
        """
        order = await self._order(order_id)
        if order.cancelled or order.review_requested_at is not None:
            return False
        await self._email.send(
            order.customer_email, "How was your order?", f"Tell us about order {order.id}."
        )
        await self._orders.add(order.review_requested(self._clock.now()))
        return True

    async def send_daily_digest(self) -> int:
        """Email the shop the orders placed the day before (a calendar day of the digest's
        time zone: 23 or 25 hours when the clocks change). Returns how many there were."""
        start, end = previous_day(self._clock.now(), ZoneInfo(self._digest.timezone))
        orders = await self._orders.list_placed_between(start, end)
        lines = [f"{o.placed_at.isoformat()} {o.id} {o.total}" for o in orders]
        await self._email.send(
            self._digest.recipient,
            f"Orders of {start.astimezone(ZoneInfo(self._digest.timezone)):%Y-%m-%d}",
            "\n".join([f"{len(orders)} order(s)", *lines]),
        )
        return len(orders)

    async def _order(self, order_id: UUID) -> Order:
        order = await self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order


def previous_day(now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC bounds of the calendar day before `now`'s, in `zone`."""
    today = now.astimezone(zone).date()
    start = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), zone)
    end = dt.datetime.combine(today, dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
