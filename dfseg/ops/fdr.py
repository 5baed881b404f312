"""Fine-grained Distribution Refinement (FDR) math shared by the D-FINE decoder and its losses.

A box edge is predicted as a distribution over `reg_max + 1` bins; the bins' positions are the
non-uniform weighting function W(n). Edge offsets are measured from a reference box in units of
its size divided by `reg_scale` (see `distance_to_box_cxcywh`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dfseg.ops.boxes import box_xyxy_to_cxcywh


def weighting_function(reg_max: int, up: Tensor, reg_scale: Tensor | float) -> Tensor:
    """The bin positions W(n) of the edge distribution.

    Ends at +-2 * up * reg_scale, interior bins at +-(step^i - 1) with
    step = (up * reg_scale + 1) ** (2 / (reg_max - 2)), and 0 at the centre bin.

    Args:
        reg_max: number of bins minus one (32 in D-FINE).
        up: [1] tensor (a learnable-shaped parameter, 0.5 in D-FINE).
        reg_scale: [1] tensor or float (4 for N..L, 8 for X).

    Returns:
        [reg_max + 1] tensor with the dtype and device of `up`, increasing.
    """
    reg_scale_abs = reg_scale.abs() if isinstance(reg_scale, Tensor) else abs(reg_scale)
    upper_inner = up[0].abs() * reg_scale_abs  # [1] (tensor reg_scale) or []
    upper_outer = upper_inner * 2
    step = (upper_inner + 1) ** (2 / (reg_max - 2))
    half = reg_max // 2
    left = [-(step**i) + 1 for i in range(half - 1, 0, -1)]
    right = [step**i - 1 for i in range(1, half)]
    values = [-upper_outer, *left, torch.zeros_like(up[0][None]), *right, upper_outer]
    return torch.cat([v.reshape(1) for v in values]).to(up.dtype)


def distribution_integral(corner_logits: Tensor, bin_values: Tensor) -> Tensor:
    """Expected edge offset of each edge's distribution.

    Args:
        corner_logits: [..., 4 * (reg_max + 1)] logits, edges in (left, top, right, bottom) order.
        bin_values: [reg_max + 1] weighting function W(n).

    Returns:
        [..., 4] expected offsets (in W(n) units).
    """
    num_bins = bin_values.shape[0]
    probs = F.softmax(corner_logits.reshape(-1, num_bins), dim=1)  # [M * 4, bins]
    offsets = F.linear(probs, bin_values.to(probs.device)).reshape(-1, 4)  # [M, 4]
    return offsets.reshape([*corner_logits.shape[:-1], 4])


def distance_to_box_cxcywh(
    points_cxcywh: Tensor, distance: Tensor, reg_scale: Tensor | float
) -> Tensor:
    """Decode edge offsets around reference boxes.

    Each edge sits at (0.5 * reg_scale + d) * size / reg_scale from the reference centre, so d = 0
    reproduces the reference box.

    Args:
        points_cxcywh: [..., 4] reference boxes, normalised cxcywh.
        distance: [..., 4] offsets (left, top, right, bottom) in W(n) units.
        reg_scale: scalar or [1] tensor.

    Returns:
        [..., 4] boxes, normalised cxcywh.
    """
    scale = reg_scale.abs() if isinstance(reg_scale, Tensor) else abs(reg_scale)
    half = 0.5 * scale
    cx, cy, w, h = points_cxcywh.unbind(-1)
    x1 = cx - (half + distance[..., 0]) * (w / scale)
    y1 = cy - (half + distance[..., 1]) * (h / scale)
    x2 = cx + (half + distance[..., 2]) * (w / scale)
    y2 = cy + (half + distance[..., 3]) * (h / scale)
    return box_xyxy_to_cxcywh(torch.stack([x1, y1, x2, y2], -1))


def box_to_distance(
    points_cxcywh: Tensor,
    boxes_xyxy: Tensor,
    reg_max: int,
    reg_scale: Tensor | float,
    up: Tensor,
    eps: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Encode target boxes as fractional bin indices around reference boxes (FGL targets).

    Args:
        points_cxcywh: [N, 4] reference boxes, normalised cxcywh.
        boxes_xyxy: [N, 4] target boxes, normalised xyxy.
        reg_max: number of bins minus one.
        reg_scale: scalar or [1] tensor.
        up: [1] tensor.
        eps: keeps the target index strictly below `reg_max`.

    Returns:
        (target_index [N * 4] float in [0, reg_max - eps], weight_right [N * 4],
        weight_left [N * 4]),
        all detached. The left bin is floor(index), the right bin floor(index) + 1.
    """
    scale = reg_scale.abs() if isinstance(reg_scale, Tensor) else abs(reg_scale)
    unit_w = points_cxcywh[:, 2] / scale + 1e-16
    unit_h = points_cxcywh[:, 3] / scale + 1e-16
    left = (points_cxcywh[:, 0] - boxes_xyxy[:, 0]) / unit_w - 0.5 * scale
    top = (points_cxcywh[:, 1] - boxes_xyxy[:, 1]) / unit_h - 0.5 * scale
    right = (boxes_xyxy[:, 2] - points_cxcywh[:, 0]) / unit_w - 0.5 * scale
    bottom = (boxes_xyxy[:, 3] - points_cxcywh[:, 1]) / unit_h - 0.5 * scale
    offsets = torch.stack([left, top, right, bottom], -1)  # [N, 4]
    index, weight_right, weight_left = _interpolate_onto_bins(offsets, reg_max, scale, up)
    index = index.clamp(min=0, max=reg_max - eps)
    return index.reshape(-1).detach(), weight_right.detach(), weight_left.detach()


def _interpolate_onto_bins(
    offsets: Tensor, reg_max: int, reg_scale: Tensor | float, up: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Left-bin index and linear interpolation weights of each offset on W(n).

    Offsets beyond the first/last bin put all weight on that end bin.
    """
    values = offsets.reshape(-1)  # [M]
    bins = weighting_function(reg_max, up, reg_scale)  # [reg_max + 1]
    left_index = ((bins.unsqueeze(0) - values.unsqueeze(1)) <= 0).sum(dim=1) - 1  # [M]
    index = left_index.float()
    weight_right = torch.zeros_like(index)
    weight_left = torch.zeros_like(index)

    inside = (index >= 0) & (index < reg_max)
    inside_index = index[inside].long()
    left_gap = torch.abs(values[inside] - bins[inside_index])
    right_gap = torch.abs(bins[inside_index + 1] - values[inside])
    weight_right[inside] = left_gap / (left_gap + right_gap)
    weight_left[inside] = 1.0 - weight_right[inside]

    below = index < 0
    weight_right[below] = 0.0
    weight_left[below] = 1.0
    index[below] = 0.0

    above = index >= reg_max
    weight_right[above] = 1.0
    weight_left[above] = 0.0
    index[above] = reg_max - 0.1
    return index, weight_right, weight_left
