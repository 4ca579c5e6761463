"""The settings reference of docs/configuration.md, generated from `Settings`.

`python -m host.settings_doc` prints the tables; `python -m host.settings_doc --write
docs/configuration.md` replaces them in the page, between its two marker comments.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from host.settings import Settings

PREFIX = "APP_"
NESTING = "__"
BEGIN = "<!-- settings:begin (generated: python -m host.settings_doc --write <this file>) -->"
END = "<!-- settings:end -->"

_SIMPLE_TYPES: dict[object, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
}
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "items ≥"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingDoc:
    """One environment variable: a leaf setting."""

    env: str
    type: str
    default: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionDoc:
    """The leaf settings of one model: `Settings` itself, or a nested model such as `db`."""

    title: str
    env: str
    settings: list[SettingDoc]


def sections(
    model: type[BaseModel] = Settings, *, env: str = PREFIX, title: str = "general"
) -> list[SectionDoc]:
    """Every leaf setting of `model`, grouped by model, nested models walked recursively."""
    leaves: list[SettingDoc] = []
    nested: list[SectionDoc] = []
    for name, field in model.model_fields.items():
        var = f"{env}{name.upper()}"
        sub = _model(field.annotation)
        if sub is not None:
            nested += sections(sub, env=var + NESTING, title=name)
        else:
            leaves.append(_setting(var, field))
    own = [SectionDoc(title=title, env=env, settings=leaves)] if leaves else []
    return own + nested


def nested_models(model: type[BaseModel] = Settings, *, env: str = PREFIX) -> Iterator[str]:
    """The variables of the nested models themselves (`APP_DB`), which take a JSON object."""
    for name, field in model.model_fields.items():
        sub = _model(field.annotation)
        if sub is not None:
            yield f"{env}{name.upper()}"
            yield from nested_models(sub, env=f"{env}{name.upper()}{NESTING}")


def render() -> str:
    """The tables of every section, as Markdown."""
    blocks = []
    for section in sections():
        rows = [
            f"| `{s.env}` | {s.type} | {s.default} | {_cell(s.description)} |"
            for s in section.settings
        ]
        heading = f"### {section.title} (`{section.env}*`)"
        header = ["| variable | type | default | meaning |", "|---|---|---|---|"]
        blocks.append("\n".join([heading, "", *header, *rows]))
    return "\n\n".join(blocks) + "\n"


def replace_block(page: str, block: str) -> str:
    """The page with the text between its markers replaced by `block`.

    Raises:
        ValueError: the page lacks the markers.
    """
    head, begin, rest = page.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the page lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{block}\n{END}{tail}"


def _model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _setting(env: str, field: FieldInfo) -> SettingDoc:
    return SettingDoc(
        env=env,
        type=_type(field.annotation) + _bounds(field),
        default=_default(field.get_default(call_default_factory=True)),
        description=field.description or "",
    )


def _type(annotation: object) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        present = [_type(arg) for arg in args if arg is not type(None)]
        return " or ".join(present) + ", optional"
    if origin is list:
        return f"JSON list of {_type(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    model = _model(annotation)
    if model is not None:
        return "object (" + ", ".join(model.model_fields) + ")"
    return _SIMPLE_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    found = [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, attribute, symbol in _BOUNDS
        if isinstance(item, kind)
    ]
    return f" ({', '.join(found)})" if found else ""


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, separators=(',', ':'))}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m host.settings_doc", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="PAGE",
        help="Replace the tables between the page's markers instead of printing them.",
    )
    options = parser.parse_args(argv)
    if options.write is None:
        sys.stdout.write(render())
        return
    page: Path = options.write
    page.write_text(replace_block(page.read_text(encoding="utf-8"), render()), encoding="utf-8")


if __name__ == "__main__":
    main()
