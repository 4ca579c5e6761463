"""The engine's `JobAdmin`: operators' calls by handler name, lists, counts and bulk actions."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
import logging
from dataclasses import replace
from uuid import UUID

from application.jobs import (
    MAX_SKIPPED_SHOWN,
    BatchView,
    BulkAction,
    BulkResult,
    Cron,
    Explanation,
    HandlerInfo,
    InvalidArguments,
    InvalidQuery,
    InvalidSchedule,
    JobFilter,
    JobId,
    JobNotFound,
    JobPage,
    JobPulse,
    JobSort,
    JobState,
    JobStats,
    JobSummary,
    JSONValue,
    MinuteCount,
    Progress,
    QueueView,
    RecurringView,
    ServerView,
    SkippedJob,
)
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.cron import iter_fires
from infrastructure.jobs.engine.client import DEFAULT_PAYLOAD_LIMIT, EngineJobService
from infrastructure.jobs.engine.explanations import Facts, explain
from infrastructure.jobs.engine.middleware import Middlewares
from infrastructure.jobs.engine.model import BulkMove
from infrastructure.jobs.engine.states import WAITING_STATES
from infrastructure.jobs.engine.store import AdminStore
from infrastructure.jobs.handlers import HandlerRegistry

logger = logging.getLogger(__name__)

BULK_PAGE = 500
STATS_WINDOW = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


class EngineJobAdmin:
    """`JobAdmin` over the engine's store, creating jobs through the engine's `JobService`
    (from the handler's definition and the checked JSON) so both paths record them alike."""

    def __init__(
        self,
        store: AdminStore,
        registry: HandlerRegistry,
        jobs: EngineJobService,
        clock: Clock,
        *,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        middleware: Middlewares | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._jobs = jobs
        self._clock = clock
        self._payload_limit = payload_limit
        self._middleware = middleware or Middlewares()

    def handlers(self) -> list[HandlerInfo]:
        return [
            HandlerInfo(
                name=definition.name,
                queue=definition.options.queue,
                is_async=definition.is_async,
                arguments_schema=definition.arguments_schema(),
            )
            for definition in self._registry
        ]

    async def enqueue(
        self,
        handler: str,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        *,
        queue: str | None = None,
        run_at: dt.datetime | None = None,
        unique_key: str | None = None,
        continue_after: JobId | None = None,
        idempotency_key: str | None = None,
    ) -> JobId:
        if run_at is not None and continue_after is not None:
            raise InvalidArguments(
                "a job runs at a time or after another job, not both", argument="continue_after"
            )
        definition = self._registry.get(handler)
        checked = definition.check_json(args, kwargs, self._payload_limit)
        jobs = self._jobs.options(
            queue=queue, unique_key=unique_key, idempotency_key=idempotency_key
        )
        return await jobs.submit(definition, *checked, run_at=run_at, parent=continue_after)

    async def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron,
        handler: str,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        *,
        queue: str | None = None,
    ) -> RecurringView:
        definition = self._registry.get(handler)
        checked = definition.check_json(args, kwargs, self._payload_limit)
        jobs = self._jobs.options(queue=queue)
        await jobs.submit_recurring(recurring_id, cron, definition, *checked)
        return await self._jobs.get_recurring(recurring_id)

    def next_fire_times(
        self, recurring: RecurringView, count: int, *, after: dt.datetime | None = None
    ) -> list[dt.datetime]:
        if recurring.paused:
            return []
        start = after or self._clock.now()
        try:
            return list(itertools.islice(iter_fires(recurring.cron, start), count))
        except InvalidSchedule:
            return []  # stored by a version that took it; the scheduler skips it too

    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort = JobSort.NEWEST,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        if limit < 1:
            raise InvalidQuery(f"a page holds at least one job, not {limit}")
        after = None if cursor is None else _decode_cursor(cursor, sort)
        rows = await self._store.list_jobs(where, sort=sort, limit=limit + 1, after=after)
        items = rows[:limit]
        more = len(rows) > limit
        return JobPage(items=items, next_cursor=_encode_cursor(items[-1], sort) if more else None)

    async def apply(
        self, action: BulkAction, where: JobFilter, *, progress: Progress | None = None
    ) -> BulkResult:
        matched = changed = skipped = 0
        shown: list[SkippedJob] = []
        cursor: str | None = None
        while True:  # a page per transaction
            page = await self.list_jobs(where, sort=JobSort.OLDEST, limit=BULK_PAGE, cursor=cursor)
            if page.items:
                matched += len(page.items)
                done = await self._change([job.id for job in page.items], action)
                changed += len(done.moved)
                skipped += len(done.skipped)
                shown += done.skipped[: MAX_SKIPPED_SHOWN - len(shown)]
                if progress is not None:
                    progress(matched)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        logger.info(
            "bulk %s: %d matched, %d changed, %d skipped",
            action,
            matched,
            changed,
            skipped,
            extra={"action": f"bulk_{action}"},
        )
        return BulkResult(
            matched=matched, changed=changed, skipped=skipped, skipped_jobs=tuple(shown)
        )

    async def _change(self, job_ids: list[JobId], action: BulkAction) -> BulkMove:
        now = self._clock.now()
        if action is BulkAction.DELETE:
            to, reason, unless = JobState.DELETED, "deleted by request", frozenset[JobState]()
        else:
            to, reason = JobState.ENQUEUED, "requeued by request"
            unless = frozenset({JobState.PROCESSING})
        return await self._store.change_states(
            job_ids, to, now=now, reason=reason, unless=unless, elect=self._middleware.elect_move
        )

    async def count(self, where: JobFilter) -> int:
        return await self._store.count_jobs(where)

    async def count_by_state(self) -> dict[JobState, int]:
        return await self._store.count_by_state()

    async def stats(self, window: dt.timedelta = STATS_WINDOW) -> JobStats:
        until = self._clock.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        since = until - window
        found = {
            m.minute: m for m in await self._store.finished_per_minute(since=since, until=until)
        }
        minutes = (since + dt.timedelta(minutes=i) for i in range(int(window / MINUTE)))
        per_minute = [
            found.get(minute) or MinuteCount(minute=minute, succeeded=0, failed=0)
            for minute in minutes
        ]
        return JobStats(counts=await self._store.count_by_state(), per_minute=per_minute)

    async def list_servers(self) -> list[ServerView]:
        servers = await self._store.list_servers()
        running = await self._store.running_by_server()
        return [
            ServerView(
                id=s.id,
                queues=s.queues,
                concurrency=s.concurrency,
                started_at=s.started_at,
                heartbeat_at=s.heartbeat_at,
                running=running.get(s.id, 0),
            )
            for s in sorted(servers, key=lambda s: s.id)
        ]

    async def queues(self) -> list[QueueView]:
        lengths = await self._store.queue_lengths()
        servers = await self._store.list_servers()
        names = set(lengths) | {queue for server in servers for queue in server.queues}
        return [
            QueueView(
                name=name,
                enqueued=lengths.get(name, (0, None))[0],
                oldest_enqueued_at=lengths.get(name, (0, None))[1],
                servers=sum(name in server.queues for server in servers),
            )
            for name in sorted(names)
        ]

    async def list_batches(self, limit: int = 50) -> list[BatchView]:
        return await self._store.list_batches(limit)

    async def pulses(self, job_ids: list[JobId]) -> dict[JobId, JobPulse]:
        return await self._store.pulses(job_ids)

    async def explain(self, job_id: JobId) -> Explanation:
        job = await self._store.get(job_id)
        if job is None:
            raise JobNotFound(f"no job has the id {job_id}")
        facts = Facts(job=job, now=self._clock.now())
        if job.state is JobState.AWAITING:
            facts = await self._awaited(facts)
        if job.state is JobState.ENQUEUED:
            facts = await self._queue_facts(facts)
        elif job.state in WAITING_STATES:
            facts = replace(facts, servers=await self._servers_of(job.queue))
        if job.recurring_id is not None:
            recurring = await self._store.get_recurring(job.recurring_id)
            facts = replace(facts, recurring_paused=recurring is not None and recurring.paused)
        return Explanation(job_id=job.id, state=job.state, at=facts.now, reasons=explain(facts))

    async def _servers_of(self, queue: str) -> list[ServerView]:
        return [server for server in await self.list_servers() if queue in server.queues]

    async def _awaited(self, facts: Facts) -> Facts:
        job = facts.job
        if job.parent_id is not None:
            return replace(facts, parent=await self._store.get(job.parent_id))
        if job.batch_id is not None:
            return replace(facts, batch=await self._store.get_batch(job.batch_id))
        return facts

    async def _queue_facts(self, facts: Facts) -> Facts:
        queue = facts.job.queue
        servers = await self._servers_of(queue)
        enqueued_at = facts.job.history[-1].at if facts.job.history else facts.job.created_at
        ahead = await self._store.enqueued_ahead(queue, before=enqueued_at)
        return replace(facts, servers=servers, ahead=ahead)


_CURSOR_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CURSOR_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _sort_key(job: JobSummary, sort: JobSort) -> dt.datetime:
    return job.created_at if sort in (JobSort.NEWEST, JobSort.OLDEST) else job.state_at


def _encode_cursor(last: JobSummary, sort: JobSort) -> str:
    raw = json.dumps([sort.value, _sort_key(last, sort).isoformat(), str(last.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: JobSort) -> tuple[dt.datetime, JobId]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        order, at, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = dt.datetime.fromisoformat(at)
        parsed = (key, JobId(UUID(job_id)))
        # Our cursors hold instants of this epoch, in UTC; any other was forged or damaged
        # (and one at the edge of the calendar overflows on its way to the database).
        utc = key.astimezone(dt.UTC) if key.tzinfo is not None else None
    except (ValueError, TypeError, AttributeError, RecursionError, OverflowError, binascii.Error):
        # AttributeError: an id that is no string; RecursionError: deeply nested JSON
        raise InvalidQuery("the cursor is malformed; start again without it") from None
    if order != sort.value or utc is None:
        raise InvalidQuery(f"the cursor belongs to another list than one sorted by {sort.value}")
    if not _CURSOR_EARLIEST <= utc < _CURSOR_LATEST:
        raise InvalidQuery("the cursor is malformed; start again without it")
    return utc, parsed[1]
