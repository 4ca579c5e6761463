"""The memory backend: the engine over `InMemoryJobStore`, inside one process."""

from __future__ import annotations

from infrastructure.jobs.backend import BackendContext, EngineBackend
from infrastructure.jobs.memory.store import InMemoryJobStore


class MemoryBackend(EngineBackend):
    """Jobs live in this process and are lost when it ends (tests, experiments)."""

    def __init__(self, context: BackendContext) -> None:
        super().__init__(InMemoryJobStore(), context)
