"""The global retry default (Hangfire's global `AutomaticRetry`): from the settings, for
handlers registered without a policy; a registration's own policy still wins."""

from __future__ import annotations

import pytest

from application.jobs import OnExhausted, RetryPolicy
from host.container import build_registry
from host.settings import Settings
from infrastructure.jobs.handlers import HandlerRegistry


class Mail:
    def send(self, to: str) -> None: ...

    def send_now(self, to: str) -> None: ...


def test_handlers_without_a_policy_get_the_registry_default() -> None:
    default = RetryPolicy(attempts=3, delays=(5,), on_exhausted=OnExhausted.DELETE)
    registry = HandlerRegistry(default_retry=default)
    own = RetryPolicy(attempts=7)

    registry.register(Mail.send)
    registry.register(Mail.send_now, retry=own)

    assert registry.get("Mail.send").options.retry == default
    assert registry.get("Mail.send_now").options.retry == own


def test_the_default_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_JOBS__RETRY__ATTEMPTS", "4")
    monkeypatch.setenv("APP_JOBS__RETRY__DELAYS", "[30, 60]")
    monkeypatch.setenv("APP_JOBS__RETRY__ON_EXHAUSTED", "delete")

    policy = Settings().jobs.retry.policy()

    assert policy == RetryPolicy(attempts=4, delays=(30, 60), on_exhausted=OnExhausted.DELETE)
    registry = build_registry(Settings())
    registry.register(Mail.send)
    assert registry.get("Mail.send").options.retry == policy
