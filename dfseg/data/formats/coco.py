"""Reading COCO JSON: boxes, polygons and RLE (compressed or not), crowd regions.

Category ids (any, e.g. 1-based or with gaps) become contiguous 0-based ids in ascending category
id order, or in the order of the given class names (matched by name); the original ids are kept in
`Dataset.source_class_ids`. `bbox` is [x, y, width, height] in absolute pixels (converted to
xyxy). Images are found relative to the JSON's folder, then in an `images/` folder beside it, then
relative to the dataset root. Image sizes come from the image files; a different size in the JSON
is reported and the image's size is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfseg.data.formats.coco_annotation import AnnotationContext, read_annotation
from dfseg.data.formats.images import list_images, probe_image
from dfseg.data.formats.instances import InstanceBuffer
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult, report_read_progress
from dfseg.structures import Dataset
from dfseg.structures.progress import ProgressCallback

ANNOTATIONS_FOLDER = "annotations"


def find_annotation_file(root: Path) -> Path:
    """The one `.json` in `root` (or in `root/annotations/` when root has none).

    Raises:
        DatasetError: none, or several (listed) so the user must choose.
    """
    for folder in (root, root / ANNOTATIONS_FOLDER):
        candidates = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            listed = ", ".join(p.name for p in candidates)
            raise DatasetError(
                f"Several JSON files in {folder}: {listed}. Choose one with `data.annotations` "
                "in the project file (or --annotations)."
            )
    raise DatasetError(
        f"No COCO JSON found in {root} or {root / ANNOTATIONS_FOLDER}. Point `data.annotations` "
        "to the annotation file."
    )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno})"
        ) from error
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a COCO object with images/annotations/categories")
    missing = [key for key in ("images", "categories") if not isinstance(content.get(key), list)]
    if missing:
        raise DatasetError(f"{path}: not a COCO annotation file: no {' / '.join(missing)} list")
    return content


def map_categories(
    categories: list[dict[str, Any]], class_names: list[str] | None, path: Path, log: IssueLog
) -> tuple[list[str], list[int], dict[int, int]]:
    """Contiguous classes from COCO categories.

    Returns:
        (class names, original category id per class (-1 when a given name has no category),
        category id -> contiguous class id).

    Raises:
        DatasetError: malformed or duplicate categories, or categories not in `class_names`.
    """
    try:
        pairs = sorted((int(c["id"]), str(c["name"])) for c in categories)
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: every category needs an integer `id` and a `name`") from error
    names_in_file = [name for _, name in pairs]
    repeated = sorted({n for n in names_in_file if names_in_file.count(n) > 1})
    if repeated or len({i for i, _ in pairs}) != len(pairs):
        raise DatasetError(f"{path}: duplicate category ids or names: {repeated or 'ids'}")
    if not class_names:
        if not pairs:
            raise DatasetError(f"{path}: the `categories` list is empty")
        mapping = {cid: k for k, (cid, _) in enumerate(pairs)}
        _report_remapping(mapping, path, log)
        return names_in_file, [i for i, _ in pairs], mapping
    id_of_name = {name: cid for cid, name in pairs}
    unmatched = [name for name in names_in_file if name not in class_names]
    if unmatched:
        raise DatasetError(
            f"{path}: categories {unmatched} are not in the class list {list(class_names)}; "
            "add them to `data.classes` (names must match exactly)."
        )
    for name in class_names:
        if name not in id_of_name:
            log.add("unused-class", path, f"class {name!r} has no category in this file")
    source_ids = [id_of_name.get(name, -1) for name in class_names]
    mapping = {cid: class_names.index(name) for cid, name in pairs}
    _report_remapping(mapping, path, log)
    return list(class_names), source_ids, mapping


def _report_remapping(mapping: dict[int, int], path: Path, log: IssueLog) -> None:
    changed = {cid: k for cid, k in mapping.items() if cid != k}
    if changed:
        shown = ", ".join(f"{cid}->{k}" for cid, k in list(changed.items())[:8])
        more = f" (+{len(changed) - 8} more)" if len(changed) > 8 else ""
        log.add("remapped-categories", path, f"category ids mapped to class ids: {shown}{more}")


@dataclass
class _CocoImage:
    entry: dict[str, Any]
    path: Path | None


def _resolve_image(file_name: str, json_path: Path, root: Path) -> Path | None:
    relative = Path(file_name)
    if relative.is_absolute():
        return relative if relative.is_file() else None
    for base in (json_path.parent, json_path.parent / "images", root, root / "images"):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    return None


def read_coco(
    root: Path,
    class_names: list[str] | None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read a COCO JSON dataset in place.

    Args:
        root: dataset folder, or the JSON file itself.
        class_names: when given, categories are matched to them by name.
        annotations: the JSON file; found in `root` when None (exactly one .json there).
        progress: optional callback, one event every few images.

    Returns:
        The dataset (absolute pixel xyxy boxes; polygons in pixels or RLE) and what was left out.

    Raises:
        DatasetError: no or several JSON files, invalid JSON, bad or unmatched categories.
    """
    if root.is_file() and root.suffix == ".json":
        root, annotations = root.parent, annotations or root
    if not root.is_dir():
        raise DatasetError(f"COCO dataset folder {root} does not exist or is not a folder")
    json_path = annotations if annotations is not None else find_annotation_file(root)
    if not json_path.is_file():
        raise DatasetError(f"COCO annotation file {json_path} does not exist")
    content = _load_json(json_path)
    log = IssueLog(root)
    names, source_ids, category_map = map_categories(
        content["categories"], class_names, json_path, log
    )
    images = _index_images(content["images"], json_path, root, log)
    grouped = _group_annotations(content.get("annotations") or [], images, json_path, log)
    result = ReadResult(Dataset(root, "coco", names, [], source_class_ids=source_ids))
    result.label_files = 1
    for done, image in enumerate(images.values(), start=1):
        _read_image(image, grouped.get(image.entry["id"], []), category_map, json_path, result, log)
        report_read_progress(progress, done, len(images))
    _report_unlisted_images(images, log)
    result.dataset.issues = log.issues
    return result


