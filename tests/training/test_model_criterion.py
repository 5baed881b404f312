"""End to end: dfseg's D-FINE N in training mode -> criterion -> one AdamW step lowers the loss."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from dfseg.nn import build_model
from dfseg.training.criterion import build_criterion

IMAGE_SIZE = 256  # the smallest square size whose N anchors (16x16 + 8x8) cover 300 queries
NUM_CLASSES = 3
# Small enough that the step stays in the first-order regime: a larger one can reorder the
# encoder's top-k queries and change the matching, which makes a single step's effect a lottery.
LEARNING_RATE = 1e-6


def _batch() -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Two dim noise images with bright class-coloured rectangles, their boxes and masks."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 0.2
    objects = [
        [((0.3, 0.3, 0.2, 0.3), 0), ((0.7, 0.6, 0.3, 0.2), 2)],
        [((0.5, 0.5, 0.4, 0.4), 1)],
    ]
    targets = []
    for image, image_objects in enumerate(objects):
        masks = torch.zeros(len(image_objects), IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
        for index, ((cx, cy, w, h), label) in enumerate(image_objects):
            x1, x2 = int((cx - w / 2) * IMAGE_SIZE), int((cx + w / 2) * IMAGE_SIZE)
            y1, y2 = int((cy - h / 2) * IMAGE_SIZE), int((cy + h / 2) * IMAGE_SIZE)
            masks[index, y1:y2, x1 + (x2 - x1) // 4 : x2] = 1  # not the whole box
            images[image, label, y1:y2, x1:x2] += 0.8
        targets.append(
            {
                "labels": torch.tensor([label for _, label in image_objects]),
                "boxes": torch.tensor([box for box, _ in image_objects]),
                "masks": masks,
            }
        )
    return images, targets


@pytest.mark.slow  # ~5-15 s per task on 2 busy CPU cores (the first forward is slow)
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_one_adamw_step_lowers_the_loss(task: str) -> None:
    torch.manual_seed(0)
    model = build_model("n", NUM_CLASSES, task=task, image_size=(IMAGE_SIZE, IMAGE_SIZE)).train()
    criterion = build_criterion(NUM_CLASSES, task)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    images, targets = _batch()

    def total_loss() -> tuple[Tensor, dict[str, Tensor]]:
        torch.manual_seed(1234)  # the same denoising queries before and after the step
        losses = criterion(model(images, targets=targets), targets)
        return torch.stack(list(losses.values())).sum(), losses

    before, losses = total_loss()
    expected_mask_terms = 2 * (1 + 2 + 3) if task == "segment" else 0  # final, 2 aux, 3 dn
    assert len(losses) == 38 + expected_mask_terms
    assert all(torch.isfinite(value) for value in losses.values())

    optimizer.zero_grad()
    before.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    if task == "segment":
        head_grads = [p.grad for p in model.mask_head.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in head_grads)
    optimizer.step()

    with torch.no_grad():
        after, _ = total_loss()
    assert after.item() < before.item()
