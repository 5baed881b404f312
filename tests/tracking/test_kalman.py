"""The Kalman filter on hand-built box sequences."""

from __future__ import annotations

import numpy as np

from dfseg.tracking.kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah


def test_box_conversion_round_trips() -> None:
    box = np.array([10.0, 20.0, 50.0, 100.0])
    xyah = xyxy_to_xyah(box)
    np.testing.assert_allclose(xyah, [30.0, 60.0, 0.5, 80.0])
    np.testing.assert_allclose(xyah_to_xyxy(xyah), box)


def test_predict_keeps_a_new_box_still_and_grows_uncertainty() -> None:
    kalman = KalmanBoxFilter()
    state = kalman.initiate(np.array([0.0, 0.0, 20.0, 40.0]))
    predicted = kalman.predict(state)
    np.testing.assert_allclose(predicted.box_xyxy(), [0.0, 0.0, 20.0, 40.0])  # at rest
    assert np.all(np.diag(predicted.covariance) > np.diag(state.covariance))


def test_update_moves_toward_the_measurement_and_shrinks_uncertainty() -> None:
    kalman = KalmanBoxFilter()
    state = kalman.predict(kalman.initiate(np.array([0.0, 0.0, 20.0, 40.0])))
    updated = kalman.update(state, np.array([4.0, 0.0, 24.0, 40.0]))
    assert 10.0 < updated.mean[0] < 14.0  # between the prediction (10) and the measurement (14)
    assert updated.mean[4] > 0  # it learned the box moves right
    assert updated.covariance[0, 0] < state.covariance[0, 0]


def test_constant_velocity_is_learned_and_extrapolated() -> None:
    kalman = KalmanBoxFilter()
    box = np.array([0.0, 0.0, 20.0, 40.0])
    state = kalman.initiate(box)
    for step in range(1, 15):
        state = kalman.update(kalman.predict(state), box + [3.0 * step, 1.0 * step] * 2)
    ahead = kalman.predict(state).box_xyxy()  # where frame 15 should be
    np.testing.assert_allclose(ahead, box + [45.0, 15.0] * 2, atol=1.0)
    np.testing.assert_allclose(state.mean[4:6], [3.0, 1.0], atol=0.2)
