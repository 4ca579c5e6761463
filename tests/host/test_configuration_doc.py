"""docs/configuration.md against the `Settings` class: every setting listed with its real
default, no variable that does not exist, and the generated tables current."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from host.settings import Settings
from host.settings_doc import BEGIN, END, SettingDoc, nested_models, render, sections
from infrastructure.jobs.dramatiq import backend as dramatiq_backend

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(APP_[A-Z0-9_]+)` \| (.+?) \| (.+?) \| (.*) \|$", re.MULTILINE)
MENTION = re.compile(r"\bAPP_[A-Z0-9_]*[A-Z0-9]")

SETTINGS = [setting for section in sections() for setting in section.settings]
ADAPTER_OPTIONS = {f"APP_JOBS__OPTIONS__{name}" for name in dramatiq_backend.OPTIONS}


@pytest.fixture(autouse=True)
def no_app_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.upper().startswith("APP_")]:
        monkeypatch.delenv(name)


def documented() -> dict[str, tuple[str, str]]:
    """The page's table rows: variable -> (type, default)."""
    return {env: (kind, default) for env, kind, default, _ in ROW.findall(PAGE.read_text())}


def test_every_setting_is_walked_through_the_nested_models() -> None:
    names = {setting.env for setting in SETTINGS}

    assert {"APP_ENVIRONMENT", "APP_DB__URL", "APP_JOBS__CONCURRENCY"} <= names
    assert {"APP_AUTH__API_KEYS", "APP_METRICS__PUBLIC", "APP_TRACING__EXPORTER"} <= names
    assert len(names) == len(SETTINGS)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.env)
def test_every_setting_is_on_the_page_with_its_default(setting: SettingDoc) -> None:
    rows = documented()

    assert setting.env in rows, f"{setting.env} is missing from {PAGE.name}"
    assert rows[setting.env][1] == setting.default


def test_the_documented_defaults_are_the_real_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()

    # Given every documented default as an environment variable
    for env, (_, default) in documented().items():
        if default != "unset":
            monkeypatch.setenv(env, "" if default == "empty" else default.strip("`"))

    # Then the settings are those of an empty environment
    assert Settings() == defaults


@pytest.mark.parametrize("page", [PAGE, ROOT / "README.md"], ids=lambda page: page.name)
def test_the_page_names_no_variable_that_does_not_exist(page: Path) -> None:
    known = {setting.env for setting in SETTINGS} | set(nested_models()) | ADAPTER_OPTIONS

    unknown = set(MENTION.findall(page.read_text())) - known

    assert not unknown, f"{page.name} names variables Settings does not have: {sorted(unknown)}"


def test_the_generated_tables_are_current() -> None:
    page = PAGE.read_text()
    generated = page.partition(BEGIN)[2].partition(END)[0].strip()

    assert generated == render().strip(), (
        "regenerate: .venv/bin/python -m host.settings_doc --write docs/configuration.md"
    )
