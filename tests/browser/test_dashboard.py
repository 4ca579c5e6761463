"""The dashboard in a real browser: sign in, every page without console errors (and its
screenshot), filters, a failed job's traceback, requeue, delete, bulk actions, recurring
jobs, live updates without reloading, why a job is not running, and what a reader may do."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from host.settings import Scope
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.browser.conftest import LIVE_WAIT_MS, Visit
from tests.dashboard.conftest import enqueue, job, unique, wait_for_state
from tests.dashboard.handlers import GATES, Probe, registry
from tests.dashboard.server import BASE

PAGES = {
    "overview": "",
    "jobs": "/list",
    "retries": "/retries",
    "recurring": "/recurring",
    "batches": "/batches",
    "servers": "/servers",
}
OVERVIEW_PICTURE = Path(__file__).parents[2] / "docs" / "images" / "dashboard-overview.png"


def test_every_page_renders_without_console_errors(visit: Visit, screenshots: Path) -> None:
    # Given a signed-in admin, and jobs of each kind
    failed = enqueue(visit.live, "Probe.fail", "<b>bold</b> failure")
    enqueue(visit.live, "Probe.say", "hello")
    retrying = enqueue(visit.live, "Probe.retry", "a retry")
    in_a_thread(enqueue_batch, visit.live.settings.db.url)
    enqueue(visit.live, "HeartbeatJobs.beat", delay_seconds=600)
    with visit.live.admin_api() as api:
        api.put(
            "/api/recurring/nightly", json={"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat"}
        )
    wait_for_state(visit.live, failed, "failed")
    wait_for_state(visit.live, retrying, "scheduled")
    visit.sign_in_with_the_form(Scope.ADMIN)

    # When each page is visited
    for name, path in PAGES.items():
        visit.go(path)
        expect(visit.page.locator("h1")).to_be_visible()
        visit.page.screenshot(path=screenshots / f"{name}.png", full_page=True)
    visit.go(f"/job/{failed}")
    visit.page.screenshot(path=screenshots / "job.png", full_page=True)

    # Then none logged an error (a CSP violation, a failed script, a bad swap)
    assert visit.errors == []


def in_a_thread(work: Callable[[str], Coroutine[Any, Any, None]], url: str) -> None:
    """Run `work` on a loop of its own (Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(work(url))).result()


async def enqueue_batch(url: str) -> None:
    """A batch of two jobs and its continuation, written as another process would (the
    REST API creates no batches)."""
    engine = create_engine(url)
    store = SQLAlchemyJobStore(engine)
    jobs = EngineJobService(store, registry(), SystemClock())
    async with jobs.batch() as batch:
        await batch.enqueue(Probe.say, "first of two")
        await batch.enqueue(Probe.say, "second of two")
        batch.then(Probe.say, "both done")
    await store.close()
    engine.dispose()


def test_overview_picture_for_the_readme(visit: Visit, screenshots: Path) -> None:
    visit.sign_in(Scope.ADMIN)
    visit.go("")
    expect(visit.page.get_by_test_id("count-succeeded")).to_be_visible()
    visit.page.wait_for_timeout(500)  # let the graph's first live update land
    visit.page.screenshot(path=screenshots / "overview-readme.png")
    if not OVERVIEW_PICTURE.exists():  # committed once; refreshed by deleting it
        OVERVIEW_PICTURE.parent.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=OVERVIEW_PICTURE)
    assert visit.errors == []


def test_signed_out_navigation_shows_the_sign_in_form_only(visit: Visit) -> None:
    job_id = enqueue(visit.live, "Probe.say", "not for strangers", delay_seconds=600)

    for path in ("", "/list", f"/job/{job_id}", "/recurring"):
        visit.go(path)
        expect(visit.page).to_have_url(re.compile(rf"{BASE}/login"))
        assert "not for strangers" not in visit.page.content()
        expect(visit.page.locator("table")).to_have_count(0)


