"""Top-k postprocess of D-FINE outputs (no NMS), exportable to ONNX with a dynamic batch."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.nn.mask_head import mask_logits
from dfseg.ops.boxes import box_cxcywh_to_xyxy


class DetectionPostprocess(nn.Module):
    """sigmoid -> top-K over all (query, class) pairs -> boxes in pixels.

    Every gather index is built from runtime shapes (`expand(-1, -1, n)`), so an exported graph
    works for any batch size.

    Args:
        num_top_queries: K, detections kept per image (<= queries * classes).
    """

    def __init__(self, num_top_queries: int = 300) -> None:
        super().__init__()
        self.num_top_queries = num_top_queries

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
        num_classes = logits.shape[-1]
        scores, index = torch.topk(torch.sigmoid(logits).flatten(1), self.num_top_queries, dim=-1)
        query_index = torch.div(index, num_classes, rounding_mode="floor")  # [B, K]
        labels = index - query_index * num_classes  # [B, K]; `%` trips older TensorRT
        scale = torch.cat([image_sizes_wh, image_sizes_wh], dim=-1).unsqueeze(1)  # [B, 1, 4]
        boxes_xyxy = box_cxcywh_to_xyxy(outputs["pred_boxes"]) * scale.to(logits.dtype)
        boxes = boxes_xyxy.gather(1, query_index.unsqueeze(-1).expand(-1, -1, 4))  # [B, K, 4]
        result = {"labels": labels, "scores": scores, "boxes": boxes, "query_index": query_index}
        if "pred_mask_embeds" in outputs:
            embeds = outputs["pred_mask_embeds"]
            chosen = embeds.gather(1, query_index.unsqueeze(-1).expand(-1, -1, embeds.shape[-1]))
            result["mask_logits"] = mask_logits(chosen, outputs["mask_features"])
        return result
