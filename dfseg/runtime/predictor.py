"""`Predictor`: images in, `Detections` out, whatever backend runs the model.

    predictor = load_predictor("runs/pets/exp/export/openvino-fp32-b1/model.xml", threads=2)
    detections = predictor("dog.jpg")              # one image -> Detections
    batch = predictor.predict_batch(paths, 8)      # many images, batches of 8 -> list

Every backend shares the numpy pre-processing (`preprocess_batch`) and post-processing
(`to_detections`); backends only run the graph.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfseg.config.tasks import task_spec
from dfseg.ops.resize import ResizeParams
from dfseg.runtime.artifacts import BACKEND_FORMATS, default_backend, resolve_artifact
from dfseg.runtime.backends import Backend, BackendOptions, backend_class
from dfseg.runtime.backends.base import pad_batch
from dfseg.runtime.errors import ArtifactError, BackendError
from dfseg.runtime.images import ImageInput, as_bgr_array
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import PostprocessSettings, to_detections
from dfseg.runtime.preprocess import preprocess_batch, resize_batch, write_tensor
from dfseg.runtime.tiling import TileSettings, predict_tiled
from dfseg.structures import Detections
from dfseg.structures.manifest import ArtifactManifest


@dataclass
class StageTimes:
    """Accumulated wall time per stage, in seconds, over `images` images."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    images: int = 0

    def per_image_ms(self) -> dict[str, float]:
        """Mean milliseconds per image for each stage and in total."""
        count = max(1, self.images)
        stages = {
            "preprocess": self.preprocess,
            "inference": self.inference,
            "postprocess": self.postprocess,
        }
        result = {name: 1000.0 * value / count for name, value in stages.items()}
        result["total"] = sum(result.values())
        return result


