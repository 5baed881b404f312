"""`InstanceDataset`: parsed annotations -> (image tensor, target dict) for training and evaluation.

Train mode: resize or letterbox to the input size (or a 4-image mosaic), optionally MixUp and
copy-paste with another image (`dfseg.data.mixing`), then the albumentations
pipeline; crowd instances are dropped; in the segment task boxes are recomputed from the
augmented masks; instances that end up tiny are dropped from every per-instance field together.
With `tile` (`data.tile`), a training sample shows a random tile of an image larger than the tile
instead of the whole image squeezed to the input, so a model for tiled inference learns objects
at the scale it will see them.
Eval mode: the deterministic resize/letterbox of `dfseg.ops.resize` only, recorded in the target
as `resize_params` so predictions map back to original pixels exactly; crowd instances are kept
and flagged.

Epochs: `set_epoch(epoch, total_epochs)` switches mosaic and multiscale off for the last
`mosaic_off_last_epochs` epochs and leaves background images out for the first
`background_warmup_epochs`. The images used in an epoch are an index list recomputed by
`set_epoch`; `len()` is its length. Integer indexing is a position in that list, so any sampler
(including `DistributedSampler`, rebuilt when the length changes) sees a consistent dataset.
`TrainBatchSampler` (see `batch_sampler.py`) instead sends `SampleRequest`s that carry every
random decision (image, input size, mosaic partners, seed); worker processes then need no epoch
state, which is what makes persistent workers and reproducible batches work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dfseg.config.tasks import Task, task_spec
from dfseg.config.train import AugmentConfig
from dfseg.data.image_cache import ImageCache
from dfseg.data.image_reader import (
    BrokenImageRegistry,
    DecodedImage,
    UnreadableImageError,
    decode_reduction,
    read_image_rgb,
)
from dfseg.data.mixing import copy_paste, mixup
from dfseg.data.mosaic import MOSAIC_TILES, build_mosaic
from dfseg.data.sample import Sample, instances_to_sample
from dfseg.data.transforms import PAD_VALUE, augment_sample, build_train_pipeline
from dfseg.errors import DfsegError
from dfseg.ops.boxes import box_xyxy_to_cxcywh
from dfseg.ops.resize import ResizeParams, compute_resize, resize_image
from dfseg.structures import ImageAnnotation

Mode = Literal["train", "eval"]
Target = dict[str, Any]

_SEED_BOUND = 2**63 - 1


class UnreadableDatasetError(DfsegError):
    """No image of the dataset can be read any more."""


class SampleRequest(NamedTuple):
    """Everything random about one training sample, decided in the main process.

    Attributes:
        image_index: dataset image index (into the annotation list, not a position in the epoch).
        input_hw: (height, width) of the network input for this sample's batch.
        mosaic_partners: the 3 other image indices of a mosaic, or () for a single image.
        seed: seed of the sample's augmentations.
        mixup_partner: image index blended over the sample (MixUp), or -1.
        paste_partner: image index whose instances are pasted over the sample, or -1.
    """

    image_index: int
    input_hw: tuple[int, int]
    mosaic_partners: tuple[int, ...]
    seed: int
    mixup_partner: int = -1
    paste_partner: int = -1


def tiles_per_image(height: int, width: int, tile: int | None) -> int:
    """How many `tile`-pixel tiles cover an image edge to edge (1 without tiling)."""
    if tile is None:
        return 1
    return -(-height // tile) * -(-width // tile)


def sample_to_tensors(
    sample: Sample, image_id: int, orig_hw: tuple[int, int], with_masks: bool
) -> tuple[Tensor, Target]:
    """Image [3, H, W] float32 in [0, 1] and the target dict (see `InstanceDataset`).

    The image is converted in numpy: torch's elementwise kernels took several times longer on
    these per-sample images here (thread start-up under load). Boxes are converted in float64 so
    normalised boxes map back to original pixels to well under 1e-3 px.
    """
    height, width = sample.hw
    image_chw = np.ascontiguousarray(sample.image.transpose(2, 0, 1))  # [3, H, W] uint8
    image = np.divide(image_chw, np.float32(255.0), dtype=np.float32)
    boxes_xyxy = torch.from_numpy(sample.boxes_xyxy.astype(np.float64).reshape(-1, 4))  # [N, 4]
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    target: Target = {
        "labels": torch.from_numpy(sample.labels.astype(np.int64)),
        "boxes": (box_xyxy_to_cxcywh(boxes_xyxy) / scale).float(),  # [N, 4] normalised cxcywh
        "iscrowd": torch.from_numpy(sample.iscrowd.astype(bool)),
        "instance_keys": torch.from_numpy(sample.instance_keys.astype(np.int64)),
        "image_id": image_id,
        "orig_size": orig_hw,
    }
    if with_masks:
        masks = sample.masks if sample.masks is not None else np.zeros((0, height, width))
        target["masks"] = torch.from_numpy(masks.astype(np.uint8, copy=False))  # [N, H, W]
        target["has_mask"] = torch.from_numpy(sample.has_mask.astype(bool))
    return torch.from_numpy(image), target


class InstanceDataset(Dataset):
    """Images with boxes (and masks) for D-FINE training and evaluation.

    Items are `(image, target)`: image [3, H, W] float32 RGB in [0, 1], H and W the input size;
    target keys:
        labels [N] int64; boxes [N, 4] float32 normalised cxcywh relative to the input (padding
        included); iscrowd [N] bool (always False in train mode); instance_keys [N, 2] int64
        (image index, instance index in its annotation); image_id int (dataset index);
        orig_size (h, w) of the original image; segment task only: masks [N, H, W] uint8 {0, 1}
        and has_mask [N] bool (False: box-only instance whose mask is its box); eval mode only:
        resize_params (`ResizeParams`).

    Args:
        annotations: parsed images (from `dfseg.data.formats`); nothing is re-parsed per epoch.
        input_hw: (height, width) of the network input, multiples of 32.
        task: "detect" (no masks rasterised) or "segment".
        mode: "train" (augmented) or "eval" (deterministic resize only).
        augment: augmentation settings (train mode); None uses the defaults.
        keep_ratio: letterbox (keep aspect ratio, pad) instead of stretching to `input_hw`.
        tile: train mode only: each sample shows a random `tile` x `tile` window (original
            pixels) of an image larger than that, instances cut to it, and such an image counts
            `tiles_per_image` times in an epoch; mosaics are made of tiles too. Eval mode is
            unchanged (whole images).
    """

    def __init__(
        self,
        annotations: Sequence[ImageAnnotation],
        input_hw: tuple[int, int],
        task: Task,
        mode: Mode,
        augment: AugmentConfig | None = None,
        keep_ratio: bool = False,
        tile: int | None = None,
    ) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be train or eval, got {mode!r}")
        spec = task_spec(task)  # ValueError naming the tasks
        self.annotations = list(annotations)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.task: Task = task
        self.mode: Mode = mode
        self.settings = augment if augment is not None else AugmentConfig()
        self.keep_ratio = keep_ratio
        if tile is not None and tile < 32:
            raise ValueError(f"tile must be at least 32 pixels, got {tile}")
        self.tile = tile
        self._tiles_per_image = np.array(
            [tiles_per_image(a.height, a.width, tile) for a in self.annotations], np.int64
        )
        self.with_masks = spec.rasterises_masks
        self.semantic = spec.semantic
        self.broken_images = BrokenImageRegistry(len(self.annotations))
        self.cache: ImageCache | None = None
        self._pipeline = (
            build_train_pipeline(self.settings, transform_boxes=not self.with_masks)
            if mode == "train"
            else None
        )
        self.set_epoch(0, total_epochs=0)

    # ----- epoch schedule (main process) -----

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Apply the epoch schedule and recompute the epoch's image list.

        Args:
            epoch: 0-based epoch about to start.
            total_epochs: planned number of epochs (0: unknown, nothing counts as "last").
        """
        self.epoch, self.total_epochs = epoch, total_epochs
        indices = np.arange(len(self.annotations), dtype=np.int64)
        if self.mode == "train":
            if epoch < self.settings.background_warmup_epochs:
                indices = np.array(
                    [i for i in indices if not self.annotations[i].is_background], dtype=np.int64
                )
            indices = np.setdiff1d(indices, self.broken_images.broken_indices())
            if self.tile is not None:  # an image larger than a tile counts once per tile
                indices = np.repeat(indices, self._tiles_per_image[indices])
        self._active = indices

    @property
    def in_final_epochs(self) -> bool:
        """True in the last `mosaic_off_last_epochs` epochs (mosaic and multiscale off)."""
        last = self.settings.mosaic_off_last_epochs
        return self.total_epochs > 0 and self.epoch >= self.total_epochs - last

    @property
    def mixing_window(self) -> bool:
        """True in the epochs where mosaic, MixUp and copy-paste may run."""
        return (
            self.mode == "train"
            and self.epoch >= self.settings.mix_start_epoch
            and not self.in_final_epochs
        )

    @property
    def mosaic_enabled(self) -> bool:
        return self.mixing_window and self.settings.mosaic > 0

    @property
    def mixup_enabled(self) -> bool:
        return self.mixing_window and self.settings.mixup > 0

    @property
    def copy_paste_enabled(self) -> bool:
        return self.mixing_window and self.with_masks and self.settings.copy_paste > 0

    @property
    def multiscale_enabled(self) -> bool:
        return self.mode == "train" and self.settings.multiscale and not self.in_final_epochs

    def active_indices(self) -> np.ndarray:
        """[M] int64 image indices used this epoch (the order integer indexing follows)."""
        return self._active

    def plan_sample(
        self, index: int, input_hw: tuple[int, int], rng: np.random.Generator
    ) -> SampleRequest:
        """Decide the random parts of one training sample (mosaic partners and seed).

        Mosaic partners are three other images of the epoch, all different when the epoch has at
        least four images (so an instance appears once per sample). A MixUp or copy-paste
        partner is one other image (the same one only in a one-image epoch). Nothing is drawn
        for an augmentation that is off, so runs without MixUp and copy-paste draw exactly the
        samples they drew before these existed.
        """
        partners: tuple[int, ...] = ()
        if self.mosaic_enabled and len(self._active) and rng.random() < self.settings.mosaic:
            partners = self._other_images(index, MOSAIC_TILES - 1, rng)
        seed = int(rng.integers(_SEED_BOUND))
        mixup = paste = -1
        if self.mixup_enabled and len(self._active) and rng.random() < self.settings.mixup:
            mixup = self._other_images(index, 1, rng)[0]
        if (
            self.copy_paste_enabled
            and len(self._active)
            and rng.random() < self.settings.copy_paste
        ):
            paste = self._other_images(index, 1, rng)[0]
        return SampleRequest(int(index), input_hw, partners, seed, mixup, paste)

    def _other_images(self, index: int, count: int, rng: np.random.Generator) -> tuple[int, ...]:
        """`count` images of the epoch other than `index`, distinct where the epoch allows."""
        others = self._active[self._active != index]
        distinct = len(others) >= count  # repeats only in tiny datasets
        pool = others if distinct else self._active
        return tuple(int(i) for i in rng.choice(pool, size=count, replace=not distinct))

    # ----- items (any process) -----

    def __len__(self) -> int:
        return len(self._active)

    def __getitem__(self, item: int | SampleRequest) -> tuple[Tensor, Target]:
        if self.mode == "eval":
            index = item.image_index if isinstance(item, SampleRequest) else int(self._active[item])
            return self._eval_item(index)
        if not isinstance(item, SampleRequest):
            # Without TrainBatchSampler: draw from torch's RNG, which DataLoader seeds per worker.
            rng = np.random.default_rng(int(torch.randint(0, _SEED_BOUND, ()).item()))
            item = self.plan_sample(int(self._active[item]), self.input_hw, rng)
        return self._train_item(item)

    def _read(self, index: int, reduction: int = 1) -> np.ndarray | None:
        """The RGB image (decoded at 1/reduction size), or None when it cannot be used (then
        flagged and warned about, once per path)."""
        if self.broken_images.is_broken(index):
            return None
        annotation = self.annotations[index]
        try:
            return read_image_rgb(
                annotation.image_path, (annotation.height, annotation.width), reduction
            )
        except UnreadableImageError as error:
            self.broken_images.report(index, error)
            return None

    def _decode_reduction(self, index: int, input_hw: tuple[int, int], zoom: float) -> int:
        """JPEG decode reduction for an image fitted to `input_hw` and then zoomed by `zoom`."""
        annotation = self.annotations[index]
        params = compute_resize(self._source_hw(annotation), input_hw, self.keep_ratio)
        return decode_reduction(annotation.image_path, max(params.scale_xy) * zoom)

    def _source_hw(self, annotation: ImageAnnotation) -> tuple[int, int]:
        """(height, width) in original pixels of what one training sample shows of an image:
        the image, or a tile of it."""
        height, width = annotation.height, annotation.width
        if self.tile is None or self.mode != "train":
            return height, width
        return min(height, self.tile), min(width, self.tile)

    def cache_reductions(self) -> list[int]:
        """Per image, the JPEG decode reduction of its largest use in training (the largest
        multiscale input, the largest mosaic zoom): what `attach_cache` caches must serve."""
        from dfseg.data.batch_sampler import multiscale_sizes  # it imports this module

        largest = self.input_hw
        if self.settings.multiscale:
            largest = multiscale_sizes(self.input_hw, self.settings.multiscale_range)[-1]
        zoom = self.settings.mosaic_scale[1] if self.settings.mosaic > 0 else 1.0
        return [self._decode_reduction(i, largest, zoom) for i in range(len(self.annotations))]

    def attach_cache(self, cache: ImageCache) -> None:
        """Serve training images from `cache` (filled with `cache_reductions`) where it has
        them; the others are decoded as usual."""
        self.cache = cache

    def _read_or_substitute(
        self, index: int, rng: np.random.Generator, input_hw: tuple[int, int], zoom: float
    ) -> DecodedImage:
        """Read `index` for use at `input_hw` (times `zoom`), or another random readable image
        of this epoch in its place."""
        if self.cache is not None and (hit := self.cache.get(index)) is not None:
            return DecodedImage(hit[0], self.annotations[index], index, hit[1])
        candidates = self._active if len(self._active) else np.arange(len(self.annotations))
        for _ in range(max(len(candidates), 1) + 1):
            reduction = self._decode_reduction(index, input_hw, zoom)
            image = self._read(index, reduction)
            if image is not None:
                return DecodedImage(image, self.annotations[index], index, reduction)
            index = int(rng.choice(candidates))
        raise UnreadableDatasetError(
            "no readable image left: every image tried failed to load (see the warnings above); "
            "check that the dataset folder is still there and rescan it"
        )

    def _single_sample(
        self, decoded: DecodedImage, input_hw: tuple[int, int], keep_crowd: bool
    ) -> tuple[Sample, ResizeParams]:
        """Resize (or letterbox) one decoded image to the input, with its instances.

        Returns:
            The sample and the resize of the decoded image (the original's when not reduced).
        """
        params = compute_resize(decoded.image.shape[:2], input_hw, self.keep_ratio)
        resized = resize_image(decoded.image, params, PAD_VALUE)
        # original pixels -> decoded pixels (x / reduction, minus a window's corner) -> input
        affine = params.affine_to_input() @ decoded.original_to_image()
        annotation = decoded.annotation
        region = None
        if decoded.source_hw != (annotation.height, annotation.width):  # a tile: cut instances
            (left, top), (height, width) = params.pad_xy, params.resized_hw
            region = (left, top, left + width, top + height)
        sample = instances_to_sample(
            resized, annotation, decoded.image_index, affine, self.with_masks, keep_crowd, region
        )
        return sample, params

    def _train_item(self, request: SampleRequest) -> tuple[Tensor, Target]:
        assert self._pipeline is not None
        rng = np.random.default_rng(request.seed)
        zoom = self.settings.mosaic_scale[1] if request.mosaic_partners else 1.0
        indices = (request.image_index, *request.mosaic_partners)
        sources = [self._read_or_substitute(i, rng, request.input_hw, zoom) for i in indices]
        if self.tile is not None:
            sources = [source.window(self.tile, rng) for source in sources]
        if request.mosaic_partners:
            sample = build_mosaic(
                sources,
                request.input_hw,
                self.keep_ratio,
                self.settings.mosaic_scale,
                rng,
                self.with_masks,
                PAD_VALUE,
            )
        else:
            sample, _ = self._single_sample(sources[0], request.input_hw, keep_crowd=False)
        sample = self._mix(sample, request, rng)
        sample = augment_sample(self._pipeline, sample, int(rng.integers(_SEED_BOUND)))
        sample = sample.with_boxes_from_masks().with_clipped_boxes()
        # a class region of any size is a label (only emptied ones go); instances need a size
        sample = sample.without_small_instances(0 if self.semantic else self.settings.min_box_size)
        annotation = sources[0].annotation
        return sample_to_tensors(
            sample, sources[0].image_index, (annotation.height, annotation.width), self.with_masks
        )

    def _mix(self, sample: Sample, request: SampleRequest, rng: np.random.Generator) -> Sample:
        """Apply the request's MixUp and copy-paste (each partner a plain resized image)."""
        if request.mixup_partner < 0 and request.paste_partner < 0:
            return sample
        mix_rng = np.random.default_rng([request.seed, 1])  # the main stream stays as it was
        if request.mixup_partner >= 0:
            other = self._partner_sample(request.mixup_partner, request.input_hw, mix_rng)
            weight = float(mix_rng.uniform(*self.settings.mixup_weight))
            sample = mixup(sample, other, weight)
        if request.paste_partner >= 0:
            other = self._partner_sample(request.paste_partner, request.input_hw, mix_rng)
            sample = copy_paste(sample, other, mix_rng, self.settings.copy_paste_fraction)
        return sample

    def _partner_sample(
        self, index: int, input_hw: tuple[int, int], rng: np.random.Generator
    ) -> Sample:
        source = self._read_or_substitute(index, rng, input_hw, 1.0)
        if self.tile is not None:
            source = source.window(self.tile, rng)
        return self._single_sample(source, input_hw, keep_crowd=False)[0]

    def _eval_item(self, index: int) -> tuple[Tensor, Target]:
        annotation = self.annotations[index]
        orig_hw = (annotation.height, annotation.width)
        image = self._read(index)  # full size: the recorded resize must be the original's
        if image is None:  # grey and empty: keeps image ids unique, the warning names the file
            params = compute_resize(orig_hw, self.input_hw, self.keep_ratio)
            blank = np.full((*params.input_hw, 3), PAD_VALUE, dtype=np.uint8)
            sample = Sample.empty(blank, self.with_masks)
        else:
            decoded = DecodedImage(image, annotation, index)
            sample, params = self._single_sample(decoded, self.input_hw, keep_crowd=True)
        image_tensor, target = sample_to_tensors(sample, index, orig_hw, self.with_masks)
        target["resize_params"] = params
        return image_tensor, target
