"""A job's details (tracebacks, log lines, result) need `APP_AUTH__DETAILS_SCOPE`, write by
default: read-scope callers of the API and viewers of the dashboard see the job without them."""

from __future__ import annotations

from typing import Any

from host.settings import Scope
from tests.api.conftest import KEYS
from tests.dashboard.conftest import enqueue, unique, wait_for_state
from tests.dashboard.server import BASE, LiveServer


def api_view(live: LiveServer, scope: Scope, job_id: str) -> dict[str, Any]:
    with live.client(headers={"X-API-Key": KEYS[scope]}) as api:
        response = api.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_read_scope_gets_a_failed_job_without_traceback_or_log_lines(live: LiveServer) -> None:
    job_id = enqueue(live, "Probe.fail", unique("details"))
    wait_for_state(live, job_id, "failed")

    reader, writer = api_view(live, Scope.READ, job_id), api_view(live, Scope.WRITE, job_id)

    assert reader["details_hidden"] is True and writer["details_hidden"] is False
    assert reader["error"]["type"].endswith("ValueError") and reader["error"]["traceback"] == ""
    assert reader["logs"] == []
    assert all("traceback" not in step["data"] for step in reader["history"])
    assert "Traceback" in writer["error"]["traceback"] and writer["logs"]
    assert any("traceback" in step["data"] for step in writer["history"])


def test_read_scope_gets_a_succeeded_job_without_its_result(live: LiveServer) -> None:
    text = unique("result")
    job_id = enqueue(live, "Probe.say", text)
    wait_for_state(live, job_id, "succeeded")

    assert api_view(live, Scope.READ, job_id)["result"] is None
    assert api_view(live, Scope.WRITE, job_id)["result"] == text


def test_the_dashboard_shows_details_only_to_the_details_scope(live: LiveServer) -> None:
    job_id = enqueue(live, "Probe.fail", unique("page"))
    wait_for_state(live, job_id, "failed")
    reader, _ = live.signed_in(Scope.READ)
    writer, _ = live.signed_in(Scope.WRITE)

    read_page = reader.get(f"{BASE}/job/{job_id}").text
    write_page = writer.get(f"{BASE}/job/{job_id}").text

    assert 'data-testid="traceback"' not in read_page and "about to fail" not in read_page
    assert 'data-testid="details-hidden"' in read_page
    assert 'data-testid="traceback"' in write_page and "about to fail" in write_page
