"""A constant-velocity Kalman filter over many boxes at once (the SORT / ByteTrack motion model).

State per track (8,): centre x, centre y, aspect ratio w / h, height, and their velocities in pixels (or ratio)
per frame. Noise scales with the box height, so small and large objects are equally certain relative to their
size. Every function takes and returns a batch: means (N, 8), covariances (N, 8, 8).
"""
from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20   # std of position per unit of box height
VELOCITY_NOISE = 1 / 160  # std of velocity per unit of box height

TRANSITION = np.eye(8) + np.eye(8, k=4)  # x_{t+1} = x_t + v_t
OBSERVATION = np.eye(4, 8)               # we observe cx, cy, a, h


def xyxy_to_state(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) cx, cy, w / h, h."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack(((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, w / np.maximum(h, 1e-6), h), 1)


def state_to_xyxy(mean: np.ndarray) -> np.ndarray:
    """(N, >=4) cx, cy, w / h, h, ... -> (N, 4) x1, y1, x2, y2."""
    cx, cy, a, h = mean[:, 0], mean[:, 1], mean[:, 2], mean[:, 3]
    w = a * h
    return np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)


def _diagonal(height: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """(N,) heights -> (N, k, k) diagonal covariances with std = weight * height, except the aspect ratio and its
    velocity (state entries 2 and 6), whose std is the weight itself: a ratio's noise does not grow with size."""
    w = np.asarray(weights, dtype=np.float64)
    std = w[None] * height[:, None]
    std[:, 2::4] = w[2::4]
    return np.einsum("ni,ij->nij", std ** 2, np.eye(len(w)))


def initiate(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from (N, 4) xyxy boxes: zero velocity, uncertain (large) velocity covariance."""
    z = xyxy_to_state(boxes)
    mean = np.concatenate((z, np.zeros_like(z)), 1)
    p, v = 2 * POSITION_NOISE, 10 * VELOCITY_NOISE
    return mean, _diagonal(z[:, 3], (p, p, 1e-2, p, v, v, 1e-5, v))


def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: (N, 8), (N, 8, 8) -> the same, with the process noise added."""
    p, v = POSITION_NOISE, VELOCITY_NOISE
    noise = _diagonal(mean[:, 3], (p, p, 1e-2, p, v, v, 1e-5, v))
    return mean @ TRANSITION.T, TRANSITION @ covariance @ TRANSITION.T + noise


def update(mean: np.ndarray, covariance: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct N tracks with their N matched (N, 4) xyxy boxes."""
    p = POSITION_NOISE
    innovation_cov = OBSERVATION @ covariance @ OBSERVATION.T + _diagonal(mean[:, 3], (p, p, 1e-1, p))
    cross = covariance @ OBSERVATION.T                                  # (N, 8, 4)
    gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)  # P H^T S^-1
    residual = xyxy_to_state(boxes) - mean[:, :4]
    mean = mean + np.einsum("nij,nj->ni", gain, residual)
    covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
    return mean, covariance
