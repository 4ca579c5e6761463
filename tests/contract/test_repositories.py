"""One contract per repository port, over every persistence adapter: in memory (the test
adapter) and in SQL on SQLite, PostgreSQL and MariaDB (PyMySQL and ODBC)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.invoices import Invoice, Subscription
from domain.notifications import Notification
from domain.reports import Report, ReportKind
from domain.users import PasswordReset, User
from tests.contract.business import PERSISTENCE, Repositories, repositories_for

T0 = dt.datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=PERSISTENCE)
def repos(request: pytest.FixtureRequest) -> Repositories:
    return repositories_for(request, request.param)


def a_user(email: str = "Ada@Example.org", at: dt.datetime = T0) -> User:
    return User(id=uuid4(), email=email, name="Ada Lovelace ✓", registered_at=at)


def an_invoice(issued_at: dt.datetime = T0, *, paid: bool = False) -> Invoice:
    return Invoice(
        id=uuid4(),
        customer_email="billing@example.org",
        amount=Decimal("1234567.891"),
        issued_at=issued_at,
        due_at=issued_at + dt.timedelta(days=14),
        paid=paid,
    )


# --- users -------------------------------------------------------------------------------
async def test_user_reads_back_as_stored(repos: Repositories) -> None:
    user = a_user()
    await repos.users.add(user)
    assert await repos.users.get(user.id) == user
    assert await repos.users.get(uuid4()) is None


async def test_adding_a_user_with_the_same_id_replaces_it(repos: Repositories) -> None:
    user = a_user()
    await repos.users.add(user)
    await repos.users.add(user.welcomed(T0 + HOUR))
    assert await repos.users.get(user.id) == user.welcomed(T0 + HOUR)


async def test_user_is_found_by_email_ignoring_case(repos: Repositories) -> None:
    user = a_user("Ada@Example.org")
    await repos.users.add(user)
    assert await repos.users.get_by_email("ada@EXAMPLE.org") == user
    assert await repos.users.get_by_email("bob@example.org") is None


async def test_registrations_are_counted_in_a_half_open_period(repos: Repositories) -> None:
    for at in (T0 - HOUR, T0, T0 + HOUR):
        await repos.users.add(a_user(f"{uuid4().hex}@example.org", at))
    assert await repos.users.count_registered_between(T0, T0 + HOUR) == 1
    assert await repos.users.count_registered_between(T0 - HOUR, T0 + 2 * HOUR) == 3


async def test_password_reset_reads_back_as_stored(repos: Repositories) -> None:
    reset = PasswordReset.issue(reset_id=uuid4(), user_id=uuid4(), token="t0k3n", now=T0)
    await repos.resets.add(reset)
    await repos.resets.add(reset.used(T0 + HOUR))
    assert await repos.resets.get(reset.id) == reset.used(T0 + HOUR)
    assert await repos.resets.get(uuid4()) is None


# --- invoices and subscriptions ----------------------------------------------------------
async def test_invoice_keeps_its_exact_amount_and_period(repos: Repositories) -> None:
    invoice = dataclasses.replace(an_invoice(), subscription_id=uuid4(), period=dt.date(2026, 3, 1))
    await repos.invoices.add(invoice)
    assert await repos.invoices.get(invoice.id) == invoice
    assert await repos.invoices.get(uuid4()) is None


async def test_invoices_issued_in_a_period_come_oldest_first(repos: Repositories) -> None:
    later, earlier, outside = an_invoice(T0 + HOUR), an_invoice(T0), an_invoice(T0 + 2 * HOUR)
    for invoice in (later, earlier, outside):
        await repos.invoices.add(invoice)
    assert await repos.invoices.list_issued_between(T0, T0 + 2 * HOUR) == [earlier, later]


async def test_unpaid_invoices_come_by_due_date(repos: Repositories) -> None:
    late, soon, paid = an_invoice(T0 + HOUR), an_invoice(T0), an_invoice(T0, paid=True)
    for invoice in (late, soon, paid):
        await repos.invoices.add(invoice)
    await repos.invoices.add(late.reminded(T0 + 2 * HOUR))
    assert await repos.invoices.list_unpaid() == [soon, late.reminded(T0 + 2 * HOUR)]


async def test_only_active_subscriptions_are_listed(repos: Repositories) -> None:
    subscriptions = [
        Subscription(id=uuid4(), customer_email=f"c{n}@example.org", monthly_fee=Decimal("9.90"))
        for n in range(3)
    ]
    for subscription in subscriptions:
        await repos.subscriptions.add(subscription)
    await repos.subscriptions.add(dataclasses.replace(subscriptions[0], active=False))
    active = await repos.subscriptions.list_active()
    assert sorted(active, key=lambda s: s.id) == sorted(subscriptions[1:], key=lambda s: s.id)
    assert await repos.subscriptions.list_active() == active  # a stable order


# --- reports -----------------------------------------------------------------------------
async def test_report_reads_back_as_stored_before_and_after_generation(
    repos: Repositories,
) -> None:
    report = Report(
        id=uuid4(),
        kind=ReportKind.ON_DEMAND,
        period_start=T0,
        period_end=T0 + HOUR,
        requested_at=T0,
        recipient="ops@example.org",
    )
    await repos.reports.add(report)
    assert await repos.reports.get(report.id) == report
    generated = report.generated("Activity\nNew users: 3 ✓", T0 + HOUR).emailed(T0 + 2 * HOUR)
    await repos.reports.add(generated)
    assert await repos.reports.get(report.id) == generated
    assert await repos.reports.get(uuid4()) is None


# --- notifications -----------------------------------------------------------------------
def a_notification(user_id: UUID, at: dt.datetime, bulk_id: UUID | None = None) -> Notification:
    return Notification(id=uuid4(), user_id=user_id, message="Hi ✓", created_at=at, bulk_id=bulk_id)


async def test_a_users_notifications_come_oldest_first(repos: Repositories) -> None:
    user, other = uuid4(), uuid4()
    newer, older = a_notification(user, T0 + HOUR), a_notification(user, T0)
    for notification in (newer, older, a_notification(other, T0)):
        await repos.notifications.add(notification)
    assert await repos.notifications.list_for_user(user) == [older, newer]
    assert await repos.notifications.list_for_user(uuid4()) == []


async def test_notifications_of_a_bulk_send_are_counted(repos: Repositories) -> None:
    bulk = uuid4()
    for n in range(3):
        await repos.notifications.add(a_notification(uuid4(), T0, bulk if n < 2 else None))
    assert await repos.notifications.count_for_bulk(bulk) == 2
    assert await repos.notifications.count_for_bulk(uuid4()) == 0
