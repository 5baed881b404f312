"""Reading Pascal VOC XML: one file per image with `object/name`, `bndbox` and `difficult`.

VOC box values are 1-based inclusive pixel indices (the original VOC convention, as detectron2
reads it): (xmin, ymin, xmax, ymax) becomes xyxy (xmin - 1, ymin - 1, xmax, ymax) in dfseg's
continuous pixel coordinates, so a box covering the whole image is (0, 0, W, H). Files written
0-based (xmin = 0) come out 1 pixel outside and are clipped with a warning.

Layouts: `Annotations/` + `JPEGImages/`, `annots/` + `images/`, `annotations/` + `images/`, or XML
beside each image. Unknown class names are errors naming the file and object. Without class names,
classes.txt in the dataset is used, else the names found in the files, sorted (reported).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfseg.data.formats.classes import find_class_names
from dfseg.data.formats.images import find_image, list_images, probe_image
from dfseg.data.formats.instances import (
    InstanceBuffer,
    box_is_degenerate,
    classify_range,
    clip_box_xyxy,
    coordinate_tolerance,
    negligible_excess,
)
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult, report_read_progress
from dfseg.structures import Dataset, ImageAnnotation
from dfseg.structures.progress import ProgressCallback

# (annotation folder, image folder) pairs, tried in order.
VOC_LAYOUTS = (
    ("Annotations", "JPEGImages"),
    ("annots", "images"),
    ("annotations", "images"),
    ("Annotations", "images"),
    ("xml", "images"),
)
_TRUE = {"1", "true", "yes"}


@dataclass
class _VocFile:
    """One parsed XML file: its tree and the line of each `<object>` (1-based)."""

    path: Path
    tree: ET.Element
    object_lines: list[int | None]


def find_voc_folders(root: Path) -> tuple[Path, Path, bool]:
    """(annotation folder, image folder, recursive) for the dataset at `root`."""
    for xml_name, image_name in VOC_LAYOUTS:
        xml_folder = root / xml_name
        if xml_folder.is_dir() and any(xml_folder.glob("*.xml")):
            image_folder = root / image_name
            return xml_folder, image_folder if image_folder.is_dir() else xml_folder, False
    return root, root, True


def read_voc(
    root: Path,
    class_names: list[str] | None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read a Pascal VOC dataset in place.

    Args:
        root: dataset folder.
        class_names: id -> name; when None, classes.txt in the dataset, else the sorted names
            found in the XML files.
        annotations: unused (VOC has one file per image); accepted for a uniform signature.
        progress: optional callback, one event every few files.

    Returns:
        The dataset (absolute pixel xyxy boxes, `difficult` flags) and what was left out.

    Raises:
        DatasetError: the folder has no XML files.
    """
    del annotations
    if not root.is_dir():
        raise DatasetError(f"VOC dataset folder {root} does not exist or is not a folder")
    xml_folder, image_folder, recursive = find_voc_folders(root)
    xml_paths = sorted(xml_folder.rglob("*.xml") if recursive else xml_folder.glob("*.xml"))
    if not xml_paths:
        tried = ", ".join(f"{a}/ + {i}/" for a, i in VOC_LAYOUTS)
        raise DatasetError(
            f"No VOC XML files found in {root}: tried {tried}, and XML files beside the images."
        )
    log = IssueLog(root)
    files = [parsed for path in xml_paths if (parsed := _parse_xml(path, log)) is not None]
    names = _resolve_class_names(root, class_names, files, log)
    result = ReadResult(Dataset(root, "voc", names, []), label_files=len(files))
    labelled: set[Path] = set()
    for done, file in enumerate(files, start=1):
        image_path = _image_of(file, image_folder, beside_xml=recursive)
        if image_path is None:
            log.add("label-without-image", file.path, "no image for this XML file")
        else:
            labelled.add(image_path.resolve())
            annotation = _read_file(file, image_path, names, log)
            if annotation is None:
                result.excluded_images.append(image_path)
            else:
                result.dataset.images.append(annotation)
        report_read_progress(progress, done, len(files))
    _add_backgrounds(image_folder, recursive, labelled, result, log)
    result.dataset.issues = log.issues
    return result


def _parse_xml(path: Path, log: IssueLog) -> _VocFile | None:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        tree = ET.fromstring(text)
    except ET.ParseError as error:
        log.add("bad-xml", path, f"not valid XML: {error}", line=error.position[0])
        return None
    objects = tree.findall("object")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if "<object>" in line]
    object_lines: list[int | None] = (
        list(lines) if len(lines) == len(objects) else [None] * len(objects)
    )
    return _VocFile(path, tree, object_lines)


