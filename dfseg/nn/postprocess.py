"""Top-k postprocess of D-FINE outputs, exportable to ONNX with a dynamic batch.

Three decodings (`dfseg.config.choices.Decode`), all plain tensor ops with static shapes, so the
exported graph, OpenVINO and TensorRT decode exactly as torch does:
- "topk": the K best (query, class) pairs (D-FINE's own; one query may give several labels);
- "one_per_query": each query's best class, then the K best queries;
- "nms": "topk", then a class-aware Fast NMS (YOLACT): a detection is dropped when a
  higher-scored one of its class overlaps it by more than `nms_iou`. Dropped detections get
  score 0 and sort last (the output keeps K rows; decoders leave score-0 rows out).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.config.choices import Decode
from dfseg.nn.mask_head import mask_logits
from dfseg.ops.boxes import box_cxcywh_to_xyxy


class DetectionPostprocess(nn.Module):
    """sigmoid -> top-K over all (query, class) pairs -> boxes in pixels.

    Every gather index is built from runtime shapes (`expand(-1, -1, n)`), so an exported graph
    works for any batch size.

    Args:
        num_top_queries: K, detections kept per image (<= queries * classes; <= queries for
            "one_per_query").
        decode: how the K are chosen (see the module's docstring).
        nms_iou: overlap above which "nms" drops the lower-scored of two same-class boxes.
    """

    def __init__(
        self, num_top_queries: int = 300, decode: Decode = "topk", nms_iou: float = 0.7
    ) -> None:
        super().__init__()
        self.num_top_queries = num_top_queries
        self.decode = decode
        self.nms_iou = nms_iou

    def forward(self, outputs: dict[str, Tensor], image_sizes_wh: Tensor) -> dict[str, Tensor]:
        """Select the K best detections per image.

        Args:
            outputs: eval outputs of `DFine`: `pred_logits` [B, Q, C] pre-sigmoid,
                `pred_boxes` [B, Q, 4] normalised cxcywh; for segmentation also
                `pred_mask_embeds` [B, Q, D] and `mask_features` [B, D, H/4, W/4].
            image_sizes_wh: [B, 2] (width, height) the boxes are scaled to, e.g. the original
                image sizes.

        Returns:
            `labels` [B, K] int64 (0..C-1), `scores` [B, K] sigmoid scores in descending order,
            `boxes` [B, K, 4] absolute xyxy in the units of `image_sizes_wh`, `query_index`
            [B, K] int64; for segmentation also `mask_logits` [B, K, H/4, W/4] (pre-sigmoid).
        """
        logits = outputs["pred_logits"]
        probabilities = torch.sigmoid(logits)  # [B, Q, C]
        if self.decode == "one_per_query":
            best, best_label = probabilities.max(dim=-1)  # [B, Q]
            scores, query_index = torch.topk(best, self.num_top_queries, dim=-1)  # [B, K]
            labels = best_label.gather(1, query_index)
        else:
            num_classes = logits.shape[-1]
            scores, index = torch.topk(probabilities.flatten(1), self.num_top_queries, dim=-1)
            query_index = torch.div(index, num_classes, rounding_mode="floor")  # [B, K]
            labels = index - query_index * num_classes  # [B, K]; `%` trips older TensorRT
        scale = torch.cat([image_sizes_wh, image_sizes_wh], dim=-1).unsqueeze(1)  # [B, 1, 4]
        boxes_xyxy = box_cxcywh_to_xyxy(outputs["pred_boxes"]) * scale.to(logits.dtype)
        boxes = boxes_xyxy.gather(1, query_index.unsqueeze(-1).expand(-1, -1, 4))  # [B, K, 4]
        if self.decode == "nms":
            keep = fast_nms_keep(boxes, labels, self.nms_iou)  # [B, K]
            scores, order = torch.topk(scores * keep.to(scores.dtype), scores.shape[1], dim=-1)
            labels = labels.gather(1, order)
            query_index = query_index.gather(1, order)
            boxes = boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))
        result = {"labels": labels, "scores": scores, "boxes": boxes, "query_index": query_index}
        if "pred_mask_embeds" in outputs:
            embeds = outputs["pred_mask_embeds"]
            chosen = embeds.gather(1, query_index.unsqueeze(-1).expand(-1, -1, embeds.shape[-1]))
            result["mask_logits"] = mask_logits(chosen, outputs["mask_features"])
        return result


def max_detections(num_queries: int, num_classes: int, decode: Decode) -> int:
    """The most detections a decoding can give per image: every (query, class) pair, or one per
    query for "one_per_query"."""
    return num_queries * (1 if decode == "one_per_query" else num_classes)


def fast_nms_keep(boxes_xyxy: Tensor, labels: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware Fast NMS over detections sorted by descending score.

    Detection j is dropped when some higher-scored detection i < j of the same label overlaps it
    with IoU > `iou_threshold` (unlike greedy NMS, i may itself be dropped: Fast NMS trades a
    little extra suppression for one matrix operation).

    Args:
        boxes_xyxy: [B, K, 4]. labels: [B, K].

    Returns:
        [B, K] bool, True for the detections kept.
    """
    top_left = torch.max(boxes_xyxy[:, :, None, :2], boxes_xyxy[:, None, :, :2])  # [B, K, K, 2]
    bottom_right = torch.min(boxes_xyxy[:, :, None, 2:], boxes_xyxy[:, None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # [B, K, K]
    area = (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]) * (boxes_xyxy[..., 3] - boxes_xyxy[..., 1])
    union = area[:, :, None] + area[:, None, :] - inter
    iou = inter / union.clamp(min=1e-9)
    order = torch.arange(boxes_xyxy.shape[1], device=boxes_xyxy.device)
    earlier = order[:, None] < order[None, :]  # [K, K]: (i, j) with i ranked above j
    same_label = labels[:, :, None] == labels[:, None, :]  # [B, K, K]
    overlap = torch.where(earlier & same_label, iou, torch.zeros_like(iou))
    return overlap.max(dim=1).values <= iou_threshold