class Predictor:
    """Runs a model artifact on images.

    Args:
        backend: an opened backend.
        settings: thresholds and limits of the post-processing.
        rect: letterbox models only: pad each image only to the next multiple of 32 instead of
            the full input size (needs a backend that accepts other input sizes).
        batch_size: default images per backend call in `predict_batch` (None: the artifact's
            batch size, or all images at once for dynamic-batch artifacts).
        tiling: predict each image tile by tile and merge (see `dfseg.runtime.tiling`); None:
            whole images. Every caller (infer, evaluation, bench, serve) gets it alike.
    """

    def __init__(
        self,
        backend: Backend,
        settings: PostprocessSettings,
        rect: bool = False,
        batch_size: int | None = None,
        tiling: TileSettings | None = None,
    ) -> None:
        if rect and not backend.dynamic_size:
            raise BackendError(
                f"{backend.path}: rectangular inference needs an artifact that accepts any input "
                "size; export with --dynamic-size, or use the torch backend"
            )
        self.backend = backend
        self.settings = settings
        self.rect = rect
        self.batch_size = batch_size
        self.tiling = tiling
        self.times = StageTimes()

    @property
    def manifest(self) -> ArtifactManifest:
        return self.backend.manifest

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    @property
    def task(self) -> str:
        return self.manifest.model.task

    def warmup(self) -> None:
        """Run one blank image so one-time costs (lazy kernel set-up, first allocations) stay
        out of the timed predictions; the stage times start from zero afterwards."""
        height, width = self.manifest.preprocessing.input_size
        self.predict_arrays([np.zeros((height, width, 3), dtype=np.uint8)])
        self.times = StageTimes()

    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        conf: float | None = None,
        classes: Sequence[int | str] | None = None,
        max_det: int | None = None,
        nms_iou: float | None = None,
    ) -> Detections | list[Detections]:
        """Predict one image -> `Detections`, or a list of images -> a list.

        Args:
            images: a path, an [H, W, 3] uint8 BGR array (as OpenCV reads it), a PIL image, or
                a list of them.
            conf: score threshold for this call (None: the predictor's, by default the tuned
                one; per-class thresholds still apply).
            classes: keep only these classes, by id or name (None: all).
            max_det: at most this many detections per image for this call.
            nms_iou: an extra class-aware NMS at this IoU (None: the artifact's decoding only).

        Returns:
            Detections in original-image pixels, each holding its image (`plot()` draws on it).
        """
        single = _is_one_image(images)
        batch = [images] if single else list(images)
        results = self.predict_batch(
            batch, conf=conf, classes=classes, max_det=max_det, nms_iou=nms_iou
        )
        return results[0] if single else results

    def predict_batch(
        self,
        images: Sequence[ImageInput],
        batch_size: int | None = None,
        conf: float | None = None,
        classes: Sequence[int | str] | None = None,
        max_det: int | None = None,
        nms_iou: float | None = None,
    ) -> list[Detections]:
        """Predict many images, `batch_size` per backend call; results equal batch-1 results.

        Args:
            images: paths, [H, W, 3] uint8 BGR arrays or PIL images.
            batch_size: images per call (None: the predictor's default).
            conf, classes, max_det, nms_iou: this call's threshold, classes, limit and extra NMS
                (see `__call__`).

        Returns:
            One `Detections` per image, in input order, in original-image pixels, each holding
            its image.
        """
        step = batch_size or self.batch_size or self.backend.fixed_batch or len(images) or 1
        settings = self.call_settings(conf, classes, max_det, nms_iou)
        results: list[Detections] = []
        for start in range(0, len(images), step):
            arrays = [as_bgr_array(image) for image in images[start : start + step]]
            found = self.predict_arrays(arrays, [settings] * len(arrays))
            for detections, array in zip(found, arrays, strict=True):
                detections.image = array
                results.append(detections)
        return results

    def call_settings(
        self,
        conf: float | None = None,
        classes: Sequence[int | str] | None = None,
        max_det: int | None = None,
        nms_iou: float | None = None,
    ) -> PostprocessSettings:
        """The predictor's settings with one call's threshold, classes, limit and extra NMS
        (None: keep); unknown classes raise `ArtifactError`."""
        settings = self.settings
        return dataclasses.replace(
            settings,
            conf=settings.conf if conf is None else float(conf),
            max_det=settings.max_det if max_det is None else int(max_det),
            nms_iou=settings.nms_iou if nms_iou is None else float(nms_iou),
            classes=(
                settings.classes
                if classes is None
                else frozenset(class_ids(classes, self.class_names))
            ),
        )

    def predict_arrays(
        self,
        arrays: Sequence[np.ndarray],
        settings: Sequence[PostprocessSettings] | None = None,
    ) -> list[Detections]:
        """One backend batch of [H, W, 3] uint8 BGR arrays -> detections (stage times recorded).

        Args:
            arrays: the images, any sizes.
            settings: one post-processing per image (a server batching requests that asked for
                different thresholds); None: the predictor's for all.
        """
        if self.tiling is None:
            return self._predict_whole(arrays, settings)
        per_image = [self.settings] * len(arrays) if settings is None else list(settings)
        counted = self.times.images
        with_masks = task_spec(self.task).instance_masks
        results = [
            predict_tiled(
                self._predict_whole,
                array,
                image_settings,
                self.tiling,
                self.class_names,
                with_masks,
            )
            for array, image_settings in zip(arrays, per_image, strict=True)
        ]
        self.times.images = counted + len(arrays)  # stage times per image, not per tile
        return results

    def _predict_whole(
        self,
        arrays: Sequence[np.ndarray],
        settings: Sequence[PostprocessSettings] | None = None,
    ) -> list[Detections]:
        started = time.perf_counter()
        preprocessing = self.manifest.preprocessing
        if self.backend.accepts_uint8:  # conversion happens inside the graph
            images, params = resize_batch(arrays, preprocessing, self.rect)
            preprocessed = time.perf_counter()
            raw = self._run_chunks(images, self.backend.run_uint8)
        else:
            images, params = preprocess_batch(arrays, preprocessing, self.rect)
            preprocessed = time.perf_counter()
            raw = self._run_chunks(images, self.backend.run)
        inferred = time.perf_counter()
        detections = self.postprocess(raw, params, settings)
        finished = time.perf_counter()
        self.times.preprocess += preprocessed - started
        self.times.inference += inferred - preprocessed
        self.times.postprocess += finished - inferred
        self.times.images += len(arrays)
        return detections

    def postprocess(
        self,
        raw: RawOutputs,
        params: Sequence[ResizeParams],
        settings: Sequence[PostprocessSettings] | None = None,
    ) -> list[Detections]:
        """Raw outputs of a batch -> one `Detections` per image (with its own settings, when
        given)."""
        names = self.class_names
        per_image = [self.settings] * len(params) if settings is None else list(settings)
        if len(per_image) != len(params):
            raise ValueError(f"{len(per_image)} settings for a batch of {len(params)} images")
        return [
            to_detections(raw, i, p, names, s)
            for i, (p, s) in enumerate(zip(params, per_image, strict=True))
        ]

    def run_batch(self, batch: np.ndarray) -> RawOutputs:
        """Run a preprocessed [B, 3, H, W] float batch of any size: split into the backend's
        largest batch, and padded with blank images up to a static batch size (their outputs
        dropped)."""
        return self._run_chunks(batch, self.backend.run)

    def run_resized(self, images_bgr: np.ndarray) -> RawOutputs:
        """Run resized images [B, H, W, 3] uint8 BGR as `predict_arrays` does: through the
        backend's uint8 path when it has one (conversion inside the graph), else converted to
        the float tensor first."""
        if self.backend.accepts_uint8:
            return self._run_chunks(images_bgr, self.backend.run_uint8)
        tensor = np.empty((len(images_bgr), 3, *images_bgr.shape[1:3]), dtype=np.float32)
        for index, image in enumerate(images_bgr):
            write_tensor(image, self.manifest.preprocessing.scale, tensor[index])
        return self.run_batch(tensor)

    def _run_chunks(self, batch: np.ndarray, run: Callable[[np.ndarray], RawOutputs]) -> RawOutputs:
        fixed, limit = self.backend.fixed_batch, self.backend.max_batch
        step = fixed or limit or len(batch)
        parts = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            count = len(chunk)
            if fixed is not None:
                chunk = pad_batch(chunk, fixed)
            parts.append(_first(run(np.ascontiguousarray(chunk)), count))
        return parts[0] if len(parts) == 1 else RawOutputs.concatenate(parts)