def test_wrong_key_is_refused(visit: Visit) -> None:
    visit.go("/login")
    visit.page.fill('input[name="api_key"]', "guess")
    visit.page.click('button[type="submit"]')

    expect(visit.page.get_by_role("alert")).to_have_text("This API key is not valid.")


def test_filters_narrow_the_list(visit: Visit) -> None:
    marker = unique("needle")
    wanted = enqueue(visit.live, "Probe.say", marker, delay_seconds=600)
    enqueue(visit.live, "Probe.say", unique("hay"), delay_seconds=600)
    visit.sign_in(Scope.READ)

    visit.go("/list")
    visit.page.check('input[name="state"][value="scheduled"]')
    visit.page.fill('input[name="text"]', marker)
    visit.page.click('button:has-text("Filter")')

    rows = visit.page.locator('[data-testid="jobs-table"] tbody tr')
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a")).to_have_attribute("href", f"{BASE}/job/{wanted}")
    assert visit.errors == []


def test_failed_job_shows_its_traceback(visit: Visit) -> None:
    job_id = enqueue(visit.live, "Probe.fail", "flat tyre")
    wait_for_state(visit.live, job_id, "failed")
    visit.sign_in(Scope.WRITE)  # error details need the details scope (write by default)

    visit.go(f"/job/{job_id}")

    expect(visit.page.get_by_test_id("traceback")).to_contain_text("ValueError: flat tyre")
    expect(visit.page.get_by_test_id("traceback")).to_contain_text("Traceback (most recent")
    expect(visit.page.get_by_test_id("explanation")).to_contain_text("Requeue it")


def test_a_reader_sees_the_error_but_not_its_traceback(visit: Visit) -> None:
    job_id = enqueue(visit.live, "Probe.fail", "flat tyre")
    wait_for_state(visit.live, job_id, "failed")
    visit.sign_in(Scope.READ)

    visit.go(f"/job/{job_id}")

    expect(visit.page.get_by_test_id("explanation")).to_contain_text("ValueError: flat tyre")
    expect(visit.page.get_by_test_id("details-hidden")).to_contain_text("write scope")
    expect(visit.page.get_by_test_id("traceback")).to_have_count(0)


def test_requeue_and_delete_from_the_jobs_page(visit: Visit) -> None:
    job_id = enqueue(visit.live, "Probe.fail", "again")
    wait_for_state(visit.live, job_id, "failed")
    visit.sign_in(Scope.WRITE)
    visit.go(f"/job/{job_id}")

    visit.page.click('button:has-text("Requeue")')
    wait_for_state(visit.live, job_id, "failed")
    assert job(visit.live, job_id)["attempt"] == 2
    visit.page.click('button:has-text("Delete")')

    expect(visit.page.get_by_test_id("job-state")).to_have_text("deleted")
    assert job(visit.live, job_id)["state"] == "deleted"


def test_bulk_actions_say_how_many_before_acting(visit: Visit) -> None:
    queue = unique("bulk")
    ids = [
        enqueue(visit.live, "HeartbeatJobs.beat", delay_seconds=600, queue=queue) for _ in range(3)
    ]
    visit.sign_in(Scope.ADMIN)

    # The selection: two of the three
    visit.go(f"/list?queue={queue}")
    for job_id in ids[:2]:
        visit.page.check(f'input[name="ids"][value="{job_id}"]')
    visit.page.click('button:has-text("Delete selected")')
    expect(visit.page.get_by_test_id("confirm-text")).to_have_text("Delete 2 jobs?")
    visit.page.click('button:has-text("Yes, delete 2")')
    expect(visit.page.get_by_test_id("done-text")).to_contain_text("2 changed")
    assert [job(visit.live, i)["state"] for i in ids] == ["deleted", "deleted", "scheduled"]

    # The whole filter: every job of the queue
    visit.go(f"/list?queue={queue}")
    visit.page.click('button:has-text("Requeue all matching")')
    expect(visit.page.get_by_test_id("confirm-text")).to_have_text(
        "Requeue 3 jobs matching the filter?"
    )
    visit.page.click('button:has-text("Yes, requeue 3")')
    expect(visit.page.get_by_test_id("done-text")).to_contain_text("3 matched, 3 changed")
    assert visit.errors == []


