"""Multi-object tracking over video frames, behind one name -> tracker table.

tracker = build_tracker("bytetrack", {"high_thresh": 0.4}, frame_rate=25)
ids = tracker.update(boxes_xyxy, scores, labels)   # [N] track id per detection, -1 untracked
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from dfseg.tracking.byte_tracker import UNTRACKED, ByteTracker, ByteTrackSettings


class Tracker(Protocol):
    def update(
        self, boxes_xyxy: np.ndarray, scores: np.ndarray, labels: np.ndarray
    ) -> np.ndarray: ...


def _bytetrack(settings: Mapping[str, Any], frame_rate: float) -> Tracker:
    return ByteTracker(ByteTrackSettings(**settings), frame_rate)


TRACKERS: dict[str, Callable[[Mapping[str, Any], float], Tracker]] = {"bytetrack": _bytetrack}
TRACKER_SETTINGS: dict[str, type] = {"bytetrack": ByteTrackSettings}


def build_tracker(name: str, settings: Mapping[str, Any], frame_rate: float = 30.0) -> Tracker:
    """A fresh tracker `name` with `settings` (field names of its settings class; others are an
    error) for a video of `frame_rate` frames per second."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; expected one of {sorted(TRACKERS)}")
    known = {f.name for f in dataclasses.fields(TRACKER_SETTINGS[name])}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{name}: unknown settings {unknown}; known: {sorted(known)}")
    return TRACKERS[name](settings, frame_rate)


__all__ = ["TRACKERS", "UNTRACKED", "ByteTrackSettings", "ByteTracker", "Tracker", "build_tracker"]
