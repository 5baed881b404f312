"""`resize_batch` (uint8 for backends that convert in their graph) agrees with
`preprocess_batch` (float tensors) pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from dfseg.runtime.preprocess import preprocess_batch, resize_batch
from dfseg.structures.manifest import Preprocessing


@pytest.mark.parametrize("keep_ratio,rect", [(False, False), (True, False), (True, True)])
def test_uint8_batches_convert_to_the_float_batches(keep_ratio: bool, rect: bool) -> None:
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, shape, dtype=np.uint8) for shape in [(90, 200, 3), (300, 120, 3)]
    ]
    preprocessing = Preprocessing(input_size=(128, 160), keep_ratio=keep_ratio)
    floats, float_params = preprocess_batch(images, preprocessing, rect)
    uint8, uint8_params = resize_batch(images, preprocessing, rect)
    assert uint8.dtype == np.uint8 and uint8.shape == (2, *floats.shape[2:], 3)
    assert uint8_params == float_params
    converted = uint8[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(converted, floats)
