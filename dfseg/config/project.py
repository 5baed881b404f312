"""`ProjectConfig`: the one YAML project file every command reads.

Sections: project, data, model, train, augment, export, infer, bench. Unknown keys anywhere are
errors (with did-you-mean); relative paths resolve against the project file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from dfseg.config.base import Section, resolve_path
from dfseg.config.deploy import BenchConfig, ExportConfig, InferConfig
from dfseg.config.train import AugmentConfig, TrainConfig

Task = Literal["detect", "segment"]
ModelSize = Literal["n", "s", "m", "l", "x"]
LabelFormat = Literal["yolo", "coco", "voc"]
ResolvedPath = Annotated[Path, BeforeValidator(resolve_path)]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProjectSection(Section):
    """Who this project is and where its outputs go."""

    name: str = Field("project", description="Project name; outputs go to <output>/<name>/.")
    task: Task = Field("detect", description="detect (boxes) or segment (boxes + instance masks).")
    output: ResolvedPath = Field(
        Path("runs"), validate_default=True, description="Output root, relative to this file."
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError(
                "must be a plain folder name (letters, digits, '.', '_', '-'), e.g. 'pets'"
            )
        return value


class SplitSection(Section):
    """Fractions of images per split; they must add up to 1."""

    train: float = Field(0.8, ge=0.0, le=1.0)
    val: float = Field(0.2, ge=0.0, le=1.0)
    test: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = 42
    ignore_negatives: bool = Field(False, description="Leave background images out of the split.")

    @model_validator(mode="after")
    def _ratios_add_up(self) -> SplitSection:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must equal 1 (got {self.train} + {self.val} + {self.test}"
                f" = {total:g})"
            )
        if self.train <= 0:
            raise ValueError("train must be > 0")
        return self


def _parse_image_size(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return value


ImageSize = Annotated[tuple[int, int], BeforeValidator(_parse_image_size)]


class DataSection(Section):
    """The user's dataset, read in place (never modified)."""

    path: ResolvedPath = Field(
        description="Dataset folder (or COCO JSON file), relative to this file."
    )
    format: LabelFormat = "yolo"
    annotations: ResolvedPath | None = Field(
        None, description="COCO only: the JSON file when the folder holds several."
    )
    classes: list[str] | dict[int, str] = Field(
        default_factory=list,
        description="Class names in id order, or an {id: name} mapping with ids 0..N-1.",
    )
    image_size: ImageSize = Field((640, 640), description="Network input (height, width).")
    keep_ratio: bool = Field(False, description="Letterbox (keep aspect ratio) instead of stretch.")
    split: SplitSection = Field(default_factory=SplitSection)

    @field_validator("classes")
    @classmethod
    def _classes_are_contiguous(
        cls, value: list[str] | dict[int, str]
    ) -> list[str] | dict[int, str]:
        names = _class_names(value)
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"class names must be unique; repeated: {duplicates}")
        if any(not n.strip() for n in names):
            raise ValueError("class names must not be empty")
        return value

    @field_validator("image_size")
    @classmethod
    def _size_is_multiple_of_32(cls, value: tuple[int, int]) -> tuple[int, int]:
        for side in value:
            if side < 64 or side % 32:
                nearest = max(64, round(side / 32) * 32)
                raise ValueError(
                    f"each side must be a multiple of 32 and >= 64 (got {list(value)}; "
                    f"nearest valid side: {nearest})"
                )
        return value

    @property
    def class_names(self) -> list[str]:
        return _class_names(self.classes)


def _class_names(value: list[str] | dict[int, str]) -> list[str]:
    if isinstance(value, list):
        return list(value)
    ids = sorted(value)
    if ids != list(range(len(ids))):
        hint = " (YOLO and dfseg class ids are 0-based)" if ids and ids[0] == 1 else ""
        raise ValueError(f"class ids must be 0..{len(ids) - 1} without gaps; got {ids}{hint}")
    return [value[i] for i in ids]


# `model.pretrained` values that name official weights to download rather than a file.
PRETRAINED_DOWNLOADS = ("coco", "obj2coco")


class ModelSection(Section):
    """Which D-FINE size to build and where its starting weights come from."""

    size: ModelSize = "s"
    pretrained: str | None = Field(
        None,
        description=(
            "Starting weights: a checkpoint path (official D-FINE or dfseg), 'coco' or "
            "'obj2coco' to download the official weights, or null to train from scratch."
        ),
    )

    def pretrained_path(self, base_dir: Path | None) -> Path | None:
        """The checkpoint path when `pretrained` names a file, else None."""
        if self.pretrained is None or self.pretrained in PRETRAINED_DOWNLOADS:
            return None
        path = Path(self.pretrained).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return path


class ProjectConfig(Section):
    """The whole project file."""

    project: ProjectSection = Field(default_factory=ProjectSection)
    data: DataSection
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    infer: InferConfig = Field(default_factory=InferConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _validate_every_section(cls, data: object) -> object:
        """Missing or empty (`train:`) sections are validated too, so their paths resolve."""
        if isinstance(data, dict):
            data = dict(data)
            for name in cls.model_fields:
                if name != "data" and data.get(name) is None:
                    data[name] = {}
        return data

    @property
    def source(self) -> Path | None:
        """The project file this was loaded from (None when built in Python)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Folder relative paths resolve against (the project file's folder, else cwd)."""
        return self.source.parent if self.source is not None else Path.cwd()

    @property
    def output_root(self) -> Path:
        """`<project.output>/<project.name>`: split lists and run folders live here."""
        return self.project.output / self.project.name

    @property
    def class_names(self) -> list[str]:
        return self.data.class_names

    @property
    def split_dir(self) -> Path:
        return self.output_root / "split"
