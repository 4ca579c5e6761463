"""The jobs list's query string as a checked `JobFilter`, with the API's input rules (no NUL
characters or lone surrogates, names within their columns, instants within range)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from application.jobs import JobFilter, JobSort, JobState
from host.api.inputs import Instant, Name, QueueName

_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
FIELDS = ("queue", "handler", "text", "created_from", "created_to", "recurring_id")


class ListQuery(BaseModel):
    """What the jobs list was asked for; times without an offset are read as UTC (what the
    browser's date-time input sends)."""

    model_config = ConfigDict(extra="ignore")

    state: list[JobState] = Field(default_factory=list, max_length=len(JobState))
    queue: QueueName | None = None
    handler: Name | None = None
    text: Name | None = None
    created_from: Instant | None = None
    created_to: Instant | None = None
    recurring_id: Name | None = None
    sort: JobSort = JobSort.NEWEST
    cursor: str | None = Field(None, max_length=500)

    def to_filter(self) -> JobFilter:
        return JobFilter(
            states=frozenset(self.state),
            queue=self.queue,
            handler=self.handler,
            text=self.text,
            created_from=self.created_from,
            created_to=self.created_to,
            recurring_id=self.recurring_id,
        )

    def link(self, **changes: object) -> str:
        """This query as a query string, with `changes` (None removes a field)."""
        pairs = [("state", state.value) for state in self.state]
        values = self.model_dump(include={*FIELDS, "sort", "cursor"}, mode="json") | changes
        pairs += [(k, str(v)) for k, v in values.items() if v not in (None, "")]
        return urlencode(pairs)


def parse(params: Mapping[str, Sequence[str]]) -> tuple[ListQuery, list[str]]:
    """The query, and what was wrong with it (an empty query then)."""
    raw: dict[str, object] = {"state": [s for s in params.get("state", []) if s]}
    for name in (*FIELDS, "sort", "cursor"):
        value = (params.get(name) or [""])[-1].strip()
        if value:
            raw[name] = value + "Z" if name.startswith("created") and _NAIVE.match(value) else value
    try:
        return ListQuery.model_validate(raw), []
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return ListQuery(), problems
