"""`export.quantize.scope`: which layers NNCF may turn into INT8. The scope's layers get no
quantizer in front of them; everything else is quantized as before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfseg.export.errors import ExportError
from dfseg.export.quantize import SCOPE_PATTERNS, QuantizeSpec, ignored_scope, quantize_ir
from dfseg.export.report import ExportReport

pytestmark = pytest.mark.export


def _openvino_model(exported: ExportReport) -> Any:
    import openvino as ov

    folder = next(Path(a.folder) for a in exported.artifacts if a.format == "openvino")
    return ov.Core().read_model(str(folder / "model.xml"))


def _quantized_consumers(model: Any) -> list[str]:
    """Names of the operations an INT8 quantizer (FakeQuantize) feeds."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() == "FakeQuantize":
            for target in op.output(0).get_target_inputs():
                names.append(target.get_node().get_friendly_name())
    return names


def _in_scope(name: str, scope: str) -> bool:
    return any(re.match(pattern, name) for pattern in SCOPE_PATTERNS[scope])


def test_scopes_name_the_decoder_and_nothing_of_the_backbone(exported: ExportReport) -> None:
    model = _openvino_model(exported)
    backbone_scope = set(ignored_scope(model, "backbone"))
    attention = set(ignored_scope(model, "no_attention"))
    assert ignored_scope(model, "all") == []
    assert attention and attention < backbone_scope
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    assert {kinds[name] for name in attention} >= {"GridSample", "Softmax", "MatMul"}
    assert not any("/backbone/" in name or "/encoder/" in name for name in backbone_scope)


@pytest.mark.parametrize("scope", ["all", "backbone"])
def test_nncf_puts_no_quantizer_in_front_of_the_scope(exported: ExportReport, scope: str) -> None:
    pytest.importorskip("nncf")
    model = _openvino_model(exported)
    rng = np.random.default_rng(0)
    calibration = [rng.random((1, 3, 256, 256), dtype=np.float32) for _ in range(2)]
    quantized = quantize_ir(model, calibration, lambda x: x, QuantizeSpec("basic", scope=scope))
    consumers = _quantized_consumers(quantized)
    assert any("/backbone/" in name for name in consumers)  # the backbone is INT8 either way
    in_decoder = [name for name in consumers if _in_scope(name, "backbone")]
    if scope == "all":
        assert in_decoder  # NNCF quantizes decoder matmuls when allowed
    else:
        assert in_decoder == []


def test_a_scope_that_matches_nothing_is_an_error() -> None:
    pytest.importorskip("nncf")
    import openvino as ov
    from openvino import opset13 as ops

    image = ops.parameter([1, 3, 8, 8], np.float32, name="images")
    weights = ops.constant(np.ones((4, 3, 3, 3), np.float32))
    conv = ops.convolution(image, weights, [1, 1], [1, 1], [1, 1], [1, 1])
    model = ov.Model([conv], [image], "plain")
    with pytest.raises(ExportError, match="no operation of the model matched"):
        quantize_ir(model, [np.zeros((1, 3, 8, 8), np.float32)], lambda x: x,
                    QuantizeSpec("basic", scope="backbone"))  # fmt: skip


def test_the_scope_comes_from_the_project_and_the_command_line_overrides_it() -> None:
    from dfseg.analysis.exceptions import AnalysisError
    from dfseg.analysis.quantize import quantize_options
    from dfseg.config.deploy import QuantizeConfig

    assert quantize_options(None).scope == "backbone"
    assert quantize_options(QuantizeConfig(scope="backbone")).scope == "backbone"
    assert quantize_options(QuantizeConfig(scope="backbone"), scope="no_attention").scope == (
        "no_attention"
    )
    with pytest.raises(AnalysisError, match="scope"):
        quantize_options(None, scope="decoder")
