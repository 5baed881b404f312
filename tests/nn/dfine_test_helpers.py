"""Shared helpers for the nn tests: reference inputs, query alignment, well-conditioned models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dfseg.nn import DFine, build_model

REFERENCE_SIZES = ("n", "s")


def float32_noise(model: DFine, images: Tensor) -> dict[str, float]:
    """How far this machine's float32 eval outputs are from its float64 ones (max |diff| of
    `pred_logits` and `pred_boxes`, queries aligned by anchor): the rounding noise the perturbed
    reference weights amplify. It depends on the CPU's kernels (on an AVX2-only CPU, S logits
    move by 2e-3, more than the reference README's 1e-4, which holds on AVX-512 CPUs like the
    one the reference was made on: the reference is itself 2e-3 away from float64 there)."""
    import copy

    double = copy.deepcopy(model).double()
    with torch.inference_mode():
        single_out = model(images, return_enc_topk_ind=True)
        double_out = double(images.double(), return_enc_topk_ind=True)
    noise = {}
    for key in ("pred_logits", "pred_boxes"):
        ours = align_by_anchor(single_out[key][0].double(), single_out["enc_topk_ind"][0])
        exact = align_by_anchor(double_out[key][0], double_out["enc_topk_ind"][0])
        noise[key] = float((ours - exact).abs().max())
    return noise


def reference_input(size_dir: Path) -> Tensor:
    """The reference recipe: RGB uint8 PNG -> [1, 3, H, W] float32 in [0, 1], no resize."""
    rgb = np.array(Image.open(size_dir / "input.png").convert("RGB"))
    return (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)[None]


def align_by_anchor(values: Tensor, topk_ind: Tensor) -> Tensor:
    """Rows of `values` [Q, ...] sorted by the anchor index [Q] each query came from."""
    return values[topk_ind.argsort()]


def conditioned_model(
    size: str,
    task: str = "detect",
    image_size: tuple[int, int] = (320, 320),
    num_classes: int = 80,
    seed: int = 0,
) -> DFine:
    """A randomly initialised model whose outputs are non-trivial and numerically tame.

    Batch-norm statistics are set from one batch of random images (the default ones shrink
    activations into denormals), with variances floored so that near-constant channels are not
    blown up (which would make rounding differences between kernels grow to 1e-3 at the
    output); the zero-initialised box/LQE heads get small random weights so that refinement
    actually changes the boxes. Returned in eval mode.
    """
    torch.manual_seed(seed)
    model = build_model(size, num_classes, task=task, image_size=image_size)  # type: ignore[arg-type]
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    with torch.no_grad():
        model.train()
        model(torch.rand(2, 3, *image_size))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.clamp_(min=0.3)
        for name, parameter in model.decoder.named_parameters():
            if parameter.is_floating_point() and ("bbox_head" in name or "lqe" in name):
                parameter.add_(torch.randn_like(parameter) * 0.02)
    return model.eval()
