"""`analyze_errors` on the hand-built TIDE case: report, errors.csv, gallery and plot."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from tide_cases import IMAGE_HW, PREDICTIONS, case_ground_truth, case_predictions

from dfseg.analysis.errors.analyze import ErrorSettings, ErrorsReport, analyze_errors
from dfseg.analysis.errors.gallery import TYPE_COLORS_BGR
from dfseg.analysis.errors.rows import ERROR_COLUMNS
from dfseg.analysis.errors.tide import ERROR_TYPES
from dfseg.metrics import ImageGroundTruth, ImagePredictions

CLASSES = ["cat", "dog"]


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*IMAGE_HW, 3), 128, np.uint8))
    return path


def run(
    tmp_path: Path,
    ground_truths: list[ImageGroundTruth],
    predictions: list[ImagePredictions],
    paths: list[Path],
    **settings: object,
) -> ErrorsReport:
    out = tmp_path / "errors"
    out.mkdir(parents=True)
    options = ErrorSettings(confidence_threshold=0.5, **settings)  # type: ignore[arg-type]
    return analyze_errors(ground_truths, predictions, paths, CLASSES, out, options)


def test_one_picture_per_error_type_each_showing_every_error(tmp_path: Path) -> None:
    image = write_image(tmp_path / "images" / "scene.png")
    result = run(tmp_path, [case_ground_truth()], [case_predictions()], [image])
    out = Path(result.out_dir)
    pictures = sorted(out.glob("gallery/*/*.jpg"))
    assert [p.parent.name for p in pictures] == sorted(ERROR_TYPES)
    assert len({p.read_bytes() for p in pictures}) == 1  # the same picture under each type
    picture = cv2.imread(str(pictures[0]))
    top = picture.shape[0] - IMAGE_HW[0]  # the banner
    assert top > 0 and picture.shape[1] == IMAGE_HW[1]

    def color_at(x: int, y: int) -> np.ndarray:
        return picture[top + y, x].astype(int)

    # Edges of errors that overlap nothing else: background p4, missed g3 (dashed, so sample
    # the start of a dash), localization p3's right edge.
    assert np.abs(color_at(650, 600) - TYPE_COLORS_BGR["background"]).max() < 60
    assert np.abs(color_at(200, 295) - TYPE_COLORS_BGR["missed"]).max() < 60
    assert np.abs(color_at(550, 50) - TYPE_COLORS_BGR["localization"]).max() < 60
    assert result.gallery_images == len(ERROR_TYPES)


def test_report_counts_and_csv(tmp_path: Path) -> None:
    image = write_image(tmp_path / "scene.png")
    result = run(tmp_path, [case_ground_truth()], [case_predictions()], [image])
    (group,) = result.groups
    assert group.iou_type == "bbox" and group.metric == "ap50"
    assert {r.error_type: r.count for r in group.rows} == dict.fromkeys(ERROR_TYPES, 1)
    assert all(r.dap > 0 for r in group.rows)
    assert group.false_positives_dap >= max(r.dap for r in group.rows if r.error_type != "missed")
    with (Path(result.out_dir) / "errors.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == ERROR_COLUMNS
    sides = [(r["side"], r["error_type"]) for r in rows]
    assert sides.count(("false_negative", "missed")) == 1
    # the objects behind the classification and localization errors are listed under them
    assert ("false_negative", "classification") in sides
    assert ("false_negative", "localization") in sides
    assert sum(side == "false_positive" for side, _ in sides) == 5
    cls = next(r for r in rows if r["error_type"] == "classification" and r["side"] != "")
    assert cls["class"] == "cat" and cls["object_class"] == "dog"
    assert (Path(result.out_dir) / "error_summary.png").stat().st_size > 1000
    assert result.worst_images[0].errors == len(ERROR_TYPES)


def test_threshold_hides_low_scored_errors_but_dap_uses_all(tmp_path: Path) -> None:
    image = write_image(tmp_path / "scene.png")
    low = run(tmp_path / "a", [case_ground_truth()], [case_predictions()], [image])
    (tmp_path / "b").mkdir()
    high = analyze_errors(
        [case_ground_truth()], [case_predictions()], [image], CLASSES, tmp_path / "b",
        ErrorSettings(confidence_threshold=0.8),
    )  # fmt: skip
    counts = {r.error_type: r.count for r in high.groups[0].rows}
    # at 0.8 only p0, p1, p2, p4, p5 remain: p3 (loc, 0.75) and p6, p7 (TPs) are gone
    assert counts["localization"] == 0 and counts["classification"] == 1
    assert counts["missed"] == 4  # g1, g2 (their TPs are hidden), g3, and g5 (p3 is hidden)
    assert [r.dap for r in high.groups[0].rows] == [r.dap for r in low.groups[0].rows]


def test_masks_group_and_same_named_images_do_not_overwrite(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / d / "img.png") for d in ("a", "b")]
    gts = [case_ground_truth(True), case_ground_truth(True)]
    only_tp = case_predictions(True, names=["p0", "p6", "p7"])
    result = run(tmp_path, gts, [case_predictions(True), only_tp], paths)
    assert [g.iou_type for g in result.groups] == ["bbox", "segm"]
    assert result.gallery_iou_type == "segm"
    missed = sorted(p.name for p in (Path(result.out_dir) / "gallery" / "missed").iterdir())
    assert missed == ["00000_img.jpg", "00001_img.jpg"]
    second = {r.error_type: r.count for r in result.groups[1].rows}
    assert second["missed"] == 1 + 3  # image 0: g3; image 1: g3, g4, g5
    assert [w.image for w in result.worst_images] == [str(paths[0]), str(paths[1])]


@pytest.mark.parametrize("limit", [1])
def test_gallery_limit_keeps_the_images_with_most_errors(tmp_path: Path, limit: int) -> None:
    paths = [write_image(tmp_path / f"{i}.png") for i in range(2)]
    gts = [case_ground_truth(), case_ground_truth()]
    preds = [case_predictions(names=["p0", "p6", "p7"]), case_predictions()]
    result = run(tmp_path, gts, preds, paths, gallery_limit=limit)
    names = {p.name for p in Path(result.out_dir).glob("gallery/*/*.jpg")}
    assert names == {"00001_1.jpg"}
    assert len(PREDICTIONS) == 8


def test_mislabel_candidates_are_the_confident_disagreements_ranked(tmp_path: Path) -> None:
    image = write_image(tmp_path / "scene.png")
    result = run(tmp_path, [case_ground_truth()], [case_predictions()], [image])
    assert result.mislabel_min_score == 0.75  # half-way between the threshold 0.5 and 1
    found = [(c.rank, c.kind, c.labelled, c.predicted, c.score) for c in result.mislabel_candidates]
    # p4: a confident dog where nothing is labelled; p2: labelled dog g4 seen as a cat (IoU 1)
    assert found == [(1, "unlabelled", None, "dog", 0.9), (2, "relabel", "dog", "cat", 0.8)]
    assert result.mislabel_candidates[1].box_xyxy == [400.0, 400.0, 500.0, 500.0]
    pictures = sorted(p.name for p in (Path(result.out_dir) / "mislabels").iterdir())
    assert pictures == ["001_unlabelled_scene.jpg", "002_relabel_scene.jpg"]
    picture = cv2.imread(str(Path(result.out_dir) / "mislabels" / pictures[1]))
    assert np.abs(picture[450, 400].astype(int) - [255, 0, 255]).max() < 60  # candidate box edge
    strict = run(tmp_path / "strict", [case_ground_truth()], [case_predictions()], [image],
                 mislabel_score=0.85)  # fmt: skip
    assert [c.kind for c in strict.mislabel_candidates] == ["unlabelled"]
