"""The allow-list of job handlers and the checking of their arguments.

Arguments are checked against the handler's signature and type hints (pydantic, strict) and
stored as JSON; at execution they are validated again from JSON into the annotated types.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from application.jobs import (
    HandlerNotRegistered,
    InvalidArguments,
    JobContext,
    JSONValue,
    PayloadTooLarge,
    RetryPolicy,
)

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)
_MISSING_ARG = re.compile(r"'(\w+)'")


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerOptions:
    """A handler's defaults; per-call options override them."""

    queue: str = "default"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: dt.timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerDefinition:
    """One registered handler: a method of a class, and how to call it."""

    name: str
    cls: type
    method: str
    is_async: bool
    signature: inspect.Signature
    adapters: Mapping[str, TypeAdapter[Any]]
    context_parameter: str | None
    options: HandlerOptions

    def encode(
        self, args: Sequence[object], kwargs: Mapping[str, object], size_limit: int
    ) -> tuple[list[JSONValue], dict[str, JSONValue]]:
        """Check arguments against the signature and types; return them as JSON values.

        Raises:
            InvalidArguments: they do not bind, do not match a type or do not serialise.
            PayloadTooLarge: their JSON is longer than `size_limit` characters.
        """
        bound = self._bind(args, kwargs)
        encoded = {name: self._encode_one(name, value) for name, value in bound.arguments.items()}
        _check_size(self.name, encoded, size_limit)
        json_args, json_kwargs = _split(self.signature, encoded)
        return json_args, json_kwargs

    def check_json(
        self, args: Sequence[JSONValue], kwargs: Mapping[str, JSONValue], size_limit: int
    ) -> tuple[list[JSONValue], dict[str, JSONValue]]:
        """Check arguments sent as JSON by an operator, strictly as JSON (a datetime or UUID
        parameter takes its string form, but "1" is no int); return them as given, to be
        stored without another conversion.

        Raises:
            InvalidArguments: they do not bind or a value does not match its type.
            PayloadTooLarge: their JSON is longer than `size_limit` characters.
        """
        bound = self._bind(args, kwargs)
        for name, value in bound.arguments.items():
            try:
                self._adapt(name, value, lambda a, v: a.validate_json(json.dumps(v), strict=True))
            except ValidationError as exc:
                raise self._mismatch(name, exc) from None
        _check_size(self.name, bound.arguments, size_limit)
        return typing.cast(list[JSONValue], list(bound.args)), typing.cast(
            dict[str, JSONValue], dict(bound.kwargs)
        )

    def arguments_schema(self) -> dict[str, JSONValue]:
        """A JSON schema object of the arguments by name, required ones listed."""
        properties: dict[str, JSONValue] = {}
        required: list[JSONValue] = []
        for name, parameter in self.signature.parameters.items():
            schema = self.adapters.get(name, _ANY_ADAPTER).json_schema()
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                schema = {"type": "array", "items": schema}
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                schema = {"type": "object", "additionalProperties": schema}
            elif parameter.default is inspect.Parameter.empty:
                required.append(name)
            properties[name] = typing.cast(JSONValue, schema)
        return {"type": "object", "properties": properties, "required": required}

    def decode(
        self, args: Sequence[JSONValue], kwargs: Mapping[str, JSONValue]
    ) -> tuple[list[object], dict[str, object]]:
        """Rebuild typed arguments from stored JSON (validated again, non-strict)."""
        bound = self.signature.bind(*args, **kwargs)
        typed = {
            name: self._adapt(name, value, lambda a, v: a.validate_python(v))
            for name, value in bound.arguments.items()
        }
        bound.arguments.update(typed)
        return list(bound.args), dict(bound.kwargs)

    def _encode_one(self, name: str, value: object) -> JSONValue:
        try:
            checked = self._adapt(name, value, lambda a, v: a.validate_python(v, strict=True))
            return typing.cast(
                JSONValue, self._adapt(name, checked, lambda a, v: a.dump_python(v, mode="json"))
            )
        except ValidationError as exc:
            raise self._mismatch(name, exc) from None
        except PydanticSerializationError as exc:
            raise InvalidArguments(
                f"{self.name}: argument {name!r} cannot be stored as JSON: {exc}", argument=name
            ) from None

    def _bind(self, args: Sequence[object], kwargs: Mapping[str, object]) -> inspect.BoundArguments:
        try:
            return self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            found = _MISSING_ARG.search(str(exc))
            raise InvalidArguments(
                f"{self.name}: {exc}", argument=found.group(1) if found else None
            ) from None

    def _mismatch(self, name: str, exc: ValidationError) -> InvalidArguments:
        detail = exc.errors()[0]["msg"]
        return InvalidArguments(
            f"{self.name}: argument {name!r} does not match its type: {detail}", argument=name
        )

    def _adapt(
        self, name: str, value: object, apply: Callable[[TypeAdapter[Any], object], object]
    ) -> object:
        adapter = self.adapters.get(name, _ANY_ADAPTER)
        kind = self.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            return tuple(apply(adapter, item) for item in typing.cast(tuple[object, ...], value))
        if kind is inspect.Parameter.VAR_KEYWORD:
            items = typing.cast(dict[str, object], value).items()
            return {key: apply(adapter, item) for key, item in items}
        return apply(adapter, value)


