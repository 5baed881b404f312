"""HGNetv2 variants: stage strides and channels, frozen batch norm."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn.hgnetv2 import HGNETV2_ARCHS, HGNetv2, max_pool_2x2_stride1
from dfseg.nn.norm import FrozenBatchNorm2d, freeze_batch_norm


@pytest.mark.parametrize("arch", sorted(HGNETV2_ARCHS))
def test_stage_outputs_at_strides_4_to_32(arch: str) -> None:
    backbone = HGNetv2(arch, use_lab=arch in ("B0", "B1", "B2"), return_idx=(1, 2, 3)).eval()
    with torch.inference_mode():
        stages = backbone(torch.rand(1, 3, 64, 96), all_stages=True)
        returned = backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(s.shape[1:]) for s in stages] == [
        (channels, 64 // stride, 96 // stride)
        for channels, stride in zip(HGNETV2_ARCHS[arch].stage_channels, (4, 8, 16, 32), strict=True)
    ]
    assert [s.shape[1] for s in returned] == list(backbone.out_channels)


def test_frozen_batch_norm_matches_eval_batch_norm() -> None:
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm2d(6)
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    frozen = freeze_batch_norm(norm)
    assert isinstance(frozen, FrozenBatchNorm2d)
    assert list(frozen.parameters()) == []
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(frozen(x), norm.eval()(x))
    # Official L/X checkpoints saved with trainable BN still load (counter dropped).
    state = norm.state_dict()
    assert "num_batches_tracked" in state
    frozen.load_state_dict(state)


def test_stem_pool_equals_official_ceil_mode_max_pool() -> None:
    x = torch.randn(2, 16, 33, 41)
    expected = torch.nn.functional.max_pool2d(x, kernel_size=2, stride=1, ceil_mode=True)
    assert torch.equal(max_pool_2x2_stride1(x), expected)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(max_pool_2x2_stride1(channels_last), expected)
