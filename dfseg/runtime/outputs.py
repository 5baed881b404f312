"""`RawOutputs`: what every backend returns for a batch, before the shared post-processing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RawOutputs:
    """Top-K detections per image, as the exported graph (or the torch module) computes them.

    Attributes:
        labels: [B, K] int64 class ids.
        scores: [B, K] float32 sigmoid scores, descending per image.
        boxes: [B, K, 4] float32 xyxy in network-input pixels.
        mask_logits: [B, K, H/4, W/4] float32 pre-sigmoid masks over the input, or None.
    """

    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    mask_logits: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def image(self, index: int) -> RawOutputs:
        """The outputs of one image, batch dimension kept ([1, K, ...])."""
        s = slice(index, index + 1)
        masks = None if self.mask_logits is None else self.mask_logits[s]
        return RawOutputs(self.labels[s], self.scores[s], self.boxes[s], masks)