def _check_size(handler: str, encoded: Mapping[str, object], limit: int) -> None:
    total = len(json.dumps(list(encoded.values()), separators=(",", ":")))
    if total <= limit:
        return
    sizes = {name: len(json.dumps(value)) for name, value in encoded.items()}
    largest = max(sizes, key=lambda name: sizes[name])
    raise PayloadTooLarge(
        f"{handler}: arguments take {total} bytes as JSON, over the limit of {limit}; "
        f"the largest is {largest!r} ({sizes[largest]} bytes)",
        argument=largest,
        size=total,
        limit=limit,
    )


def _split(
    signature: inspect.Signature, encoded: Mapping[str, object]
) -> tuple[list[JSONValue], dict[str, JSONValue]]:
    bound = inspect.BoundArguments(signature, dict(encoded))
    return typing.cast(list[JSONValue], list(bound.args)), typing.cast(
        dict[str, JSONValue], dict(bound.kwargs)
    )


class HandlerRegistry:
    """The allow-list: only handlers registered here can be enqueued or run."""

    def __init__(self, *, default_retry: RetryPolicy | None = None) -> None:
        """`default_retry`: the policy of handlers registered without one."""
        self._default_retry = default_retry or RetryPolicy()
        self._by_name: dict[str, HandlerDefinition] = {}
        self._by_function: dict[Callable[..., object], HandlerDefinition] = {}

    def register(
        self,
        handler: Callable[..., object],
        *,
        name: str | None = None,
        queue: str = "default",
        retry: RetryPolicy | None = None,
        timeout: dt.timedelta | None = None,
    ) -> HandlerDefinition:
        """Allow a handler method, named through its class (`EmailJobs.send_welcome`).

        Raises:
            ValueError: it is not a method of a module-level class, or its name is taken.
        """
        options = HandlerOptions(queue=queue, retry=retry or self._default_retry, timeout=timeout)
        definition = _define(handler, name or handler.__qualname__, options)
        if definition.name in self._by_name and self._by_name[definition.name].cls is not (
            definition.cls
        ):
            raise ValueError(f"a different handler is already registered as {definition.name!r}")
        self._by_name[definition.name] = definition
        self._by_function[handler] = definition
        return definition

    def resolve(self, handler: Callable[..., object]) -> HandlerDefinition:
        """Raises HandlerNotRegistered unless `handler` was registered."""
        try:
            return self._by_function[handler]
        except (KeyError, TypeError):
            name = getattr(handler, "__qualname__", repr(handler))
            raise HandlerNotRegistered(f"handler {name} is not registered") from None

    def get(self, name: str) -> HandlerDefinition:
        """Raises HandlerNotRegistered unless a handler has this name."""
        try:
            return self._by_name[name]
        except KeyError:
            raise HandlerNotRegistered(f"no handler is registered as {name!r}") from None

    def __iter__(self) -> typing.Iterator[HandlerDefinition]:
        return iter(sorted(self._by_name.values(), key=lambda d: d.name))

    def classes(self) -> set[type]:
        return {definition.cls for definition in self._by_name.values()}


def _define(
    handler: Callable[..., object], name: str, options: HandlerOptions
) -> HandlerDefinition:
    cls = _owner_class(handler)
    full = inspect.signature(handler)
    parameters = list(full.parameters.values())
    if not parameters or parameters[0].name != "self":
        raise ValueError(f"{name}: a handler is an instance method (its first parameter is self)")
    signature = full.replace(parameters=parameters[1:])
    hints = typing.get_type_hints(handler, include_extras=True)
    adapters = {p.name: TypeAdapter(hints[p.name]) for p in parameters[1:] if p.name in hints}
    return HandlerDefinition(
        name=name,
        cls=cls,
        method=handler.__name__,
        is_async=inspect.iscoroutinefunction(handler),
        signature=signature,
        adapters=adapters,
        context_parameter=_context_parameter(cls),
        options=options,
    )


def _owner_class(handler: Callable[..., object]) -> type:
    module = sys.modules.get(handler.__module__)
    owner_name, _, method = handler.__qualname__.rpartition(".")
    owner = getattr(module, owner_name, None) if owner_name and "<" not in owner_name else None
    if not isinstance(owner, type) or owner.__dict__.get(method) is not handler:
        raise ValueError(
            f"{handler.__qualname__}: a handler is a method of a module-level class, "
            "named through the class"
        )
    return owner


def _context_parameter(cls: type) -> str | None:
    """The constructor parameter annotated `JobContext`, if the class asks for one."""
    init = cls.__init__  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(init)
    except (NameError, TypeError):
        hints = {}
    for parameter in inspect.signature(init).parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        if annotation is JobContext or annotation == "JobContext":
            return parameter.name
    return None
