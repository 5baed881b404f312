"""The `train:` and `augment:` sections of the project file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dfseg.config.base import Section

DecisionMetric = Literal["map50_95", "map50", "f1", "miou"]


class DistillConfig(Section):
    """Knowledge distillation from a trained teacher (`train.distill`): the student trains with
    its own losses plus these terms, the teacher run in eval mode without gradients on the same
    augmented batch."""

    teacher: str | None = Field(
        None,
        description="A trained dfseg run folder or checkpoint (best.pt) of the same task and "
        "classes, usually a larger size; relative to the project file. null: no distillation.",
    )
    temperature: float = Field(2.0, gt=0, description="Softening temperature of the KL terms.")
    logit_weight: float = Field(
        1.0,
        ge=0,
        description="semantic: pixel-logit KL (x t^2) + mse_weight x MSE; detection: KL of "
        "the class logits of queries matched to the same object.",
    )
    mse_weight: float = Field(
        0.5, ge=0, description="semantic: the MSE share of the logit term (FastSegFormer's k)."
    )
    feature_weight: float = Field(
        1.0,
        ge=0,
        description="MSE of the encoder maps, each standardised per channel over H, W (student "
        "channels projected to the teacher's by a trained 1x1 conv).",
    )
    box_weight: float = Field(
        1.0,
        ge=0,
        description="detection: KL of the FDR corner distributions of matched queries.",
    )
    mask_weight: float = Field(
        1.0, ge=0, description="segment: pixel KL of the masks of matched queries."
    )


class TrainConfig(Section):
    """Optimisation, schedule and run-control settings."""

    epochs: int = Field(50, gt=0, description="Epochs; with time_budget, the most to train.")
    time_budget: float | None = Field(
        None,
        gt=0,
        description=(
            "Minutes the run may take (like Ultralytics' time=): it trains as many epochs as fit, "
            "re-planned after each one, schedule included, and ends with a validation."
        ),
    )
    batch_size: Annotated[int, Field(gt=0)] | Literal["auto"] = Field(
        8,
        description="Images per optimizer step per device; auto: the largest that fits the "
        "device's memory, measured by probing the model before training (logged).",
    )
    accumulate: int = Field(1, ge=1, description="Gradient accumulation steps.")

    @property
    def eval_batch_size(self) -> int:
        """Images per evaluation batch: the training batch, 8 when it is still "auto"."""
        return 8 if self.batch_size == "auto" else self.batch_size

    lr: float | None = Field(
        None, gt=0, description="Base learning rate; null: the size's default (see variants)."
    )
    backbone_lr: float | None = Field(None, gt=0, description="Backbone lr; null: size default.")
    weight_decay: float | None = Field(None, ge=0, description="null: the size's default.")
    layer_lr_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Backbone stage k of 4 learns at backbone_lr * decay^(4 - k) (stem: ^4).",
    )
    freeze_backbone_epochs: int = Field(
        0, ge=0, description="Train with the backbone's weights frozen for the first N epochs."
    )
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: Literal["auto", "adamw", "muon"] = Field(
        "auto",
        description="muon: Muon (orthogonalised momentum) for the hidden weight matrices and "
        "kernels at the same lr, AdamW for embeddings, prediction layers and norms; adamw: "
        "AdamW for all (D-FINE's); auto: muon from scratch (measured better: "
        "benchmarks/bench_learning.py), adamw when fine-tuning pretrained weights.",
    )
    muon_momentum: float = Field(0.95, ge=0, lt=1, description="Muon's Nesterov momentum.")
    scheduler: Literal["flat_cosine", "onecycle"] = "flat_cosine"
    warmup_epochs: float = Field(1.0, ge=0, description="Linear lr warm-up, in epochs.")
    flat_fraction: float = Field(
        0.5, ge=0, le=1, description="flat_cosine: fraction of training kept at the base lr."
    )
    min_lr_ratio: float = Field(0.05, ge=0, le=1, description="Final lr as a fraction of base.")
    grad_clip: float = Field(0.1, ge=0, description="Max gradient norm; 0 disables clipping.")
    ema: bool = True
    ema_decay: float = Field(0.9999, gt=0, lt=1)
    ema_warmup: int | None = Field(
        1000,
        ge=0,
        description=(
            "EMA warm-up in optimizer updates (D-FINE's 1000); null: fitted to the run's length so "
            "the average covers about its last tenth (measured worse on 12-epoch runs: the model "
            "still improves fast and the average lags; benchmarks/bench_learning.py)."
        ),
    )
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        "auto", description="CUDA mixed precision; auto picks bf16 where supported, else fp16."
    )
    cpu_bf16: bool = Field(False, description="bf16 autocast on CPU (faster on AVX512-BF16).")
    decision_metric: DecisionMetric = Field(
        "map50_95",
        description="Picks best.pt and drives early stopping (mask metric for segment; miou, "
        "the default there, for semantic).",
    )
    early_stopping: int = Field(
        0, ge=0, description="Stop after N epochs without improvement; 0 off."
    )
    val_every: int = Field(1, ge=1, description="Validate every N epochs (and after the last).")
    seed: int = 0
    deterministic: bool = False
    device: str | None = Field(None, description="cpu, cuda, cuda:1; null: DFSEG_DEVICE or auto.")
    workers: int | None = Field(None, ge=0, description="DataLoader workers; null: DFSEG_WORKERS.")
    use_mal: bool | None = Field(
        None,
        description="DEIM's MAL loss instead of D-FINE's VFL; null: MAL from scratch (measured "
        "better: kangaroo-voc box mAP50 0.315 -> 0.437, benchmarks/bench_learning.py), VFL "
        "when fine-tuning model.pretrained (D-FINE's recipe; not measured against MAL).",
    )
    query_groups: int = Field(
        3,
        ge=1,
        le=13,
        description="detect/segment: Group DETR (LW-DETR, RF-DETR): G groups of "
        "model.num_queries queries, each selected, matched and scored on its own, so each object "
        "supervises G queries per step; inference and exports use the first group only. 1: "
        "D-FINE's single set. The default 3 groups of 100 queries train as many decoder queries "
        "as D-FINE's 300 (same CPU time) and measured better: shapes mask mAP50 0.428 -> 0.482 "
        "in 12 epochs (README 'Training on small data').",
    )
    cls_loss_weight: float = Field(
        2.0,
        gt=0,
        description=(
            "Classification loss weight (D-FINE's is 1; 2 measured better on small data, where "
            "classes are learned last: benchmarks/bench_learning.py)."
        ),
    )
    repeat_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Repeat-factor sampling for rare classes (LVIS): images of a class found in "
        "fewer than this fraction of training images are repeated sqrt(t / f) times per epoch; "
        "null: every image once.",
    )
    mask_bce_weight: float = Field(5.0, ge=0)
    mask_dice_weight: float = Field(5.0, ge=0)
    semantic_ce_weight: float = Field(1.0, ge=0, description="semantic: pixel cross-entropy.")
    semantic_dice_weight: float = Field(
        0.0, ge=0, description="semantic: soft Dice over the classes (0: off)."
    )
    semantic_ohem: float | None = Field(
        None,
        gt=0,
        le=1,
        description="semantic: online hard example mining, the hardest fraction of the pixels "
        "that the cross-entropy keeps (null: every pixel).",
    )
    semantic_class_weights: list[float] | None = Field(
        None, description="semantic: cross-entropy weight per class, in class order."
    )
    distill: DistillConfig = Field(default_factory=DistillConfig)
    tensorboard: bool = False
    mlflow: bool = False
    wandb: bool = False


class AugmentConfig(Section):
    """Training augmentations (validation and test data are only resized or letterboxed); the
    data layer takes this section as it is.

    The defaults suit a real-time DETR on a small custom dataset: geometric changes that keep
    objects recognisable, mild photometry, no mosaic (it slowed short runs down, measured).
    Probabilities are in [0, 1]; sizes in input pixels unless stated.

    Attributes:
        mosaic: probability that a training sample is a 4-image mosaic.
        mosaic_off_last_epochs: mosaic, MixUp, copy-paste and multiscale are switched off for the
            last N epochs, so the model ends on the plain resized images it will see at inference.
        mosaic_scale: (low, high) zoom of the mosaic: the 2x-size canvas of four images is scaled
            by this factor about a random centre and cropped to the input (0.5 shows all four
            images at half size, 1.0 a quarter of the canvas at full size).
        mixup: probability that a training sample (single image or mosaic) is blended with
            another image of the epoch, keeping the instances of both (DEIM: 0.5).
        mixup_weight: (low, high) of the uniform blend weight of the sample's own image.
        copy_paste: segment task: probability that a sample gets instances of another image
            pasted over it, pixels and masks (what they cover is cut from its own masks).
        copy_paste_fraction: probability that each masked instance of the other image is
            pasted (at least one is).
        mix_start_epoch: mosaic, MixUp and copy-paste are off before this epoch (DEIM switches
            its dense augmentations on after a few plain epochs).
        background_warmup_epochs: background images (no instances) are left out of the first N
            epochs; they return afterwards.
        multiscale: pick one random input size per training batch.
        multiscale_range: (low, high) fractions of the base input size for multiscale; sizes are
            the multiples of 32 in that range.
        hflip, vflip: probability of a horizontal / vertical flip.
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

    mosaic: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Probability of a 4-image mosaic (off by default: on the shapes 0.5 lowered mask "
            "mAP50 0.209 -> 0.185 in 12 epochs from scratch; benchmarks/bench_learning.py)."
        ),
    )
    mosaic_off_last_epochs: int = Field(
        2, ge=0, description="Mosaic and multiscale are switched off for the last N epochs."
    )
    mosaic_scale: tuple[float, float] = Field((0.5, 1.5), description="Zoom of the mosaic canvas.")
    mixup: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Probability that a training sample is blended with another image (MixUp).",
    )
    mixup_weight: tuple[float, float] = Field(
        (0.45, 0.55), description="(low, high) blend weight of the sample's own image."
    )
    copy_paste: float = Field(
        0.0,
        ge=0,
        le=1,
        description="segment: probability of pasting another image's masked instances.",
    )
    copy_paste_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Probability that each of the other image's instances is pasted.",
    )
    mix_start_epoch: int = Field(
        0, ge=0, description="Mosaic, MixUp and copy-paste start at this epoch (0-based)."
    )
    background_warmup_epochs: int = Field(
        0, ge=0, description="Leave background images out for the first N epochs."
    )
    multiscale: bool = Field(False, description="Pick a random input size per batch.")
    multiscale_range: tuple[float, float] = Field(
        (0.75, 1.25), description="Multiscale sizes as fractions of data.image_size."
    )
    hflip: float = Field(0.5, ge=0, le=1)
    vflip: float = Field(0.0, ge=0, le=1)
    rotate_degrees: float = Field(0.0, ge=0, le=180)
    rotate_prob: float = Field(0.0, ge=0, le=1)
    affine_scale: tuple[float, float] = (0.8, 1.2)
    affine_translate: float = Field(0.1, ge=0, le=0.5)
    affine_shear: float = Field(0.0, ge=0, le=45)
    affine_prob: float = Field(0.3, ge=0, le=1)
    brightness_contrast: float = Field(0.2, ge=0, le=1, description="Max relative change.")
    brightness_contrast_prob: float = Field(0.3, ge=0, le=1)
    gamma_range: tuple[float, float] = Field((80.0, 120.0), description="Gamma in percent.")
    gamma_prob: float = Field(0.1, ge=0, le=1)
    blur_kernel: tuple[int, int] = Field((3, 7), description="Odd kernel sizes >= 3.")
    blur_prob: float = Field(0.05, ge=0, le=1)
    noise_std: tuple[float, float] = Field((0.02, 0.06), description="Fraction of 255.")
    noise_prob: float = Field(0.05, ge=0, le=1)
    gray_prob: float = Field(0.02, ge=0, le=1)
    coarse_dropout_holes: tuple[int, int] = (1, 4)
    coarse_dropout_size: tuple[float, float] = Field(
        (0.05, 0.15), description="Hole side as a fraction of the image side."
    )
    coarse_dropout_prob: float = Field(0.0, ge=0, le=1)
    min_box_size: float = Field(2.0, ge=0, description="Smaller instances are dropped.")
    debug_images: int = Field(8, ge=0, description="Augmented samples saved to the run folder.")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> AugmentConfig:
        for name in (
            "multiscale_range", "affine_scale", "mosaic_scale", "gamma_range", "blur_kernel",
            "noise_std", "coarse_dropout_holes", "coarse_dropout_size",
        ):  # fmt: skip
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high")
        low, high = self.blur_kernel
        if low < 3 or low % 2 == 0 or high % 2 == 0:
            raise ValueError(f"blur_kernel must be odd sizes >= 3, got {[low, high]}")
        low, high = self.mixup_weight
        if not 0 <= low <= high <= 1:
            raise ValueError("mixup_weight must be [low, high] with 0 <= low <= high <= 1")
        return self

    @classmethod
    def no_augmentation(cls) -> AugmentConfig:
        """Settings that only resize: every probability zero, no multiscale."""
        probabilities = [
            name for name in cls.model_fields
            if name in ("mosaic", "mixup", "copy_paste", "hflip", "vflip")
            or name.endswith("_prob")
        ]  # fmt: skip
        return cls(**dict.fromkeys(probabilities, 0.0))
