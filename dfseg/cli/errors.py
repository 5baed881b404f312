"""`dfseg errors`: TIDE error analysis of a trained model with an error gallery."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, show
from dfseg.cli.run_target import RUN_ARG, resolve_run

if TYPE_CHECKING:
    from dfseg.analysis.errors import ErrorsReport
    from dfseg.analysis.errors.semantic import SemanticErrorsReport
    from dfseg.analysis.split_data import SplitImages


def errors(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    split: Literal["train", "val", "test"] = typer.Option("val", help="Split to analyse."),
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Model file or export folder (default: the run's best.pt)."
    ),
    conf: float | None = typer.Option(
        None, min=0, max=1, help="Confidence threshold (default: the run's tuned threshold)."
    ),
    iou: float = typer.Option(0.5, min=0.05, max=0.95, help="IoU for a true positive."),
    dap: Literal["ap50", "ap50_95"] = typer.Option(
        "ap50", help="AP whose gain (dAP) is reported per error type."
    ),
    worst: int = typer.Option(20, min=0, help="How many images with the most errors to list."),
    gallery_limit: int | None = typer.Option(
        None, min=0, help="At most this many gallery images, most errors first (default: all)."
    ),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for inference."),
    as_json: bool = JSON_OPT,
) -> None:
    """Why the model is wrong: TIDE error types, their cost in AP, and an error gallery.

    Error types: classification, localization, both, duplicate, background, missed. Also lists
    the images with the most errors (often mislabelled) and draws every false positive and
    negative of each image, filed by error type. Semantic models: the class confusions, the
    images with the lowest mIoU, and a gallery of labels, prediction and wrong pixels.
    """
    run, project = resolve_run(target, overrides)

    from dfseg.analysis.errors import ErrorSettings, run_error_analysis
    from dfseg.analysis.split_data import split_images_for
    from dfseg.structures.run_folders import create_numbered_dir

    images = split_images_for(project, split)
    threads = cpu_threads(threads, "errors")
    if project.project.task == "semantic":
        _semantic_errors(
            weights or run.path, images, run.path, worst, gallery_limit, threads, as_json
        )
        return
    settings = ErrorSettings(
        confidence_threshold=conf, iou_threshold=iou, dap_metric=dap, worst_images=worst,
        gallery_limit=gallery_limit,
    )  # fmt: skip
    out_dir = create_numbered_dir(run.path, "errors")
    with render.ProgressRenderer() as progress:
        report = run_error_analysis(
            weights or run.path, images, out_dir, settings, threads=threads,
            progress=None if as_json else progress,
        )  # fmt: skip
    show(report, as_json, _render)


def _semantic_errors(
    artifact: Path,
    images: SplitImages,
    run_dir: Path,
    worst: int,
    gallery_limit: int | None,
    threads: int | None,
    as_json: bool,
) -> None:
    from dfseg.analysis.errors.semantic import analyze_semantic_errors
    from dfseg.runtime.predictor import load_predictor
    from dfseg.structures.run_folders import create_numbered_dir

    predictor = load_predictor(artifact, threads=threads)
    out_dir = create_numbered_dir(run_dir, "errors")
    with render.ProgressRenderer() as progress:
        report = analyze_semantic_errors(
            predictor, images, out_dir, worst, gallery_limit,
            progress=None if as_json else progress,
        )  # fmt: skip
    show(report, as_json, _render_semantic)


def _render_semantic(report: SemanticErrorsReport) -> None:
    out = render.console()
    confusions = [
        (c.labelled, c.predicted, c.pixels, f"{100 * c.share:.1f}%") for c in report.confusions
    ]
    out.print(
        render.table(
            f"Class confusions on {report.split} ({report.images} images, mIoU "
            f"{report.miou:.3f}, pixel accuracy {report.pixel_accuracy:.3f})",
            ["Labelled", "Predicted as", "Pixels", "Of the labelled class"],
            confusions,
        )
    )
    worst_rows = [
        (Path(w.image).name, w.miou, w.pixel_accuracy, w.top_confusion or "-")
        for w in report.worst_images
    ]
    worst = render.table(
        "Images with the lowest mIoU", ["Image", "mIoU", "Pixel acc", "Largest confusion"],
        worst_rows,
    )  # fmt: skip
    worst.columns[3].justify = "left"
    out.print(worst)
    drawn = sum(w.gallery is not None for w in report.worst_images)
    out.print(f"{drawn} gallery images. Results saved to [bold]{report.out_dir}[/]")


def _render(report: ErrorsReport) -> None:
    out = render.console()
    for group in report.groups:
        kind = "Boxes" if group.iou_type == "bbox" else "Masks"
        metric = "AP50" if group.metric == "ap50" else "AP50-95"
        rows: list[tuple[str, int | str, float]] = [
            (r.error_type, r.count, 100 * r.dap) for r in group.rows
        ]
        rows += [
            ("all false positives", "", 100 * group.false_positives_dap),
            ("all false negatives", "", 100 * group.false_negatives_dap),
        ]
        table = render.table(
            f"{kind}: {metric} {100 * group.ap:.1f} on {report.split} ({report.images} images)",
            ["Error type", f"Count @ conf {report.confidence_threshold:.3f}", f"d{metric}"],
            rows,
        )
        table.caption = f"d{metric}: {metric} points gained by fixing that error type (TIDE)"
        out.print(table)
    if report.worst_images:
        worst_rows = [
            (Path(w.image).name, w.errors, ", ".join(f"{k} {v}" for k, v in w.counts.items()))
            for w in report.worst_images
        ]
        worst = render.table(
            "Images with the most errors", ["Image", "Errors", "Types"], worst_rows
        )
        worst.columns[2].justify = "left"
        out.print(worst)
    if report.mislabel_candidates:
        shown = report.mislabel_candidates[:10]
        mislabel_rows = [
            (c.rank, c.kind, Path(c.image).name, c.labelled or "-", c.predicted, f"{c.score:.3f}")
            for c in shown
        ]
        mislabels = render.table(
            f"Mislabel candidates ({len(report.mislabel_candidates)}, score >= "
            f"{report.mislabel_min_score:.2f}; pictures in mislabels/)",
            ["#", "Kind", "Image", "Labelled", "Model sees", "Score"],
            mislabel_rows,
        )
        out.print(mislabels)
    out.print(
        f"{report.gallery_images} gallery images ({report.gallery_iou_type}). "
        f"Results saved to [bold]{report.out_dir}[/]"
    )
