"""A deterministic stand-in for a trained detector, for testing what sits around the model
(tiling, tracking, video pipelines) with a detector whose answers are known.

`BlobBackend` is a real `Backend` behind a real `Predictor` (the shared pre- and
post-processing run as for any model): it finds bright, saturated blobs (value and saturation
above 0.8, as `bright_colour` draws them) in the network input and reports each connected blob
of at least `min_pixels` input pixels as class 0 with score 0.9, with its mask. Like a real
model it misses objects that shrink below its resolution and sees two touching objects as one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfseg.runtime.backends import Backend, BackendOptions
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.runtime.predictor import Predictor
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing

TOP_K = 50
SCORE = 0.9


def bright_colour(hue: int) -> tuple[int, int, int]:
    """A BGR colour the blob detector sees (OpenCV hue 0..179)."""
    bgr = cv2.cvtColor(np.array([[[hue, 235, 245]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


class BlobBackend(Backend):
    name = "blob"

    def __init__(self, manifest: ArtifactManifest, min_pixels: int = 12) -> None:
        super().__init__(Path("blob-detector"), manifest, BackendOptions())
        self.min_pixels = min_pixels
        self.calls = 0

    @property
    def fixed_batch(self) -> int | None:
        return None

    def run(self, images: np.ndarray) -> RawOutputs:  # [B, 3, H, W] RGB 0..1
        self.calls += 1
        batch, _, height, width = images.shape
        labels = np.zeros((batch, TOP_K), np.int64)
        scores = np.zeros((batch, TOP_K), np.float32)
        boxes = np.zeros((batch, TOP_K, 4), np.float32)
        masks = np.full((batch, TOP_K, height // 4, width // 4), -20.0, np.float32)
        for b in range(batch):
            rgb = images[b]
            value, low = rgb.max(0), rgb.min(0)
            saturation = (value - low) / np.maximum(value, 1e-6)
            foreground = ((value > 0.8) & (saturation > 0.8)).astype(np.uint8)
            count, components, stats, _ = cv2.connectedComponentsWithStats(foreground, 8)
            blobs = [c for c in range(1, count) if stats[c, cv2.CC_STAT_AREA] >= self.min_pixels]
            blobs.sort(key=lambda c: -stats[c, cv2.CC_STAT_AREA])
            for k, component in enumerate(blobs[:TOP_K]):
                x, y, w, h = stats[component, :4]
                boxes[b, k] = [x, y, x + w, y + h]
                scores[b, k] = SCORE
                small = cv2.resize(
                    (components == component).astype(np.float32), (width // 4, height // 4),
                    interpolation=cv2.INTER_AREA,
                )  # fmt: skip
                masks[b, k] = np.where(small > 0.5, 20.0, -20.0)
        return RawOutputs(labels, scores, boxes, masks)


def blob_predictor(input_size: int = 256, min_pixels: int = 12, conf: float = 0.5) -> Predictor:
    """A `Predictor` over `BlobBackend` for a one-class ("blob") segmentation model taking
    `input_size` square inputs (stretched, as dfseg models by default)."""
    manifest = ArtifactManifest(
        format="checkpoint",
        model=ModelDescription(
            size="n", num_classes=1, task="segment", image_size=(input_size, input_size)
        ),
        class_names=["blob"],
        preprocessing=Preprocessing(input_size=(input_size, input_size)),
        threshold=conf,
        top_k=TOP_K,
    )
    return Predictor(BlobBackend(manifest, min_pixels), PostprocessSettings(conf=conf, max_det=100))
