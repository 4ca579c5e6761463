"""Handlers take operators' JSON: arguments parsed strictly as JSON, and described by a schema."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import pytest

from application.jobs import InvalidArguments, JSONValue, PayloadTooLarge
from infrastructure.jobs.handlers import HandlerDefinition, HandlerRegistry


class ReportJobs:
    async def build(
        self, report_id: UUID, due: dt.datetime, copies: int = 1, *tags: str, **extra: bool
    ) -> None:
        """A handler with every kind of parameter."""


@pytest.fixture
def definition() -> HandlerDefinition:
    return HandlerRegistry().register(ReportJobs.build)


def test_checked_json_is_kept_and_decodes_to_the_annotated_types(
    definition: HandlerDefinition,
) -> None:
    sent: list[JSONValue] = ["0b8f2f8e-1d1c-4a5e-9f00-000000000001", "2026-11-23T10:00:00+01:00"]
    sent += [3, "a", "b"]
    checked = definition.check_json(sent, {"urgent": True}, 1000)
    assert checked == (sent, {"urgent": True})
    args, kwargs = definition.decode(*checked)
    assert args == [
        UUID("0b8f2f8e-1d1c-4a5e-9f00-000000000001"),
        dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC),
        3,
        "a",
        "b",
    ]
    assert kwargs == {"urgent": True}


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        (["not-a-uuid", "2026-11-23T10:00:00Z"], {}, "report_id"),
        (["0b8f2f8e-1d1c-4a5e-9f00-000000000001", "2026-11-23T10:00:00Z", "3"], {}, "copies"),
        (["0b8f2f8e-1d1c-4a5e-9f00-000000000001", "2026-11-23T10:00:00Z", 1, 7], {}, "tags"),
        (["0b8f2f8e-1d1c-4a5e-9f00-000000000001"], {}, "due"),
        (["0b8f2f8e-1d1c-4a5e-9f00-000000000001", "2026-11-23T10:00:00Z"], {"x": 1}, "extra"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_by_name(
    definition: HandlerDefinition, args: list[object], kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(InvalidArguments) as refused:
        definition.check_json(args, kwargs, 1000)  # type: ignore[arg-type]
    assert refused.value.argument == argument


def test_the_schema_describes_each_parameter(definition: HandlerDefinition) -> None:
    schema = definition.arguments_schema()
    properties = schema["properties"]
    assert isinstance(properties, dict)
    assert list(properties) == ["report_id", "due", "copies", "tags", "extra"]
    assert properties["report_id"] == {"type": "string", "format": "uuid"}
    assert properties["due"] == {"type": "string", "format": "date-time"}
    assert properties["copies"] == {"type": "integer"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["extra"] == {"type": "object", "additionalProperties": {"type": "boolean"}}
    assert schema["required"] == ["report_id", "due"]


def test_json_over_the_size_limit_is_refused_naming_the_largest(
    definition: HandlerDefinition,
) -> None:
    sent: list[JSONValue] = ["0b8f2f8e-1d1c-4a5e-9f00-000000000001", "2026-11-23T10:00:00Z"]
    with pytest.raises(PayloadTooLarge) as refused:
        definition.check_json([*sent, 1, "x" * 200], {}, 100)
    assert refused.value.argument == "tags"