def test_bulk_requeue_says_why_it_skipped_a_job(visit: Visit) -> None:
    # Given two deleted jobs with the same unique key
    queue, key = unique("keyed"), unique("key")
    ids = []
    for _ in range(2):
        job_id = enqueue(
            visit.live, "HeartbeatJobs.beat", delay_seconds=600, queue=queue, unique_key=key
        )
        with visit.live.admin_api() as api:
            assert api.delete(f"/api/jobs/{job_id}").status_code == 204
        ids.append(job_id)
    visit.sign_in(Scope.ADMIN)

    # When both are requeued
    visit.go(f"/list?queue={queue}")
    visit.page.click('button:has-text("Requeue all matching")')
    visit.page.click('button:has-text("Yes, requeue 2")')

    # Then one is, and the page says why the other is not
    expect(visit.page.get_by_test_id("done-text")).to_contain_text("1 changed, 1 skipped")
    expect(visit.page.get_by_test_id("done-skipped")).to_contain_text("holds its unique key")
    assert sorted(job(visit.live, i)["state"] for i in ids) == ["deleted", "enqueued"]
    assert visit.errors == []


def test_select_all_ticks_every_job_of_the_page(visit: Visit) -> None:
    queue = unique("all")
    for _ in range(2):
        enqueue(visit.live, "HeartbeatJobs.beat", delay_seconds=600, queue=queue)
    visit.sign_in(Scope.WRITE)
    visit.go(f"/list?queue={queue}")

    visit.page.check(".select-all")

    expect(visit.page.locator('input[name="ids"]:checked')).to_have_count(2)


def test_recurring_job_is_triggered_paused_and_resumed(visit: Visit) -> None:
    recurring_id = unique("every-hour")
    with visit.live.admin_api() as api:
        api.put(
            f"/api/recurring/{recurring_id}",
            json={"cron": "0 * * * *", "handler": "HeartbeatJobs.beat"},
        )
    visit.sign_in(Scope.WRITE)
    visit.go("/recurring")
    row = visit.page.locator(f'tr[data-recurring="{recurring_id}"]')
    expect(row).to_contain_text("Every hour")
    expect(row.locator(".fires li")).to_have_count(5)

    row.locator('button:has-text("Pause")').click()
    expect(row.get_by_test_id("paused")).to_be_visible()
    expect(row.locator(".fires li")).to_have_text(["none"])
    row.locator('button:has-text("Resume")').click()
    expect(row.get_by_test_id("paused")).to_have_count(0)
    row.locator('button:has-text("Trigger")').click()

    expect(visit.page).to_have_url(re.compile(rf"{BASE}/job/"))
    expect(visit.page.get_by_test_id("job-state")).to_have_text(
        re.compile("enqueued|processing|succeeded")
    )
    assert visit.errors == []


def test_state_change_and_log_lines_appear_without_reloading(visit: Visit) -> None:
    # Given a job waiting at a gate, and its page open
    gate = unique("gate")
    job_id = enqueue(visit.live, "Probe.wait", gate)
    wait_for_state(visit.live, job_id, "processing")
    visit.sign_in(Scope.WRITE)  # log lines are error details: the write scope by default
    visit.go(f"/job/{job_id}")
    expect(visit.page.get_by_test_id("job-state")).to_have_text("processing")
    visit.page.evaluate("window.sameDocument = true")

    # When the job goes on
    GATES[gate].set()

    # Then its new state and its log lines (markup shown as text) appear within 3 s
    expect(visit.page.get_by_test_id("job-state")).to_have_text("succeeded", timeout=LIVE_WAIT_MS)
    logs = visit.page.get_by_test_id("logs")
    expect(logs).to_contain_text(f"<script>alert('{gate}')</script> passed", timeout=LIVE_WAIT_MS)
    assert visit.page.evaluate("window.sameDocument") is True  # no reload happened
    assert visit.errors == []


