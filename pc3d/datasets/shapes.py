"""Built-in synthetic object set: surface points of open3d primitive meshes and their composites.

Ten classes, five primitives and five composites, each instance with random proportions, random
anisotropic scale, a uniformly random 3D rotation and Gaussian surface noise, normalised to the unit
sphere. Generation is deterministic in ``seed``: instance i of a split uses its own generator seeded
from (seed, split, i), so a sample never depends on how many other samples were generated.

open3d is imported inside :func:`make_mesh` (it costs ~1.5 s), never at module import.
"""
import numpy as np
from torch.utils.data import Dataset

from pc3d.registry import DATASETS

from .object_points import ObjectAugment, normalize_unit_sphere, object_item, random_rotation

SHAPE_CLASSES = ("box", "sphere", "cylinder", "cone", "torus", "capsule", "table", "snowman", "arrow", "mushroom")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _mesh_arrays(mesh):
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def make_mesh(name: str, rng: np.random.Generator):
    """An open3d TriangleMesh of class ``name`` with random proportions (before scale/rotation)."""
    import open3d as o3d

    g = o3d.geometry.TriangleMesh
    u = rng.uniform
    if name == "box":
        m = g.create_box(u(0.5, 1.5), u(0.5, 1.5), u(0.5, 1.5))
    elif name == "sphere":
        m = g.create_sphere(radius=1.0, resolution=16)
    elif name == "cylinder":
        m = g.create_cylinder(radius=u(0.3, 0.7), height=u(1.0, 2.5), resolution=24)
    elif name == "cone":
        m = g.create_cone(radius=u(0.4, 0.9), height=u(1.0, 2.0), resolution=24)
    elif name == "torus":
        m = g.create_torus(torus_radius=1.0, tube_radius=u(0.15, 0.45), radial_resolution=24, tubular_resolution=12)
    elif name == "capsule":  # cylinder capped by two spheres of its radius
        r, h = u(0.3, 0.5), u(1.0, 2.0)
        m = g.create_cylinder(radius=r, height=h, resolution=24)
        m += g.create_sphere(radius=r, resolution=12).translate((0, 0, h / 2))
        m += g.create_sphere(radius=r, resolution=12).translate((0, 0, -h / 2))
    elif name == "table":  # thin top on four legs
        w, d, h, t = u(1.2, 2.0), u(0.8, 1.4), u(0.6, 1.2), u(0.05, 0.12)
        m = g.create_box(w, d, t).translate((-w / 2, -d / 2, h))
        for sx in (-1, 1):
            for sy in (-1, 1):
                leg = g.create_cylinder(radius=0.05, height=h, resolution=8)
                m += leg.translate((sx * (w / 2 - 0.1), sy * (d / 2 - 0.1), h / 2))
    elif name == "snowman":  # two stacked spheres
        r1, r2 = u(0.6, 0.9), u(0.3, 0.55)
        m = g.create_sphere(radius=r1, resolution=16)
        m += g.create_sphere(radius=r2, resolution=12).translate((0, 0, r1 + 0.8 * r2))
    elif name == "arrow":  # shaft with a cone head
        r, h = u(0.08, 0.15), u(1.2, 2.0)
        m = g.create_cylinder(radius=r, height=h, resolution=12).translate((0, 0, h / 2))
        m += g.create_cone(radius=u(2.5, 4.0) * r, height=u(0.4, 0.7), resolution=24).translate((0, 0, h))
    elif name == "mushroom":  # stem under a flattened cap
        r, h, cap = u(0.12, 0.25), u(0.6, 1.2), u(0.6, 1.0)
        m = g.create_cylinder(radius=r, height=h, resolution=12).translate((0, 0, h / 2))
        c = g.create_sphere(radius=cap, resolution=16)
        v = np.asarray(c.vertices) * np.array([1.0, 1.0, u(0.3, 0.5)])
        c.vertices = o3d.utility.Vector3dVector(v + np.array([0.0, 0.0, h]))
        m += c
    else:
        raise ValueError(f"unknown shape {name!r}; known: {SHAPE_CLASSES}")
    return m


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, num_points: int, rng: np.random.Generator):
    """Area-weighted uniform samples on a triangle mesh.

    Args:
        vertices: (V, 3) float; triangles: (T, 3) int vertex indices.

    Returns:
        (num_points, 3) float64 points on the surface.
    """
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    tri = rng.choice(len(triangles), num_points, p=area / area.sum())
    # Uniform barycentric coordinates by reflecting the unit square onto the triangle.
    r1, r2 = rng.random(num_points), rng.random(num_points)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    return a[tri] + r1[:, None] * (b - a)[tri] + r2[:, None] * (c - a)[tri]


def make_shape(name: str, num_points: int, rng: np.random.Generator, noise: float = 0.01,
               scale=(0.7, 1.4), rotate: bool = True) -> np.ndarray:
    """One instance of class ``name``: (num_points, 3) float32 points in the unit sphere."""
    v, t = _mesh_arrays(make_mesh(name, rng))
    p = sample_surface(v, t, num_points, rng) * rng.uniform(*scale, size=3)
    if rotate:
        p = p @ random_rotation(rng).T
    p = normalize_unit_sphere(p)
    return normalize_unit_sphere(p + rng.normal(scale=noise, size=p.shape))


@DATASETS.register_module()
class SyntheticShapes(Dataset):
    """A deterministic synthetic classification set; instance i has class ``i % num_classes``.

    Args:
        num_samples: instances in this split.
        num_points: points per instance.
        split: 'train', 'val' or 'test' (different instances for the same seed).
        seed: generation seed.
        classes: subset/order of :data:`SHAPE_CLASSES`.
        noise: Gaussian noise std after normalisation; scale: per-axis scale range; rotate: SO(3) rotation.
        augment: apply :class:`ObjectAugment` on every read (training).

    Items: ``points`` (num_points, 3) float32, ``label`` int.
    """

    def __init__(self, num_samples: int = 500, num_points: int = 512, split: str = "train", seed: int = 0,
                 classes=SHAPE_CLASSES, noise: float = 0.01, scale=(0.7, 1.4), rotate: bool = True,
                 augment: bool = False):
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {sorted(_SPLIT_IDS)}, got {split!r}")
        unknown = [c for c in classes if c not in SHAPE_CLASSES]
        if unknown:
            raise ValueError(f"unknown classes {unknown}; known: {SHAPE_CLASSES}")
        self.classes = tuple(classes)
        self.metainfo = dict(classes=self.classes)
        self.labels = np.arange(num_samples) % len(self.classes)
        self.points = np.stack([
            make_shape(self.classes[lbl], num_points, np.random.default_rng([seed, _SPLIT_IDS[split], i]),
                       noise, scale, rotate)
            for i, lbl in enumerate(self.labels)]) if num_samples else np.zeros((0, num_points, 3), np.float32)
        self.augment = ObjectAugment() if augment else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        p = self.points[i]
        return object_item(self.augment(p) if self.augment else p, self.labels[i])
