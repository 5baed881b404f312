"""`Distiller`: a trained teacher's knowledge as extra loss terms of the student (`train.distill`).

Each training step the teacher (eval mode, frozen, no gradients, same autocast) runs on the
student's own augmented batch. The terms (`dfseg.training.criterion.distill`):

- `loss_kd_feat`: every encoder level the two models share a stride at (D-FINE-N has strides 16
  and 32, S..X also 8): standardised-map MSE, student channels projected by a trained 1x1 conv.
- semantic models, `loss_kd_logit`: pixel KL at t plus k x probability MSE.
- detection / instance segmentation: student and teacher queries are paired through the ground
  truth (both are Hungarian-matched to the image's objects with the criterion's costs; the two
  queries matched to the same object form a pair). `loss_kd_logit`: binary KL of their class
  logits; `loss_kd_box`: KL of their FDR corner distributions; `loss_kd_mask` (segment): pixel
  binary KL of their masks at the mask resolution (H/4).

The projections train with the student (`trainable` joins the optimizer) and are saved in
last.pt (`state_dict_for_resume`), never in best.pt: the deployed model is the student alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from dfseg.config.train import DistillConfig
from dfseg.errors import DfsegError
from dfseg.nn import DFine
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.nn.trained import load_trained_model
from dfseg.training.criterion.distill import (
    distribution_kl,
    feature_distillation,
    feature_projectors,
    pixel_kl,
    probability_mse,
    sigmoid_kl,
)
from dfseg.training.criterion.matcher import HungarianMatcher

DISTILL_LOSS_FAMILIES = ("kd_logit", "kd_box", "kd_mask", "kd_feat")


class DistillError(DfsegError):
    """A teacher that cannot teach this student (missing, other task or classes)."""


@dataclass(frozen=True)
class DistillWeights:
    """Temperature and term weights (see `DistillConfig`)."""

    temperature: float = 2.0
    logit: float = 1.0
    mse: float = 0.5
    feature: float = 1.0
    box: float = 1.0
    mask: float = 1.0

    @classmethod
    def from_config(cls, config: DistillConfig) -> DistillWeights:
        return cls(
            temperature=config.temperature,
            logit=config.logit_weight,
            mse=config.mse_weight,
            feature=config.feature_weight,
            box=config.box_weight,
            mask=config.mask_weight,
        )


def teacher_checkpoint(teacher: str, base_dir: Path | None) -> Path:
    """The teacher's checkpoint: a file, or a run folder's best.pt (relative to `base_dir`)."""
    path = Path(teacher).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise DistillError(
            f"train.distill.teacher: {path} not found; give a dfseg run folder or its best.pt"
        )
    return path


def load_teacher(
    path: Path, task: str, class_names: list[str]
) -> tuple[DFine | DFineSemantic, str]:
    """The teacher model (eval mode, frozen) and its size, checked against the student's task
    and classes."""
    model, manifest = load_trained_model(path)
    if manifest.model.task != task:
        raise DistillError(
            f"train.distill.teacher: {path} is a {manifest.model.task} model; the student is "
            f"{task}. Train a teacher of the same task"
        )
    if list(manifest.class_names) != list(class_names):
        raise DistillError(
            f"train.distill.teacher: {path} has classes {manifest.class_names}, the student "
            f"{class_names}; the teacher must be trained on the same classes, in order"
        )
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, manifest.model.size


class _LevelTap:
    """Keeps the last output of a module (the encoder's list of maps)."""

    def __init__(self, module: nn.Module) -> None:
        self.levels: list[Tensor] | None = None
        self.handle: RemovableHandle = module.register_forward_hook(self._keep)

    def _keep(self, _: nn.Module, __: Any, output: Any) -> None:
        self.levels = list(output)

    def take(self) -> list[Tensor]:
        if self.levels is None:
            raise RuntimeError("the encoder has not run since the last step")
        levels, self.levels = self.levels, None
        return levels


class Distiller(nn.Module):
    """Teacher -> student loss terms for one training step.

    Args:
        student: the model being trained (not DDP-wrapped).
        teacher: a trained model of the same task and classes (`load_teacher`).
        weights: temperature and term weights; a weight of 0 skips its term.
        matcher: pairs queries through the ground truth (detection; default costs: the
            criterion's).
    """

    def __init__(
        self,
        student: DFine | DFineSemantic,
        teacher: DFine | DFineSemantic,
        weights: DistillWeights,
        matcher: HungarianMatcher | None = None,
    ) -> None:
        super().__init__()
        if isinstance(student, DFineSemantic) != isinstance(teacher, DFineSemantic):
            raise DistillError("the teacher and the student must be of the same task")
        self.weights = weights
        self.semantic = isinstance(student, DFineSemantic)
        self.teacher = teacher
        self.matcher = matcher or HungarianMatcher()
        student_strides = tuple(student.encoder.feat_strides)
        teacher_strides = tuple(teacher.encoder.feat_strides)
        shared = [s for s in student_strides if s in teacher_strides]
        self.student_levels = [student_strides.index(s) for s in shared]
        self.teacher_levels = [teacher_strides.index(s) for s in shared]
        self.projectors = feature_projectors(
            [student.encoder.hidden_dim] * len(shared), [teacher.encoder.hidden_dim] * len(shared)
        )
        self._student_tap = _LevelTap(student.encoder)
        self._teacher_tap = _LevelTap(teacher.encoder)
        self.teacher_seconds = 0.0
        self.steps = 0

    def trainable(self) -> list[nn.Parameter]:
        """What trains with the student (the feature projections)."""
        return [p for p in self.projectors.parameters() if p.requires_grad]

    def state_dict_for_resume(self) -> dict[str, Tensor]:
        return self.projectors.state_dict()

    def load_state_for_resume(self, state: dict[str, Tensor]) -> None:
        self.projectors.load_state_dict(state)

    def train(self, mode: bool = True) -> Distiller:
        """Only the projections train; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def teacher_ms(self) -> float:
        """Mean teacher milliseconds per step so far."""
        return 1000.0 * self.teacher_seconds / max(1, self.steps)

    def forward(
        self,
        images: Tensor,
        student_outputs: dict[str, Any],
        targets: list[dict[str, Any]],
        autocast_dtype: torch.dtype | None = None,
    ) -> dict[str, Tensor]:
        """The weighted distillation terms of one step (after the student's forward pass).

        Args:
            images: the batch the student saw.
            student_outputs: its training outputs.
            targets: the batch's targets (`labels`, `boxes` normalised cxcywh).
            autocast_dtype: the step's autocast dtype (the teacher runs under it too).
        """
        student_levels = self._student_tap.take()
        started = time.perf_counter()
        with (
            torch.no_grad(),
            torch.autocast(
                images.device.type,
                autocast_dtype or torch.float32,
                enabled=autocast_dtype is not None,
            ),
        ):
            if self.semantic:
                teacher_outputs = self.teacher(images)
            else:
                teacher_outputs = self.teacher(images, return_corners=True)
        teacher_levels = self._teacher_tap.take()
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        self.teacher_seconds += time.perf_counter() - started
        self.steps += 1
        w = self.weights
        losses: dict[str, Tensor] = {}
        if w.feature > 0 and self.student_levels:
            student_maps = [student_levels[i] for i in self.student_levels]
            teacher_maps = [teacher_levels[i] for i in self.teacher_levels]
            feature = feature_distillation(student_maps, teacher_maps, self.projectors)
            losses["loss_kd_feat"] = w.feature * feature
        if self.semantic:
            if w.logit > 0:
                losses["loss_kd_logit"] = w.logit * self._semantic_logits(
                    student_outputs["semantic_logits"], teacher_outputs["semantic_logits"]
                )
            return losses
        losses.update(self._query_terms(student_outputs, teacher_outputs, targets))
        return losses

    def _semantic_logits(self, student: Tensor, teacher: Tensor) -> Tensor:
        teacher = teacher.float()
        if teacher.shape[-2:] != student.shape[-2:]:
            teacher = F.interpolate(teacher, student.shape[-2:], mode="bilinear")
        t = self.weights.temperature
        return pixel_kl(student, teacher, t) + self.weights.mse * probability_mse(student, teacher)

    def _query_terms(
        self,
        student: dict[str, Any],
        teacher: dict[str, Any],
        targets: list[dict[str, Any]],
    ) -> dict[str, Tensor]:
        pairs = paired_queries(self.matcher, student, teacher, targets)
        image_idx, student_idx, teacher_idx = pairs
        device = student["pred_logits"].device
        image_idx, student_idx, teacher_idx = (
            image_idx.to(device), student_idx.to(device), teacher_idx.to(device),
        )  # fmt: skip
        w, t = self.weights, self.weights.temperature
        losses: dict[str, Tensor] = {}
        if w.logit > 0:
            losses["loss_kd_logit"] = w.logit * sigmoid_kl(
                student["pred_logits"][image_idx, student_idx],
                teacher["pred_logits"][image_idx, teacher_idx],
                t,
            )
        if w.box > 0:
            losses["loss_kd_box"] = w.box * distribution_kl(
                student["pred_corners"][image_idx, student_idx],
                teacher["pred_corners"][image_idx, teacher_idx],
                t,
            )
        if w.mask > 0 and "pred_mask_embeds" in student and "pred_mask_embeds" in teacher:
            losses["loss_kd_mask"] = w.mask * sigmoid_kl(
                _mask_logits(student, image_idx, student_idx),
                _mask_logits(teacher, image_idx, teacher_idx),
                t,
            )
        return losses


def paired_queries(
    matcher: HungarianMatcher,
    student: dict[str, Any],
    teacher: dict[str, Any],
    targets: list[dict[str, Any]],
) -> tuple[Tensor, Tensor, Tensor]:
    """(image, student query, teacher query) indices of the queries both models match to the
    same object; int64 on the CPU, objects in image order."""
    clean = [{"labels": t["labels"], "boxes": t["boxes"].float()} for t in targets]
    student_matches = matcher(student, clean)
    teacher_matches = matcher(teacher, clean)
    images, student_queries, teacher_queries = [], [], []
    for image, ((s_query, s_object), (t_query, t_object)) in enumerate(
        zip(student_matches, teacher_matches, strict=True)
    ):
        teacher_of = {int(o): int(q) for q, o in zip(t_query, t_object, strict=True)}
        for query, obj in zip(s_query.tolist(), s_object.tolist(), strict=True):
            if obj in teacher_of:
                images.append(image)
                student_queries.append(query)
                teacher_queries.append(teacher_of[obj])
    as_tensor = lambda values: torch.as_tensor(values, dtype=torch.int64)  # noqa: E731
    return as_tensor(images), as_tensor(student_queries), as_tensor(teacher_queries)


def _mask_logits(outputs: dict[str, Any], image_idx: Tensor, query_idx: Tensor) -> Tensor:
    """[K, h * w] mask logits of the chosen queries (embedding . per-pixel features), one image
    at a time (never a [K, D, h, w] copy of the features)."""
    embeds = outputs["pred_mask_embeds"]  # [B, Q, D]
    features = outputs["mask_features"]  # [B, D, h, w]
    rows = []
    for image in image_idx.unique(sorted=True).tolist():
        chosen = image_idx == image
        queries = embeds[image, query_idx[chosen]].float()  # [k, D]
        rows.append((chosen.nonzero().flatten(), queries @ features[image].float().flatten(1)))
    if not rows:
        return embeds.new_zeros((0, features.shape[-2] * features.shape[-1])).float()
    order = torch.cat([index for index, _ in rows])
    logits = torch.cat([values for _, values in rows])
    return logits[torch.argsort(order)]
