"""Training warns when images hold more objects than the decoder has queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfseg.structures import ImageAnnotation
from dfseg.training.setup import crowded_images_message


def _image(objects: int, crowd: int = 0) -> ImageAnnotation:
    total = objects + crowd
    boxes = np.tile(np.array([[1, 1, 5, 5]], np.float32), (total, 1))
    return ImageAnnotation(
        image_path=Path("/nonexistent.jpg"),
        width=10,
        height=10,
        labels=np.zeros(total, np.int64),
        boxes_xyxy=boxes,
        segments=[None] * total,
        iscrowd=np.array([False] * objects + [True] * crowd, dtype=bool),
        difficult=np.zeros(total, bool),
    )


def test_images_within_the_queries_give_no_message() -> None:
    assert crowded_images_message([_image(4), _image(0)], num_queries=4) is None


def test_crowd_regions_do_not_count() -> None:
    assert crowded_images_message([_image(3, crowd=5)], num_queries=4) is None


def test_crowded_images_are_counted_and_the_fix_is_named() -> None:
    message = crowded_images_message([_image(7), _image(5), _image(2)], num_queries=4)
    assert message is not None
    assert message.startswith("2 training image(s)")
    assert "(7 > 4)" in message
    assert "model.num_queries to at least 7" in message
    huge = crowded_images_message([_image(350)], num_queries=100)
    assert huge is not None and "at least 300" in huge
