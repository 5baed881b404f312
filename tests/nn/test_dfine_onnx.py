"""ONNX export of the eval forward (legacy TorchScript exporter, opset 17, dynamic batch):
onnxruntime equals torch and a batch of 2 equals two single-image runs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from dfine_test_helpers import conditioned_model

from dfseg.nn import DFine

pytestmark = pytest.mark.export


class _Flat(torch.nn.Module):
    """Tuple outputs for the exporter, plus the anchor of every query for alignment."""

    def __init__(self, model: DFine, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(images, return_enc_topk_ind=True)
        return tuple(outputs[name] for name in self.names)


def _check_export(size: str, task: str, image_size: tuple[int, int], deploy: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = conditioned_model(size, task, image_size)
    if deploy:
        model.deploy()
    names = ["pred_logits", "pred_boxes", "enc_topk_ind"]
    if task == "segment":
        names += ["pred_mask_embeds", "mask_features"]
    wrapper = _Flat(model, names).eval()
    images = torch.rand(2, 3, *image_size)
    buffer = io.BytesIO()
    torch.onnx.export(
        wrapper, (images[:1],), buffer, dynamo=False, opset_version=17,
        input_names=["images"], output_names=names,
        dynamic_axes={name: {0: "batch"} for name in ["images", *names]},
    )  # fmt: skip
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    pair = dict(zip(names, session.run(None, {"images": images.numpy()}), strict=True))
    with torch.inference_mode():
        reference = {k: v.numpy() for k, v in zip(names, wrapper(images), strict=True)}
    for index in range(2):
        single = dict(
            zip(
                names, session.run(None, {"images": images[index : index + 1].numpy()}), strict=True
            )
        )
        for name in names:  # batch 2 == two batch-1 runs, bit for bit up to kernel rounding
            np.testing.assert_allclose(pair[name][index], single[name][0], rtol=1e-5, atol=1e-5)
        _assert_matches_torch(pair, reference, index, names)


def _assert_matches_torch(
    onnx: dict[str, np.ndarray], torch_out: dict[str, np.ndarray], index: int, names: list[str]
) -> None:
    """Query order can differ on near-tied encoder scores: compare rows by anchor."""
    ours, theirs = torch_out["enc_topk_ind"][index], onnx["enc_topk_ind"][index]
    common = np.intersect1d(ours, theirs)
    assert len(common) >= len(ours) - 2  # the selected set is stable up to boundary ties
    row_ours = {a: i for i, a in enumerate(ours)}
    row_theirs = {a: i for i, a in enumerate(theirs)}
    rows_a = [row_ours[a] for a in common]
    rows_b = [row_theirs[a] for a in common]
    for name in ("pred_logits", "pred_boxes", "pred_mask_embeds"):
        if name in names:
            np.testing.assert_allclose(
                onnx[name][index][rows_b], torch_out[name][index][rows_a], rtol=1e-4, atol=1e-4
            )
    if "mask_features" in names:
        np.testing.assert_allclose(
            onnx["mask_features"][index], torch_out["mask_features"][index], rtol=1e-4, atol=1e-4
        )


def test_n_exports_at_640() -> None:
    _check_export("n", "detect", (640, 640), deploy=True)


@pytest.mark.parametrize("size,task", [("n", "segment"), ("s", "detect"), ("s", "segment")])
def test_small_sizes_export_at_320(size: str, task: str) -> None:
    _check_export(size, task, (320, 320), deploy=task == "detect")


@pytest.mark.slow
@pytest.mark.parametrize("size", ["m", "l", "x"])
def test_large_sizes_export_at_320(size: str) -> None:
    _check_export(size, "detect", (320, 320), deploy=True)
