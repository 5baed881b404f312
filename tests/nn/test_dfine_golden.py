"""Official D-FINE reference outputs (sizes n and s) reproduced from the official checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dfine_test_helpers import align_by_anchor, float32_noise, reference_input

from dfseg.nn import DFine, build_model
from dfseg.nn.checkpoint import load_checkpoint
from dfseg.nn.postprocess import DetectionPostprocess

pytestmark = pytest.mark.shared

# README tolerances: f32 features 1e-4; S features are stored as f16.
FEATURE_TOLERANCE = {"n": 1e-4, "s": 1e-3}
QUERY_TOLERANCE = 1e-4  # README: pred_logits / pred_boxes after aligning queries


def _ema_checkpoint(size_dir: Path, tmp_path: Path) -> Path:
    state_dict = torch.load(size_dir / "checkpoint.pth", weights_only=True)["model"]
    path = tmp_path / "ema.pth"
    torch.save({"ema": {"module": state_dict, "updates": 1000}, "last_epoch": 3}, path)
    return path


@pytest.fixture(scope="module", params=["n", "s"])
def loaded(request: pytest.FixtureRequest, reference_dir: Path) -> tuple[str, DFine, Path]:
    size = request.param
    model = build_model(size, 80)
    report = load_checkpoint(model, reference_dir / size / "checkpoint.pth", strict=True)
    assert report.container == "model" and not report.reinitialized and not report.ignored
    return size, model.eval(), reference_dir / size


def _assert_queries_match(
    outputs: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], noise: dict[str, float]
) -> None:
    """Same selected anchors; per query, outputs within the README's 1e-4, or within twice this
    machine's own float32 rounding noise where that is larger (`float32_noise`)."""
    ours, theirs = outputs["enc_topk_ind"][0], expected["enc_topk_ind"][0]
    assert set(ours.tolist()) == set(theirs.tolist())
    for key in ("pred_logits", "pred_boxes"):
        tolerance = max(QUERY_TOLERANCE, 2 * noise[key])
        torch.testing.assert_close(
            align_by_anchor(outputs[key][0], ours),
            align_by_anchor(expected[key][0], theirs),
            atol=tolerance,
            rtol=QUERY_TOLERANCE,
        )


def _assert_post_multiset(
    post: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], count: int
) -> None:
    """Greedy match on equal label, |score diff| < 1e-4, box diff < 0.25 px (README)."""
    ours = list(
        zip(post["labels"][0].tolist(), post["scores"][0].tolist(), post["boxes"][0], strict=True)
    )
    used: set[int] = set()
    for label, score, box in zip(
        expected["post_labels"][0][:count].tolist(),
        expected["post_scores"][0][:count].tolist(),
        expected["post_boxes"][0][:count],
        strict=True,
    ):
        match = next(
            (
                i
                for i, (l2, s2, b2) in enumerate(ours)
                if i not in used
                and l2 == label
                and abs(s2 - score) < 1e-4
                and float((b2 - box).abs().max()) < 0.25
            ),
            None,
        )
        assert match is not None, f"no match for label {label} score {score}"
        used.add(match)


def test_eval_matches_official(loaded: tuple[str, DFine, Path]) -> None:
    size, model, size_dir = loaded
    expected = torch.load(size_dir / "expected_eval.pt", weights_only=True)
    images = reference_input(size_dir)
    with torch.inference_mode():
        stages = model.backbone(images)
        encoded = model.encoder(stages)
        outputs = model(images, return_enc_topk_ind=True)
    tolerance = FEATURE_TOLERANCE[size]
    for ours, theirs in [
        *zip(stages, expected["backbone_feats"], strict=True),
        *zip(encoded, expected["encoder_feats"], strict=True),
    ]:
        torch.testing.assert_close(ours.to(theirs.dtype), theirs, atol=tolerance, rtol=tolerance)
    _assert_queries_match(outputs, expected, float32_noise(model, images))
    post = DetectionPostprocess(300)(outputs, expected["orig_target_sizes"])
    robust = {"n": 298, "s": 299}[size]  # README: selection_margins.post_robust_k_gap_gt_1e-05
    _assert_post_multiset(post, expected, robust)


def test_ema_container_loads_strict_and_matches(
    loaded: tuple[str, DFine, Path], tmp_path: Path
) -> None:
    size, reference_model, size_dir = loaded
    model = build_model(size, 80)
    report = load_checkpoint(model, _ema_checkpoint(size_dir, tmp_path), strict=True)
    assert report.container == "ema"
    for key, value in reference_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_deploy_matches_official_deploy(loaded: tuple[str, DFine, Path]) -> None:
    size, eval_model, size_dir = loaded
    model = build_model(size, 80)
    load_checkpoint(model, size_dir / "checkpoint.pth", strict=True)
    model.deploy()
    expected = torch.load(size_dir / "expected_deploy.pt", weights_only=True)
    images = reference_input(size_dir)
    with torch.inference_mode():
        outputs = model(images, return_enc_topk_ind=True)
        encoded = model.encoder(model.backbone(images))
    _assert_queries_match(outputs, expected, float32_noise(eval_model, images))
    eval_reference = torch.load(size_dir / "expected_eval.pt", weights_only=True)
    tolerance = FEATURE_TOLERANCE[size]
    for ours, theirs in zip(encoded, eval_reference["encoder_feats"], strict=True):
        torch.testing.assert_close(ours.to(theirs.dtype), theirs, atol=tolerance, rtol=tolerance)
    post = DetectionPostprocess(300)(outputs, expected["orig_target_sizes"])
    _assert_post_multiset(post, expected, {"n": 298, "s": 299}[size])


def test_anchors_equal_official_buffers(reference_dir: Path) -> None:
    for size in ("n", "s"):
        state_dict = torch.load(reference_dir / size / "checkpoint.pth", weights_only=True)["model"]
        decoder = build_model(size, 80).decoder
        expected = state_dict["decoder.anchors"]
        assert torch.equal(torch.isinf(decoder.anchors), torch.isinf(expected))
        # torch.log's vectorised kernel differs by 1 ulp between CPU families (AVX-512 vs AVX2
        # paths), so a bitwise comparison passes only on the CPU the reference was made on
        finite = torch.isfinite(expected)
        torch.testing.assert_close(decoder.anchors[finite], expected[finite], atol=5e-7, rtol=0)
        assert torch.equal(decoder.valid_mask, state_dict["decoder.valid_mask"])
