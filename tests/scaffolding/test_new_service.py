"""`new-service`: the generated service carries its own names, the example instead of the
sample business, passes its own fast tests and serves; a template change comes in with
`copier update`, keeping the service's edits."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scaffolding.rename import Answers, rename_text, rename_tree, replacements
from typer.testing import CliRunner

from host.cli import cli
from host.cli.scaffold import TEMPLATE_ROOT
from tests.scaffolding.conftest import ANSWERS, SERVICE, generate, git

TEMPLATE_NAMES = re.compile(r"jobs[-_]service")
SAMPLE_MODULES = ("users", "invoices", "reports", "notifications")
SAMPLE_IMPORTS = re.compile(
    r"\b(domain|application\.use_cases)\.(users|invoices|reports|notifications)\b"
)
SAMPLE_NAMES = re.compile(
    r"\b(EmailJobs|InvoiceJobs|ReportJobs|NotificationJobs|RegisterUser|ForgotPassword|"
    r"RequestReport|SendBulkNotification|ScheduleInvoiceReminder)\b"
)
SERVE_WAIT_SECONDS = 60.0

# Each copier render copies the whole template (a few seconds, more on a busy machine); the
# service's own test suite takes minutes.
pytestmark = pytest.mark.timeout(900)


def files_of(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_the_service_has_its_own_names_everywhere(service: Path) -> None:
    leftovers = [str(path) for path, text in files_of(service) if TEMPLATE_NAMES.search(text)]
    assert leftovers == []
    project = tomllib.loads((service / "pyproject.toml").read_text())["project"]
    assert project["name"] == "billing-service"
    assert project["description"] == "Bills customers."
    assert project["scripts"] == {SERVICE: "host.cli:main"}
    assert (service / "README.md").read_text().startswith(f"# {SERVICE}\n")
    assert "image: billing:local" in (service / "compose.yaml").read_text()
    assert (
        "app.kubernetes.io/name: billing" in (service / "k8s/base/kustomization.yaml").read_text()
    )
    assert '"sqlite:///./data/billing.db"' in (service / "src/host/settings.py").read_text()


def test_the_sample_business_is_replaced_by_the_example(service: Path) -> None:
    for module in SAMPLE_MODULES:
        assert not (service / "src/domain" / f"{module}.py").exists()
        assert not (service / "src/application/use_cases" / f"{module}.py").exists()
    code = {path: text for path, text in files_of(service) if path.suffix == ".py"}
    assert [str(path) for path, text in code.items() if SAMPLE_IMPORTS.search(text)] == []
    source = {path: text for path, text in code.items() if "src" in path.parts}
    assert [str(path) for path, text in source.items() if SAMPLE_NAMES.search(text)] == []
    assert (service / "src/domain/greetings.py").is_file()
    assert (service / "tests/unit/example/test_greetings.py").is_file()
    for left_out in ("copier.yml", "scaffolding", "tests/scaffolding", "bench"):
        assert not (service / left_out).exists()


def test_the_service_is_a_repository_that_records_its_template_version(service: Path) -> None:
    assert git(service, "status", "--porcelain") == ""
    answers = (service / ".copier-answers.yml").read_text()
    assert re.search(r"^_commit: \S+", answers, re.MULTILINE)
    assert "service_name: billing" in answers


def test_renaming_again_changes_nothing(service: Path) -> None:
    assert rename_tree(service, Answers.parse(ANSWERS)) == []


def test_the_backend_answer_sets_the_default_in_the_settings_and_their_doc() -> None:
    pairs = replacements(Answers.parse({**ANSWERS, "backend": "dramatiq"}))
    settings = rename_text((TEMPLATE_ROOT / "src/host/settings.py").read_text(), pairs)
    doc = rename_text((TEMPLATE_ROOT / "docs/configuration.md").read_text(), pairs)
    assert '        "dramatiq",\n        description="Job adapter:' in settings
    assert "| `APP_JOBS__BACKEND` | string | `dramatiq` |" in doc


def test_a_name_containing_the_template_name_is_refused() -> None:
    with pytest.raises(SystemExit, match="template's name"):
        Answers.parse({**ANSWERS, "service_name": "jobs-service-2"})


def in_service(service: Path) -> dict[str, str]:
    """This checkout's interpreter and packages, with the service's own code first."""
    return {**os.environ, "PYTHONPATH": f"{service / 'src'}{os.pathsep}{service}"}


def test_the_service_passes_its_fast_tests(service: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "tests/unit",
            "tests/contract",
            "--ignore=tests/unit/test_cron_oracle.py",  # the engine's, a minute, not the service's
            "-k",
            "not postgresql and not mariadb and not mssql and not dramatiq",
        ],
        cwd=service,
        env=in_service(service),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(r"\d+ passed", done.stdout)
    lint = [sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"]
    linted = subprocess.run(lint, cwd=service, capture_output=True, text=True, check=False)
    assert linted.returncode == 0, linted.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(service: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **in_service(service),
        "APP_DB__URL": f"sqlite:///{tmp_path / 'billing.db'}",
        "APP_HTTP__PORT": str(port),
        "APP_TEMP_DIRECTORY": str(tmp_path / "tmp"),
        "APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST": "true",  # as `make run` does
    }
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "host", "serve"], cwd=service, env=env, stdout=log, stderr=log
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_the_service_serves_until_ready(served: str) -> None:
    deadline = time.monotonic() + SERVE_WAIT_SECONDS
    status = None
    while time.monotonic() < deadline and status != 200:
        try:
            status = httpx.get(f"{served}/health/ready").status_code
        except httpx.TransportError:
            time.sleep(0.2)
    assert status == 200
    # The service's own code serves: its example's recurring job is declared.
    recurring = httpx.get(f"{served}/api/recurring")
    assert recurring.status_code == 200
    assert "daily-greetings" in recurring.text


def test_an_update_brings_the_template_change_and_keeps_the_service_edit(
    template: Path, tmp_path: Path
) -> None:
    from copier import run_update

    fork = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(template), str(fork))
    service = generate(fork, tmp_path / SERVICE)
    readme = service / "README.md"
    readme.write_text(readme.read_text() + "\nBilling's own notes.\n")
    git(service, "commit", "--quiet", "--all", "--message", "the service's own edit")
    cron_doc = fork / "docs/cron.md"
    cron_doc.write_text(cron_doc.read_text() + "\nA later jobs-service fix.\n")
    git(fork, "commit", "--quiet", "--all", "--message", "a template change")

    run_update(service, defaults=True, unsafe=True, overwrite=True, quiet=True)

    assert (service / "docs/cron.md").read_text().endswith("\nA later billing fix.\n")
    assert readme.read_text().endswith("\nBilling's own notes.\n")
    changed = git(service, "status", "--porcelain").splitlines()
    assert sorted(line[3:] for line in changed) == [".copier-answers.yml", "docs/cron.md"]


def test_the_command_takes_every_answer_and_makes_a_first_commit(
    template: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ledger"
    options = ["--package", "ledger-app", "--backend", "postgresql", "--no-dashboard", "--sample"]
    result = CliRunner().invoke(
        cli, ["new-service", "ledger", "--dest", str(dest), "--template", str(template), *options]
    )

    assert result.exit_code == 0, result.output
    assert len(git(dest, "log", "--format=%H").split()) == 1
    assert git(dest, "status", "--porcelain") == ""
    assert [str(path) for path, text in files_of(dest) if TEMPLATE_NAMES.search(text)] == []
    settings = (dest / "src/host/settings.py").read_text()
    assert '"postgresql+psycopg://postgres@127.0.0.1:5432/ledger"' in settings
    assert 'enabled: bool = Field(False, description="Serve the dashboard' in settings
    configuration = (dest / "docs/configuration.md").read_text()
    assert "| `APP_DASHBOARD__ENABLED` | boolean | `false` |" in configuration
    assert (dest / "src/domain/invoices.py").is_file()
    assert not (dest / "src/domain/greetings.py").exists()
    project = tomllib.loads((dest / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ledger-app"
    assert project["optional-dependencies"]["dev"][0].startswith("ledger-app[")


def test_the_command_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new-service", "ledger", "--dest", str(tmp_path)])
    assert result.exit_code == 2
    assert "new or empty folder" in result.output
    assert [path.name for path in tmp_path.iterdir()] == ["kept.txt"]
