"""The recurring page is bounded: it lists recurring jobs in pages, by id."""

from __future__ import annotations

import html
import re

from host.dashboard.pages import PAGE_SIZE
from host.settings import Scope
from tests.dashboard.server import BASE, LiveServer

NEXT_PAGE = re.compile(r'<a rel="next" href="([^"]+)"')
ROW = re.compile(r'<tr data-recurring="([^"]+)"')


def test_the_recurring_page_comes_in_pages(live: LiveServer) -> None:
    ids = [f"zzzz-paging-{n:03}" for n in range(PAGE_SIZE + 5)]  # sorted after the others
    with live.admin_api() as api:
        for recurring_id in ids:
            body = {"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat"}
            assert api.put(f"/api/recurring/{recurring_id}", json=body).status_code == 200
    reader, _ = live.signed_in(Scope.READ)
    try:
        pages = [reader.get(f"{BASE}/recurring").text]
        while found := NEXT_PAGE.search(pages[-1]):
            pages.append(reader.get(html.unescape(found.group(1))).text)
    finally:
        with live.admin_api() as api:
            for recurring_id in ids:
                api.delete(f"/api/recurring/{recurring_id}")

    shown = [ROW.findall(page) for page in pages]
    assert len(pages) >= 2 and all(len(rows) == PAGE_SIZE for rows in shown[:-1])
    assert set(ids) <= {recurring_id for rows in shown for recurring_id in rows}
