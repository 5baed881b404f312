"""Finding a dataset's class names when the project file does not give them."""

from __future__ import annotations

from pathlib import Path

import yaml

from dfseg.data.formats.issues import DatasetError

CLASS_LIST_FILES = ("classes.txt", "labels/classes.txt", "obj.names")
DATA_YAML_FILES = ("data.yaml", "dataset.yaml", "data.yml")


def class_name_candidates(root: Path) -> list[Path]:
    """Where class names are looked for, in order."""
    return [root / name for name in (*CLASS_LIST_FILES, *DATA_YAML_FILES)]


def find_class_names(root: Path) -> tuple[list[str], Path] | None:
    """Class names from the first of `class_name_candidates(root)` that exists.

    Returns:
        (names in id order, the file they came from), or None when no candidate exists.

    Raises:
        DatasetError: a candidate exists but holds no usable names.
    """
    for path in class_name_candidates(root):
        if not path.is_file():
            continue
        if path.suffix in (".yaml", ".yml"):
            return read_yaml_names(path), path
        return read_class_list(path), path
    return None


def read_class_list(path: Path) -> list[str]:
    """One class name per line (blank lines ignored), id = line order."""
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise DatasetError(f"{path}: the class list is empty; write one class name per line")
    return names


def read_yaml_names(path: Path) -> list[str]:
    """`names` of an Ultralytics data.yaml: a list, or an {id: name} mapping with ids 0..N-1."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as error:
        raise DatasetError(f"{path}: not valid YAML: {error}") from error
    names = content.get("names") if isinstance(content, dict) else None
    if isinstance(names, dict):
        try:
            ids = sorted(int(key) for key in names)
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{path}: `names` keys must be integer class ids") from error
        if ids != list(range(len(ids))):
            raise DatasetError(f"{path}: `names` ids must be 0..{len(ids) - 1} without gaps")
        by_id = {int(key): value for key, value in names.items()}
        names = [by_id[i] for i in ids]
    if not isinstance(names, list) or not names:
        raise DatasetError(
            f"{path}: no class names; expected `names: [cat, dog]` or `names: {{0: cat, 1: dog}}`"
        )
    return [str(name) for name in names]
