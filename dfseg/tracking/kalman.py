"""A constant-velocity Kalman filter on boxes, as SORT, DeepSORT and ByteTrack use it.

State: (cx, cy, aspect, height) and their velocities, in pixels (aspect = width / height).
Process and measurement noise scale with the box height, so a large box may move more pixels
per frame than a small one with the same uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_SIZE = 8  # cx, cy, a, h, vcx, vcy, va, vh
POSITION_NOISE = 1.0 / 20  # of the height, per frame
VELOCITY_NOISE = 1.0 / 160


@dataclass
class BoxState:
    """A track's belief: `mean` [8] and `covariance` [8, 8] (see the module docstring)."""

    mean: np.ndarray
    covariance: np.ndarray

    def box_xyxy(self) -> np.ndarray:
        """[4] xyxy box of the current mean."""
        return xyah_to_xyxy(self.mean[:4])


def xyxy_to_xyah(box_xyxy: np.ndarray) -> np.ndarray:
    """[4] xyxy -> [4] (cx, cy, width / height, height)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    height = max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / height, height])


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """[4] (cx, cy, aspect, height) -> [4] xyxy."""
    cx, cy, aspect, height = (float(v) for v in xyah)
    width = aspect * height
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


class KalmanBoxFilter:
    """Predict and update `BoxState`s; one frame is one time step."""

    def __init__(self) -> None:
        self.motion = np.eye(STATE_SIZE)
        self.motion[:4, 4:] = np.eye(4)  # position += velocity
        self.observe = np.eye(4, STATE_SIZE)

    def initiate(self, box_xyxy: np.ndarray) -> BoxState:
        """A new state at `box_xyxy`, at rest, with uncertainty proportional to its height."""
        measured = xyxy_to_xyah(box_xyxy)
        height = measured[3]
        std = [
            2 * POSITION_NOISE * height,
            2 * POSITION_NOISE * height,
            1e-2,
            2 * POSITION_NOISE * height,
            10 * VELOCITY_NOISE * height,
            10 * VELOCITY_NOISE * height,
            1e-5,
            10 * VELOCITY_NOISE * height,
        ]
        mean = np.concatenate([measured, np.zeros(4)])
        return BoxState(mean, np.diag(np.square(std)))

    def predict(self, state: BoxState) -> BoxState:
        """The state one frame later (motion only)."""
        height = state.mean[3]
        std = [
            POSITION_NOISE * height,
            POSITION_NOISE * height,
            1e-2,
            POSITION_NOISE * height,
            VELOCITY_NOISE * height,
            VELOCITY_NOISE * height,
            1e-5,
            VELOCITY_NOISE * height,
        ]
        mean = self.motion @ state.mean
        covariance = self.motion @ state.covariance @ self.motion.T + np.diag(np.square(std))
        return BoxState(mean, covariance)

    def update(self, state: BoxState, box_xyxy: np.ndarray) -> BoxState:
        """The state corrected by a measured box (the standard Kalman gain step)."""
        height = state.mean[3]
        noise = np.diag(
            np.square(
                [POSITION_NOISE * height, POSITION_NOISE * height, 1e-1, POSITION_NOISE * height]
            )
        )
        projected_mean = self.observe @ state.mean  # [4]
        projected_cov = self.observe @ state.covariance @ self.observe.T + noise  # [4, 4]
        # gain = P H^T S^-1, solved rather than inverted
        gain = np.linalg.solve(projected_cov, self.observe @ state.covariance).T  # [8, 4]
        innovation = xyxy_to_xyah(box_xyxy) - projected_mean
        mean = state.mean + gain @ innovation
        covariance = state.covariance - gain @ projected_cov @ gain.T
        return BoxState(mean, covariance)