def _index_images(
    entries: list[Any], json_path: Path, root: Path, log: IssueLog
) -> dict[Any, _CocoImage]:
    images: dict[Any, _CocoImage] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            log.add("bad-annotation", json_path, f"image entry without id/file_name: {entry!r:.80}")
            continue
        path = _resolve_image(str(entry["file_name"]), json_path, root)
        if path is None:
            log.add(
                "label-without-image",
                json_path,
                f"image id {entry['id']}: file {entry['file_name']!r} not found next to the JSON, "
                "in images/ or under the dataset root",
            )
        images[entry["id"]] = _CocoImage(entry, path)
    return images


def _group_annotations(
    entries: list[Any], images: dict[Any, _CocoImage], json_path: Path, log: IssueLog
) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = {}
    orphans = 0
    for entry in entries:
        if not isinstance(entry, dict):
            log.add("bad-annotation", json_path, f"annotation is not an object: {entry!r:.80}")
            continue
        if entry.get("image_id") not in images:
            orphans += 1
            continue
        grouped.setdefault(entry["image_id"], []).append(entry)
    if orphans:
        log.add(
            "label-without-image",
            json_path,
            f"{orphans} annotation(s) refer to image ids missing from `images`",
        )
    return grouped


def _read_image(
    image: _CocoImage,
    entries: list[dict[str, Any]],
    category_map: dict[int, int],
    json_path: Path,
    result: ReadResult,
    log: IssueLog,
) -> None:
    """Add one listed image with its annotations to `result` (or to its excluded images)."""
    if image.path is None:
        return
    header = probe_image(image.path, log)
    if header is None:
        result.excluded_images.append(image.path)
        return
    stated = (image.entry.get("width"), image.entry.get("height"))
    if stated != (None, None) and stated != (header.width, header.height):
        log.add(
            "size-mismatch",
            image.path,
            f"JSON says {stated[0]}x{stated[1]}, the image is {header.width}x{header.height}",
        )
    context = AnnotationContext(
        json_path, image.path, header.width, header.height, category_map, log
    )
    buffer = InstanceBuffer()
    for entry in entries:
        read_annotation(entry, context, buffer)
    result.dataset.images.append(
        buffer.to_annotation(image.path, header.width, header.height, label_path=None)
    )


def _report_unlisted_images(images: dict[Any, _CocoImage], log: IssueLog) -> None:
    listed = {image.path.resolve() for image in images.values() if image.path is not None}
    folders = {path.parent for path in listed}
    unlisted = [
        path
        for folder in sorted(folders)
        for path in list_images(folder, recursive=False)
        if path.resolve() not in listed
    ]
    if unlisted:
        examples = ", ".join(p.name for p in unlisted[:3])
        log.add(
            "unlisted-image",
            unlisted[0].parent,
            f"{len(unlisted)} image(s) in the image folder are not in the JSON (e.g. {examples})",
        )
