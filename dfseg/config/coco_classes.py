"""The 80 COCO class names in the order of the official D-FINE COCO heads (label 0..79, COCO's
category ids 1..90 without the unused ones), so fine-tuning from an official COCO checkpoint can
keep the class-head rows of the classes a project shares with COCO, matched by name."""

from __future__ import annotations

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


def normalise_class_name(name: str) -> str:
    """'Traffic_Light' and 'traffic-light' both match COCO's 'traffic light'."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def class_rows(project_names: list[str], source_names: list[str]) -> list[int | None]:
    """For each project class, the row of the same-named class in the source's heads (None when
    the source has no such class)."""
    rows = {normalise_class_name(name): row for row, name in enumerate(source_names)}
    return [rows.get(normalise_class_name(name)) for name in project_names]
