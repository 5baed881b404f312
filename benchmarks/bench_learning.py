"""How well training learns on small real datasets under a fixed budget (issue 12's proof).

Each case trains D-FINE-N from scratch (or from `--pretrained`) on a fixed, seeded split with a
budget given as epochs (comparable across machines) and, optionally, as wall-clock minutes
(`train.time_budget`), then reports the final validation of best.pt:

    box mAP50, mAP50-95, (mask mAP50, mAP50-95), F1 at the saved threshold, epochs done, img/s

Cases: the demo's generated shapes (segment) and, when `../shared/data` is present,
kangaroo-voc (detect), fruits-nuts-coco and potholes-yolo-seg (segment).

    python benchmarks/bench_learning.py --cases shapes --epochs 12
    python benchmarks/bench_learning.py --cases kangaroo --epochs 55 --label after
    python benchmarks/bench_learning.py --cases shapes --set train.lr=0.002 --label lr2e-3

`--set key=value` applies project-file overrides to every case (a lever under study); every
result is appended as one JSON line to `--out/results.jsonl` and the table is printed from all
lines of that file, so runs made one after the other (never in parallel on 2 cores) compare
side by side.

The peer `dfine-seg` (PyPI 0.6.2) is not trained by this script: it requires torchvision, whose
compiled ops do not load beside dfseg's CPU torch wheel, so it lives in an environment of its
own (torch 2.14.1 + torchvision 0.29.1; `benchmarks/bench_peers.py` drives it there for
latency). Driving its trainer from here is not built yet; the script says whether it is
importable, and peer training numbers quoted beside this table come from the issue.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dfseg.training.hooks import TrainerHook
from dfseg.training.reports import EpochResult

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO_CLASSES = ["circle", "square", "triangle", "star"]


@dataclass(frozen=True)
class Case:
    """One dataset with its task, format and input size."""

    name: str
    task: str
    data_format: str
    path: Path | None  # None: generated shapes
    image_size: int
    classes: list[str]


CASES = {
    "shapes": Case("shapes", "segment", "yolo", None, 256, DEMO_CLASSES),
    "kangaroo": Case("kangaroo", "detect", "voc", SHARED / "kangaroo-voc", 320, ["kangaroo"]),
    "fruits": Case(
        "fruits", "segment", "coco", SHARED / "fruits-nuts-coco", 320, ["date", "fig", "hazelnut"]
    ),
    "potholes": Case("potholes", "segment", "yolo", SHARED / "potholes-yolo-seg", 320, ["pothole"]),
}


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def prepare(case: Case, work: Path, shapes_images: int) -> Path:
    """A project file for `case` under `work` (generating the shapes once)."""
    from dfseg.config.template import render_project_template
    from dfseg.data.synthetic import generate_synthetic_dataset

    folder = work / case.name
    folder.mkdir(parents=True, exist_ok=True)
    if case.path is None:
        data = folder / "data"
        generate_synthetic_dataset(
            data,
            num_images=shapes_images,
            image_size=(case.image_size, case.image_size),
            classes=case.classes,
            seed=0,
            overwrite=True,
        )
    else:
        data = case.path
    text = render_project_template(
        name=case.name,
        task=case.task,
        size="n",
        data_path=str(data),
        data_format=case.data_format,
        classes=case.classes,
        image_size=(case.image_size, case.image_size),
    )
    project = folder / "project.yaml"
    project.write_text(text, encoding="utf-8")
    return project


def run_case(case: Case, project: Path, overrides: list[str]) -> dict:
    """Split (seeded), train, and the final validation's figures."""
    from dfseg.config import load_project
    from dfseg.data.project_dataset import make_split, read_project_dataset
    from dfseg.training.api import train_project

    config = load_project(project, overrides)
    dataset = read_project_dataset(config.data)
    make_split(dataset, config.data.split, config.split_dir, overwrite=True)
    speeds = _Speeds()
    started = time.monotonic()
    report = train_project(config, hooks=[speeds])
    seconds = time.monotonic() - started
    assert report is not None and report.final is not None
    final = report.final
    row: dict = {
        "case": case.name,
        "epochs_done": report.epochs_completed,
        "epochs": report.epochs,
        "minutes": round(seconds / 60, 2),
        "threshold": report.threshold,
        "threshold_source": report.threshold_source,
        "f1": final.primary.f1,
        "run_dir": report.run_dir,
    }
    for group, iou_type in (("box", "bbox"), ("mask", "segm")):
        coco = final.coco.get(iou_type)
        if coco:
            row[f"{group}_map50"] = coco["AP50"]
            row[f"{group}_map50_95"] = coco["AP"]
    row["images_per_second"] = speeds.median()
    row["curve"] = speeds.curve
    return row


class _Speeds(TrainerHook):
    """Keeps each epoch's images/s and validation score."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.curve: list[tuple[int, float | None]] = []

    def on_epoch_end(self, trainer: object, result: EpochResult) -> None:  # type: ignore[override]
        self.values.append(result.images_per_second)
        score = None if result.score is None else round(result.score, 4)
        self.curve.append((result.epoch, score))

    def median(self) -> float | None:
        return round(statistics.median(self.values), 2) if self.values else None


def print_table(lines: list[dict]) -> None:
    columns = [
        ("label", "label"), ("case", "case"), ("box50", "box_map50"), ("box", "box_map50_95"),
        ("mask50", "mask_map50"), ("mask", "mask_map50_95"), ("F1", "f1"), ("thr", "threshold"),
        ("ep", "epochs_done"), ("min", "minutes"), ("img/s", "images_per_second"),
    ]  # fmt: skip
    print("| " + " | ".join(title for title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for line in lines:
        cells = []
        for _, key in columns:
            value = line.get(key)
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value or "-"))
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["shapes"], choices=sorted(CASES))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=None, help="train.time_budget")
    parser.add_argument("--shapes-images", type=int, default=240)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--out", type=Path, default=Path("bench-learning"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    for name in args.cases:
        case = CASES[name]
        if case.path is not None and not case.path.exists():
            print(f"skip {name}: {case.path} is absent")
            continue
        overrides = [
            f"train.epochs={args.epochs}",
            f"project.output={args.out / 'runs'}",
            "train.seed=0",
            *args.overrides,
        ]
        if args.minutes is not None:
            overrides.append(f"train.time_budget={args.minutes}")
        project = prepare(case, args.out / "projects", args.shapes_images)
        row = run_case(case, project, overrides)
        row.update(label=args.label, overrides=args.overrides, cpu=cpu_name())
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row))
    lines = [json.loads(text) for text in log.read_text(encoding="utf-8").splitlines() if text]
    print(f"CPU: {cpu_name()}")
    peer = importlib.util.find_spec("dfine_seg") is not None
    print(f"peer dfine-seg: {'installed, not driven by this script' if peer else 'not installed'}")
    print_table(lines)


if __name__ == "__main__":
    main()
