"""`Detections`: what every backend returns for one image, in original-image pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Detections:
    """Detections of one image, sorted by descending score.

    Attributes:
        boxes_xyxy: [N, 4] float32, absolute pixels of the original image.
        scores: [N] float32 in [0, 1].
        labels: [N] int64 contiguous class ids.
        class_names: the model's full id -> name list (not per detection; see `names`).
        image_size: (height, width) of the original image.
        masks: [N, H, W] bool at the original image size for segmentation models, else None.
        image: the [H, W, 3] uint8 BGR image predicted, when the `Predictor` was called on it
            (`plot()` draws on it); None otherwise.
        track_ids: [N] int64 track id of each detection (>= 1; -1: not tracked) when the
            detections come from tracking a video, else None.
        class_map: semantic models: [H, W] uint8 class id of every original pixel (and no
            detections); None otherwise.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image_size: tuple[int, int]
    masks: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False)
    track_ids: np.ndarray | None = None
    class_map: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[int(i)] for i in self.labels]

    @classmethod
    def empty(
        cls, class_names: list[str], image_size: tuple[int, int], with_masks: bool
    ) -> Detections:
        h, w = image_size
        return cls(
            boxes_xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            labels=np.zeros((0,), np.int64),
            class_names=class_names,
            image_size=image_size,
            masks=np.zeros((0, h, w), bool) if with_masks else None,
        )

    def select(self, keep: np.ndarray) -> Detections:
        """A new Detections with only the rows picked by a bool mask or index array."""
        return Detections(
            boxes_xyxy=self.boxes_xyxy[keep],
            scores=self.scores[keep],
            labels=self.labels[keep],
            class_names=self.class_names,
            image_size=self.image_size,
            masks=None if self.masks is None else self.masks[keep],
            meta=dict(self.meta),
            image=self.image,
            track_ids=None if self.track_ids is None else self.track_ids[keep],
            class_map=self.class_map,
        )

    def class_pixels(self) -> dict[str, int]:
        """Semantic models: pixels of each class present, by name, most first ({} otherwise)."""
        if self.class_map is None:
            return {}
        counts = np.bincount(self.class_map.ravel(), minlength=len(self.class_names))
        order = np.argsort(-counts, kind="stable")
        return {
            self.class_names[i]: int(counts[i])
            for i in order
            if counts[i] and i < len(self.class_names)
        }

    def polygons(
        self, min_area: float = 1.0, simplify_tolerance: float = 0.0
    ) -> list[list[np.ndarray]]:
        """Outlines of each detection's mask (segmentation models; [] per detection otherwise).

        Args:
            min_area: mask components with fewer pixels are dropped.
            simplify_tolerance: Douglas-Peucker tolerance in pixels (0: exact outline).

        Returns:
            Per detection, its rings ([K, 2] float32 absolute (x, y) pixels of the original
            image), largest first; see `dfseg.ops.masks.mask_to_polygons`.
        """
        from dfseg.ops.masks import mask_to_polygons  # cv2: not needed for `dfseg --help`

        if self.masks is None:
            return [[] for _ in range(len(self))]
        return [mask_to_polygons(mask, min_area, simplify_tolerance) for mask in self.masks]

    @property
    def xy(self) -> list[np.ndarray]:
        """Each detection's mask outline as one [K, 2] float32 (x, y) array in original pixels:
        the largest ring (Ultralytics' `masks.xy`); [0, 2] for a detection without a mask."""
        return [rings[0] if rings else np.zeros((0, 2), np.float32) for rings in self.polygons()]

    def plot(self, image: np.ndarray | None = None, line_width: int | None = None) -> np.ndarray:
        """The image with masks, boxes and "name score" labels drawn (Ultralytics' `plot()`);
        for semantic models, each class's pixels tinted in its colour with a legend.

        Args:
            image: [H, W, 3] uint8 BGR of the original image; None: the image the predictor
                was called on (`image`).
            line_width: box lines in pixels (None: from the image size).

        Returns:
            A new [H, W, 3] uint8 BGR array (`cv2.imwrite`-ready; `[..., ::-1]` for RGB).
        """
        from dfseg.ops.draw import draw_class_map, draw_detections  # cv2: not at import

        base = self.image if image is None else image
        if base is None:
            raise ValueError(
                "no image to draw on: pass plot(image), or get the detections by calling the "
                "predictor on the image"
            )
        if self.class_map is not None:
            return draw_class_map(base, self.class_map, self.class_names)
        return draw_detections(
            base, self.boxes_xyxy, self.scores, self.labels, self.class_names, self.masks,
            line_width, self.track_ids,
        )  # fmt: skip

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready list: one dict per detection (box xyxy pixels, score, label id and name;
        `track_id` too when tracked)."""
        records = [
            {
                "label": int(label),
                "name": self.class_names[int(label)],
                "score": round(float(score), 5),
                "box_xyxy": [round(float(v), 2) for v in box],
            }
            for box, score, label in zip(self.boxes_xyxy, self.scores, self.labels, strict=True)
        ]
        if self.track_ids is not None:
            for record, track_id in zip(records, self.track_ids, strict=True):
                record["track_id"] = int(track_id)
        return records
