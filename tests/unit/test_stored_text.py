"""Handler text as it is stored and logged: credentials redacted, NUL and lone surrogates
escaped."""

from __future__ import annotations

import re

import pytest

from infrastructure.jobs.engine.stored_text import (
    MAX_STORED_CHARS,
    redacted,
    shortened,
    storable,
    stored_text,
)


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


@pytest.mark.parametrize("length", [MAX_STORED_CHARS + 1, MAX_STORED_CHARS + 50, 10**6])
def test_long_text_keeps_its_start_and_end_and_says_how_much_was_cut(length: int) -> None:
    text = "s" + "x" * (length - 2) + "e"

    short = shortened(text)

    assert len(short) == MAX_STORED_CHARS
    assert short.startswith("sxx") and short.endswith("xxe")
    marker = re.search(r"\n\[\.\.\. (\d+) characters cut \.\.\.\]\n", short)
    assert marker is not None
    assert len(short) - len(marker[0]) + int(marker[1]) == length


def test_text_within_the_limit_is_kept_whole() -> None:
    text = "y" * MAX_STORED_CHARS
    assert shortened(text) == text
