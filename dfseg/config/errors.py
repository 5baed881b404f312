"""Turning pydantic validation errors into field-by-field messages a user can act on."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dfseg.errors import DfsegError


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a project file: where (dotted key, file line) and what is wrong."""

    key: str
    message: str
    line: int | None = None
    from_command_line: bool = False

    def format(self, file: Path | None) -> str:
        if self.from_command_line:
            where = "command line: "
        else:
            where = f"{file.name}:{self.line}: " if file is not None and self.line else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigError(DfsegError):
    """A project file (or a command-line override) that does not validate."""

    def __init__(self, problems: list[ConfigProblem], file: Path | None = None) -> None:
        self.problems = problems
        self.file = file
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.file}: " if self.file is not None else ""
        count = len(self.problems)
        lines = [f"{head}{count} problem{'s' if count != 1 else ''} in the project file"]
        lines += [f"  {p.format(self.file)}" for p in self.problems]
        return "\n".join(lines)


def describe_validation_error(exc: ValidationError) -> str:
    """One line for a model built from options rather than a file: `field: message; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}"
        for error in exc.errors()
    )


def problems_from_errors(
    errors: list[ErrorDetails],
    root_model: type[BaseModel],
    lines: dict[tuple[str, ...], int],
    overridden: frozenset[tuple[str, ...]] = frozenset(),
) -> list[ConfigProblem]:
    """One `ConfigProblem` per distinct field, with friendly messages and did-you-mean hints;
    problems of keys set on the command line (`overridden`) say so instead of naming a line."""
    problems: dict[str, ConfigProblem] = {}
    for error in errors:
        loc = _clean_loc(error["loc"])
        key = _dotted(loc)
        if key in problems:  # a union field reports once per member; the first says enough
            continue
        message = _message(error, loc, root_model)
        command_line = any(loc[: len(o)] == o for o in overridden)
        line = None if command_line else _line_for(loc, lines)
        problems[key] = ConfigProblem(key, message, line, from_command_line=command_line)
    return list(problems.values())


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """Drop pydantic's union/validator tags ('list[str]', 'function-after[...]')."""
    parts: list[str] = []
    for part in loc:
        text = str(part)
        if "[" in text or text.startswith(("function-", "tagged-union")):
            continue
        parts.append(text)
    return tuple(parts)


def _dotted(loc: tuple[str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out


def _line_for(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _message(error: ErrorDetails, loc: tuple[str, ...], root_model: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {}) or {}
    got = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + _suggest_key(loc, root_model)
    if kind == "missing":
        return "required, but missing"
    simple = {
        "greater_than": lambda: f"must be > {ctx.get('gt')} (got {got!r})",
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge')} (got {got!r})",
        "less_than": lambda: f"must be < {ctx.get('lt')} (got {got!r})",
        "less_than_equal": lambda: f"must be <= {ctx.get('le')} (got {got!r})",
        "int_parsing": lambda: f"must be an integer (got {got!r})",
        "int_from_float": lambda: f"must be a whole number (got {got!r})",
        "int_type": lambda: f"must be an integer (got {got!r})",
        "float_parsing": lambda: f"must be a number (got {got!r})",
        "float_type": lambda: f"must be a number (got {got!r})",
        "bool_parsing": lambda: f"must be true or false (got {got!r})",
        "bool_type": lambda: f"must be true or false (got {got!r})",
        "string_type": lambda: f"must be text (got {got!r})",
        "model_type": lambda: f"must be a mapping of keys (got {got!r})",
        "dict_type": lambda: f"must be a mapping (got {got!r})",
        "list_type": lambda: f"must be a list (got {got!r})",
        "tuple_type": lambda: f"must be a list like [h, w] (got {got!r})",
        "too_short": lambda: f"needs {ctx.get('min_length')} items (got {got!r})",
        "too_long": lambda: f"takes at most {ctx.get('max_length')} items (got {got!r})",
    }
    if kind in simple:
        return simple[kind]()
    if kind == "literal_error":
        choices = _literal_choices(ctx.get("expected", ""))
        hint = _close(str(got), choices)
        return f"must be one of {', '.join(choices)} (got {got!r})" + (
            f"; did you mean {hint!r}?" if hint else ""
        )
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _literal_choices(expected: str) -> list[str]:
    return [part.strip().strip("'\"") for part in expected.replace(" or ", ", ").split(",") if part]


def _close(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _suggest_key(loc: tuple[str, ...], root_model: type[BaseModel]) -> str:
    """'; did you mean X?' from the keys valid at that place, or the same key in another section."""
    *parent, key = loc
    model = _model_at(root_model, tuple(parent))
    if model is not None:
        names = list(model.model_fields)
        hint = _close(key, names)
        if hint:
            return f"; did you mean '{_dotted((*parent, hint))}'?"
        elsewhere = [
            f"{section}.{key}"
            for section, field in root_model.model_fields.items()
            if _is_model(field.annotation) and key in field.annotation.model_fields  # type: ignore[union-attr]
        ]
        if elsewhere:
            return f"; it belongs in {' or '.join(repr(e) for e in elsewhere)}"
        return f"; valid keys here: {', '.join(names)}"
    return ""


def _model_at(root: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _first_model(model.model_fields[part].annotation)
    return model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if _is_model(annotation):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _first_model(arg)
            if found is not None:
                return found
    return None
