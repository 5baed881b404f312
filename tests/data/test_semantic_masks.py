"""Semantic labels: the index-mask reader, class regions <-> index maps, instances -> semantic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_builders import snapshot, write_image, write_text
from PIL import Image

from dfseg.config import ConfigError, load_project
from dfseg.data.formats.issues import DatasetError
from dfseg.data.formats.masks import read_masks
from dfseg.data.reading import read_dataset, read_dataset_with_details
from dfseg.data.semantic import (
    IGNORE_INDEX,
    MaskWriteError,
    annotation_to_index_map,
    class_pixel_counts,
    index_map_to_annotation,
    semantic_from_instances,
    voc_palette,
    write_index_masks,
)
from dfseg.ops.masks import mask_to_rle, masks_to_boxes_xyxy, polygon_to_mask
from dfseg.structures import RLE, Dataset, ImageAnnotation, Polygons

NAMES = ["background", "cat", "dog"]


def _index_map(height: int = 30, width: int = 40) -> np.ndarray:
    """Background with a cat block, a dog block and an ignored border round the dog."""
    index_map = np.zeros((height, width), dtype=np.uint8)
    index_map[2:12, 3:15] = 1
    index_map[14:26, 20:36] = IGNORE_INDEX
    index_map[15:25, 21:35] = 2
    return index_map


def _write_mask(path: Path, index_map: np.ndarray, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(index_map)
    if mode == "P":
        image.putpalette(voc_palette().tobytes())
    elif mode == "RGB":
        image = Image.fromarray(voc_palette()[index_map])
    image.save(path)
    return path


def _masks_dataset(root: Path, maps: dict[str, np.ndarray]) -> Path:
    """images/<name>.jpg + masks/<name>.png ("L")."""
    for index, (name, index_map) in enumerate(maps.items()):
        height, width = index_map.shape
        write_image(root / "images" / f"{name}.jpg", width, height, seed=index)
        _write_mask(root / "masks" / f"{name}.png", index_map)
    return root


def _codes(dataset: Dataset) -> list[str]:
    return [issue.code for issue in dataset.issues]


def test_voc_palette_has_the_devkit_colours() -> None:
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0]
    assert palette[15].tolist() == [192, 128, 128]  # VOC "person"
    assert palette[255].tolist() == [224, 224, 192]  # VOC's ignored borders
    assert len({tuple(colour) for colour in palette.tolist()}) == 256


def test_ignore_index_is_the_training_one() -> None:
    from dfseg.ops.semantic import IGNORE_INDEX as TRAINING_IGNORE_INDEX

    assert IGNORE_INDEX == TRAINING_IGNORE_INDEX


def test_index_map_round_trips_through_class_regions() -> None:
    index_map = np.random.default_rng(0).choice([0, 1, 4, 255], size=(17, 23)).astype(np.uint8)
    annotation = index_map_to_annotation(Path("a.jpg"), index_map)
    assert annotation.labels.tolist() == [0, 1, 4]
    assert (annotation.width, annotation.height) == (23, 17)
    assert all(isinstance(s, RLE) and isinstance(s.counts, str) for s in annotation.segments)
    expected_boxes = masks_to_boxes_xyxy(np.stack([index_map == v for v in (0, 1, 4)]))
    np.testing.assert_array_equal(annotation.boxes_xyxy, expected_boxes)
    restored = annotation_to_index_map(annotation)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, index_map)


def test_all_ignored_map_has_no_regions() -> None:
    index_map = np.full((5, 6), IGNORE_INDEX, dtype=np.uint8)
    annotation = index_map_to_annotation(Path("a.jpg"), index_map)
    assert annotation.is_background
    np.testing.assert_array_equal(annotation_to_index_map(annotation), index_map)


def test_images_and_masks_layout(tmp_path: Path) -> None:
    first, second = _index_map(), np.ones((30, 40), dtype=np.uint8)
    root = _masks_dataset(tmp_path, {"a": first, "b": second})
    before = snapshot(root)
    result = read_dataset_with_details(root, "masks", NAMES)
    assert snapshot(root) == before  # read in place
    dataset = result.dataset
    assert dataset.format == "masks" and dataset.class_names == NAMES
    assert [image.image_path.name for image in dataset.images] == ["a.jpg", "b.jpg"]
    assert result.label_files == 2 and result.excluded_images == []
    assert _codes(dataset) == []
    image = dataset.images[0]
    assert image.label_path == root / "masks" / "a.png"
    assert image.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(image.boxes_xyxy[1], [3, 2, 15, 12])  # x2 = last column + 1
    np.testing.assert_array_equal(image.boxes_xyxy[2], [21, 15, 35, 25])
    np.testing.assert_array_equal(annotation_to_index_map(image), first)
    assert dataset.images[1].labels.tolist() == [1]


@pytest.mark.parametrize(
    "image_folder, mask_folder",
    [("train/images", "train/masks"), ("images/train", "masks/train")],
)
def test_split_folders(tmp_path: Path, image_folder: str, mask_folder: str) -> None:
    write_image(tmp_path / image_folder / "a.png", 40, 30)
    _write_mask(tmp_path / mask_folder / "a.png", _index_map())
    (image,) = read_dataset(tmp_path, "masks", NAMES).images
    assert image.label_path == tmp_path / mask_folder / "a.png"
    np.testing.assert_array_equal(annotation_to_index_map(image), _index_map())


def test_voc_palette_masks_keep_their_ignored_borders(tmp_path: Path) -> None:
    index_map = _index_map()
    write_image(tmp_path / "JPEGImages" / "2007_000001.jpg", 40, 30)
    _write_mask(tmp_path / "SegmentationClass" / "2007_000001.png", index_map, mode="P")
    write_image(tmp_path / "JPEGImages" / "2007_000002.jpg", 40, 30)  # detection-only image
    _write_mask(tmp_path / "SegmentationClass" / "orphan.png", index_map, mode="P")
    _write_mask(tmp_path / "SegmentationObject" / "2007_000001.png", index_map, mode="P")
    result = read_dataset_with_details(tmp_path, "masks", NAMES)
    (image,) = result.dataset.images
    assert image.image_path.name == "2007_000001.jpg"
    np.testing.assert_array_equal(annotation_to_index_map(image), index_map)
    assert result.excluded_images == []  # the image without a mask is unused, not an error
    issues = {issue.code: issue for issue in result.dataset.issues}
    assert set(issues) == {"unlisted-image", "label-without-image"}
    assert issues["unlisted-image"].severity == "info"
    assert issues["label-without-image"].severity == "warning"
    assert issues["label-without-image"].path == "SegmentationClass/orphan.png"


def test_rgb_mask_in_voc_colours(tmp_path: Path) -> None:
    index_map = _index_map()
    write_image(tmp_path / "JPEGImages" / "a.jpg", 40, 30)
    _write_mask(tmp_path / "SegmentationClass" / "a.png", index_map, mode="RGB")
    assert Image.open(tmp_path / "SegmentationClass" / "a.png").mode == "RGB"
    (image,) = read_dataset(tmp_path, "masks", NAMES).images
    np.testing.assert_array_equal(annotation_to_index_map(image), index_map)


def test_rgb_mask_with_other_colours_is_an_error(tmp_path: Path) -> None:
    colours = np.zeros((30, 40, 3), dtype=np.uint8)
    colours[5:10, 5:10] = (10, 200, 30)
    write_image(tmp_path / "images" / "a.jpg", 40, 30)
    (tmp_path / "masks").mkdir()
    Image.fromarray(colours).save(tmp_path / "masks" / "a.png")
    result = read_dataset_with_details(tmp_path, "masks", NAMES)
    assert result.dataset.images == [] and result.excluded_images == [tmp_path / "images/a.jpg"]
    (issue,) = result.dataset.issues
    assert (issue.code, issue.severity, issue.path) == ("colour-mask", "error", "masks/a.png")
    assert "(10, 200, 30)" in issue.message and "index PNG" in (issue.hint or "")


def test_greyscale_saved_as_rgb_reads_its_values(tmp_path: Path) -> None:
    index_map = np.zeros((30, 40), dtype=np.uint8)
    index_map[3:9, 4:20] = 2
    write_image(tmp_path / "images" / "a.jpg", 40, 30)
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.repeat(index_map[..., None], 3, axis=2)).save(tmp_path / "masks/a.png")
    (image,) = read_dataset(tmp_path, "masks", NAMES).images
    np.testing.assert_array_equal(annotation_to_index_map(image), index_map)


def test_sixteen_bit_and_one_bit_masks(tmp_path: Path) -> None:
    index_map = _index_map().astype(np.uint16)
    write_image(tmp_path / "images" / "a.png", 40, 30)
    write_image(tmp_path / "images" / "b.png", 40, 30)
    (tmp_path / "masks").mkdir()
    Image.fromarray(index_map).save(tmp_path / "masks" / "a.png")
    Image.fromarray(_index_map() == 1).save(tmp_path / "masks" / "b.png")  # mode "1"
    first, second = read_dataset(tmp_path, "masks", NAMES).images
    np.testing.assert_array_equal(annotation_to_index_map(first), index_map)
    np.testing.assert_array_equal(annotation_to_index_map(second), _index_map() == 1)


def test_missing_mask_is_an_error_naming_the_expected_path(tmp_path: Path) -> None:
    root = _masks_dataset(tmp_path, {"a": _index_map()})
    write_image(root / "images" / "b.jpg", 40, 30)
    result = read_dataset_with_details(root, "masks", NAMES)
    assert [image.image_path.name for image in result.dataset.images] == ["a.jpg"]
    assert result.excluded_images == [root / "images" / "b.jpg"]
    (issue,) = result.dataset.issues
    assert (issue.code, issue.severity, issue.path) == ("missing-mask", "error", "images/b.jpg")
    assert "masks/b.png" in issue.message


def test_no_mask_at_all_is_a_dataset_error(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 40, 30)
    with pytest.raises(DatasetError, match=r"masks/a\.png"):
        read_masks(tmp_path, NAMES, None, None)


def test_no_image_folder_is_a_dataset_error(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", 40, 30)
    with pytest.raises(DatasetError, match="JPEGImages"):
        read_masks(tmp_path, NAMES, None, None)


def test_mask_of_another_size_is_an_error_with_both_sizes(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 40, 30)
    _write_mask(tmp_path / "masks" / "a.png", np.zeros((20, 25), dtype=np.uint8))
    result = read_dataset_with_details(tmp_path, "masks", NAMES)
    assert result.dataset.images == [] and len(result.excluded_images) == 1
    (issue,) = result.dataset.issues
    assert (issue.code, issue.severity) == ("mask-size", "error")
    assert "25x20" in issue.message and "40x30" in issue.message


def test_values_beyond_the_classes_are_listed(tmp_path: Path) -> None:
    index_map = _index_map()
    index_map[0, :12] = np.arange(3, 15)  # 12 unknown values, 255 stays fine
    root = _masks_dataset(tmp_path, {"a": index_map})
    result = read_dataset_with_details(root, "masks", NAMES)
    assert result.dataset.images == []
    (issue,) = result.dataset.issues
    assert (issue.code, issue.severity, issue.path) == ("mask-values", "error", "masks/a.png")
    assert "[3, 4, 5, 6, 7, 8, 9, 10, 11, 12] and 2 more" in issue.message
    assert "0..2" in issue.message and "255" in issue.message


def test_class_names_come_from_classes_txt(tmp_path: Path) -> None:
    root = _masks_dataset(tmp_path, {"a": _index_map()})
    write_text(root / "classes.txt", "background\ncat\ndog\n")
    assert read_dataset(root, "masks").class_names == NAMES


def test_no_class_names_is_a_dataset_error(tmp_path: Path) -> None:
    root = _masks_dataset(tmp_path, {"a": _index_map()})
    with pytest.raises(DatasetError) as error:
        read_dataset(root, "masks")
    message = str(error.value)
    assert "data.classes" in message and "classes.txt" in message
    assert "pixel" in message and "background" in message


def _yolo_seg(root: Path) -> Path:
    """One 40x30 image: a large cat square, a small dog square on it, a box-only dog."""
    write_image(root / "images" / "a.png", 40, 30)
    big = "0 0.05 0.1 0.75 0.1 0.75 0.8 0.05 0.8"  # x 2..30, y 3..24
    small = "1 0.25 0.3 0.5 0.3 0.5 0.6 0.25 0.6"  # x 10..20, y 9..18
    box = "1 0.9 0.5 0.1 0.2"  # x 34..38, y 12..18
    write_text(root / "labels" / "a.txt", f"{big}\n{small}\n{box}\n")
    return root


def _expected_yolo_map() -> np.ndarray:
    def square(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
        ring = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
        return polygon_to_mask([ring], 30, 40).astype(bool)

    expected = np.zeros((30, 40), dtype=np.uint8)
    expected[square(2, 3, 30, 24)] = 1
    expected[square(10, 9, 20, 18)] = 2
    expected[square(34, 12, 38, 18)] = 2
    return expected


def test_semantic_from_instances_paints_small_objects_on_top(tmp_path: Path) -> None:
    instances = read_dataset(_yolo_seg(tmp_path), "yolo", ["cat", "dog"])
    semantic = semantic_from_instances(instances)
    assert semantic.class_names == ["background", "cat", "dog"]
    assert semantic.format == "yolo" and semantic.root == instances.root
    (image,) = semantic.images
    assert image.image_path == instances.images[0].image_path
    index_map = annotation_to_index_map(image)
    np.testing.assert_array_equal(index_map, _expected_yolo_map())
    assert index_map[0, 0] == 0 and index_map[12, 15] == 2  # background; dog over the cat
    assert semantic.issues[-1].code == "box-only-regions"
    assert "1 box-only instance(s) rasterised as their boxes" in semantic.issues[-1].message
    assert instances.issues == semantic.issues[: len(instances.issues)]


def _instances_image(path: Path) -> ImageAnnotation:
    """A 20x10 image: a crowd box over the left half, a polygon 'b' inside it."""
    ring = np.array([[2, 2], [6, 2], [6, 6], [2, 6]], dtype=np.float32)
    crowd = np.zeros((10, 20), dtype=np.uint8)
    crowd[:, :10] = 1
    encoded = mask_to_rle(crowd)
    return ImageAnnotation(
        image_path=path,
        width=20,
        height=10,
        labels=np.array([0, 1]),
        boxes_xyxy=np.array([[0, 0, 10, 10], [2, 2, 6, 6]], dtype=np.float32),
        segments=[RLE(encoded["counts"], 10, 20), Polygons((ring,))],
        iscrowd=np.array([True, False]),
    )


def test_crowd_regions_are_ignored_and_existing_background_is_kept(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path, "coco", ["background", "b"], [_instances_image(tmp_path / "a.jpg")])
    semantic = semantic_from_instances(dataset)
    assert semantic.class_names == ["background", "b"]  # not shifted
    index_map = annotation_to_index_map(semantic.images[0])
    expected = np.zeros((10, 20), dtype=np.uint8)
    expected[:, :10] = IGNORE_INDEX
    expected[2:6, 2:6] = 1
    np.testing.assert_array_equal(index_map, expected)
    assert semantic.issues == []


def test_background_class_elsewhere_is_refused(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path, "coco", ["cat", "Background"], [])
    with pytest.raises(DatasetError, match="class 0"):
        semantic_from_instances(dataset)


def test_class_pixel_counts_match_the_dense_maps(tmp_path: Path) -> None:
    root = _masks_dataset(tmp_path, {"a": _index_map(), "b": np.full((30, 40), 2, np.uint8)})
    dataset = read_dataset(root, "masks", NAMES)
    dense = [annotation_to_index_map(image) for image in dataset.images]
    expected = sum(np.bincount(m[m != IGNORE_INDEX], minlength=3) for m in dense)
    np.testing.assert_array_equal(class_pixel_counts(dataset), expected)
    assert class_pixel_counts(dataset).dtype == np.int64


def test_class_pixel_counts_refuse_instance_polygons(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path, "coco", ["a", "b"], [_instances_image(tmp_path / "a.jpg")])
    with pytest.raises(ValueError, match="semantic_from_instances"):
        class_pixel_counts(dataset)


@pytest.mark.parametrize("palette, mode", [(True, "P"), (False, "L")])
def test_written_masks_read_back(tmp_path: Path, palette: bool, mode: str) -> None:
    semantic = semantic_from_instances(read_dataset(_yolo_seg(tmp_path), "yolo", ["cat", "dog"]))
    written = write_index_masks(semantic, tmp_path / "masks", palette=palette)
    assert written == [tmp_path / "masks" / "a.png"]
    with Image.open(written[0]) as png:
        assert png.mode == mode
    read_back = read_dataset(tmp_path, "masks", semantic.class_names)
    (image,) = read_back.images
    np.testing.assert_array_equal(annotation_to_index_map(image), _expected_yolo_map())
    np.testing.assert_array_equal(class_pixel_counts(read_back), class_pixel_counts(semantic))


def test_writing_masks_never_overwrites(tmp_path: Path) -> None:
    semantic = semantic_from_instances(read_dataset(_yolo_seg(tmp_path), "yolo", ["cat", "dog"]))
    (target,) = write_index_masks(semantic, tmp_path / "out")
    before = target.read_bytes()
    with pytest.raises(MaskWriteError, match="already exist") as error:
        write_index_masks(semantic, tmp_path / "out", palette=False)
    assert isinstance(error.value, FileExistsError) and str(target) in str(error.value)
    assert target.read_bytes() == before


def test_images_sharing_a_stem_are_refused(tmp_path: Path) -> None:
    images = [
        index_map_to_annotation(tmp_path / "x" / "a.jpg", _index_map()),
        index_map_to_annotation(tmp_path / "y" / "a.png", _index_map()),
    ]
    dataset = Dataset(tmp_path, "masks", NAMES, images)
    with pytest.raises(MaskWriteError, match="same file"):
        write_index_masks(dataset, tmp_path / "out")
    assert not (tmp_path / "out").exists()


PROJECT = """\
project: {{name: seg, task: {task}}}
data: {{path: data, format: masks, classes: [background, cat, dog]}}
"""


def test_project_with_masks_format_validates(tmp_path: Path) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT.format(task="semantic"))
    config = load_project(path)
    assert config.data.format == "masks" and config.class_names == NAMES
    path.write_text(PROJECT.format(task="detect"))
    with pytest.raises(ConfigError):
        load_project(path)
