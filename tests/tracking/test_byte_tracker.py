"""ByteTrack's association on hand-built frames: each test checks one rule of the algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from dfseg.tracking import UNTRACKED, ByteTracker, ByteTrackSettings, build_tracker
from dfseg.tracking.association import assign


def frame(*boxes_scores: tuple[list[float], float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.array([b for b, _ in boxes_scores], dtype=np.float32).reshape(-1, 4)
    scores = np.array([s for _, s in boxes_scores], dtype=np.float32)
    return boxes, scores, np.zeros(len(scores), dtype=np.int64)


def moving(step: int, x0: float = 0.0, dx: float = 4.0) -> list[float]:
    return [x0 + dx * step, 50.0, x0 + dx * step + 40.0, 90.0]


def test_assignment_is_optimal_and_respects_the_cost_limit() -> None:
    cost = np.array([[0.1, 0.2], [0.15, 0.9], [0.95, 0.99]])
    matches, tracks, dets = assign(cost, max_cost=0.8)
    # greedy would give track 0 detection 0 and leave track 1 unmatched; optimal pairs (0,1),(1,0)
    assert matches == [(0, 1), (1, 0)]
    assert tracks == [2] and dets == []
    assert assign(np.zeros((0, 3)), 0.5) == ([], [], [0, 1, 2])


def test_objects_keep_their_ids_while_moving() -> None:
    tracker = ByteTracker()
    ids = [tracker.update(*frame((moving(t), 0.9), (moving(t, 200, -3), 0.8))) for t in range(10)]
    assert ids[0].tolist() == [1, 2]  # confirmed on the first frame
    assert all(i.tolist() == [1, 2] for i in ids)


def test_a_new_track_needs_a_second_frame_to_get_an_id() -> None:
    tracker = ByteTracker()
    tracker.update(*frame((moving(0), 0.9)))
    assert tracker.update(*frame((moving(1), 0.9), ([300, 300, 340, 340], 0.9))).tolist() == [1, -1]
    assert tracker.update(*frame((moving(2), 0.9), ([300, 300, 340, 340], 0.9))).tolist() == [1, 2]


def test_a_one_frame_false_positive_never_gets_an_id() -> None:
    tracker = ByteTracker()
    tracker.update(*frame((moving(0), 0.9)))
    tracker.update(*frame((moving(1), 0.9), ([300, 300, 340, 340], 0.95)))
    ids = tracker.update(*frame((moving(2), 0.9)))
    assert ids.tolist() == [1]
    assert tracker.update(*frame((moving(3), 0.9), ([10, 200, 50, 240], 0.9))).tolist() == [1, -1]


def test_low_score_detections_continue_a_track_but_never_start_one() -> None:
    """The second association: a partly hidden object scores low; ByteTrack keeps its id, a
    tracker that drops low scores (low = high) loses it and gives a new id when it reappears."""
    settings = ByteTrackSettings(high_thresh=0.5, low_thresh=0.1)
    scores = [0.9, 0.9, 0.3, 0.25, 0.3, 0.9, 0.9]
    byte = ByteTracker(settings)
    high_only = ByteTracker(ByteTrackSettings(high_thresh=0.5, low_thresh=0.5, track_buffer=1))
    byte_ids = [int(byte.update(*frame((moving(t), s)))[0]) for t, s in enumerate(scores)]
    high_ids = [int(high_only.update(*frame((moving(t), s)))[0]) for t, s in enumerate(scores)]
    assert byte_ids == [1] * len(scores)
    assert high_ids[2:5] == [UNTRACKED] * 3 and high_ids[-1] not in (1, UNTRACKED)
    lone = ByteTracker(settings)
    assert lone.update(*frame(([0, 0, 40, 40], 0.3))).tolist() == [-1]
    assert lone.update(*frame(([0, 0, 40, 40], 0.3))).tolist() == [-1]
    assert lone.tracks == []


def test_a_lost_track_is_found_again_within_the_buffer_and_forgotten_after_it() -> None:
    tracker = ByteTracker(ByteTrackSettings(track_buffer=5))
    for t in range(5):
        tracker.update(*frame((moving(t, dx=2), 0.9)))
    for _ in range(3):  # hidden for three frames
        assert tracker.update(*frame()).tolist() == []
    assert tracker.update(*frame((moving(8, dx=2), 0.9))).tolist() == [1]  # predicted ahead
    for _ in range(7):  # longer than the buffer
        tracker.update(*frame())
    assert tracker.tracks == []
    tracker.update(*frame((moving(16, dx=2), 0.9)))
    assert tracker.update(*frame((moving(17, dx=2), 0.9))).tolist() == [2]  # a new object


def test_crossing_objects_keep_their_ids() -> None:
    """Two boxes pass each other; velocity (not nearest position) decides who is who."""
    tracker = ByteTracker()
    for t in range(30):
        left, right = moving(t, 0, 6), moving(t, 180, -6)
        right = [right[0], right[1] + 10, right[2], right[3] + 10]  # a little lower
        ids = tracker.update(*frame((left, 0.9), (right, 0.85)))
        assert ids.tolist() == [1, 2], f"frame {t}"


def test_frame_rate_scales_the_buffer_and_settings_are_checked() -> None:
    assert ByteTracker(ByteTrackSettings(track_buffer=30), frame_rate=60).max_lost_frames == 60
    assert ByteTracker(ByteTrackSettings(track_buffer=30), frame_rate=10).max_lost_frames == 10
    with pytest.raises(ValueError, match="unknown settings"):
        build_tracker("bytetrack", {"high": 0.5})
    with pytest.raises(ValueError, match="unknown tracker"):
        build_tracker("sort", {})
