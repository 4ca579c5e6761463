"""Declares the service's recurring jobs at start-up: an idempotent upsert by id."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from application.jobs import Cron, Handler, JobService

logger = logging.getLogger(__name__)

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class RecurringDeclaration:
    id: str
    cron: Cron
    handler: Handler[...]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def recurring(
    recurring_id: str, cron: Cron, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs
) -> RecurringDeclaration:
    """Declare a recurring job; the type checker matches the arguments to the handler."""
    return RecurringDeclaration(recurring_id, cron, handler, args, kwargs)


class RecurringJobRegistrar:
    """Upserts every declared recurring job; every replica may run it at start-up, as an
    unchanged definition keeps its schedule. With `prune`, recurring jobs the code no longer
    declares are removed."""

    def __init__(
        self, jobs: JobService, declarations: Sequence[RecurringDeclaration], *, prune: bool
    ) -> None:
        self._jobs = jobs
        self._declarations = declarations
        self._prune = prune

    async def register(self) -> None:
        for d in self._declarations:
            await self._jobs.add_or_update_recurring(d.id, d.cron, d.handler, *d.args, **d.kwargs)
        logger.info(
            "declared %d recurring job(s)",
            len(self._declarations),
            extra={"action": "recurring_declared"},
        )
        if self._prune:
            await self._remove_undeclared()

    async def _remove_undeclared(self) -> None:
        declared = {d.id for d in self._declarations}
        for stored in await self._jobs.list_recurring():
            if stored.id not in declared:
                await self._jobs.remove_recurring(stored.id)
                logger.info(
                    "removed undeclared recurring job %s",
                    stored.id,
                    extra={"action": "recurring_removed", "recurring_id": stored.id},
                )
