"""Label formats (YOLO txt, COCO JSON, Pascal VOC XML) read into the internal `Dataset`.

Use `dfseg.data.reading.read_dataset`; the per-format readers live in this package.
"""

from dfseg.data.formats.issues import ISSUE_KINDS, DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult

__all__ = ["ISSUE_KINDS", "DatasetError", "IssueLog", "ReadResult"]
