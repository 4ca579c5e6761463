"""Job records made from a call of the port: the handler's definition, its arguments checked
as JSON, and the caller's options (queue, retry, timeout, keys, deadline) over the handler's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from uuid import uuid4

from application.jobs import (
    BatchId,
    InvalidSchedule,
    JobId,
    JobOptions,
    JobState,
    JSONValue,
)
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.model import Job, Request
from infrastructure.jobs.handlers import HandlerDefinition, HandlerRegistry


@dataclasses.dataclass(frozen=True, slots=True)
class JobRecords:
    """Makes the job records of one `JobService` (one set of options)."""

    _registry: HandlerRegistry
    _clock: Clock
    _options: JobOptions
    _payload_limit: int

    def encoded(
        self, handler: Callable[..., object], args: Sequence[object], kwargs: Mapping[str, object]
    ) -> tuple[HandlerDefinition, list[JSONValue], dict[str, JSONValue]]:
        """The handler's definition and the arguments checked and turned into JSON."""
        definition = self._registry.resolve(handler)
        return definition, *definition.encode(args, kwargs, self._payload_limit)

    def job_of(
        self,
        definition: HandlerDefinition,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        state: JobState,
        reason: str,
        batch_id: BatchId | None = None,
        *,
        run_at: dt.datetime | None = None,
        parent: JobId | None = None,
    ) -> Job:
        options = self._options
        return Job(
            id=JobId(uuid4()),
            handler=definition.name,
            args=args,
            kwargs=kwargs,
            queue=options.queue or definition.options.queue,
            state=state,
            created_at=self._clock.now(),
            retry=options.retry or definition.options.retry,
            timeout=options.timeout or definition.options.timeout,
            unique_key=options.unique_key,
            continue_on=options.continue_on,
            batch_id=batch_id,
            reason=reason,
            run_at=run_at,
            parent_id=parent,
            expires_at=self._deadline(),
        )

    def _deadline(self) -> dt.datetime | None:
        """When a job of these options expires if not started: the earlier of the two."""
        given = [self._options.expires_at, self._options.expires_in]
        deadlines = [self.resolve_when(when) for when in given if when is not None]
        return min(deadlines, default=None)

    def with_request(self, job: Job, operation: str) -> Job:
        """The job with the call's idempotency key and a digest of what it asks (the time
        left out: a retried call computes another)."""
        key = self._options.idempotency_key
        if key is None:
            return job
        asked = [operation, job.handler, job.args, job.kwargs, job.queue, job.unique_key]
        asked += [str(job.parent_id), job.recurring_id]
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode())
        return dataclasses.replace(job, request=Request(key=key, fingerprint=digest.hexdigest()))

    def resolve_when(self, when: dt.timedelta | dt.datetime) -> dt.datetime:
        if isinstance(when, dt.timedelta):
            if when < dt.timedelta(0):
                raise InvalidSchedule(f"a delay must not be negative, got {when}")
            return self._clock.now() + when
        if when.tzinfo is None or when.utcoffset() is None:
            raise InvalidSchedule(
                f"refusing naive datetime {when.isoformat()}: give a timezone-aware instant"
            )
        return when.astimezone(dt.UTC)
