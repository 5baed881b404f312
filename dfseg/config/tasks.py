"""The tasks (`project.task`): one table of what each means, read by every layer.

Layers branch on a task's facts, never on its name: the dataset rasterises instance masks when
`instance_masks`, the model adds its mask head, the criterion its mask losses, evaluation adds
the mask metrics (`metric_groups`), best.pt and the confidence threshold follow
`decision_group`, the export graph has `outputs`. A new task is a new row here plus the pieces
that are really new in each layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Task = Literal["detect", "segment", "semantic"]
MetricGroup = Literal["box", "mask"]

# The results.csv / metric-name suffix of each metric group (Ultralytics' convention).
GROUP_SUFFIXES: dict[str, str] = {"box": "B", "mask": "M"}
# pycocotools' iou_type of each metric group.
GROUP_IOU_TYPES: dict[str, Literal["bbox", "segm"]] = {"box": "bbox", "mask": "segm"}


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, for every layer.

    Attributes:
        name: the `project.task` value.
        description: one line for help texts.
        instance_masks: per-instance masks: the dataset rasterises them, the model has a mask
            head, the criterion mask losses, predictions carry masks.
        metric_groups: the metric groups evaluated, boxes first ("box", "mask").
        outputs: the exported graph's outputs, in order.
        semantic: per-pixel classes: labels are class regions (one pseudo-instance per class
            present in an image, `dfseg.data.semantic`), the model has a semantic head instead
            of the decoder, the criterion is per-pixel, evaluation reports mIoU.
    """

    name: str
    description: str
    instance_masks: bool
    metric_groups: tuple[MetricGroup, ...]
    outputs: tuple[str, ...]
    semantic: bool = False

    @property
    def rasterises_masks(self) -> bool:
        """Whether the dataset rasterises (and augments) masks: instance masks, or the class
        regions of a semantic task."""
        return self.instance_masks or self.semantic

    @property
    def decision_group(self) -> MetricGroup:
        """The metric group that picks best.pt and the confidence threshold (the last one: the
        task's own output, e.g. masks for instance segmentation)."""
        if not self.metric_groups:
            raise ValueError(f"task {self.name!r} has no box or mask metrics (it reports mIoU)")
        return self.metric_groups[-1]


TASKS: dict[str, TaskSpec] = {
    "detect": TaskSpec(
        name="detect",
        description="boxes",
        instance_masks=False,
        metric_groups=("box",),
        outputs=("labels", "boxes", "scores"),
    ),
    "segment": TaskSpec(
        name="segment",
        description="boxes + instance masks",
        instance_masks=True,
        metric_groups=("box", "mask"),
        outputs=("labels", "boxes", "scores", "mask_logits"),
    ),
    "semantic": TaskSpec(
        name="semantic",
        description="a class per pixel",
        instance_masks=False,
        metric_groups=(),
        outputs=("semantic_logits",),
        semantic=True,
    ),
}

if tuple(TASKS) != get_args(Task):  # the Literal is what config errors list
    raise AssertionError("Task must list exactly the tasks of TASKS")


def task_spec(task: str) -> TaskSpec:
    """The registered spec of `task`; ValueError naming the valid tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    return TASKS[task]
