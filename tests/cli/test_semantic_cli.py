"""The semantic task from the shell: a PNG-mask dataset written from polygons, `init`, `check`,
`train`, `val`, `export` and `infer` of the trained model, `convert --to masks`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.data.reading import read_dataset
from dfseg.data.semantic import annotation_to_index_map, semantic_from_instances, write_index_masks
from dfseg.data.synthetic import generate_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def mask_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """images/ + masks/ (palette PNGs written from generated polygons) and `dfseg init`'s file."""
    root = tmp_path_factory.mktemp("semantic")
    shapes = generate_synthetic_dataset(
        root / "shapes", num_images=12, image_size=(160, 192), classes=("circle", "square"), seed=4
    )
    semantic = semantic_from_instances(read_dataset(shapes, "yolo"))
    data = root / "data"
    (data / "images").mkdir(parents=True)
    for image in semantic.images:
        shutil.copy(image.image_path, data / "images" / image.image_path.name)
    write_index_masks(semantic, data / "masks")
    (data / "classes.txt").write_text("\n".join(semantic.class_names) + "\n")
    result = runner.invoke(
        app, ["init", str(root), "--task", "semantic", "--format", "masks", "--size", "n"]
    )
    assert result.exit_code == 0, result.output
    return root / "project.yaml"


def _overrides() -> list[str]:
    return [
        "data.image_size=[128,160]", "train.epochs=2", "train.batch_size=4", "train.workers=0",
        "train.ema_warmup=10", "augment.debug_images=0",
    ]  # fmt: skip


def test_masks_written_from_polygons_read_back_identically(mask_project: Path) -> None:
    data = mask_project.parent / "data"
    dataset = read_dataset(data, "masks")
    assert dataset.class_names == ["background", "circle", "square"]
    assert len(dataset.images) == 12 and not [i for i in dataset.issues if i.severity == "error"]
    image = dataset.images[0]
    stored = np.array(Image.open(data / "masks" / f"{image.image_path.stem}.png"))
    assert np.array_equal(annotation_to_index_map(image), stored)


def test_check_shows_pixel_shares_and_refuses_a_bad_mask(mask_project: Path) -> None:
    result = runner.invoke(app, ["check", str(mask_project), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    shares = [row["pixel_share"] for row in report["classes"]]
    assert sum(shares) == pytest.approx(1.0) and shares[0] > 0.5  # mostly background
    bad = (
        mask_project.parent
        / "data"
        / "masks"
        / sorted(p.name for p in (mask_project.parent / "data" / "masks").iterdir())[0]
    )
    original = bad.read_bytes()
    try:
        Image.fromarray(np.full((160, 192), 7, np.uint8)).save(bad)  # 7 is no class
        result = runner.invoke(app, ["check", str(mask_project)])
        assert result.exit_code == 1
        assert bad.name in result.output and "7" in result.output
    finally:
        bad.write_bytes(original)


def test_train_val_export_infer(mask_project: Path) -> None:
    result = runner.invoke(app, ["train", str(mask_project), *_overrides(), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["decision_metric"] == "miou" and report["final"]["task"] == "semantic"
    run = Path(report["run_dir"])
    result = runner.invoke(app, ["val", str(mask_project), *_overrides(), "-w", str(run)])
    assert result.exit_code == 0, result.output
    assert "IoU" in result.output and "background" in result.output
    result = runner.invoke(app, ["export", str(run / "best.pt"), "--fmt", "onnx", "--json"])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.output[result.output.index("{") :])
    (artifact,) = exported["artifacts"]
    assert exported["task"] == "semantic" and artifact["parity"]["passed"]
    assert artifact["parity"]["pixel_agreement"] >= 0.999
    images = mask_project.parent / "data" / "images"
    result = runner.invoke(app, ["infer", artifact["folder"], str(images), "--json"])
    assert result.exit_code == 0, result.output
    inferred = json.loads(result.output[result.output.index("{") :])
    masks = sorted((Path(inferred["out_dir"]) / "masks").glob("*.png"))
    assert len(masks) == 12
    assert set(np.unique(np.asarray(Image.open(masks[0])))) <= {0, 1, 2}


def test_convert_writes_index_masks_from_polygons(tmp_path: Path) -> None:
    shapes = generate_synthetic_dataset(
        tmp_path / "shapes", num_images=6, image_size=(96, 128), classes=("circle",), seed=2
    )
    init = ["init", str(tmp_path), "--task", "segment", "--data", "shapes", "--size", "n"]
    assert runner.invoke(app, init).exit_code == 0
    out = tmp_path / "as_masks"
    result = runner.invoke(
        app, ["convert", str(tmp_path / "project.yaml"), "--to", "masks", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "class regions" in result.output
    written = read_dataset(out, "masks")
    expected = semantic_from_instances(read_dataset(shapes, "yolo"))
    assert written.class_names == ["background", "circle"] == expected.class_names
    by_stem = {image.image_path.stem: image for image in expected.images}
    assert len(written.images) == 6
    for image in written.images:
        stored = np.array(Image.open(out / "masks" / f"{image.image_path.stem}.png"))
        assert Image.open(out / "masks" / f"{image.image_path.stem}.png").mode == "P"
        assert np.array_equal(stored, annotation_to_index_map(by_stem[image.image_path.stem]))
    # nothing is overwritten: a second run into the same folder is refused and changes nothing
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = runner.invoke(
        app, ["convert", str(tmp_path / "project.yaml"), "--to", "masks", "-o", str(out)]
    )
    assert again.exit_code != 0 and "already exist" in again.output
    assert "Traceback" not in again.output
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_index_masks_refuse_instance_labels(tmp_path: Path) -> None:
    from dfseg.data.convert import ConvertError, convert_dataset

    shapes = generate_synthetic_dataset(
        tmp_path / "shapes", num_images=2, image_size=(64, 64), classes=("circle",), seed=1
    )
    with pytest.raises(ConvertError, match="semantic form"):
        convert_dataset(read_dataset(shapes, "yolo"), tmp_path / "out", "masks")
    assert not (tmp_path / "out").exists()
