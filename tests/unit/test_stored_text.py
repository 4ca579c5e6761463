"""Handler text as it is stored and logged: credentials redacted, NUL and lone surrogates
escaped."""

from __future__ import annotations

import pytest

from infrastructure.jobs.engine.stored_text import redacted, storable, stored_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db/jobs", "postgresql://app:***@db/jobs"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("url=mysql+pyodbc://u:p%40ss@h/d?x=1", "url=mysql+pyodbc://u:***@h/d?x=1"),
        ("redis://:token@cache:6379/0", "redis://:***@cache:6379/0"),
        ("DSN=jobs;UID=app;PWD=hunter2;", "DSN=jobs;UID=app;PWD=***;"),
        ("password='hunter 2' next", "password='***' next"),
        ('{"api_key": "abc"}', '{"api_key": "***"}'),
        ("https://example.org/path?q=1", "https://example.org/path?q=1"),
        ("user@example.org wrote: a:b", "user@example.org wrote: a:b"),
    ],
)
def test_credentials_are_redacted(text: str, expected: str) -> None:
    assert redacted(text) == expected


def test_nul_and_lone_surrogates_are_escaped_and_other_text_kept() -> None:
    assert storable("a\x00b\udc80c\ud83d é 😀") == "a\\x00b\\udc80c\\ud83d é 😀"
    assert storable("plain") == "plain"


def test_stored_text_redacts_before_escaping() -> None:
    assert stored_text("\x00postgresql://a:b@h") == "\\x00postgresql://a:***@h"
