"""`profile_model`: where the milliseconds of one prediction go, on the backend that runs it.

End to end, per stage (pre-processing, inference, post-processing), and inside inference per
layer from the backend's own instruments: OpenVINO's performance counters (node, type and the
kernel and precision it ran in), onnxruntime's profiler (node and op type), or forward hooks on
the torch model's modules. Layers are summed by kind too, so "Convolution 41%" or "GridSample
18%" shows what to optimise.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from dfseg.runtime.backends.base import LayerTime
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.predictor import load_predictor
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

PROFILE_PLOT = "profile.png"


class LayerRow(BaseModel):
    """One layer (or one kind of layer): mean milliseconds per image and share of inference."""

    name: str
    kind: str
    precision: str = ""
    ms: float
    share: float


class ProfileReport(BaseModel):
    """What `dfseg profile` measured.

    Attributes:
        artifact, backend, device_info: what ran (resolved precision, threads).
        images, runs: distinct images cycled through and timed predictions (batch 1).
        stages_ms: mean per image of preprocess, inference, postprocess and total.
        layers_ms: the layers' summed time per image; other_ms: inference time the layers do
            not cover (framework glue; torch: code between the timed modules).
        top_layers: the slowest layers; by_kind: every kind, slowest first; by_component: the
            model's parts (backbone, encoder, decoder, mask_head, postprocess), from the layers'
            names.
        plot: the chart written, if any.
    """

    artifact: str
    backend: str
    device_info: dict[str, str]
    images: int
    runs: int
    stages_ms: dict[str, float]
    layers_ms: float
    other_ms: float
    top_layers: list[LayerRow]
    by_kind: list[LayerRow]
    by_component: list[LayerRow] = []
    plot: str | None = None


def profile_model(
    artifact: Path,
    images: Sequence[Path] = (),
    backend: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    runs: int = 20,
    top: int = 15,
    out_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ProfileReport:
    """Profile `runs` batch-1 predictions.

    Args:
        artifact: a model file, export folder or run (see `resolve_artifact`).
        images: real images to cycle through (none: a mid-grey frame of the input size).
        backend, threads, precision: as for `load_predictor`.
        runs: timed predictions after one warm-up.
        top: slowest layers listed.
        out_dir: where to write the chart (None: no chart).
        progress: optional callback, one event per run.
    """
    predictor = load_predictor(
        artifact, backend, threads=threads, precision=precision, profile=True
    )
    height, width = predictor.manifest.preprocessing.input_size
    frames = [read_image_bgr(p) for p in images] or [np.full((height, width, 3), 128, np.uint8)]
    predictor.warmup()  # profiled too: each layer's first call is left out; clocks restart
    started = time.perf_counter()
    for index in range(runs):
        predictor.predict_arrays([frames[index % len(frames)]])
        report(progress, ProgressEvent("profile", index + 1, runs))
    elapsed = time.perf_counter() - started
    layers = [_without_first(layer) for layer in predictor.backend.layer_times()]
    stages = {k: round(v, 3) for k, v in predictor.times.per_image_ms().items()}
    stages["wall"] = round(1000.0 * elapsed / max(1, runs), 3)
    result = _report(str(artifact), predictor.backend.name, predictor.backend.info, len(frames),
                     runs, stages, layers, top)  # fmt: skip
    if out_dir is not None:
        result.plot = str(plot_profile(result, out_dir / PROFILE_PLOT))
    return result


def _without_first(layer: LayerTime) -> LayerTime:
    """The layer's times without its first call (the warm-up)."""
    return LayerTime(layer.name, layer.kind, layer.precision, layer.total_ms - layer.first_ms,
                     max(0, layer.calls - 1))  # fmt: skip


def _report(
    artifact: str,
    backend: str,
    info: dict[str, str],
    images: int,
    runs: int,
    stages: dict[str, float],
    layers: list[LayerTime],
    top: int,
) -> ProfileReport:
    per_image = [(layer, layer.total_ms / max(1, runs)) for layer in layers if layer.calls > 0]
    layers_ms = sum(ms for _, ms in per_image)
    inference = stages.get("inference", 0.0)
    basis = max(inference, layers_ms, 1e-9)  # shares of inference (profiling overhead aside)

    def row(name: str, kind: str, precision: str, ms: float) -> LayerRow:
        return LayerRow(name=name, kind=kind, precision=precision, ms=round(ms, 4),
                        share=round(ms / basis, 4))  # fmt: skip

    slowest = sorted(per_image, key=lambda pair: -pair[1])[:top]
    kinds: dict[str, float] = {}
    components: dict[str, float] = {}
    for layer, ms in per_image:
        kinds[layer.kind] = kinds.get(layer.kind, 0.0) + ms
        part = component_of(layer.name)
        components[part] = components.get(part, 0.0) + ms
    return ProfileReport(
        artifact=artifact, backend=backend, device_info=dict(info), images=images, runs=runs,
        stages_ms=stages, layers_ms=round(layers_ms, 3),
        other_ms=round(max(0.0, inference - layers_ms), 3),
        top_layers=[row(layer.name, layer.kind, layer.precision, ms) for layer, ms in slowest],
        by_kind=[row(kind, kind, "", ms) for kind, ms in sorted(kinds.items(), key=_slowest)],
        by_component=[row(c, c, "", ms) for c, ms in sorted(components.items(), key=_slowest)],
    )  # fmt: skip


def component_of(name: str) -> str:
    """The part of the model a layer belongs to: the first name segment after "model"
    ("/model/decoder/layers.0/..." and "decoder.decoder.layers.0" -> "decoder")."""
    parts = [part for part in re.split(r"[/.]", name) if part]
    if parts and parts[0] == "model":
        parts = parts[1:]
    return parts[0] if parts else "?"


def _slowest(item: tuple[str, float]) -> float:
    return -item[1]


def plot_profile(result: ProfileReport, path: Path) -> Path:
    """Bar charts: the stages of a prediction, and inference time by kind of layer."""
    from dfseg.metrics.plots.canvas import new_figure, save_png

    figure = new_figure(12, 4.5)
    stages, kinds = figure.subplots(1, 2, width_ratios=[1, 2])
    names = ["preprocess", "inference", "postprocess"]
    stages.bar(names, [result.stages_ms.get(n, 0.0) for n in names], color="#4477aa")
    stages.set_ylabel("ms per image")
    stages.set_title(f"{result.backend}: {result.stages_ms.get('total', 0):.1f} ms per image")
    shown = result.by_kind[:12][::-1]
    kinds.barh([k.kind for k in shown], [k.ms for k in shown], color="#cc6677")
    for index, kind in enumerate(shown):
        kinds.text(kind.ms, index, f" {100 * kind.share:.0f}%", va="center", fontsize=8)
    kinds.set_xlabel("ms per image")
    kinds.set_title("inference by kind of layer")
    return save_png(figure, path)
