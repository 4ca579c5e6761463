"""Child processes for the reliability tests: each in its own process group, its output in a
log file, and never left behind (`Processes.close` kills whatever still runs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without APP_* settings, plus the paths and `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("APP_")}
    env.update(
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(eq=False)
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    killed_at: float | None = None
    """When the test sent SIGKILL (epoch seconds), if it did."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the process group (a graceful stop)."""
        self.signal_group(signal.SIGTERM)

    def kill(self) -> float:
        """SIGKILL to the process group; wait for it; return when the signal was sent."""
        self.killed_at = time.time()
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)
        return self.killed_at

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self, tail: int = 4000) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return f"--- {self.name} (pid {self.pid}) ---\n{text[-tail:]}"

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass


@dataclass
class Processes:
    """The children of one test; use as a context manager so none survives the test."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}-{len(self.children)}.log"
        log = log_path.open("wb")
        try:
            popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=child_environment(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except BaseException:
            log.close()
            raise
        child = Child(name, popen, log_path, log)
        self.children.append(child)
        return child

    def spawn_worker(self, name: str, env: Mapping[str, str]) -> Child:
        return self.spawn(name, ["-m", "tests.reliability.worker_process"], env)

    def stop_all(self, timeout: float) -> dict[str, int | None]:
        """SIGTERM every live child, wait up to `timeout` seconds in all; exit codes by name
        (None: still running, then killed)."""
        live = [child for child in self.children if child.alive]
        for child in live:
            child.terminate()
        deadline = time.monotonic() + timeout
        codes = {}
        for child in live:
            codes[f"{child.name}[{child.pid}]"] = child.wait(max(0.0, deadline - time.monotonic()))
        return codes

    def outputs(self) -> str:
        return "\n".join(child.output() for child in self.children)

    def close(self) -> None:
        for child in self.children:
            if child.popen.poll() is None:
                child.signal_group(signal.SIGKILL)
            try:
                child.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass
            child.log.close()
