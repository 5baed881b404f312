"""`AugmentSettings`: every knob of the training augmentations, with defaults for fine-tuning.

The project file's `augment:` section has the same field names, so the training layer builds
this with `AugmentSettings(**config.augment.model_dump())`. Validation and test data are only
resized (see `dfseg.ops.resize`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from dfseg.errors import DfsegError


class AugmentSettingsError(DfsegError, ValueError):
    """An augmentation setting is out of range; the message names the field and the fix."""


_PROBABILITY_FIELDS = (
    "mosaic",
    "hflip",
    "vflip",
    "rotate_prob",
    "affine_prob",
    "brightness_contrast_prob",
    "gamma_prob",
    "blur_prob",
    "noise_prob",
    "gray_prob",
    "coarse_dropout_prob",
)
_ORDERED_RANGE_FIELDS = (
    "multiscale_range",
    "affine_scale",
    "mosaic_scale",
    "gamma_range",
    "blur_kernel",
    "noise_std",
    "coarse_dropout_holes",
    "coarse_dropout_size",
)


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation settings (probabilities in [0, 1], sizes in pixels unless stated).

    The defaults suit fine-tuning a real-time DETR on a small custom dataset: geometric changes
    that keep objects recognisable, mild photometry, mosaic half of the time.

    Attributes:
        mosaic: probability that a training sample is a 4-image mosaic.
        mosaic_off_last_epochs: mosaic and multiscale are switched off for the last N epochs, so
            the model ends on the plain resized images it will see at inference.
        mosaic_scale: (low, high) zoom of the mosaic: the 2x-size canvas of four images is scaled
            by this factor about a random centre and cropped to the input (0.5 shows all four
            images at half size, 1.0 a quarter of the canvas at full size).
        background_warmup_epochs: background images (no instances) are left out of the first N
            epochs; they return afterwards.
        multiscale: pick one random input size per training batch.
        multiscale_range: (low, high) fractions of the base input size for multiscale; sizes are
            the multiples of 32 in that range.
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        rotate_degrees: maximum rotation angle in degrees (uniform in +-rotate_degrees).
        rotate_prob: probability of a rotation.
        affine_scale: (low, high) zoom of the random affine transform.
        affine_translate: maximum translation as a fraction of the image size (each axis).
        affine_shear: maximum shear in degrees (each axis).
        affine_prob: probability of the random affine transform (scale, translate, shear).
        brightness_contrast: maximum relative change of brightness and of contrast.
        brightness_contrast_prob: probability of a brightness/contrast change.
        gamma_range: (low, high) gamma in percent (100 = unchanged).
        gamma_prob: probability of a gamma change.
        blur_kernel: (low, high) odd kernel size of the Gaussian or motion blur.
        blur_prob: probability of a blur.
        noise_std: (low, high) standard deviation of Gaussian noise, as a fraction of 255.
        noise_prob: probability of Gaussian noise.
        gray_prob: probability of converting to grey (kept 3-channel).
        coarse_dropout_holes: (low, high) number of rectangular holes filled with grey.
        coarse_dropout_size: (low, high) hole side as a fraction of the image side.
        coarse_dropout_prob: probability of coarse dropout (masks stay whole: occlusion).
        min_box_size: instances whose box is narrower or lower than this (input pixels) after
            the augmentations are dropped from labels, boxes and masks together.
        debug_images: number of augmented training samples drawn to the run folder.
    """

    mosaic: float = 0.5
    mosaic_off_last_epochs: int = 2
    mosaic_scale: tuple[float, float] = (0.5, 1.5)
    background_warmup_epochs: int = 0
    multiscale: bool = False
    multiscale_range: tuple[float, float] = (0.75, 1.25)
    hflip: float = 0.5
    vflip: float = 0.0
    rotate_degrees: float = 0.0
    rotate_prob: float = 0.0
    affine_scale: tuple[float, float] = (0.8, 1.2)
    affine_translate: float = 0.1
    affine_shear: float = 0.0
    affine_prob: float = 0.3
    brightness_contrast: float = 0.2
    brightness_contrast_prob: float = 0.3
    gamma_range: tuple[float, float] = (80.0, 120.0)
    gamma_prob: float = 0.1
    blur_kernel: tuple[int, int] = (3, 7)
    blur_prob: float = 0.05
    noise_std: tuple[float, float] = (0.02, 0.06)
    noise_prob: float = 0.05
    gray_prob: float = 0.02
    coarse_dropout_holes: tuple[int, int] = (1, 4)
    coarse_dropout_size: tuple[float, float] = (0.05, 0.15)
    coarse_dropout_prob: float = 0.0
    min_box_size: float = 2.0
    debug_images: int = 8

    def __post_init__(self) -> None:
        for name in _PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise AugmentSettingsError(f"augment.{name} must be in [0, 1], got {value}")
        for name in _ORDERED_RANGE_FIELDS:
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise AugmentSettingsError(
                    f"augment.{name} must be [low, high] with 0 < low <= high, got {[low, high]}"
                )
        for name in ("mosaic_off_last_epochs", "background_warmup_epochs", "debug_images"):
            if getattr(self, name) < 0:
                raise AugmentSettingsError(f"augment.{name} must be >= 0")
        if not 0 <= self.rotate_degrees <= 180 or not 0 <= self.affine_shear <= 45:
            raise AugmentSettingsError(
                "augment.rotate_degrees must be in [0, 180] and augment.affine_shear in [0, 45]"
            )
        if self.blur_kernel[0] < 3 or self.blur_kernel[0] % 2 == 0 or self.blur_kernel[1] % 2 == 0:
            raise AugmentSettingsError(
                f"augment.blur_kernel must be odd sizes >= 3, got {list(self.blur_kernel)}"
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """All setting names (the keys `augment:` may hold)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def no_augmentation(cls) -> AugmentSettings:
        """Settings that only resize: every probability zero, no multiscale."""
        zero_probabilities: dict[str, Any] = dict.fromkeys(_PROBABILITY_FIELDS, 0.0)
        return cls(**zero_probabilities)
