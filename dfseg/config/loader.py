"""Loading a project file: YAML (safe_load) + `key=value` overrides -> validated `ProjectConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from dfseg.config.errors import ConfigError, ConfigProblem, _first_model, problems_from_errors
from dfseg.config.project import ProjectConfig
from dfseg.config.variants import PRETRAINED_NAMES


def load_project(path: str | Path, overrides: Sequence[str] = ()) -> ProjectConfig:
    """Read, override and validate a project file.

    Args:
        path: the YAML project file. Relative paths inside it resolve against its folder.
        overrides: `dotted.key=value` strings (values parsed as YAML, so `5`, `true`, `[1, 2]`,
            `null` work). Relative paths given here resolve against the current directory,
            as a user typing them in a shell expects.

    Returns:
        The validated config, with `source` set to the file.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML, or does not validate;
            every problem is listed with its dotted key and line.
    """
    file = Path(path).expanduser().resolve()
    text = _read_text(file)
    data, lines = parse_yaml(text, file)
    overridden = apply_overrides(data, overrides, file)
    return validate_project(data, file, lines, overridden)


def validate_project(
    data: dict[str, Any],
    file: Path | None,
    lines: dict[tuple[str, ...], int] | None = None,
    overridden: frozenset[tuple[str, ...]] = frozenset(),
) -> ProjectConfig:
    """Validate an already-parsed project mapping (paths resolve against `file`'s folder);
    problems of `overridden` keys are reported as coming from the command line."""
    base_dir = file.parent if file is not None else Path.cwd()
    try:
        config = ProjectConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = problems_from_errors(exc.errors(), ProjectConfig, lines or {}, overridden)
        raise ConfigError(problems, file) from None
    config._source = file
    return config


def _read_text(file: Path) -> str:
    if file.is_dir():
        candidates = sorted(p.name for p in file.glob("*.y*ml"))
        hint = f"; YAML files there: {', '.join(candidates)}" if candidates else ""
        raise ConfigError([ConfigProblem("", f"is a folder, expected a project file{hint}")], file)
    if not file.exists():
        raise ConfigError(
            [ConfigProblem("", "file not found (create one with `dfseg init`)")], file
        )
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem("", f"cannot read it: {exc}")], file) from None


def parse_yaml(text: str, file: Path | None) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """`yaml.safe_load` plus a map from each key path to its 1-based line number."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("", f"invalid YAML: {problem}", line)], file) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem("", f"must be a mapping of sections (got {type(data).__name__})", 1)],
            file,
        )
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(
    node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, str(key_node.value))
            lines[key_path] = key_node.start_mark.line + 1
            _collect_lines(value_node, key_path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*path, str(index))
            lines[item_path] = item.start_mark.line + 1
            _collect_lines(item, item_path, lines)


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], file: Path | None
) -> frozenset[tuple[str, ...]]:
    """Set `dotted.key=value` overrides in place; malformed ones raise `ConfigError`.

    Returns:
        The key paths set (for error messages that say "command line").
    """
    problems: list[ConfigProblem] = []
    keys: set[tuple[str, ...]] = set()
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(
                ConfigProblem(override, "overrides look like key=value, e.g. train.epochs=5")
            )
            continue
        value = _parse_value(raw)
        is_file_name = isinstance(value, str) and value not in ("", *PRETRAINED_NAMES)
        if is_file_name and _is_path_key(key):
            value = str(Path(value).expanduser().resolve())
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                problems.append(ConfigProblem(key, f"'{part}' is not a section, cannot set {key}"))
                break
            target = nested
        else:
            target[parts[-1]] = value
            keys.add(tuple(parts))
    if problems:
        raise ConfigError([replace(p, from_command_line=True) for p in problems], file)
    return frozenset(keys)


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _is_path_key(dotted: str) -> bool:
    """Whether a dotted key names a Path-typed field (for cwd-relative override paths)."""
    model: Any = ProjectConfig
    parts = dotted.split(".")
    for part in parts[:-1]:
        if part not in model.model_fields:
            return False
        model = _first_model(model.model_fields[part].annotation)
        if model is None:
            return False
    field = model.model_fields.get(parts[-1])
    if field is None:
        return False
    annotation = field.annotation
    return annotation is Path or Path in get_args(annotation) or dotted == "model.pretrained"
