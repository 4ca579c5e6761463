"""The orders feature: its providers, handlers, recurring digest and routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from dependency_injector import containers, providers
from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from application.jobs import Cron, RetryPolicy
from application.use_cases.orders import CancelOrder, PlaceOrder
from domain.orders import DigestSettings, OrderJobs
from host.api.business import PREFIX
from host.api.inputs import EmailAddress
from host.api.problems import problem_responses
from host.feature import Feature, repository, use_case
from host.registrar import RecurringDeclaration, recurring
from host.scopes import WRITE
from host.settings import Settings
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.persistence.orders import InMemoryOrderRepository, SqlOrderRepository

DIGEST = DigestSettings(recipient="orders@example.org", timezone="Europe/Berlin")


class OrdersContainer(containers.DeclarativeContainer):
    core = providers.DependenciesContainer()
    orders = repository(
        core.persistence, core.database, SqlOrderRepository, InMemoryOrderRepository
    )
    handlers = providers.List(
        providers.Factory(OrderJobs, orders, core.email, core.clock, providers.Object(DIGEST))
    )
    place_order = providers.Factory(PlaceOrder, core.unit_of_work, orders, core.clock)
    cancel_order = providers.Factory(CancelOrder, core.unit_of_work, orders, core.clock)


def register_handlers(registry: HandlerRegistry) -> None:
    registry.register(OrderJobs.send_confirmation, queue="critical", retry=RetryPolicy(attempts=5))
    registry.register(OrderJobs.send_review_request, retry=RetryPolicy(attempts=5))
    registry.register(OrderJobs.send_daily_digest, queue="low", retry=RetryPolicy(attempts=3))


def recurring_jobs(settings: Settings) -> list[RecurringDeclaration]:
    digest = Cron.daily(7, 30, timezone=DIGEST.timezone)
    return [recurring("orders-daily-digest", digest, OrderJobs.send_daily_digest)]


router = APIRouter(prefix=f"{PREFIX}/orders", tags=["orders"])
Place = Annotated[PlaceOrder, use_case("orders", "place_order")]
Cancel = Annotated[CancelOrder, use_case("orders", "cancel_order")]


class OrderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"customer_email": "ada@example.org", "total": "42.50"}]},
    )
    customer_email: EmailAddress
    total: Decimal = Field(gt=0, max_digits=12, decimal_places=2)


class OrderOut(BaseModel):
    order_id: UUID
    confirmation_job_id: UUID
    review_job_id: UUID


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(400, 413, 422),
)
async def place_order(body: OrderIn, place: Place) -> OrderOut:
    """Place an order: confirmed now, a review asked for 30 minutes later unless cancelled."""
    placed = await place(body.customer_email, body.total)
    return OrderOut(
        order_id=placed.order_id,
        confirmation_job_id=placed.confirmation_job_id,
        review_job_id=placed.review_job_id,
    )


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def cancel_order(order_id: UUID, cancel: Cancel) -> None:
    """Cancel an order (its review request then sends nothing)."""
    await cancel(order_id)


FEATURE = Feature(
    name="orders",
    container=OrdersContainer,
    register_handlers=register_handlers,
    recurring=recurring_jobs,
    router=router,
)
