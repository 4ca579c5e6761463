"""Placing and cancelling orders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID, uuid4

from application.jobs import JobId
from application.unit_of_work import UnitOfWork
from domain.clock import Clock
from domain.orders import REVIEW_DELAY, Order, OrderJobs, OrderNotFound, OrderRepository


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced:
    order_id: UUID
    confirmation_job_id: JobId
    review_job_id: JobId


class PlaceOrder:
    """Store the order, confirm it now and ask for a review 30 minutes later: the order and
    both jobs in one transaction."""

    def __init__(self, uow: UnitOfWork, orders: OrderRepository, clock: Clock) -> None:
        self._uow = uow
        self._orders = orders
        self._clock = clock

    async def __call__(self, customer_email: str, total: Decimal) -> OrderPlaced:
        """Raises:
        InvalidValue: the address is malformed or the total not positive.
        """
        order = Order(
            id=uuid4(), customer_email=customer_email, total=total, placed_at=self._clock.now()
        )
        async with self._uow.begin() as tx:
            await self._orders.add(order)
            confirm = await tx.jobs.enqueue(OrderJobs.send_confirmation, order.id)
            review = await tx.jobs.schedule(REVIEW_DELAY, OrderJobs.send_review_request, order.id)
        return OrderPlaced(order_id=order.id, confirmation_job_id=confirm, review_job_id=review)


class CancelOrder:
    """Cancel an order: its review request, when due, sends nothing. Cancelling twice
    changes nothing."""

    def __init__(self, uow: UnitOfWork, orders: OrderRepository, clock: Clock) -> None:
        self._uow = uow
        self._orders = orders
        self._clock = clock

    async def __call__(self, order_id: UUID) -> None:
        """Raises:
        OrderNotFound: no order has this id.
        """
        async with self._uow.begin():
            order = await self._orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            await self._orders.add(order.cancel(self._clock.now()))
