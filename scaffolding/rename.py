"""The post-generation step of `new-service` (copier runs it in the new service's folder, on
`copier copy` and again on every `copier update`): gives the service its own names and puts
the small example in place of the sample business.

Standard library only: it runs with copier's Python, before the service has a virtualenv.
It works on names (strings), not on the template's layout, and is deterministic and
idempotent: run twice, it changes nothing the second time, so an update shows no spurious
differences. Usage: python scaffolding/rename.py ANSWERS_JSON (run from the service's root).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_NAME = "jobs-service"
TEMPLATE_DESCRIPTION = (
    "A clean-architecture Python microservice template built around a job port "
    "(Hangfire-style jobs for Python)."
)
TEMPLATE_DATABASE_URL = "sqlite:///./data/jobs.db"
TEMPLATE_IMAGE_DATABASE_URL = "sqlite:////data/jobs.db"
# Defaults as the settings and the generated settings doc write them (tests keep both equal).
DEFAULT_CHANGES = {
    "dramatiq": (
        (
            '        "sql",\n        description="Job adapter:',
            '        "dramatiq",\n        description="Job adapter:',
        ),
        (
            "| `APP_JOBS__BACKEND` | string | `sql` |",
            "| `APP_JOBS__BACKEND` | string | `dramatiq` |",
        ),
    ),
    "no-dashboard": (
        (
            'enabled: bool = Field(True, description="Serve the dashboard',
            'enabled: bool = Field(False, description="Serve the dashboard',
        ),
        (
            "| `APP_DASHBOARD__ENABLED` | boolean | `true` |",
            "| `APP_DASHBOARD__ENABLED` | boolean | `false` |",
        ),
    ),
}

EXAMPLE_TREE = Path(__file__).parent / "example"
"""Files of the small example, at the path they take in the service (see copier.yml)."""
SAMPLE_TO_EXAMPLE = (
    ("EmailJobs.send_welcome", "GreetingJobs.send"),
    ("ReportJobs.generate_daily", "GreetingJobs.count_daily"),
)
"""The sample handlers the engine's docstrings and OpenAPI examples name, by the example's."""

SKIPPED_FOLDERS = frozenset({".git", ".venv", ".venv-tools", "node_modules", "__pycache__"})
ANSWERS_FILE = ".copier-answers.yml"
"""Copier's record of the template's path and commit: never renamed."""
SERVICE_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class Answers:
    service: str
    project: str
    description: str
    backend: str
    include_dashboard: bool
    include_sample: bool

    @classmethod
    def parse(cls, raw: dict[str, object]) -> Answers:
        answers = cls(
            service=str(raw["service_name"]),
            project=str(raw.get("project_name") or raw["service_name"]),
            description=str(raw.get("description") or ""),
            backend=str(raw.get("backend") or "sqlite"),
            include_dashboard=bool(raw.get("include_dashboard", True)),
            include_sample=bool(raw.get("include_sample", False)),
        )
        for name in (answers.service, answers.project):
            check_name(name)
        return answers


def check_name(name: str) -> None:
    """A name that contained the template's own would be renamed again by the next update."""
    if not SERVICE_NAME.fullmatch(name):
        raise SystemExit(f"{name!r}: use lower-case letters, digits and single hyphens")
    if TEMPLATE_NAME in name or "jobs_service" in name.replace("-", "_"):
        raise SystemExit(f"{name!r}: must not contain the template's name {TEMPLATE_NAME!r}")


def database_url(answers: Answers) -> str:
    database = answers.service.replace("-", "_")
    if answers.backend == "postgresql":
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    return f"sqlite:///./data/{database}.db"


def replacements(answers: Answers) -> list[tuple[str, str]]:
    """Ordered (old, new) pairs: the specific ones first, `jobs-service` last."""
    project_module = answers.project.replace("-", "_")
    pairs = [
        (f'name = "{TEMPLATE_NAME}"', f'name = "{answers.project}"'),
        (f"{TEMPLATE_NAME}[", f"{answers.project}["),
        ("jobs_service-", f"{project_module}-"),
        (TEMPLATE_DATABASE_URL, database_url(answers)),
        (
            TEMPLATE_IMAGE_DATABASE_URL,
            f"sqlite:////data/{answers.service.replace('-', '_')}.db",
        ),
        (TEMPLATE_NAME, answers.service),
        ("jobs_service", answers.service.replace("-", "_")),
    ]
    if answers.description:
        pairs.insert(0, (TEMPLATE_DESCRIPTION, answers.description))
    if answers.backend == "dramatiq":
        pairs[:0] = DEFAULT_CHANGES["dramatiq"]
    if not answers.include_dashboard:
        pairs[:0] = DEFAULT_CHANGES["no-dashboard"]
    if not answers.include_sample:
        pairs[:0] = SAMPLE_TO_EXAMPLE
    return pairs


def text_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not SKIPPED_FOLDERS.intersection(parts) and path.name != ANSWERS_FILE:
            yield path


def rename_text(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def rename_tree(root: Path, answers: Answers) -> list[Path]:
    """Rewrites every text file under `root`; returns the files it changed."""
    pairs = replacements(answers)
    changed = []
    for path in text_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and other binary files carry no names
        renamed = rename_text(text, pairs)
        if renamed != text:
            path.write_text(renamed, encoding="utf-8")
            changed.append(path)
    return changed


def put_example(root: Path, example: Path = EXAMPLE_TREE) -> None:
    """Copies the example's files over the service's, at the same relative paths."""
    for source in text_files(example):
        target = root / source.relative_to(example)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def main(argv: list[str]) -> None:
    answers = Answers.parse(json.loads(argv[1]))
    root = Path.cwd()
    if not answers.include_sample:
        put_example(root)
    rename_tree(root, answers)


if __name__ == "__main__":
    main(sys.argv)
