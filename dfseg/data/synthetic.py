"""`generate_synthetic_dataset`: a small, learnable YOLO-seg dataset of shapes for demos and tests.

Shapes (circle, square, triangle, star, ...) of varied size, rotation and colour lie on textured
backgrounds (noise, gradients, stripes, checks) and may occlude each other. Each label polygon is
the VISIBLE part of its shape, traced from masks; shapes that would be mostly hidden are not drawn
at all (so nothing visible is left unlabelled). Some images are backgrounds. Class is decided by
geometry only (colours are random), so a detector must learn shapes.

Output (YOLO-seg): `images/NNNNN.jpg`, `labels/NNNNN.txt`, `classes.txt`, and `synthetic.json`
recording the parameters; calling again with the same parameters reuses the existing files.
Image i depends only on (seed, i), so a larger dataset extends a smaller one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfseg.data.synthetic_shapes import SHAPES, draw_background, shape_polygon
from dfseg.errors import DfsegError
from dfseg.ops.masks import mask_to_polygons, merge_rings, polygon_to_mask
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

MARKER_FILE = "synthetic.json"
DEFAULT_CLASSES = ("circle", "square", "triangle", "star")
MIN_VISIBLE_FRACTION = 0.6  # a shape less visible than this is not drawn
GENERATE_TASK = "generate"


class SyntheticDatasetError(DfsegError):
    """Bad generator parameters, or an output folder that is not ours to write into."""


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines the generated files (recorded in `synthetic.json`)."""

    num_images: int
    image_size: tuple[int, int]  # (height, width)
    classes: tuple[str, ...]
    seed: int
    max_objects: int
    min_object_size: int
    background_fraction: float

    def problems(self) -> list[str]:
        height, width = self.image_size
        checks = [
            (self.num_images >= 1, f"num_images must be >= 1 (got {self.num_images})"),
            (min(height, width) >= 32, f"image_size sides must be >= 32 (got {self.image_size})"),
            (
                bool(self.classes) and all(name in SHAPES for name in self.classes),
                f"classes must be some of {sorted(SHAPES)} (got {list(self.classes)})",
            ),
            (len(set(self.classes)) == len(self.classes), "classes must be unique"),
            (self.max_objects >= 1, f"max_objects must be >= 1 (got {self.max_objects})"),
            (
                4 <= self.min_object_size <= min(height, width) // 2,
                f"min_object_size must be in 4..{min(height, width) // 2} "
                f"(got {self.min_object_size})",
            ),
            (
                0.0 <= self.background_fraction < 1.0,
                f"background_fraction must be in [0, 1) (got {self.background_fraction})",
            ),
        ]
        return [message for ok, message in checks if not ok]

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def generate_synthetic_dataset(
    out_dir: Path,
    num_images: int = 200,
    image_size: tuple[int, int] = (192, 256),
    classes: Sequence[str] = DEFAULT_CLASSES,
    seed: int = 0,
    max_objects: int = 5,
    min_object_size: int = 16,
    background_fraction: float = 0.1,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write (or reuse) a synthetic YOLO-seg dataset.

    Args:
        out_dir: output folder; must be empty, missing, or an earlier synthetic dataset.
        num_images: number of images.
        image_size: (height, width) in pixels, each >= 32.
        classes: shape names from `SHAPES`, in class id order.
        seed: the same parameters give byte-identical files.
        max_objects: at most this many shapes per image (before dropping hidden ones).
        min_object_size: smallest shape extent in pixels (keep >= ~12 to stay learnable).
        background_fraction: share of images without any shape.
        overwrite: replace an earlier synthetic dataset made with other parameters.
        progress: optional callback, one event every few images.

    Returns:
        `out_dir` (its labels are normalised polygons `class x1 y1 x2 y2 ...`).

    Raises:
        SyntheticDatasetError: bad parameters, or `out_dir` holds other files.
    """
    params = SyntheticParams(
        num_images=int(num_images),
        image_size=(int(image_size[0]), int(image_size[1])),
        classes=tuple(classes),
        seed=int(seed),
        max_objects=int(max_objects),
        min_object_size=int(min_object_size),
        background_fraction=float(background_fraction),
    )
    problems = params.problems()
    if problems:
        raise SyntheticDatasetError("; ".join(problems))
    if _prepare_folder(out_dir, params, overwrite):
        return out_dir
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    for index in range(num_images):
        image, rows = render_image(index, params)
        name = f"{index:05d}"
        cv2.imwrite(str(out_dir / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (out_dir / "labels" / f"{name}.txt").write_text("".join(rows))
        if progress is not None and ((index + 1) % 16 == 0 or index + 1 == num_images):
            report(progress, ProgressEvent(GENERATE_TASK, completed=index + 1, total=num_images))
    (out_dir / "classes.txt").write_text("\n".join(params.classes) + "\n")
    (out_dir / MARKER_FILE).write_text(json.dumps(params.to_json(), indent=2) + "\n")
    return out_dir


def _prepare_folder(out_dir: Path, params: SyntheticParams, overwrite: bool) -> bool:
    """True when `out_dir` already holds this exact dataset (nothing to do)."""
    marker = out_dir / MARKER_FILE
    if marker.is_file():
        same = json.loads(marker.read_text()) == params.to_json()
        if same and _complete(out_dir, params.num_images):
            return True
        if not same and not overwrite:
            raise SyntheticDatasetError(
                f"{out_dir} holds a synthetic dataset made with other parameters; pass "
                "overwrite=True (--overwrite) to replace it, or choose another folder."
            )
        for ours in ("images", "labels"):  # the marker proves these folders are ours
            shutil.rmtree(out_dir / ours, ignore_errors=True)
        marker.unlink()
        return False
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SyntheticDatasetError(
            f"{out_dir} is not empty and is not a dfseg synthetic dataset; choose an empty or "
            "new folder (dfseg never deletes other files)."
        )
    return False


def _complete(out_dir: Path, num_images: int) -> bool:
    return all(
        (out_dir / folder / f"{index:05d}{suffix}").is_file()
        for folder, suffix in (("images", ".jpg"), ("labels", ".txt"))
        for index in range(num_images)
    )


def render_image(index: int, params: SyntheticParams) -> tuple[np.ndarray, list[str]]:
    """Image `index` of a dataset: ([H, W, 3] uint8 BGR image, YOLO-seg label rows)."""
    height, width = params.image_size
    rng = np.random.default_rng([params.seed, index])
    image = draw_background(rng, height, width)
    if rng.random() < params.background_fraction:
        return _add_noise(image, rng), []
    shapes = []
    for _ in range(int(rng.integers(1, params.max_objects + 1))):
        class_id = int(rng.integers(len(params.classes)))
        name = params.classes[class_id]
        polygon = shape_polygon(name, rng, height, width, params.min_object_size)
        shapes.append((class_id, polygon_to_mask([polygon], height, width).astype(bool)))
    shapes, visible = _drop_hidden(shapes)
    scale = np.array([width, height], dtype=np.float32)
    rows = []
    for (class_id, mask), seen in zip(shapes, visible, strict=True):
        image[mask] = _shape_colour(rng, image, mask)
        ring = merge_rings(mask_to_polygons(seen, min_area=4, simplify_tolerance=0.4))
        if len(ring) >= 3:
            values = (ring / scale).clip(0.0, 1.0).ravel()
            rows.append(f"{class_id} " + " ".join(f"{v:.6f}" for v in values) + "\n")
    return _add_noise(image, rng), rows


def _visibility(shapes: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """Visible part of each mask when drawn in order (later shapes on top)."""
    if not shapes:
        return []
    visible: list[np.ndarray] = []
    covered = np.zeros_like(shapes[0][1])  # [H, W] bool
    for _, mask in reversed(shapes):
        visible.append(mask & ~covered)
        covered |= mask
    return visible[::-1]


def _drop_hidden(
    shapes: list[tuple[int, np.ndarray]],
) -> tuple[list[tuple[int, np.ndarray]], list[np.ndarray]]:
    """Remove shapes that would be mostly hidden; returns the kept shapes and visible masks."""
    while True:
        visible = _visibility(shapes)
        fractions = [
            seen.sum() / max(int(mask.sum()), 1)
            for (_, mask), seen in zip(shapes, visible, strict=True)
        ]
        if not shapes or min(fractions) >= MIN_VISIBLE_FRACTION:
            return shapes, visible
        # dropping the most hidden shape can only make the others more visible
        del shapes[int(np.argmin(fractions))]


def _shape_colour(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A saturated colour that stands out from the background under the shape."""
    under = image[mask].reshape(-1, 3).mean(0) if mask.any() else np.zeros(3)
    colour = np.zeros(3)
    for _ in range(8):
        hue, saturation, value = (
            rng.integers(0, 180),
            rng.integers(150, 256),
            rng.integers(150, 256),
        )
        hsv = np.array([[[hue, saturation, value]]], dtype=np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)
        if np.abs(colour - under).sum() > 150:
            break
    return colour.astype(np.uint8)


def _add_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform pixel noise of +-10 levels (integer maths: fast at any image size)."""
    noise = rng.integers(-10, 11, image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