def _first(raw: RawOutputs, count: int) -> RawOutputs:
    return raw if len(raw) == count else raw.rows(slice(0, count))


def _is_one_image(images: object) -> bool:
    return isinstance(images, (str, Path, np.ndarray)) or hasattr(images, "getbands")  # PIL


def class_ids(classes: Sequence[int | str], class_names: list[str]) -> list[int]:
    """Class ids from ids or names; unknown ones are an error naming the model's classes."""
    ids = []
    for value in classes:
        if isinstance(value, str):
            if value not in class_names:
                raise ArtifactError(f"class {value!r} is not a class of this model: {class_names}")
            ids.append(class_names.index(value))
        elif not 0 <= int(value) < len(class_names):
            raise ArtifactError(f"class id {value} is outside 0..{len(class_names) - 1}")
        else:
            ids.append(int(value))
    return ids


def class_thresholds(class_conf: Mapping[str, float], class_names: list[str]) -> dict[int, float]:
    """Per-class thresholds by name -> by class id; unknown names are an error."""
    unknown = sorted(set(class_conf) - set(class_names))
    if unknown:
        raise ArtifactError(
            f"class_conf names {unknown} are not classes of this model; its classes are "
            f"{class_names}"
        )
    return {class_names.index(name): float(value) for name, value in class_conf.items()}


def open_backend(
    artifact: Path | str,
    backend: str | None = None,
    options: BackendOptions | None = None,
) -> Backend:
    """Open the artifact `artifact` designates (see `resolve_artifact`) with `backend`
    (None or "auto": chosen from the file type)."""
    name = None if backend in (None, "auto") else backend
    path = resolve_artifact(artifact, name)
    name = name or default_backend(path)
    file_backend = default_backend(path)
    compatible = file_backend == name or (name == "openvino" and file_backend == "onnxruntime")
    if not compatible:
        formats = ", ".join(BACKEND_FORMATS.get(name, ()))
        raise BackendError(
            f"{path}: the {name} backend cannot run a {path.suffix} file (it runs: {formats}); "
            f"use backend {file_backend!r} or export the model for {name}"
        )
    return backend_class(name).open(path, options or BackendOptions())


def load_predictor(
    artifact: Path | str,
    backend: str | None = None,
    device: str | None = None,
    conf: float | None = None,
    class_conf: Mapping[str, float] | None = None,
    threads: int | None = None,
    precision: str | None = None,
    rect: bool = False,
    max_det: int = 300,
    batch_size: int | None = None,
    profile: bool = False,
    tiling: TileSettings | None = None,
    streams: int | None = None,
) -> Predictor:
    """Load a trained or exported model for inference.

    Args:
        artifact: a best.pt/last.pt, .onnx, OpenVINO .xml or TensorRT .engine file; an export
            folder; a run folder (best.pt, or its newest export for `backend`); a project file
            or a folder of runs (the newest run).
        backend: "torch", "onnxruntime", "openvino", "tensorrt"; None/"auto": from the file type.
        device: see `BackendOptions.device`.
        conf: score threshold; None: the threshold tuned after training (manifest).
        class_conf: per-class thresholds by class name, overriding `conf`.
        threads: CPU inference threads (None: backend default).
        precision: OpenVINO inference precision ("fp32", "bf16", "fp16", "default"); None:
            the manifest's runtime hint.
        rect: rectangular inference for letterboxed models (see `Predictor`).
        max_det: detections kept per image.
        batch_size: default images per backend call.
        profile: record per-layer times (`predictor.backend.layer_times()`).
        tiling: tiled inference (see `Predictor`); None: whole images.
        streams: OpenVINO throughput mode, N streams running a batch's images in parallel
            (see `BackendOptions.streams`); other backends refuse it.

    Returns:
        A `Predictor`.
    """
    options = BackendOptions(
        device=device, threads=threads, precision=precision, profile=profile, streams=streams
    )
    opened = open_backend(artifact, backend, options)
    if (streams or 1) > 1 and opened.name != "openvino":
        raise BackendError(
            f"streams={streams} is OpenVINO's throughput mode; {artifact} runs on the "
            f"{opened.name} backend (export an OpenVINO model and use it, or leave streams unset)"
        )
    manifest = opened.manifest
    settings = PostprocessSettings(
        conf=manifest.threshold if conf is None else float(conf),
        class_conf=class_thresholds(class_conf or {}, list(manifest.class_names)),
        max_det=max_det,
    )
    return Predictor(opened, settings, rect=rect, batch_size=batch_size, tiling=tiling)
