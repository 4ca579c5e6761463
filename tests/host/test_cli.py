"""The console script against a migrated SQLite file: every command, its help, and how it
reports bad input (one line, an exit code, no traceback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from application.jobs import Cron, JobId
from host.cli import cli
from host.container import Container, create_container
from host.settings import ApiKey, Settings
from tests.engine_loop import engine_of

T = TypeVar("T")

USER_ID = "6c1c3a0e-7a51-4c1b-9d9c-2d1c8a3f0b11"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each command configures logging onto the runner's stderr, which closes after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings for a SQLite file in a fresh folder, not migrated yet."""
    for name in [name for name in os.environ if name.startswith("APP_")]:
        monkeypatch.delenv(name)
    database = tmp_path / "jobs.db"
    monkeypatch.setenv("APP_DB__URL", f"sqlite:///{database}")
    monkeypatch.setenv("APP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "200")  # tables as wide as their rows
    return database


@pytest.fixture
def database(environment: Path) -> Path:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    return environment


def run(*args: str, input: str | None = None) -> Result:
    return runner.invoke(cli, list(args), input=input)


def plain(text: str) -> str:
    """Help as a reader sees it: without colours, one space between words."""
    return " ".join(ANSI.sub("", text).split())


def in_store(body: Callable[[Container], Awaitable[T]]) -> T:
    """Run `body` against the job store of the environment's settings."""

    async def main() -> T:
        container = create_container(Settings())
        try:
            return await body(container)
        finally:
            await engine_of(container).close()

    return asyncio.run(main())


def enqueue(*args: str) -> str:
    result = run("jobs", "enqueue", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.split()[0]


def shown(job_id: str) -> dict[str, Any]:
    result = run("jobs", "show", job_id, "--json")
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


def listed(*args: str) -> list[dict[str, Any]]:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_error(result: Result, code: int, *fragments: str) -> None:
    """The command failed with `code` and a message, not a traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    message = plain(result.stderr)
    for fragment in fragments:
        assert fragment in message


# --- help ----------------------------------------------------------------------------------

COMMAND_OPTIONS = {
    ("serve",): ["--host", "--port", "--migrate"],
    ("worker",): [],
    ("scheduler",): [],
    ("migrate",): [],
    ("new-service",): ["--dest", "--package", "--description", "--backend", "--no-dashboard"],
    ("jobs", "enqueue"): [
        "--args",
        "--kwargs",
        "--queue",
        "--delay",
        "--at",
        "--unique-key",
        "--after",
    ],
    ("jobs", "list"): [
        "--state",
        "--queue",
        "--handler",
        "--text",
        "--since",
        "--until",
        "--sort",
        "--limit",
        "--cursor",
        "--json",
    ],
    ("jobs", "show"): ["--json"],
    ("jobs", "delete"): ["--state", "--queue", "--handler", "--text", "--yes"],
    ("jobs", "requeue"): ["--state", "--queue", "--handler", "--text", "--yes"],
    ("recurring", "list"): ["--json", "--upcoming"],
    ("recurring", "trigger"): [],
    ("recurring", "pause"): [],
    ("recurring", "resume"): [],
    ("recurring", "remove"): [],
    ("api-key", "create"): ["--name", "--scope"],
}


def test_top_level_help_lists_every_command() -> None:
    result = run("--help")

    assert result.exit_code == 0
    commands = ("serve", "worker", "scheduler", "migrate", "jobs", "recurring", "api-key")
    for group in (*commands, "new-service"):
        assert group in result.stdout
    for group in ("jobs", "recurring", "api-key"):
        names = {path[1] for path in COMMAND_OPTIONS if path[0] == group}
        group_help = run(group, "--help").stdout
        assert all(name in group_help for name in names), group_help


@pytest.mark.parametrize("path", sorted(COMMAND_OPTIONS), ids=" ".join)
def test_each_command_help_explains_its_options(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")

    assert result.exit_code == 0, result.output
    for option in COMMAND_OPTIONS[path]:
        assert option in plain(result.stdout)


def test_every_command_and_parameter_has_help_text() -> None:
    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, command
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    root = typer.main.get_command(cli)
    for path, command in walk(root, "jobs-service"):
        assert command.help, path
        for param in command.params:
            assert getattr(param, "help", None), f"{path} {param.name}"
    listed_paths = {path for path, _ in walk(root, "") if path.count(" ") == 2}
    assert listed_paths == {" " + " ".join(path) for path in COMMAND_OPTIONS if len(path) == 2}


# --- jobs ----------------------------------------------------------------------------------


def test_enqueue_prints_the_id_and_state(database: Path) -> None:
    result = run("jobs", "enqueue", "HeartbeatJobs.beat")

    assert result.exit_code == 0, result.output
    job_id, state = result.stdout.split()
    assert shown(job_id)["handler"] == "HeartbeatJobs.beat"
    assert state == "enqueued"


def test_enqueue_takes_json_arguments_queue_and_unique_key(database: Path) -> None:
    arguments = ("--kwargs", json.dumps({"user_id": USER_ID}), "--queue", "default")
    first = enqueue("EmailJobs.send_welcome", *arguments, "--unique-key", "welcome-1")
    again = enqueue("EmailJobs.send_welcome", *arguments, "--unique-key", "welcome-1")
    positional = enqueue("EmailJobs.send_welcome", "--args", json.dumps([USER_ID]))

    job = shown(first)
    assert (job["args"], job["queue"], job["unique_key"]) == ([USER_ID], "default", "welcome-1")
    assert again == first
    assert shown(positional)["args"] == [USER_ID]


def test_enqueue_schedules_with_delay_or_at_and_chains_with_after(database: Path) -> None:
    delayed = run("jobs", "enqueue", "HeartbeatJobs.beat", "--delay", "60")
    at = run("jobs", "enqueue", "HeartbeatJobs.beat", "--at", "2030-01-01T09:00:00+02:00")
    parent = delayed.stdout.split()[0]
    after = run("jobs", "enqueue", "HeartbeatJobs.beat", "--after", parent)

    assert delayed.stdout.split()[1] == "scheduled"
    assert at.stdout.split()[1] == "scheduled"
    assert shown(at.stdout.split()[0])["run_at"] == "2030-01-01T07:00:00+00:00"
    assert after.stdout.split()[1] == "awaiting"
    assert shown(after.stdout.split()[0])["parent_id"] == parent


def test_list_shows_a_table_and_filters(database: Path) -> None:
    beat = enqueue("HeartbeatJobs.beat")
    later = enqueue("HeartbeatJobs.beat", "--delay", "600")
    welcome = enqueue("EmailJobs.send_welcome", "--args", json.dumps([USER_ID]))

    table = run("jobs", "list")
    scheduled = listed("jobs", "list", "--state", "scheduled")
    by_handler = listed("jobs", "list", "--handler", "EmailJobs.send_welcome")
    by_text = listed("jobs", "list", "--text", USER_ID[:8], "--queue", "critical")
    oldest = listed("jobs", "list", "--sort", "created_at")
    since = listed(
        "jobs", "list", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00Z"
    )

    assert table.exit_code == 0, table.output
    assert all(job_id in table.stdout for job_id in (beat, later, welcome))
    assert {"id", "handler", "queue", "state", "created", "attempt"} <= set(table.stdout.split())
    assert [job["id"] for job in scheduled] == [later]
    assert [job["id"] for job in by_handler] == [welcome] == [job["id"] for job in by_text]
    assert [job["id"] for job in oldest] == [beat, later, welcome]
    assert since == []


def test_list_pages_with_the_printed_cursor(database: Path) -> None:
    ids = [enqueue("HeartbeatJobs.beat") for _ in range(3)]

    first = run("jobs", "list", "--limit", "2", "--json")
    cursor = first.stderr.split("--cursor ")[1].strip()
    second = listed("jobs", "list", "--limit", "2", "--cursor", cursor)
    table = run("jobs", "list", "--limit", "2")

    page = [json.loads(line)["id"] for line in first.stdout.splitlines()]
    assert page + [job["id"] for job in second] == ids[::-1]
    assert f"--cursor {cursor}" in table.stdout


def test_show_prints_history_error_traceback_progress_and_logs(database: Path) -> None:
    beat = enqueue("HeartbeatJobs.beat")
    failing = enqueue("TempFileJobs.cleanup", "--kwargs", '{"older_than_hours": -1}')
    in_store(lambda container: engine_of(container).worker().run_once())

    beat_shown = run("jobs", "show", beat)
    failing_shown = run("jobs", "show", failing)
    as_json = shown(failing)

    assert beat_shown.exit_code == 0, beat_shown.output
    for fragment in ("HeartbeatJobs.beat", "history", "succeeded", "progress", "logs"):
        assert fragment in beat_shown.stdout
    assert "heartbeat at" in beat_shown.stdout
    assert "ValueError: older_than_hours must not be negative" in failing_shown.stdout
    assert "Traceback (most recent call last)" in failing_shown.stdout
    assert as_json["state"] == "failed"
    assert as_json["error"]["type"].endswith("ValueError")
    assert [step["state"] for step in as_json["history"]] == ["enqueued", "processing", "failed"]


def test_delete_and_requeue_by_id(database: Path) -> None:
    first, second = enqueue("HeartbeatJobs.beat"), enqueue("HeartbeatJobs.beat")

    deleted = run("jobs", "delete", first, second)
    requeued = run("jobs", "requeue", first)

    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.splitlines() == [f"deleted {first}", f"deleted {second}"]
    assert requeued.stdout.strip() == f"requeued {first}"
    assert (shown(first)["state"], shown(second)["state"]) == ("enqueued", "deleted")


def test_bulk_delete_and_requeue_by_filter_print_counts(database: Path) -> None:
    ids = [enqueue("HeartbeatJobs.beat") for _ in range(3)]
    other = enqueue("EmailJobs.send_welcome", "--args", json.dumps([USER_ID]))

    deleted = run("jobs", "delete", "--state", "enqueued", "--handler", "HeartbeatJobs.beat", "-y")
    requeued = run("jobs", "requeue", "--state", "deleted", "--yes")

    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "matched 3, changed 3, skipped 0"
    assert requeued.stdout.strip() == "matched 3, changed 3, skipped 0"
    assert {shown(job_id)["state"] for job_id in [*ids, other]} == {"enqueued"}
    assert [step["state"] for step in shown(ids[0])["history"]][-2:] == ["deleted", "enqueued"]


def test_bulk_action_asks_for_confirmation(database: Path) -> None:
    job_id = enqueue("HeartbeatJobs.beat")

    declined = run("jobs", "delete", "--queue", "low", input="n\n")
    after_declining = shown(job_id)["state"]
    confirmed = run("jobs", "delete", "--queue", "low", input="y\n")

    assert declined.exit_code == 1
    assert "Delete 1 matching job(s)?" in declined.stderr
    assert after_declining == "enqueued"
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.splitlines()[-1] == "matched 1, changed 1, skipped 0"
    assert shown(job_id)["state"] == "deleted"


def test_bulk_action_without_a_filter_is_refused(database: Path) -> None:
    job_id = enqueue("HeartbeatJobs.beat")

    for action in ("delete", "requeue"):
        assert_error(run("jobs", action, "--yes"), 1, f"refusing to {action} every job")
    assert_error(run("jobs", "delete", job_id, "--state", "failed"), 2, "not both")
    assert shown(job_id)["state"] == "enqueued"


# --- recurring jobs ------------------------------------------------------------------------


@pytest.fixture
def nightly(database: Path) -> str:
    cron = Cron("0 2 * * *", "Europe/Paris")
    in_store(
        lambda container: container.admin().add_or_update_recurring(
            "nightly", cron, "TempFileJobs.cleanup", [], {"older_than_hours": 12}
        )
    )
    return "nightly"


def test_recurring_list_shows_schedules_and_upcoming_fire_times(nightly: str) -> None:
    table = run("recurring", "list")
    upcoming = run("recurring", "list", "--upcoming")
    [record] = listed("recurring", "list")

    assert table.exit_code == 0, table.output
    for fragment in ("nightly", "0 2 * * *", "Europe/Paris", "TempFileJobs.cleanup", "low"):
        assert fragment in table.stdout
    assert "upcoming" not in table.stdout
    assert upcoming.stdout.count(" 01:00:00Z") + upcoming.stdout.count(" 00:00:00Z") == 6
    assert (record["id"], record["cron"]["expression"], record["paused"]) == (
        "nightly",
        "0 2 * * *",
        False,
    )
    assert len(record["upcoming"]) == 5
    assert record["upcoming"][0] == record["next_run_at"]


def test_recurring_trigger_pause_resume_remove(nightly: str) -> None:
    triggered = run("recurring", "trigger", nightly)
    paused = run("recurring", "pause", nightly)
    [while_paused] = listed("recurring", "list")
    resumed = run("recurring", "resume", nightly)
    [after_resuming] = listed("recurring", "list")
    removed = run("recurring", "remove", nightly)

    assert triggered.exit_code == 0, triggered.output
    job = shown(triggered.stdout.strip())
    assert (job["recurring_id"], job["state"]) == ("nightly", "enqueued")
    assert paused.stdout.strip() == "paused nightly"
    assert (while_paused["paused"], while_paused["upcoming"]) == (True, [])
    assert resumed.stdout.strip() == "resumed nightly"
    assert after_resuming["paused"] is False
    assert removed.stdout.strip() == "removed nightly"
    assert listed("recurring", "list") == []
    assert run("recurring", "list").stdout.strip() == "no recurring jobs"


@pytest.mark.parametrize("command", ["trigger", "pause", "resume", "remove"])
def test_unknown_recurring_job_is_an_error(database: Path, command: str) -> None:
    assert_error(run("recurring", command, "missing"), 1, "error: no recurring job 'missing'")


# --- API keys ------------------------------------------------------------------------------


def test_api_key_create_prints_the_key_once_and_its_settings_entry() -> None:
    result = run("api-key", "create", "--name", "ci", "--scope", "write")

    assert result.exit_code == 0, result.output
    key_line, entry_line = result.stdout.splitlines()
    key = key_line.rsplit(" ", 1)[1]
    entry = ApiKey.model_validate_json(entry_line.split(": ", 1)[1])
    assert len(key) >= 43
    assert (entry.name, entry.scope) == ("ci", "write")
    assert entry.sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert key not in entry_line


def test_api_key_create_refuses_an_unknown_scope() -> None:
    assert_error(run("api-key", "create", "--name", "ci", "--scope", "root"), 2, "--scope")


# --- bad input and refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["enqueue", "Nope.run"], 1, ["error: no handler is registered as 'Nope.run'"]),
        (["enqueue", "HeartbeatJobs.beat", "--args", "[1"], 2, ["'--args'", "not valid JSON"]),
        (["enqueue", "HeartbeatJobs.beat", "--args", "{}"], 2, ["must be a JSON array"]),
        (["enqueue", "HeartbeatJobs.beat", "--kwargs", "[]"], 2, ["must be a JSON object"]),
        (["enqueue", "EmailJobs.send_welcome", "--args", "[42]"], 2, ["error:", "'user_id'"]),
        (
            [
                "enqueue",
                "EmailJobs.send_welcome",
                "--kwargs",
                json.dumps({"user_id": USER_ID, "x": 1}),
            ],
            2,
            ["error:", "'x'"],
        ),
        (["enqueue", "HeartbeatJobs.beat", "--at", "2030-01-01T09:00"], 2, ["no time zone"]),
        (["enqueue", "HeartbeatJobs.beat", "--at", "tomorrow"], 2, ["not an ISO 8601"]),
        (["enqueue", "HeartbeatJobs.beat", "--delay", "-1"], 2, ["'--delay'"]),
        (
            ["enqueue", "HeartbeatJobs.beat", "--delay", "5", "--at", "2030-01-01T09:00Z"],
            2,
            ["not both"],
        ),
        (
            ["enqueue", "HeartbeatJobs.beat", "--after", UNKNOWN_ID],
            1,
            [f"error: no parent job {UNKNOWN_ID}"],
        ),
        (["show", UNKNOWN_ID], 1, [f"error: no job {UNKNOWN_ID}"]),
        (["show", "not-a-uuid"], 2, ["'ID'", "valid UUID"]),
        (["delete", UNKNOWN_ID], 1, [f"error: no job {UNKNOWN_ID}"]),
        (["requeue", UNKNOWN_ID], 1, [f"error: no job {UNKNOWN_ID}"]),
        (["list", "--cursor", "garbage"], 2, ["error:", "cursor"]),
        (["list", "--sort", "handler"], 2, ["'--sort'"]),
        (["list", "--state", "lost"], 2, ["'--state'"]),
        (["list", "--since", "2030-01-01"], 2, ["no time zone"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_input_is_one_message_and_an_exit_code(
    database: Path, args: list[str], code: int, fragments: list[str]
) -> None:
    assert_error(run("jobs", *args), code, *fragments)


def test_requeue_of_a_processing_job_is_refused_and_the_others_done(database: Path) -> None:
    running, waiting = enqueue("HeartbeatJobs.beat"), enqueue("HeartbeatJobs.beat")

    async def claim(container: Container) -> None:
        await container.jobs().delete(JobId(uuid.UUID(waiting)))
        # Claimed by a worker that never finishes it: processing.
        claims = await engine_of(container).store.acquire(
            ["low"],
            now=container.clock().now(),
            lease=dt.timedelta(minutes=5),
            limit=5,
            server_id="test",
        )
        assert [str(claim.job.id) for claim in claims] == [running]

    in_store(claim)
    result = run("jobs", "requeue", running, waiting)

    assert_error(result, 1, f"job {running}")
    assert result.stdout.strip() == f"requeued {waiting}"


@pytest.mark.parametrize(
    "args", [["jobs", "list"], ["recurring", "list"], ["worker"], ["scheduler"]]
)
def test_the_memory_backend_is_refused(
    environment: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("APP_JOBS__BACKEND", "memory")

    assert_error(run(*args), 2, "error: the memory backend", "APP_JOBS__BACKEND=sql")


def test_an_unknown_backend_is_refused_by_the_settings(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_JOBS__BACKEND", "rabbit-hole")

    assert_error(run("jobs", "list"), 2, "APP_JOBS__BACKEND", "memory, sql")


@pytest.mark.parametrize(
    "args", [["jobs", "list"], ["jobs", "enqueue", "HeartbeatJobs.beat"], ["recurring", "list"]]
)
def test_an_unmigrated_database_is_refused(environment: Path, args: list[str]) -> None:
    assert_error(run(*args), 1, "not at the latest revision", "run `jobs-service migrate`")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("APP_JOBS__CONCURRENCY", "0", "APP_JOBS__CONCURRENCY: Input should be greater"),
        ("APP_JOBS__QUEUES", "critical,low", 'error parsing value for field "jobs"'),
    ],
)
def test_invalid_settings_are_one_message(
    environment: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert_error(run("jobs", "list"), 2, "error: invalid settings:", fragment)


def test_an_unusable_database_is_one_message(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DB__URL", "sqlite:////proc/no-such-folder/jobs.db")

    assert_error(run("jobs", "list"), 1, "error: cannot use the database of APP_DB__URL")


# --- the installed console script ----------------------------------------------------------


def test_the_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("jobs-service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env |= {"APP_DB__URL": f"sqlite:///{tmp_path / 'jobs.db'}", "APP_LOG_LEVEL": "WARNING"}

    def console(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=30
        )

    help_text = console("--help")
    migrated = console("migrate")
    enqueued = console("jobs", "enqueue", "HeartbeatJobs.beat")

    assert help_text.returncode == 0, help_text.stderr
    assert all(name in help_text.stdout for name in ("jobs", "recurring", "api-key", "migrate"))
    assert migrated.returncode == 0, migrated.stderr
    assert enqueued.returncode == 0, enqueued.stderr
    job_id, state = enqueued.stdout.split()
    assert (str(uuid.UUID(job_id)), state) == (job_id, "enqueued")