def _resolve_class_names(
    root: Path, class_names: list[str] | None, files: list[_VocFile], log: IssueLog
) -> list[str]:
    if class_names:
        return list(class_names)
    found = find_class_names(root)
    if found is not None:
        return found[0]
    names = sorted(
        {(obj.findtext("name") or "").strip() for f in files for obj in f.tree.findall("object")}
        - {""}
    )
    if not names:
        raise DatasetError(f"No class names: no object in the XML files under {root} has a name")
    log.add("inferred-classes", root, f"class names from the XML files: {names}")
    return names


def _image_of(file: _VocFile, image_folder: Path, beside_xml: bool) -> Path | None:
    folder = file.path.parent if beside_xml else image_folder
    filename = (file.tree.findtext("filename") or "").strip()
    if filename and (folder / filename).is_file():
        return folder / filename
    return find_image(folder, file.path.stem)


@dataclass(frozen=True)
class _ImageContext:
    """What one XML file's objects are checked against."""

    path: Path
    width: int
    height: int
    names: list[str]
    log: IssueLog


def _stated_size(tree: ET.Element) -> tuple[int, int] | None:
    try:
        width = int(float(tree.findtext("size/width") or 0))
        height = int(float(tree.findtext("size/height") or 0))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _read_file(
    file: _VocFile, image_path: Path, names: list[str], log: IssueLog
) -> ImageAnnotation | None:
    header = probe_image(image_path, log)
    if header is None:
        return None
    stated = _stated_size(file.tree)
    if stated is not None and stated != (header.width, header.height):
        log.add(
            "size-mismatch",
            file.path,
            f"XML says {stated[0]}x{stated[1]}, the image is {header.width}x{header.height}",
        )
    context = _ImageContext(file.path, header.width, header.height, names, log)
    buffer = InstanceBuffer()
    objects = file.tree.findall("object")
    for index, (obj, line) in enumerate(zip(objects, file.object_lines, strict=True), start=1):
        if not _read_object(obj, f"object {index}", line, context, buffer):
            buffer.dropped += 1  # that object is left out; the image keeps the others
    return buffer.to_annotation(image_path, header.width, header.height, file.path)


def _read_object(
    obj: ET.Element, where: str, line: int | None, context: _ImageContext, buffer: InstanceBuffer
) -> bool:
    """Add one `<object>` to `buffer` (or drop it with a warning); False on an error."""
    log, path = context.log, context.path
    name = (obj.findtext("name") or "").strip()
    if name not in context.names:
        log.add("unknown-class", path, f"{where}: class {name!r} is not in {context.names}", line)
        return False
    try:
        xmin, ymin, xmax, ymax = (
            float(obj.findtext(f"bndbox/{k}") or "") for k in ("xmin", "ymin", "xmax", "ymax")
        )
    except ValueError:
        log.add(
            "bad-xml", path, f"{where} ({name}): bndbox needs numeric xmin/ymin/xmax/ymax", line
        )
        return False
    box = np.array([xmin - 1.0, ymin - 1.0, xmax, ymax], dtype=np.float64)  # 1-based -> edges
    scale = np.array([context.width, context.height] * 2, dtype=np.float64)
    verdict = classify_range(
        box / scale,
        coordinate_tolerance(context.width, context.height),
        negligible=negligible_excess(context.width, context.height),
    )
    if verdict == "out-of-range":
        log.add(
            "out-of-range",
            path,
            f"{where} ({name}): box {box.tolist()} lies outside the "
            f"{context.width}x{context.height} image",
            line,
        )
        return False
    if verdict == "clip":
        log.add("clipped", path, f"{where} ({name}): box clipped to the image border", line)
    clipped = clip_box_xyxy(box, context.width, context.height)
    if box_is_degenerate(clipped):
        log.add(
            "degenerate", path, f"{where} ({name}): box with zero width or height dropped", line
        )
        return True
    difficult = (obj.findtext("difficult") or "0").strip().lower() in _TRUE
    buffer.add(context.names.index(name), clipped, difficult=difficult)
    return True


def _add_backgrounds(
    image_folder: Path, recursive: bool, labelled: set[Path], result: ReadResult, log: IssueLog
) -> None:
    """Images without an XML file are backgrounds (reported as info)."""
    for image_path in list_images(image_folder, recursive=recursive):
        if image_path.resolve() in labelled:
            continue
        header = probe_image(image_path, log)
        if header is None:
            result.excluded_images.append(image_path)
            continue
        log.add("missing-label", image_path, "no XML file; used as a background")
        result.dataset.images.append(
            ImageAnnotation(image_path=image_path, width=header.width, height=header.height)
        )
