"""Issues found while reading a dataset, and the errors that stop reading altogether.

Every problem with one file or line becomes a `DataIssue` (kept in `Dataset.issues`) with a code
from `ISSUE_KINDS`, which gives its default severity and a hint on how to fix it. Problems that
make the whole dataset unreadable (no images, no class names, an unparsable COCO file) raise
`DatasetError` instead, whose message says where dfseg looked and what to do.
"""

from __future__ import annotations

from pathlib import Path

from dfseg.errors import DfsegError
from dfseg.structures import DataIssue
from dfseg.structures.annotations import Severity


class DatasetError(DfsegError):
    """The dataset cannot be read at all (layout, class names, annotation file)."""


def relative_to_root(path: Path, root: Path) -> str:
    """`path` relative to the dataset folder `root` (posix), or as given when outside it: how
    issues name files."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def indented_list(lines: list[str], limit: int = 20) -> str:
    """`lines` one per indented line for an error message, the first `limit` and a count."""
    more = f"\n  ... {len(lines) - limit} more" if len(lines) > limit else ""
    return "  " + "\n  ".join(lines[:limit]) + more


# code -> (severity, hint). Errors drop what they concern: an unreadable image is left out, a bad
# label row (YOLO row, VOC object, COCO annotation) is dropped and the image keeps its other
# labels; `dfseg check` exits 1 on any error. Warnings are fixed on the fly and reported; infos
# need no action.
ISSUE_KINDS: dict[str, tuple[Severity, str]] = {
    "unreadable-image": (
        "error",
        "The file cannot be opened as an image (corrupt, or not an image despite its "
        "extension); re-export it or remove it.",
    ),
    "empty-image": ("error", "The image file is empty or 0 pixels wide/high; remove it."),
    "truncated-image": (
        "warning",
        "The image data ends early, so part of it decodes grey; re-export or re-download it.",
    ),
    "exif-rotated": (
        "info",
        "dfseg (like cv2.imread) shows the image rotated by its EXIF orientation and expects "
        "labels drawn on the rotated image, as labelling tools do.",
    ),
    "missing-label": (
        "info",
        "No label file: the image is used as a background (no objects). If it shows objects, "
        "label them.",
    ),
    "label-without-image": (
        "warning",
        "Labels refer to an image that does not exist; add the image or delete the labels.",
    ),
    "shared-label": (
        "warning",
        "Several images (same name, other extension) share one label file; rename the images so "
        "each has its own label file.",
    ),
    "unlisted-image": ("info", "Images on disk that the annotation file does not list are unused."),
    "bad-number": ("error", "Every value on a label row must be a number."),
    "wrong-column-count": (
        "error",
        "YOLO rows are `class cx cy w h` (5 values) or `class x1 y1 x2 y2 x3 y3 ...` "
        "(a class id and at least 3 x,y pairs).",
    ),
    "odd-coordinates": (
        "error",
        "A polygon row needs x,y pairs: an even number of coordinates after the class id.",
    ),
    "too-few-points": ("error", "A polygon needs at least 3 points."),
    "not-normalised": (
        "error",
        "YOLO coordinates are normalised to [0, 1]: divide x by the image width and y by the "
        "image height.",
    ),
    "out-of-range": (
        "error",
        "Coordinates lie far outside the image; check that the labels belong to this image.",
    ),
    "clipped": ("warning", "Coordinates slightly outside the image were clipped to its border."),
    "unknown-class": (
        "error",
        "The class is not in the class list; fix the label or add the class to data.classes.",
    ),
    "duplicate-row": ("warning", "The repeated row was dropped; delete it from the label file."),
    "degenerate": (
        "warning",
        "A box or polygon with zero area was dropped; fix or delete it.",
    ),
    "size-mismatch": (
        "warning",
        "The size stored in the labels differs from the image; dfseg uses the image's size. If "
        "the image was resized after labelling, re-export the labels.",
    ),
    "bad-annotation": ("error", "The annotation entry is malformed; fix it in the label file."),
    "bad-xml": ("error", "The XML file is malformed or lacks a required field; fix it."),
    "crowd": (
        "info",
        "COCO crowd regions (iscrowd=1) are kept, flagged: training and evaluation ignore them.",
    ),
    "box-only-instances": (
        "info",
        "Instances without a polygon train boxes only; the mask loss ignores them.",
    ),
    "missing-mask": (
        "error",
        "Every image needs a mask PNG with its name in the mask folder (images/a.jpg -> "
        "masks/a.png, JPEGImages/a.jpg -> SegmentationClass/a.png); add it or remove the image.",
    ),
    "unreadable-mask": (
        "error",
        "The mask cannot be read as an index mask; save it as a PNG of mode L or P (pixel value "
        "= class id, 255 = ignore).",
    ),
    "mask-size": (
        "error",
        "A mask needs the width and height of its image (one class id per pixel); re-export it "
        "at the image's size.",
    ),
    "mask-values": (
        "error",
        "Each mask pixel is a class id (its index in data.classes) or 255 for pixels to ignore; "
        "list every class in data.classes, or fix the mask.",
    ),
    "colour-mask": (
        "error",
        "Colour masks are read through the Pascal VOC palette only; save masks as single-channel "
        "index PNGs (mode L or P: pixel value = class id, 255 = ignore).",
    ),
    "box-only-regions": (
        "info",
        "Instances without a polygon or mask are painted as their box in the semantic labels; "
        "label their outlines for exact class regions.",
    ),
    "inferred-classes": (
        "info",
        "Class names were collected from the label files in sorted order; set data.classes in "
        "the project file to fix the order.",
    ),
    "remapped-categories": (
        "info",
        "dfseg class ids are contiguous and 0-based; predictions and exports use these ids and "
        "the names, and COCO output can map them back.",
    ),
    "unused-class": ("info", "A class of the class list has no category in the annotation file."),
    "empty-class": (
        "warning",
        "No instance of this class is labelled: the model cannot learn it. Label some, or remove "
        "the class from data.classes.",
    ),
    "unassigned-images": (
        "warning",
        "The dataset's split folders or lists leave these images out of every split; add them to "
        "a split, or move them out of the dataset folder.",
    ),
    "duplicate-images": (
        "warning",
        "These files hold the same bytes: delete the copies, or keep them knowing that `dfseg "
        "split` puts every copy in one split.",
    ),
    "near-duplicate-images": (
        "info",
        "These images are near copies (re-encoded, resized or neighbouring frames); `dfseg "
        "split` keeps each group in one split so validation never sees a copy of a training "
        "image.",
    ),
    "split-leak": (
        "warning",
        "Copies of one image lie in different splits, so validation and test scores are "
        "inflated: re-split with `dfseg split --overwrite` (copies are then kept together).",
    ),
    "no-images": (
        "error",
        "Nothing to train on: check data.path and data.format in the project file.",
    ),
}

# Errors about an image itself (it is left out) rather than about one of its label rows.
IMAGE_ERROR_CODES = frozenset({"unreadable-image", "empty-image", "truncated-image", "no-images"})


class IssueLog:
    """Collects `DataIssue`s with paths relative to the dataset root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.issues: list[DataIssue] = []

    def relative(self, path: Path) -> str:
        """`path` relative to the dataset root (posix), or absolute when outside it."""
        return relative_to_root(path, self.root)

    def add(
        self,
        code: str,
        path: Path,
        message: str,
        line: int | None = None,
        severity: Severity | None = None,
        hint: str | None = None,
    ) -> DataIssue:
        """Record one issue; severity and hint default to the code's entry in `ISSUE_KINDS`."""
        default_severity, default_hint = ISSUE_KINDS[code]
        issue = DataIssue(
            severity=severity or default_severity,
            code=code,
            path=self.relative(path),
            line=line,
            message=message,
            hint=hint or default_hint,
        )
        self.issues.append(issue)
        return issue

    def count(self, severity: Severity) -> int:
        return sum(issue.severity == severity for issue in self.issues)
