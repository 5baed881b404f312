"""Parameter counts and state-dict listings of every size against the official D-FINE models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dfseg.config.variants import MODEL_VARIANTS
from dfseg.nn import build_model
from dfseg.nn.norm import FrozenBatchNorm2d

# Official parameter counts (80 classes), from the D-FINE configs.
OFFICIAL_PARAMETERS = {
    "n": 3_782_693,
    "s": 10_321_877,
    "m": 19_590_064,
    "l": 31_244_152,
    "x": 62_621_560,
}


def _listing(model: torch.nn.Module) -> list[tuple[str, str, str]]:
    return [(k, str(tuple(v.shape)), str(v.dtype)) for k, v in model.state_dict().items()]


def _official_listing(path: Path) -> list[tuple[str, str, str]]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [(key, shape, dtype) for key, shape, dtype in rows]


def test_every_official_size_is_registered() -> None:
    assert sorted(MODEL_VARIANTS) == sorted(OFFICIAL_PARAMETERS)


@pytest.mark.parametrize("size", list(MODEL_VARIANTS))
def test_parameter_count_matches_official(size: str) -> None:
    model = build_model(size, 80)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETERS[size]


@pytest.mark.shared
@pytest.mark.parametrize("size", list(MODEL_VARIANTS))
def test_state_dict_keys_shapes_and_order_match_official(size: str, reference_dir: Path) -> None:
    model = build_model(size, 80)
    official = _official_listing(reference_dir / "keys" / f"dfine_{size}_state_dict_keys.txt")
    assert _listing(model) == official


@pytest.mark.shared
@pytest.mark.parametrize("size", ["n", "s"])
def test_deployed_state_dict_matches_official_deploy_listing(
    size: str, reference_dir: Path
) -> None:
    model = build_model(size, 80).deploy()
    official = _official_listing(
        reference_dir / "keys" / f"dfine_{size}_deploy_state_dict_keys.txt"
    )
    assert _listing(model) == official


def test_shared_fdr_parameters_are_one_tensor() -> None:
    decoder = build_model("n", 80).decoder
    assert decoder.up is decoder.decoder.up
    assert decoder.reg_scale is decoder.decoder.reg_scale
    assert decoder.reg_scale.dtype == torch.int64
    assert not decoder.up.requires_grad


@pytest.mark.parametrize("size,frozen", [("s", False), ("l", True)])
def test_large_sizes_freeze_backbone_stem_and_norms(size: str, frozen: bool) -> None:
    backbone = build_model(size, 80).backbone
    stem_trainable = {p.requires_grad for p in backbone.stem.parameters()}
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    has_frozen = any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())
    assert stem_trainable == {not frozen}
    assert has_bn is not frozen and has_frozen is frozen
    assert all(p.requires_grad for p in backbone.stages.parameters())
