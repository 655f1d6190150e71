"""Shared helpers for single-object point clouds (ModelNet, ScanObjectNN, synthetic shapes).

An object sample is a dict ``points: (N, 3) float32 [x, y, z]`` normalised to the unit sphere (centroid
at the origin, farthest point at radius 1) and ``label: int`` class index. The Any2Point virtual
projection relies on that normalisation (it maps radius 1 to the edge of the frozen model's grid).
"""
import numpy as np
import torch


def normalize_unit_sphere(points: np.ndarray) -> np.ndarray:
    """(N, 3) float -> (N, 3) float32 centred on the centroid and scaled so the farthest point is at radius 1."""
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be a non-empty (N, 3) array, got shape {points.shape}")
    p = points - points.mean(axis=0)
    r = np.sqrt((p ** 2).sum(axis=1)).max()
    return (p / (r if r > 0 else 1.0)).astype(np.float32)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random (3, 3) rotation (QR of a Gaussian matrix, sign-fixed to det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def resample(points: np.ndarray, num_points: int, rng: np.random.Generator = None) -> np.ndarray:
    """Pick ``num_points`` rows: the first ones when ``rng`` is None (the ModelNet convention for the
    pre-shuffled resampled files), else a random subset (with replacement only if too few points)."""
    n = len(points)
    if rng is None:
        if n >= num_points:
            return points[:num_points]
        return points[np.arange(num_points) % n]
    return points[rng.choice(n, num_points, replace=n < num_points)]


class ObjectAugment:
    """Training augmentation: random anisotropic scale, random rotation about z, Gaussian jitter.

    Applied to already-normalised points and re-normalised after, so the unit-sphere contract holds.
    """

    def __init__(self, scale=(0.8, 1.25), rotate_z: bool = True, jitter: float = 0.005, seed: int = None):
        self.scale = scale
        self.rotate_z = rotate_z
        self.jitter = jitter
        self.rng = np.random.default_rng(seed)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = points * self.rng.uniform(*self.scale, size=3)
        if self.rotate_z:
            a = self.rng.uniform(0, 2 * np.pi)
            c, s = np.cos(a), np.sin(a)
            p = p @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
        p = p + self.rng.normal(scale=self.jitter, size=p.shape)
        return normalize_unit_sphere(p)


def object_item(points: np.ndarray, label: int) -> dict:
    """The sample dict: ``points`` (N, 3) float32 tensor, ``label`` int."""
    return dict(points=torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)), label=int(label))
