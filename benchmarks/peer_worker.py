"""One tool's side of `bench_peers.py`, run in that tool's own Python environment.

    python peer_worker.py prepare TOOL SIZE --workdir DIR --image-size 640 --calibration DIR
    python peer_worker.py time TOOL SIZE FORMAT --workdir DIR --frame F.npy --runs 100

`prepare` builds a randomly initialised model of the tool (batch-norm statistics set on random
images, so activations have realistic scales; 80 classes), and with the tool's own exporters
writes its torch, ONNX, OpenVINO FP32 and OpenVINO INT8 (NNCF, calibrated on the given images)
artifacts into `DIR/TOOL-SIZE/`, then prints {format: path}. `time` loads one artifact through
the tool's own inference call, runs it on the frame (a 1280x720 BGR uint8 array) and prints
the milliseconds of every timed call as JSON. Latency only: random weights say nothing about
accuracy.

This file imports no dfseg at module level: the peers' environments do not have it. The
tools are driven through their public APIs (dfine-seg 0.6.x, Ultralytics 8.4.x); what a tool
cannot set itself (an OpenVINO precision hint, thread counts) is set by wrapping
`openvino.Core.compile_model` and `onnxruntime.InferenceSession`, the same for every tool.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = ("dfseg", "dfine-seg", "yolo26", "yolo11")  # yolo*: Ultralytics
# dfseg exported with a limited decoder (`dfseg export --num-queries Q --decoder-layers L`)
DFSEG_VARIANT = re.compile(r"dfseg(?:-q(?P<queries>\d+))?(?:-l(?P<layers>\d+))?")
FORMATS = ("torch", "onnx", "ov-f32", "ov-bf16", "ov-int8", "ov-int8-bf16")
NUM_CLASSES = 80
CONF = 0.3  # score threshold of every tool's call
# format -> OpenVINO INFERENCE_PRECISION_HINT (None: not an OpenVINO format)
OV_HINTS = {"ov-f32": "f32", "ov-bf16": "bf16", "ov-int8": "f32", "ov-int8-bf16": "bf16"}


def check_tool(name: str) -> str:
    """A tool of TOOLS, or a dfseg decoder variant such as "dfseg-q100-l2"."""
    if name in TOOLS or DFSEG_VARIANT.fullmatch(name):
        return name
    raise argparse.ArgumentTypeError(
        f"unknown tool {name!r}: one of {list(TOOLS)} or dfseg-q<Q>[-l<L>] / dfseg-l<L>"
    )


def decoder_limits(tool: str) -> tuple[int | None, int | None]:
    """(num_queries, decoder_layers) of a dfseg tool name; (None, None) for the full decoder."""
    match = DFSEG_VARIANT.fullmatch(tool)
    assert match is not None, tool
    queries, layers = match.group("queries"), match.group("layers")
    return (int(queries) if queries else None, int(layers) if layers else None)


def artifact_key(fmt: str) -> str:
    """The artifact a format runs: "ov-bf16" runs the FP32 IR with a bf16 hint."""
    return {"ov-bf16": "ov", "ov-f32": "ov", "ov-int8-bf16": "ov-int8"}.get(fmt, fmt)


def pin_runtimes(threads: int, hint: str | None) -> None:
    """Every OpenVINO compilation gets `threads` and `hint`; every ONNX Runtime session
    `threads` intra-op threads; torch `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    try:
        import openvino as ov

        original = ov.Core.compile_model

        @functools.wraps(original)
        def compile_model(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            positional = list(args)  # (device_name, config), either may be a keyword
            config = dict((positional[1] if len(positional) > 1 else kwargs.get("config")) or {})
            config["INFERENCE_NUM_THREADS"] = threads
            if hint is not None:
                config["INFERENCE_PRECISION_HINT"] = hint
            if len(positional) > 1:
                positional[1] = config
            else:
                kwargs["config"] = config
            return original(self, model, *positional, **kwargs)

        ov.Core.compile_model = compile_model  # type: ignore[method-assign]
    except ImportError:
        pass
    try:
        import onnxruntime as ort

        session = ort.InferenceSession

        class PinnedSession(session):  # type: ignore[misc, valid-type]
            def __init__(self, path: Any, sess_options: Any = None, **kwargs: Any) -> None:
                sess_options = sess_options or ort.SessionOptions()
                sess_options.intra_op_num_threads = threads
                super().__init__(path, sess_options, **kwargs)

        ort.InferenceSession = PinnedSession
    except ImportError:
        pass


def calibrate_batch_norm(model: Any, image_size: int, batches: int = 4) -> None:
    """Running statistics of every BatchNorm from random images (cumulative averages), the
    rest of the model in inference mode."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()  # the rest in inference mode: DETR heads want targets in training mode
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(2, 3, image_size, image_size, generator=generator))
    model.eval()


def background_prior(model: Any) -> None:
    """Class logits of an Ultralytics head set to background (last class convolution: weights
    0, bias -8, so no score passes `CONF`): with random weights its scores saturate at 1.0 and
    every call decodes 300 boxes (or, scaled down, a number that changes from one random model
    to the next), which a trained model on a real frame does not."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            for name in ("cv3", "one2one_cv3"):
                branches = getattr(module, name, None)  # the head's ModuleList per level
                for branch in branches if isinstance(branches, torch.nn.ModuleList) else []:
                    last = branch[-1]
                    if isinstance(last, torch.nn.Conv2d):
                        last.weight.zero_()
                        last.bias.fill_(-8.0)


def calibration_images(folder: Path) -> list[np.ndarray]:
    return [np.load(path) for path in sorted(folder.glob("*.npy"))]


# --- dfseg ------------------------------------------------------------------------------


def dfseg_prepare(
    tool: str, size: str, out: Path, image_size: int, calibration: Path, formats: list[str]
) -> dict[str, str]:
    """dfseg's artifacts; a decoder variant (`decoder_limits`) has no torch artifact (the
    checkpoint runs the full decoder)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_end_to_end import make_checkpoint

    from dfseg.export.quantize import QuantizeSpec, quantize_ir, write_int8_artifact
    from dfseg.runtime.preprocess import preprocess_batch
    from dfseg.structures.manifest import ArtifactManifest

    queries, layers = decoder_limits(tool)
    checkpoint = make_checkpoint(size, "detect", image_size, out)
    paths = {} if queries or layers else {"torch": checkpoint}
    if all(fmt == "torch" for fmt in formats):
        return {key: str(path) for key, path in paths.items()}
    files = dfseg_exports(checkpoint, queries, layers)
    paths.update(onnx=files["onnx"], ov=files["openvino"])
    int8 = out / "export" / "openvino-int8-b1" / "model.xml"
    if any(artifact_key(fmt) == "ov-int8" for fmt in formats) and not int8.is_file():
        import openvino as ov

        manifest = ArtifactManifest.read(files["openvino"].parent / "manifest.json")

        def to_input(image: np.ndarray) -> np.ndarray:
            return preprocess_batch([image], manifest.preprocessing)[0]

        model = ov.Core().read_model(files["openvino"])
        quantized = quantize_ir(
            model, calibration_images(calibration), to_input, QuantizeSpec(mode="basic")
        )
        write_int8_artifact(quantized, manifest, files["openvino"], int8.parent, "fp32")
    if int8.is_file():
        paths["ov-int8"] = int8
    return {key: str(path) for key, path in paths.items()}


def dfseg_exports(checkpoint: Path, queries: int | None, layers: int | None) -> dict[str, Path]:
    """{"onnx": model.onnx, "openvino": model.xml} of the checkpoint, exported on first use."""
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import ExportSource

    found = checkpoint.parent / "exports.json"
    if found.is_file():
        return {key: Path(path) for key, path in json.loads(found.read_text()).items()}
    options = ExportOptions(
        formats=["onnx", "openvino"], parity_images=2, force=True,
        num_queries=queries, decoder_layers=layers,
    )  # fmt: skip
    report = export_model(ExportSource(checkpoint, None, None), options)
    if not report.passed:
        raise RuntimeError(f"dfseg export failed its parity check: {report.failures()}")
    files = {artifact.format: artifact.model_file for artifact in report.artifacts}
    found.write_text(json.dumps(files) + "\n")
    return {key: Path(path) for key, path in files.items()}


def dfseg_runner(fmt: str, path: str) -> Callable[[np.ndarray], int]:
    from dfseg.runtime.predictor import load_predictor

    precision = {"f32": "fp32", "bf16": "bf16"}.get(OV_HINTS.get(fmt, ""))
    predictor = load_predictor(path, conf=CONF, precision=precision)
    return lambda frame: len(predictor.predict_arrays([frame])[0].scores)


# --- dfine-seg --------------------------------------------------------------------------


def dfine_seg_prepare(size: str, out: Path, image_size: int, calibration: Path) -> dict[str, str]:
    import torch
    from dfine_seg.dl.export import (
        DFINEPostProcessor,
        ExportWrapper,
        export_to_onnx,
        export_to_openvino,
    )
    from dfine_seg.model.dfine import build_model

    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    paths = {
        "torch": weights,
        "onnx": out / "model.onnx",
        "ov": out / "model.xml",
        "ov-int8": out / "model_int8.xml",
    }
    if all(path.is_file() for path in paths.values()):
        return {key: str(path) for key, path in paths.items()}
    shape = [image_size, image_size]
    torch.manual_seed(0)
    model = build_model(size, NUM_CLASSES, False, "cpu", img_size=shape)
    calibrate_batch_norm(model, image_size)
    torch.save(model.state_dict(), weights)
    example = torch.rand(1, 3, *shape)
    # As its export script does: the OpenVINO IR is the raw head (logits, boxes), the ONNX
    # model the head with its post-processor fused.
    raw = export_to_onnx(model, weights, example, 1, False, False, "input", ["logits", "boxes"])
    export_to_openvino(raw, example, False, 1)
    fused = ExportWrapper(model, DFINEPostProcessor(NUM_CLASSES, 300, True)).eval()
    export_to_onnx(fused, weights, example, 1, False, False, "input", ["labels", "boxes", "scores"])
    _nncf_int8(paths["ov"], paths["ov-int8"], calibration, image_size, bgr_to_rgb=True)
    return {key: str(path) for key, path in paths.items()}


def _nncf_int8(
    fp32: Path, int8: Path, calibration: Path, image_size: int, bgr_to_rgb: bool
) -> None:
    """dfine-seg's INT8 recipe (dl/ov_int8.py: NNCF, preset MIXED) without its accuracy
    control, which can only move layers back to floating point."""
    import cv2
    import nncf
    import openvino as ov

    def to_input(image: np.ndarray) -> np.ndarray:
        resized = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_LINEAR)
        if bgr_to_rgb:
            resized = resized[:, :, ::-1]
        return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / 255

    images = calibration_images(calibration)
    model = ov.Core().read_model(fp32)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(images, to_input),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(images),
    )
    ov.save_model(quantized, str(int8), compress_to_fp16=False)


def dfine_seg_runner(fmt: str, path: str) -> Callable[[np.ndarray], int]:
    from dfine_seg import load_model

    model = load_model(path, conf_thresh=CONF, **({"device": "cpu"} if fmt == "torch" else {}))
    return lambda frame: len(model(frame)[0]["boxes"])


# --- Ultralytics ------------------------------------------------------------------------


def ultralytics_prepare(name: str, out: Path, image_size: int, calibration: Path) -> dict[str, str]:
    """`name` is "yolo26n", "yolo11s", ...: the architecture from its yaml (no download)."""
    import cv2
    import torch
    from ultralytics import YOLO

    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pt"
    paths = {
        "torch": weights,
        "onnx": out / f"{name}.onnx",
        "ov": out / f"{name}_openvino_model",
        "ov-int8": out / f"{name}_int8_openvino_model",
    }
    if all(path.exists() for path in paths.values()):
        return {key: str(path) for key, path in paths.items()}
    torch.manual_seed(0)
    model = YOLO(f"{name}.yaml")
    calibrate_batch_norm(model.model, image_size)
    background_prior(model.model)
    model.save(str(weights))
    # INT8 calibration data as an Ultralytics dataset: the calibration frames, no labels.
    data = out / "calibration"
    (data / "images").mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(calibration_images(calibration)):
        cv2.imwrite(str(data / "images" / f"{index:04d}.jpg"), image)
    names = "\n".join(f"  {i}: class{i}" for i in range(NUM_CLASSES))
    yaml = out / "calibration.yaml"
    yaml.write_text(f"path: {data}\ntrain: images\nval: images\nnames:\n{names}\n")
    for options in ({"format": "onnx"}, {"format": "openvino"}):
        YOLO(str(weights)).export(imgsz=image_size, **options)
    YOLO(str(weights)).export(format="openvino", int8=True, data=str(yaml), imgsz=image_size)
    return {key: str(path) for key, path in paths.items()}


def ultralytics_runner(fmt: str, path: str, image_size: int) -> Callable[[np.ndarray], int]:
    from ultralytics import YOLO

    model = YOLO(path, task="detect")
    return lambda frame: len(model.predict(frame, imgsz=image_size, conf=CONF, verbose=False)[0])


# --- commands ---------------------------------------------------------------------------


def prepare(
    tool: str, size: str, workdir: Path, image_size: int, calibration: Path, formats: list[str]
) -> dict[str, str]:
    """{artifact key: path} of the tool's model in `workdir` (built on first use); dfseg
    builds what `formats` need, the peers all four."""
    out = workdir / f"{tool}-{size}-{image_size}"
    if tool.startswith("dfseg"):
        return dfseg_prepare(tool, size, out, image_size, calibration, formats)
    if tool == "dfine-seg":
        return dfine_seg_prepare(size, out, image_size, calibration)
    return ultralytics_prepare(f"{tool}{size}", out, image_size, calibration)


def time_calls(
    run: Callable[[np.ndarray], int], frame: np.ndarray, runs: int, warmup: int
) -> tuple[list[float], int]:
    """Milliseconds of each of `runs` calls after `warmup` calls, and the detections of the
    last call."""
    for _ in range(warmup):
        run(frame)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        found = run(frame)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples, found


def runner(tool: str, fmt: str, path: str, image_size: int) -> Callable[[np.ndarray], int]:
    """The tool's own end-to-end call on a BGR frame; it returns the number of detections."""
    if tool.startswith("dfseg"):
        return dfseg_runner(fmt, path)
    if tool == "dfine-seg":
        return dfine_seg_runner(fmt, path)
    return ultralytics_runner(fmt, path, image_size)


def tool_version(tool: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = "dfseg" if tool.startswith("dfseg") else tool
    package = {"yolo26": "ultralytics", "yolo11": "ultralytics"}.get(package, package)
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "time"])
    parser.add_argument("tool", type=check_tool)
    parser.add_argument("size")
    parser.add_argument("format", nargs="?", choices=FORMATS, help="time: what to time")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), help="prepare: for what")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--calibration", type=Path)
    parser.add_argument("--artifacts", type=Path, help="the JSON `prepare` printed")
    parser.add_argument("--frame", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if args.command == "prepare":
        pin_runtimes(args.threads, None)
        paths = prepare(
            args.tool, args.size, args.workdir, args.image_size, args.calibration, args.formats
        )
        print(json.dumps({"artifacts": paths, "version": tool_version(args.tool)}))
        return
    pin_runtimes(args.threads, OV_HINTS.get(args.format))
    paths = json.loads(args.artifacts.read_text())["artifacts"]
    run = runner(args.tool, args.format, paths[artifact_key(args.format)], args.image_size)
    samples, found = time_calls(run, np.load(args.frame), args.runs, args.warmup)
    print(json.dumps({"ms": samples, "detections": found}))


if __name__ == "__main__":
    main()
