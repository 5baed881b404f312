"""`RawOutputs`: what every backend returns for a batch, before the shared post-processing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RawOutputs:
    """Top-K detections per image (or a semantic model's class maps), as the exported graph (or
    the torch module) computes them.

    Attributes:
        labels: [B, K] int64 class ids.
        scores: [B, K] float32 sigmoid scores, descending per image.
        boxes: [B, K, 4] float32 xyxy in network-input pixels.
        mask_logits: [B, K, H/4, W/4] float32 pre-sigmoid masks over the input, or None.
        semantic: semantic models: [B, C, H, W] float32 class logits or [B, H, W] uint8 class
            ids (argmax export) at the network input; labels, scores and boxes then have K = 0.
    """

    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    mask_logits: np.ndarray | None = None
    semantic: np.ndarray | None = None

    @classmethod
    def from_semantic(cls, semantic: np.ndarray) -> RawOutputs:
        """A semantic model's outputs (no detections)."""
        batch = len(semantic)
        return cls(
            labels=np.zeros((batch, 0), np.int64),
            scores=np.zeros((batch, 0), np.float32),
            boxes=np.zeros((batch, 0, 4), np.float32),
            semantic=semantic,
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def image(self, index: int) -> RawOutputs:
        """The outputs of one image, batch dimension kept ([1, K, ...])."""
        s = slice(index, index + 1)
        return self.rows(s)

    def rows(self, rows: slice) -> RawOutputs:
        """The outputs of a slice of the batch."""
        masks = None if self.mask_logits is None else self.mask_logits[rows]
        semantic = None if self.semantic is None else self.semantic[rows]
        return RawOutputs(self.labels[rows], self.scores[rows], self.boxes[rows], masks, semantic)

    @staticmethod
    def concatenate(parts: list[RawOutputs]) -> RawOutputs:
        """The outputs of consecutive batches as one."""

        def joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            return None if arrays[0] is None else np.concatenate(arrays)  # type: ignore[arg-type]

        return RawOutputs(
            labels=np.concatenate([p.labels for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            boxes=np.concatenate([p.boxes for p in parts]),
            mask_logits=joined([p.mask_logits for p in parts]),
            semantic=joined([p.semantic for p in parts]),
        )
