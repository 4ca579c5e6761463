"""The orders repository's contract, over the in-memory adapter and SQL on each database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.orders import Order, OrderRepository
from infrastructure.persistence.orders import InMemoryOrderRepository, SqlOrderRepository
from infrastructure.persistence.sql.session import SqlDatabase
from tests.contract.business import PERSISTENCE, sql_engine

T0 = dt.datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=PERSISTENCE)
def orders(request: pytest.FixtureRequest) -> OrderRepository:
    if request.param == "memory":
        return InMemoryOrderRepository()
    return SqlOrderRepository(SqlDatabase(sql_engine(request, request.param)))


def an_order(placed_at: dt.datetime = T0) -> Order:
    return Order(
        id=uuid4(), customer_email="ada@example.org", total=Decimal("19.99"), placed_at=placed_at
    )


async def test_an_order_reads_back_as_stored_through_its_life(orders: OrderRepository) -> None:
    order = an_order()
    await orders.add(order)
    assert await orders.get(order.id) == order
    done = order.confirmed(T0 + HOUR).review_requested(T0 + 2 * HOUR).cancel(T0 + 3 * HOUR)
    await orders.add(done)
    assert await orders.get(order.id) == done
    assert await orders.get(uuid4()) is None


async def test_orders_placed_in_a_period_come_oldest_first(orders: OrderRepository) -> None:
    later, earlier, outside = an_order(T0 + HOUR), an_order(T0), an_order(T0 + 2 * HOUR)
    for order in (later, earlier, outside):
        await orders.add(order)
    assert await orders.list_placed_between(T0, T0 + 2 * HOUR) == [earlier, later]
