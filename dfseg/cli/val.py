"""`dfseg val`: COCO-exact metrics of a trained checkpoint on the val or test split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, load

if TYPE_CHECKING:
    from dfseg.config import ProjectConfig


def val(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Checkpoint or run folder (default: newest run's best.pt)."
    ),
    split: Literal["val", "test"] = typer.Option("val", help="Split to evaluate."),
    conf: float | None = typer.Option(
        None, min=0, max=1, help="Threshold for P/R/F1 (default: the run's tuned threshold)."
    ),
    tile: int | None = typer.Option(
        None,
        "--tile",
        min=32,
        help="Also evaluate tile by tile (tile side in pixels) and compare with whole images.",
    ),
    tile_overlap: float = typer.Option(0.2, "--tile-overlap", min=0.0, max=0.95),
    as_json: bool = JSON_OPT,
) -> None:
    """Evaluate a trained model: mAP (boxes and masks), P/R/F1, confusion matrix, plots."""
    config = load(project, overrides)
    if tile is not None:
        _compare_tiling(config, weights, split, conf, tile, tile_overlap, as_json)
        return

    from dfseg.training.validate import validate_run

    with render.ProgressRenderer() as progress:
        result = validate_run(config, weights, split, conf, None if as_json else progress)
    if as_json:
        render.dump_json(result)
        return
    out = render.console()
    out.print(render.eval_table(result.report, f"{result.split}: {result.images} images"))
    coco = getattr(result.report, "coco", {})  # a semantic report has mIoU, no COCO summary
    for iou_type, stats in coco.items():
        summary = "  ".join(f"{k}={v:.3f}" for k, v in stats.items() if k.startswith("AP"))
        out.print(f"{'Box' if iou_type == 'bbox' else 'Mask'} COCO: {summary}")
    out.print(f"Results saved to [bold]{result.out_dir}[/]")


def _compare_tiling(
    config: ProjectConfig,
    weights: Path | None,
    split: Literal["val", "test"],
    conf: float | None,
    tile: int,
    overlap: float,
    as_json: bool,
) -> None:
    """`val --tile`: whole images against tiles, one table row each."""
    from dfseg.analysis.split_data import split_images_for
    from dfseg.analysis.tiling_eval import compare_tiling
    from dfseg.nn.trained import read_checkpoint_manifest
    from dfseg.runtime.tiling import tile_settings
    from dfseg.training.validate import find_weights

    path = find_weights(config, weights)
    threshold = read_checkpoint_manifest(path).threshold if conf is None else conf
    images = split_images_for(config, split)
    tiling = tile_settings({**config.infer.tile.model_dump(), "size": tile, "overlap": overlap})
    assert tiling is not None
    with render.ProgressRenderer() as progress:
        result = compare_tiling(
            path, images, tiling, threshold, None, None if as_json else progress
        )
    if as_json:
        render.dump_json(result)
        return
    masks = any(row.mask is not None for row in result.rows)
    columns = ["Predicted", "P", "R", "F1", "mAP50", "mAP50-95"]
    columns += ["Mask R", "Mask mAP50", "Mask mAP50-95"] if masks else []
    rows = []
    for row in result.rows:
        values: list[object] = [row.name, row.box.precision, row.box.recall, row.box.f1,
                                row.box.map50, row.box.map50_95]  # fmt: skip
        if row.mask is not None:
            values += [row.mask.recall, row.mask.map50, row.mask.map50_95]
        rows.append([*values, row.ms_per_image])
    title = f"{result.split}: {result.images} images, threshold {result.threshold:.3f}"
    render.console().print(render.table(title, [*columns, "ms/image"], rows, numeric_from=1))
