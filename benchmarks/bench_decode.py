"""Which decoding picks the detections best: top-k pairs, one label per query, or class-aware NMS.

For each trained run given (its best.pt and the project's validation split), the same weights are
evaluated with every `model.decode` and the NMS overlap thresholds asked for, and the table shows
box (and mask) mAP50, mAP50-95, and F1 at each decoding's own F1-best threshold. No training: it
takes seconds per run, so the decision is made on every run the learning benchmark leaves.

    python benchmarks/bench_decode.py bench-learning/runs/kangaroo/exp bench-learning/runs/*/exp
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dfseg.config import load_project
from dfseg.nn.trained import load_trained_model
from dfseg.training.distributed import DistributedContext
from dfseg.training.evaluation import EvalSettings, evaluate_annotations
from dfseg.training.project_data import load_project_data


def evaluate_run(run: Path, decodes: list[tuple[str, float]]) -> list[dict]:
    config = load_project(run / "project.yaml")
    data = load_project_data(config, create_split=False)
    _, images = data.eval_split("val")
    model, _ = load_trained_model(run / "best.pt")
    rows = []
    for decode, iou in decodes:
        settings = EvalSettings(
            input_hw=config.data.image_size,
            task=config.project.task,
            keep_ratio=config.data.keep_ratio,
            batch_size=8,
            workers=0,
            decode=decode,  # type: ignore[arg-type]
            nms_iou=iou,
        )
        evaluation = evaluate_annotations(
            model, images, data.class_names, settings, DistributedContext(torch.device("cpu"))
        )
        assert evaluation is not None
        report = evaluation.report
        row = {"run": str(run), "decode": decode if decode != "nms" else f"nms@{iou:g}"}
        for group, iou_type in (("box", "bbox"), ("mask", "segm")):
            coco = report.coco.get(iou_type)
            if coco:
                row[f"{group}50"], row[group] = coco["AP50"], coco["AP"]
        row["F1"] = report.primary.f1
        row["thr"] = report.threshold
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--nms-iou", nargs="+", type=float, default=[0.5, 0.7])
    args = parser.parse_args()
    decodes = [("topk", 0.7), ("one_per_query", 0.7)] + [("nms", iou) for iou in args.nms_iou]
    columns = ["run", "decode", "box50", "box", "mask50", "mask", "F1", "thr"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for run in args.runs:
        for row in evaluate_run(run, decodes):
            cells = [
                f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "-"))
                for c in columns
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