@pytest.mark.parametrize(
    ("case", "obstacle", "words"),
    [
        ("scheduled", "scheduled", "It is scheduled for"),
        ("retry", "retry_scheduled", "retry 1 of 2 is due at"),
        ("continuation", "awaiting_parent", "It waits for its parent job"),
        ("no server", "no_server", "which no live server listens to"),
        ("paused recurring", "recurring_paused", "is paused"),
    ],
)
def test_why_a_job_is_not_running(visit: Visit, case: str, obstacle: str, words: str) -> None:
    job_id = _job_for(visit, case)
    visit.sign_in(Scope.READ)

    visit.go(f"/job/{job_id}")

    reason = visit.page.locator(f'[data-testid="explanation"] li[data-obstacle="{obstacle}"]')
    expect(reason).to_contain_text(words)


def _job_for(visit: Visit, case: str) -> str:
    live = visit.live
    if case == "scheduled":
        return enqueue(live, "HeartbeatJobs.beat", delay_seconds=600)
    if case == "retry":
        return _retrying(visit)
    if case == "continuation":
        parent = enqueue(live, "HeartbeatJobs.beat", delay_seconds=600)
        return enqueue(live, "HeartbeatJobs.beat", continue_after=parent)
    if case == "no server":
        return enqueue(live, "HeartbeatJobs.beat", queue=unique("nobody"))
    recurring_id = unique("paused")
    with live.admin_api() as api:
        body = {"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat", "queue": unique("idle")}
        api.put(f"/api/recurring/{recurring_id}", json=body)
        job_id: str = api.post(f"/api/recurring/{recurring_id}/trigger").json()["id"]
        api.post(f"/api/recurring/{recurring_id}/pause")
    return job_id


def _retrying(visit: Visit) -> str:
    """A job of a handler with retries, after its first failed attempt."""
    job_id = enqueue(visit.live, "Probe.retry", "first try fails")
    wait_for_state(visit.live, job_id, "scheduled")
    return job_id


def test_every_slot_busy_says_how_many_jobs_are_ahead(visit: Visit) -> None:
    # Given both worker slots held, then two more jobs waiting
    gates = [unique("busy") for _ in range(2)]
    holders = [enqueue(visit.live, "Probe.wait", gate) for gate in gates]
    for holder in holders:
        wait_for_state(visit.live, holder, "processing")
    waiting = [enqueue(visit.live, "Probe.say", str(i)) for i in range(2)]
    visit.sign_in(Scope.READ)
    try:
        visit.go(f"/job/{waiting[1]}")
        reason = visit.page.locator('li[data-obstacle="workers_busy"]')
        expect(reason).to_contain_text("(2 of 2); 1 job ahead of it")
    finally:
        for gate in gates:
            GATES[gate].set()
    for job_id in waiting:
        wait_for_state(visit.live, job_id, "succeeded")


def test_reader_sees_no_buttons_and_a_forged_post_is_forbidden(visit: Visit) -> None:
    job_id = enqueue(visit.live, "HeartbeatJobs.beat", delay_seconds=600)
    visit.sign_in(Scope.READ)

    for path in ("/list", f"/job/{job_id}", "/recurring"):
        visit.go(path)
        expect(visit.page.locator("main form[method=post] button")).to_have_count(0)
    csrf = visit.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    forged = visit.page.request.post(
        f"{visit.live.url}{BASE}/job/{job_id}/delete", form={"csrf_token": csrf or ""}
    )

    assert forged.status == 403
    assert job(visit.live, job_id)["state"] == "scheduled"


def test_post_without_the_csrf_token_is_forbidden(visit: Visit) -> None:
    job_id = enqueue(visit.live, "HeartbeatJobs.beat", delay_seconds=600)
    visit.sign_in(Scope.ADMIN)

    response = visit.page.request.post(f"{visit.live.url}{BASE}/job/{job_id}/delete", form={})

    assert response.status == 403
    assert job(visit.live, job_id)["state"] == "scheduled"
