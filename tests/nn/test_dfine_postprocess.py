"""DetectionPostprocess: top-k semantics, pixel boxes, mask logits, batch-free ONNX export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from dfseg.nn import mask_logits
from dfseg.nn.postprocess import DetectionPostprocess


def _outputs(
    batch: int, queries: int = 10, classes: int = 4, with_masks: bool = False
) -> dict[str, torch.Tensor]:
    torch.manual_seed(batch)
    outputs = {
        "pred_logits": torch.randn(batch, queries, classes),
        "pred_boxes": torch.rand(batch, queries, 4) * 0.5 + 0.25,
    }
    if with_masks:
        outputs["pred_mask_embeds"] = torch.randn(batch, queries, 8)
        outputs["mask_features"] = torch.randn(batch, 8, 6, 5)
    return outputs


def test_topk_over_query_class_pairs_matches_brute_force() -> None:
    outputs = _outputs(2)
    sizes = torch.tensor([[640, 480], [320, 200]])
    result = DetectionPostprocess(num_top_queries=7)(outputs, sizes)
    for b in range(2):
        scores = torch.sigmoid(outputs["pred_logits"][b])  # [Q, C]
        pairs = sorted(
            ((float(scores[q, c]), q, c) for q in range(10) for c in range(4)), reverse=True
        )[:7]
        assert result["labels"][b].tolist() == [c for _, _, c in pairs]
        assert result["query_index"][b].tolist() == [q for _, q, _ in pairs]
        torch.testing.assert_close(result["scores"][b], torch.tensor([s for s, _, _ in pairs]))
        width, height = sizes[b].tolist()
        for k, (_, q, _) in enumerate(pairs):
            cx, cy, w, h = outputs["pred_boxes"][b, q].tolist()
            expected = [
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            ]
            torch.testing.assert_close(result["boxes"][b, k], torch.tensor(expected))


def test_mask_logits_only_for_selected_queries() -> None:
    outputs = _outputs(2, with_masks=True)
    result = DetectionPostprocess(num_top_queries=5)(outputs, torch.tensor([[50, 60], [50, 60]]))
    assert result["mask_logits"].shape == (2, 5, 6, 5)
    all_masks = mask_logits(outputs["pred_mask_embeds"], outputs["mask_features"])  # [B, Q, H, W]
    for b in range(2):
        torch.testing.assert_close(result["mask_logits"][b], all_masks[b, result["query_index"][b]])


@pytest.mark.export
def test_onnx_export_has_a_free_batch_dimension() -> None:
    ort = pytest.importorskip("onnxruntime")

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.post = DetectionPostprocess(num_top_queries=6)

        def forward(self, logits, boxes, embeds, features, sizes):  # type: ignore[no-untyped-def]
            out = self.post(
                {
                    "pred_logits": logits,
                    "pred_boxes": boxes,
                    "pred_mask_embeds": embeds,
                    "mask_features": features,
                },
                sizes,
            )
            return out["labels"], out["boxes"], out["scores"], out["mask_logits"]

    one = _outputs(1, with_masks=True)
    three = _outputs(3, with_masks=True)
    names = ["logits", "boxes", "embeds", "features", "sizes"]
    buffer = io.BytesIO()
    torch.onnx.export(
        Wrapper().eval(),
        (*one.values(), torch.tensor([[64, 48]])),
        buffer,
        dynamo=False,
        opset_version=17,
        input_names=names,
        output_names=["labels", "pred_boxes", "scores", "masks"],
        dynamic_axes={
            name: {0: "batch"} for name in [*names, "labels", "pred_boxes", "scores", "masks"]
        },
    )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    sizes = torch.tensor([[64, 48], [32, 32], [100, 80]])
    feed = {n: t.numpy() for n, t in zip(names, [*three.values(), sizes], strict=True)}
    got = session.run(None, feed)
    expected = Wrapper()(*three.values(), sizes)
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)
