"""ByteTrack (Zhang et al., 2022): multi-object tracking by associating every detection box.

Each frame: tracks are moved by their Kalman filters; confident detections are matched to
tracks first (IoU fused with score), then the leftover tracks take the low-score detections
(an object partly hidden keeps its id instead of being dropped), then tracks seen only once
take what is left. Unmatched tracks are kept as lost for `track_buffer` frames (at 30 fps) and
may be found again; confident detections nobody took start new tracks, confirmed (given an
id) when matched on the next frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from dfseg.ops.box_overlap import box_iou_xyxy
from dfseg.tracking.association import assign, iou_cost
from dfseg.tracking.kalman import BoxState, KalmanBoxFilter

UNTRACKED = -1
DUPLICATE_IOU = 0.85  # a lost track this close to a tracked one is the same object


@dataclass(frozen=True)
class ByteTrackSettings:
    """ByteTrack's thresholds (its paper's values unless said).

    Attributes:
        high_thresh: detections scoring at least this are matched first and may start tracks.
        low_thresh: detections between this and `high_thresh` only continue existing tracks.
        new_track_thresh: a new track needs a detection scoring at least this.
        match_thresh: largest 1 - IoU (score-fused) of a first-round match.
        low_match_thresh: largest 1 - IoU of a second-round (low-score) match.
        unconfirmed_match_thresh: largest cost to confirm a track seen once.
        track_buffer: frames (at 30 fps; scaled to the video's rate) a lost track is kept.
        fuse_score: multiply IoU by the detection's score in the first round.
    """

    high_thresh: float = 0.5
    low_thresh: float = 0.1
    new_track_thresh: float = 0.5
    match_thresh: float = 0.8
    low_match_thresh: float = 0.5
    unconfirmed_match_thresh: float = 0.7
    track_buffer: int = 30
    fuse_score: bool = True


class TrackStatus(enum.Enum):
    TRACKED = "tracked"
    LOST = "lost"
    REMOVED = "removed"


class Track:
    """One object followed over frames: its filter state, class, score and id (0 until it is
    confirmed)."""

    def __init__(self, state: BoxState, label: int, score: float, frame: int) -> None:
        self.state, self.label, self.score = state, label, score
        self.track_id = 0
        self.status = TrackStatus.TRACKED
        self.last_frame = frame
        self.start_frame = frame
        self.detection = UNTRACKED  # index of this frame's detection, if matched this frame

    @property
    def confirmed(self) -> bool:
        return self.track_id > 0

    def box_xyxy(self) -> np.ndarray:
        return self.state.box_xyxy()

    def frame_age(self, frame: int) -> int:
        """Frames since the track started."""
        return frame - self.start_frame


class ByteTracker:
    """Assigns track ids to each frame's detections (`update`); one tracker per video.

    Args:
        settings: thresholds.
        frame_rate: frames per second of the (strided) video; scales `track_buffer`.
    """

    def __init__(self, settings: ByteTrackSettings | None = None, frame_rate: float = 30.0) -> None:
        self.settings = settings or ByteTrackSettings()
        self.max_lost_frames = max(1, round(frame_rate / 30.0 * self.settings.track_buffer))
        self.kalman = KalmanBoxFilter()
        self.tracks: list[Track] = []
        self.frame = 0
        self._next_id = 1

    def update(self, boxes_xyxy: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Advance one frame.

        Args:
            boxes_xyxy: [N, 4] this frame's detections, absolute pixels.
            scores: [N] in [0, 1]; labels: [N] class ids.

        Returns:
            [N] int64 track id of each detection (>= 1), `UNTRACKED` (-1) for detections that
            belong to no confirmed track (too unsure, or a track not confirmed yet).
        """
        s = self.settings
        self.frame += 1
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        for track in self.tracks:
            track.detection = UNTRACKED
            self._predict(track)
        high = [int(i) for i in np.flatnonzero(scores >= s.high_thresh)]
        low = [int(i) for i in np.flatnonzero((scores >= s.low_thresh) & (scores < s.high_thresh))]
        confirmed = [t for t in self.tracks if t.confirmed]
        unconfirmed = [t for t in self.tracks if not t.confirmed]

        # 1: confirmed tracks (tracked or lost) take the confident detections.
        left_tracks, high = self._match(
            confirmed, high, boxes, scores, labels, s.match_thresh, fuse=s.fuse_score
        )
        # 2: tracks still being followed take the unsure ones.
        following = [t for t in left_tracks if t.status is TrackStatus.TRACKED]
        unmatched, _ = self._match(following, low, boxes, scores, labels, s.low_match_thresh)
        for track in unmatched:
            track.status = TrackStatus.LOST
        # 3: tracks seen once are confirmed by a confident detection, else dropped.
        unmatched, high = self._match(
            unconfirmed, high, boxes, scores, labels, s.unconfirmed_match_thresh, fuse=s.fuse_score
        )
        for track in unmatched:
            track.status = TrackStatus.REMOVED
        for track in unconfirmed:
            if track.status is TrackStatus.TRACKED and track.detection != UNTRACKED:
                self._confirm(track)
        # 4: confident detections nobody took start tracks (confirmed at once on frame 1).
        for index in high:
            if scores[index] >= s.new_track_thresh:
                track = Track(
                    self.kalman.initiate(boxes[index]),
                    int(labels[index]),
                    float(scores[index]),
                    self.frame,
                )
                track.detection = index
                if self.frame == 1:
                    self._confirm(track)
                self.tracks.append(track)
        for track in self.tracks:
            if (
                track.status is TrackStatus.LOST
                and self.frame - track.last_frame > self.max_lost_frames
            ):
                track.status = TrackStatus.REMOVED
        self.tracks = [t for t in self.tracks if t.status is not TrackStatus.REMOVED]
        self._drop_duplicates()
        ids = np.full(len(scores), UNTRACKED, dtype=np.int64)
        for track in self.tracks:
            if track.confirmed and track.detection != UNTRACKED:
                ids[track.detection] = track.track_id
        return ids

    def _predict(self, track: Track) -> None:
        if track.status is not TrackStatus.TRACKED:
            track.state.mean[7] = 0.0  # a lost box keeps its size
        track.state = self.kalman.predict(track.state)

    def _match(
        self,
        tracks: list[Track],
        detections: list[int],
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: np.ndarray,
        max_cost: float,
        fuse: bool = False,
    ) -> tuple[list[Track], list[int]]:
        """Match `tracks` to `detections` (indices), update the matched; returns the unmatched
        tracks and detection indices."""
        if not tracks or not detections:
            return list(tracks), list(detections)
        track_boxes = np.stack([t.box_xyxy() for t in tracks])
        cost = iou_cost(track_boxes, boxes[detections], scores[detections] if fuse else None)
        matches, left_tracks, left_dets = assign(cost, max_cost)
        for t, d in matches:
            self._update(tracks[t], detections[d], boxes, scores, labels)
        return [tracks[t] for t in left_tracks], [detections[d] for d in left_dets]

    def _update(
        self, track: Track, index: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray
    ) -> None:
        track.state = self.kalman.update(track.state, boxes[index])
        track.label, track.score = int(labels[index]), float(scores[index])
        track.status = TrackStatus.TRACKED
        track.last_frame = self.frame
        track.detection = index

    def _confirm(self, track: Track) -> None:
        track.track_id = self._next_id
        self._next_id += 1

    def _drop_duplicates(self) -> None:
        """A lost track overlapping a tracked one almost exactly is the same object twice: the
        younger of the two goes (ByteTrack's remove_duplicate_stracks)."""
        tracked = [t for t in self.tracks if t.status is TrackStatus.TRACKED and t.confirmed]
        lost = [t for t in self.tracks if t.status is TrackStatus.LOST]
        if not tracked or not lost:
            return
        iou = box_iou_xyxy(
            np.stack([t.box_xyxy() for t in tracked]), np.stack([t.box_xyxy() for t in lost])
        )
        drop: set[int] = set()
        for i, j in zip(*np.nonzero(iou > DUPLICATE_IOU), strict=True):
            a, b = tracked[int(i)], lost[int(j)]
            older_tracked = a.frame_age(self.frame) >= b.frame_age(self.frame)
            drop.add(id(b) if older_tracked else id(a))
        self.tracks = [t for t in self.tracks if id(t) not in drop]
