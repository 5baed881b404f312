"""model_info: counts, FLOPs and output shapes."""

from __future__ import annotations

from dfseg.nn.info import model_info


def test_detect_info() -> None:
    info = model_info("n", "detect", 80, (320, 320))
    assert info.parameters == 3_782_693
    assert info.trainable_parameters == info.parameters - 2  # up and reg_scale are fixed
    assert info.parameters_by_part["mask_head"] == 0
    assert sum(info.parameters_by_part.values()) == info.parameters
    assert info.output_shapes == {"pred_logits": [1, 300, 80], "pred_boxes": [1, 300, 4]}
    # FLOPs grow with the pixel count (the decoder part does not): 640 costs > 3x 320.
    big = model_info("n", "detect", 80, (640, 640))
    assert 3.0 * info.gflops < big.gflops < 4.0 * info.gflops
    assert abs(sum(big.gflops_by_part.values()) - big.gflops) < 1e-6


def test_segment_info_shapes() -> None:
    info = model_info("s", "segment", 3, (256, 384))
    assert info.output_shapes["mask_features"] == [1, 32, 64, 96]
    assert info.output_shapes["pred_logits"] == [1, 300, 3]
    assert info.parameters_by_part["mask_head"] > 0 and info.gflops_by_part["mask_head"] > 0
