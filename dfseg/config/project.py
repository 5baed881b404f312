"""`ProjectConfig`: the one YAML project file every command reads.

Sections: project, data, model, train, augment, export, infer, bench. Unknown keys anywhere are
errors (with did-you-mean); relative paths resolve against the project file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dfseg.config.base import Section, resolve_path
from dfseg.config.choices import Decode
from dfseg.config.deploy import BenchConfig, ExportConfig, InferConfig
from dfseg.config.tasks import Task
from dfseg.config.train import AugmentConfig, TrainConfig
from dfseg.config.variants import MODEL_VARIANTS, PRETRAINED_NAMES, ModelSize

LabelFormat = Literal["yolo", "coco", "voc", "masks"]
ResolvedPath = Annotated[Path, BeforeValidator(resolve_path)]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProjectSection(Section):
    """Who this project is and where its outputs go."""

    name: str = Field("project", description="Project name; outputs go to <output>/<name>/.")
    task: Task = Field(
        "detect",
        description="detect (boxes), segment (boxes + instance masks) or semantic (a class per "
        "pixel).",
    )
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


SPLIT_NAMES = ("train", "val", "test")


class SplitSection(Section):
    """How images are assigned to train/val/test: ratios (a seeded, stratified random split) or
    the dataset's own splits (folders or list files, relative to the dataset folder).

        split: {train: 0.8, val: 0.2, test: 0.0, seed: 42}   # ratios, adding up to 1
        split: {train: train, val: valid, test: test}       # a Roboflow export's folders
        split: {train: ImageSets/Main/train.txt, val: ImageSets/Main/val.txt}   # list files
    """

    train: float | str = Field(0.8, description="Ratio, or the train folder / list file.")
    val: float | str = Field(0.2, description="Ratio, or the val folder / list file.")
    test: float | str = Field(0.0, description="Ratio, or the test folder / list file.")
    seed: int = 42
    ignore_negatives: bool = Field(False, description="Leave background images out of the split.")
    merge_predefined: bool = Field(
        False,
        description="The dataset has split folders but ratios are given: mix all its images "
        "into one random split (shipped test images may then end up in training).",
    )
    duplicate_similarity: float | None = Field(
        0.95,
        ge=0,
        le=1.01,
        description="Near-duplicate images (grey 16x16 thumbnails correlated at least this much) "
        "and exact copies go into one split together; above 1: exact copies only; null: split "
        "images independently.",
    )

    @model_validator(mode="after")
    def _ratios_or_sources(self) -> SplitSection:
        values = {name: getattr(self, name) for name in SPLIT_NAMES}
        named = {name: value for name, value in values.items() if isinstance(value, str)}
        if named:
            given = self.model_fields_set  # an omitted split keeps its default ratio: absent
            numbers = [n for n in values if n not in named and n in given and values[n] != 0]
            if numbers or "train" not in named or any(not v.strip() for v in named.values()):
                raise ValueError(
                    "give either ratios for train/val/test (numbers adding up to 1) or the "
                    "dataset's own split folders / list files (train required), not both; "
                    f"got {values}"
                )
            return self
        ratios = [float(v) for v in values.values()]
        if any(not 0.0 <= r <= 1.0 for r in ratios):
            raise ValueError(f"split ratios must be within [0, 1], got {values}")
        total = sum(ratios)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must equal 1 (got {self.train} + {self.val} + {self.test}"
                f" = {total:g})"
            )
        if ratios[0] <= 0:
            raise ValueError("train must be > 0")
        return self

    @property
    def sources(self) -> dict[str, str] | None:
        """Split name -> folder or list file (relative to the dataset folder), or None for
        ratios."""
        named = {n: getattr(self, n) for n in SPLIT_NAMES if isinstance(getattr(self, n), str)}
        return named or None

    @property
    def ratios(self) -> tuple[float, float, float]:
        """(train, val, test) fractions; ValueError when the section names sources."""
        if self.sources is not None:
            raise ValueError("this split names the dataset's own splits, not ratios")
        return float(self.train), float(self.val), float(self.test)

    @property
    def ratios_given(self) -> bool:
        """Whether the project file (or an override) set a ratio itself, rather than relying on
        the defaults."""
        return self.sources is None and bool(set(SPLIT_NAMES) & self.model_fields_set)


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
    cache: Literal["none", "ram", "disk"] = Field(
        "none",
        description="Keep decoded training images between epochs: ram (refused when it would "
        "not fit), disk (.npy files in <output>/<name>/cache, keyed by file content) or none.",
    )
    tile: int | None = Field(
        None,
        ge=32,
        description="Train on tiles: each sample is a random window of this many original "
        "pixels cut from an image larger than that (instances cut at its borders), and such an "
        "image counts once per tile in an epoch; for models used with `infer --tile` on large "
        "images. Validation stays on whole images (compare with `dfseg val --tile`).",
    )
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


class ModelSection(Section):
    """Which D-FINE size to build and where its starting weights come from (the sizes and their
    official weights: `dfseg.config.variants.MODEL_VARIANTS`)."""

    size: ModelSize = "s"
    decode: Decode = Field(
        "nms",
        description=(
            "How detections are chosen from the queries, in validation, export and every backend "
            "alike: topk (query, class) pairs, one_per_query (best class of each query), or nms "
            "(topk, then class-aware Fast NMS at nms_iou; the default: a DETR trained briefly "
            "on a small dataset still predicts duplicates, see benchmarks/bench_decode.py)."
        ),
    )
    nms_iou: float = Field(
        0.5, gt=0, le=1, description="Overlap above which nms drops the lower-scored box."
    )
    semantic_context: Literal["none", "ppm"] = Field(
        "none",
        description="semantic: a pyramid-pooling context block on the coarsest encoder level.",
    )
    num_queries: int = Field(
        100,
        ge=1,
        le=300,
        description="Decoder queries: the most objects found per image (official 300; no weight "
        "depends on it). 100 with train.query_groups 3 trains as many queries as D-FINE's 300 "
        "and deploys a 3x smaller decoder; raise it for images with more objects (dfseg check "
        "and training say when images hold more).",
    )
    pretrained: str | None = Field(
        None,
        description=(
            "Starting weights: a checkpoint path (official D-FINE or dfseg), the name of official "
            "weights to download ('coco', 'obj2coco', 'obj365'), or null to train from scratch."
        ),
    )

    @field_validator("pretrained")
    @classmethod
    def _official_weights_exist_for_the_size(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        size = info.data.get("size")  # absent when the size itself is invalid
        if value in PRETRAINED_NAMES and size in MODEL_VARIANTS:
            available = MODEL_VARIANTS[size].pretrained
            if value not in available:
                raise ValueError(
                    f"there are no official {value!r} weights for size {size!r} (it has: "
                    f"{', '.join(available)}); pick another size or weights"
                )
        return value

    @property
    def pretrained_download(self) -> str | None:
        """The official weights' name when `pretrained` names a download, else None."""
        return self.pretrained if self.pretrained in PRETRAINED_NAMES else None

    def pretrained_path(self, base_dir: Path | None) -> Path | None:
        """The checkpoint path when `pretrained` names a file, else None."""
        if self.pretrained is None or self.pretrained in PRETRAINED_NAMES:
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

    @model_validator(mode="after")
    def _task_fits_data_and_metric(self) -> ProjectConfig:
        semantic = self.project.task == "semantic"
        if self.data.format == "masks" and not semantic:
            raise ValueError(
                "data.format masks holds per-pixel class masks: set project.task: semantic "
                "(detect and segment need YOLO, COCO or VOC instance labels)"
            )
        metric = self.train.decision_metric
        if semantic and metric != "miou":
            if "decision_metric" in self.train.model_fields_set:
                raise ValueError(
                    f"train.decision_metric {metric!r} is a detection metric; task semantic "
                    "picks best.pt by miou (set decision_metric: miou or leave it out)"
                )
            self.train.decision_metric = "miou"
        if not semantic and metric == "miou":
            raise ValueError(
                "train.decision_metric miou is for project.task: semantic; use map50_95, "
                "map50 or f1"
            )
        return self

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

    @property
    def cache_dir(self) -> Path:
        """Where `data.cache: disk` keeps decoded images (shared by the project's runs)."""
        return self.output_root / "cache"
