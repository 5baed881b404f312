"""Typed containers exchanged between layers."""

from dfseg.structures.annotations import RLE, DataIssue, Dataset, ImageAnnotation, Polygons, Segment
from dfseg.structures.detections import Detections

__all__ = ["RLE", "DataIssue", "Dataset", "Detections", "ImageAnnotation", "Polygons", "Segment"]
