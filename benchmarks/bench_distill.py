"""Does distillation help? An S teacher is trained, then an N student twice under the same split,
seed and epochs: without and with `train.distill.teacher`. Prints the metric of each and the
difference (whatever its sign), with the teacher's cost per batch.

    python benchmarks/bench_distill.py --cases shapes-semantic --teacher-epochs 12 --epochs 12
    python benchmarks/bench_distill.py --cases potholes-semantic kangaroo

Cases are bench_learning's datasets (`<name>` with its own task, `<name>-semantic` as class
maps). Every result goes to `--out/results.jsonl`; run one benchmark at a time (2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bench_learning import CASES, Case, _Speeds, cpu_name, prepare

DISTILL_CASES: dict[str, Case] = {
    **CASES,
    **{f"{name}-semantic": replace(case, task="semantic") for name, case in CASES.items()},
}


def train(project: Path, overrides: list[str]) -> dict:
    """Train once (split made first, seeded) and return best.pt's headline numbers."""
    from dfseg.config import load_project
    from dfseg.data.project_dataset import make_split, read_project_dataset
    from dfseg.training.api import train_project

    config = load_project(project, overrides)
    dataset = read_project_dataset(config.data, task=config.project.task)
    make_split(dataset, config.data.split, config.split_dir, overwrite=True)
    speeds = _Speeds()
    started = time.monotonic()
    report = train_project(config, hooks=[speeds])
    assert report is not None and report.final is not None
    return {
        "metric": report.decision_metric,
        "score": report.best_score,
        "epochs_done": report.epochs_completed,
        "minutes": round((time.monotonic() - started) / 60, 2),
        "images_per_second": speeds.median(),
        "run_dir": report.run_dir,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases", nargs="+", default=["shapes-semantic"], choices=sorted(DISTILL_CASES)
    )
    parser.add_argument("--teacher-size", default="s")
    parser.add_argument("--student-size", default="n")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--shapes-images", type=int, default=240)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench-distill"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    for name in args.cases:
        case = DISTILL_CASES[name]
        if case.path is not None and not case.path.exists():
            print(f"skip {name}: {case.path} is absent")
            continue
        project = prepare(case, args.out / "projects", args.shapes_images)
        common = [f"project.output={args.out / 'runs' / name}", "train.seed=0", *args.overrides]
        teacher = train(
            project,
            [*common, f"model.size={args.teacher_size}", f"train.epochs={args.teacher_epochs}"],
        )
        student = [*common, f"model.size={args.student_size}", f"train.epochs={args.epochs}"]
        plain = train(project, student)
        taught = train(project, [*student, f"train.distill.teacher={teacher['run_dir']}"])
        row = {
            "case": name,
            "metric": plain["metric"],
            "teacher": teacher,
            "student": plain,
            "distilled": taught,
            "difference": taught["score"] - plain["score"],
            "overrides": args.overrides,
            "cpu": cpu_name(),
        }
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row))
    print(f"CPU: {cpu_name()}")
    print(
        "| case | metric | teacher | student | distilled | difference | img/s plain / distilled |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in (json.loads(t) for t in log.read_text(encoding="utf-8").splitlines() if t):
        speeds = (
            f"{line['student']['images_per_second']} / {line['distilled']['images_per_second']}"
        )
        print(
            f"| {line['case']} | {line['metric']} | {line['teacher']['score']:.4f} | "
            f"{line['student']['score']:.4f} | {line['distilled']['score']:.4f} | "
            f"{line['difference']:+.4f} | {speeds} |"
        )


if __name__ == "__main__":
    main()
