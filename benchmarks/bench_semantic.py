"""How well the semantic task learns: D-FINE-N with the semantic head, from scratch, on a fixed
seeded split and a fixed number of epochs, reporting best.pt's validation:

    mIoU, mPA, pixel accuracy, per-class IoU, epochs done, minutes, img/s

Cases: the demo's generated shapes (polygons rasterised with a background class) and, when
`../shared/data` is present, potholes-yolo-seg and fruits-nuts-coco turned into class masks the
same way (no downloads). Every result is appended to `--out/results.jsonl` and the table is
printed from all lines, so runs made one after the other (never in parallel on 2 cores) compare.

    python benchmarks/bench_semantic.py --cases shapes --epochs 12
    python benchmarks/bench_semantic.py --cases potholes --set train.semantic_dice_weight=1
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bench_learning import CASES, Case, _Speeds, cpu_name, prepare

SEMANTIC_CASES = {
    name: replace(CASES[name], task="semantic") for name in ("shapes", "potholes", "fruits")
}


def run_case(case: Case, project: Path, overrides: list[str]) -> dict:
    """Split (seeded), train, and best.pt's final validation."""
    from dfseg.config import load_project
    from dfseg.data.project_dataset import make_split, read_project_dataset
    from dfseg.training.api import train_project

    config = load_project(project, overrides)
    dataset = read_project_dataset(config.data, task=config.project.task)
    make_split(dataset, config.data.split, config.split_dir, overwrite=True)
    speeds = _Speeds()
    started = time.monotonic()
    report = train_project(config, hooks=[speeds])
    seconds = time.monotonic() - started
    assert report is not None and report.final is not None
    final = report.final
    return {
        "case": case.name,
        "miou": final.miou,
        "mpa": final.mpa,
        "pixel_acc": final.pixel_accuracy,
        "class_iou": {row.name: round(row.iou, 4) for row in final.classes},
        "epochs_done": report.epochs_completed,
        "best_epoch": report.best_epoch,
        "minutes": round(seconds / 60, 2),
        "images_per_second": speeds.median(),
        "curve": speeds.curve,
        "run_dir": report.run_dir,
    }


def print_table(lines: list[dict]) -> None:
    columns = [
        ("label", "label"), ("case", "case"), ("mIoU", "miou"), ("mPA", "mpa"),
        ("pixel acc", "pixel_acc"), ("ep", "epochs_done"), ("best", "best_epoch"),
        ("min", "minutes"), ("img/s", "images_per_second"),
    ]  # fmt: skip
    print("| " + " | ".join(title for title, _ in columns) + " | class IoU |")
    print("|" + "---|" * (len(columns) + 1))
    for line in lines:
        cells = []
        for _, key in columns:
            value = line.get(key)
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value or "-"))
        classes = ", ".join(f"{k} {v:.2f}" for k, v in line.get("class_iou", {}).items())
        print("| " + " | ".join(cells) + f" | {classes} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["shapes"], choices=sorted(SEMANTIC_CASES))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--shapes-images", type=int, default=240)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--out", type=Path, default=Path("bench-semantic"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    for name in args.cases:
        case = SEMANTIC_CASES[name]
        if case.path is not None and not case.path.exists():
            print(f"skip {name}: {case.path} is absent")
            continue
        overrides = [
            f"train.epochs={args.epochs}",
            f"project.output={args.out / 'runs'}",
            "train.seed=0",
            *args.overrides,
        ]
        project = prepare(case, args.out / "projects", args.shapes_images)
        row = run_case(case, project, overrides)
        row.update(label=args.label, overrides=args.overrides, cpu=cpu_name())
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row))
    lines = [json.loads(text) for text in log.read_text(encoding="utf-8").splitlines() if text]
    print(f"CPU: {cpu_name()}")
    print_table(lines)


if __name__ == "__main__":
    main()
