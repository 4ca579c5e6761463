"""A job backend from outside the service's code: the plug-in seam's own test.

`APP_JOBS__BACKEND=tests.plugins.toy_backend:ToyBackend` (or `register_backend`) selects it;
nothing in `host` names it. It is the engine over a store of its own: the memory store,
counting the transactions it runs, so a test can tell that this store did the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from infrastructure.jobs.backend import BackendContext, EngineBackend
from infrastructure.jobs.engine.transaction import Transaction
from infrastructure.jobs.memory.store import InMemoryJobStore

T = TypeVar("T")


class CountingStore(InMemoryJobStore):
    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    async def transaction(
        self, work: Callable[[Transaction], T], *, session: object | None = None
    ) -> T:
        self.transactions += 1
        return await super().transaction(work, session=session)


class ToyBackend(EngineBackend):
    def __init__(self, context: BackendContext) -> None:
        self.counting = CountingStore()
        super().__init__(self.counting, context)
