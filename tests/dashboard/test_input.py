"""Hostile input never makes the dashboard fail (no 5xx): NUL characters, encoded lone
surrogates and invalid UTF-8, huge values, in every query parameter, path and form field;
and job arguments and log lines are escaped wherever they are shown."""

from __future__ import annotations

import re

import pytest

from host.settings import Scope
from tests.dashboard.conftest import enqueue, unique, wait_for_state
from tests.dashboard.server import BASE, LiveServer

HOSTILE = ["%00", "a%00b", "%ED%A0%80", "%C0%80", "%FF%FE", "x" * 6000, "%3Cscript%3E", "-1"]
"""Raw, already percent-encoded: NUL, a lone surrogate (CESU), an overlong NUL, bytes that
are no UTF-8, a huge value, markup, a negative number."""
QUERY_FIELDS = [
    "state", "queue", "handler", "text", "created_from", "created_to", "recurring_id",
    "sort", "cursor",
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_query_parameters_never_fail(live: LiveServer, value: str) -> None:
    client, _ = live.signed_in(Scope.ADMIN)
    urls = [f"{BASE}/list?{field}={value}" for field in QUERY_FIELDS]
    urls += [f"{BASE}?range={value}", f"{BASE}/retries?cursor={value}"]
    urls += [f"{BASE}/recurring?after={value}"]
    urls += [f"{BASE}/job/{value}", f"{BASE}/events?job={value}", f"{BASE}/login?next={value}"]

    statuses = {url: client.get(url).status_code for url in urls}

    assert {url: s for url, s in statuses.items() if s >= 500} == {}


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_form_fields_and_paths_never_fail(live: LiveServer, value: str) -> None:
    client, csrf = live.signed_in(Scope.ADMIN)
    forms = {
        f"{BASE}/bulk": f"csrf_token={csrf}&action=requeue&ids={value}",
        f"{BASE}/bulk?queue={value}": f"csrf_token={csrf}&action=delete&everything=true",
        f"{BASE}/bulk?text=x": f"csrf_token={csrf}&action={value}&everything=true",
        f"{BASE}/job/{value}/requeue": f"csrf_token={csrf}",
        f"{BASE}/recurring/{value}/trigger": f"csrf_token={csrf}",
        f"{BASE}/recurring/{value}/remove": f"csrf_token={csrf}",
        f"{BASE}/login": f"api_key={value}&next={value}",
        f"{BASE}/logout": f"csrf_token={value}",
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    statuses = {
        url: client.post(url, content=body.encode(), headers=headers).status_code
        for url, body in forms.items()
    }

    assert {url: s for url, s in statuses.items() if s >= 500} == {}


def test_a_huge_form_is_refused_without_failing(live: LiveServer) -> None:
    client, csrf = live.signed_in(Scope.ADMIN)

    response = client.post(f"{BASE}/bulk", data={"csrf_token": csrf, "ids": "x" * 200_000})

    assert response.status_code == 413


def test_arguments_and_log_lines_are_escaped(live: LiveServer) -> None:
    # Given a job whose argument, and so its log line and result, is markup
    marker = unique("xss")
    markup = f"<script>alert('{marker}')</script><img src=x onerror=alert(1)>"
    job_id = enqueue(live, "Probe.say", markup)
    wait_for_state(live, job_id, "succeeded")
    client, _ = live.signed_in(Scope.READ)

    # When its page and the list filtered by it are shown
    pages = [
        client.get(f"{BASE}/job/{job_id}").text,
        client.get(f"{BASE}/list", params={"text": marker}).text,
    ]

    # Then the markup is text on every page, never an element
    assert "&lt;script&gt;alert(" in pages[0] and "&lt;img src=x" in pages[0]
    for page in pages:
        assert not re.search(r"<script>alert|<img src=x", page)
