"""nn test fixtures: every test starts from the same RNG state and flushes denormals.

Untrained models in eval mode (default batch-norm statistics) shrink activations into denormal
floats, which CPUs process 10-100x slower; without this, test durations depend on which random
weights the test order happens to draw.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_without_denormals() -> Iterator[None]:
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
