"""DetectionPostprocess: top-k semantics, pixel boxes, mask logits, batch-free ONNX export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from dfseg.nn import mask_logits
from dfseg.nn.postprocess import DetectionPostprocess, fast_nms_keep


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


def test_fast_nms_drops_same_class_overlaps_only() -> None:
    boxes = torch.tensor(
        [[[0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 9.5], [0, 0, 10, 5], [50, 50, 60, 60]]],
        dtype=torch.float32,
    )  # sorted by score; IoU(0, 1) = 0.9, IoU(0, 2) = 0.95, IoU(0, 3) = 0.5
    labels = torch.tensor([[0, 0, 1, 0, 0]])
    keep = fast_nms_keep(boxes, labels, iou_threshold=0.7)
    # 1 overlaps the better 0 of its class; 2 is another class; 3 overlaps too little; 4 is apart
    assert keep.tolist() == [[True, False, True, True, True]]
    assert fast_nms_keep(boxes, labels, iou_threshold=0.95).tolist() == [[True] * 5]


def test_one_label_per_query_takes_each_querys_best_class() -> None:
    outputs = _outputs(2)
    result = DetectionPostprocess(num_top_queries=6, decode="one_per_query")(
        outputs, torch.tensor([[64, 48], [64, 48]])
    )
    for b in range(2):
        best, label = torch.sigmoid(outputs["pred_logits"][b]).max(dim=-1)  # [Q]
        order = torch.argsort(best, descending=True)[:6]
        assert result["query_index"][b].tolist() == order.tolist()  # each query at most once
        assert result["labels"][b].tolist() == label[order].tolist()
        torch.testing.assert_close(result["scores"][b], best[order])


def test_nms_decoding_zeroes_and_sorts_last_what_it_drops() -> None:
    outputs = _outputs(1, queries=12, classes=2)
    outputs["pred_boxes"][0, :6] = torch.tensor([0.5, 0.5, 0.2, 0.2])  # six copies of one box
    for k in range(6, 12):  # and six small boxes apart from each other and from it
        outputs["pred_boxes"][0, k] = torch.tensor([0.05 + 0.15 * (k - 6), 0.1, 0.04, 0.04])
    sizes = torch.tensor([[64, 64]])
    plain = DetectionPostprocess(num_top_queries=20)(outputs, sizes)
    nms = DetectionPostprocess(num_top_queries=20, decode="nms", nms_iou=0.7)(outputs, sizes)
    kept = nms["scores"][0] > 0
    # of the duplicates, one detection per class survives; the other rows are unchanged
    copies = (plain["query_index"][0] < 6).sum().item()
    labels_of_copies = set(plain["labels"][0][plain["query_index"][0] < 6].tolist())
    assert int(kept.sum()) == 20 - copies + len(labels_of_copies)
    assert not kept[int(kept.sum()) :].any()  # dropped rows come last
    scores = nms["scores"][0]
    assert torch.all(scores[:-1] >= scores[1:])
    rows = zip(
        nms["query_index"][0].tolist(), nms["labels"][0].tolist(), kept.tolist(), strict=True
    )
    survivors = {(q, c) for q, c, k in rows if k}
    pairs = set(zip(plain["query_index"][0].tolist(), plain["labels"][0].tolist(), strict=True))
    assert survivors <= pairs


@pytest.mark.export
@pytest.mark.parametrize("decode", ["topk", "one_per_query", "nms"])
def test_onnx_export_has_a_free_batch_dimension(decode: str) -> None:
    ort = pytest.importorskip("onnxruntime")

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.post = DetectionPostprocess(num_top_queries=6, decode=decode)  # type: ignore[arg-type]

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
