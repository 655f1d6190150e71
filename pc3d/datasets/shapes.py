"""Built-in synthetic object set: surface points of open3d primitive meshes and their composites.

Ten classes (five primitives, five composites of named parts, also served with per-point part labels), each instance with random proportions, random
anisotropic scale, a uniformly random 3D rotation and Gaussian surface noise, normalised to the unit
sphere. Generation is deterministic in ``seed``: instance i of a split uses its own generator seeded
from (seed, split, i), so a sample never depends on how many other samples were generated.

open3d is imported inside :func:`make_mesh` (it costs ~1.5 s), never at module import.
"""
import numpy as np
import torch
from torch.utils.data import Dataset

from pc3d.registry import DATASETS

from .object_points import ObjectAugment, normalize_unit_sphere, object_item, random_rotation

SHAPE_CLASSES = ("box", "sphere", "cylinder", "cone", "torus", "capsule", "table", "snowman", "arrow", "mushroom")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _mesh_arrays(mesh):
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


# Part vocabulary of the part-segmentation variant (ShapeNetPart style: ids are global across classes).
SHAPE_PARTS = {
    "box": ("box",), "sphere": ("sphere",), "cylinder": ("cylinder",), "cone": ("cone",), "torus": ("torus",),
    "capsule": ("capsule_body", "capsule_cap"), "table": ("table_top", "table_leg"),
    "snowman": ("snowman_body", "snowman_head"), "arrow": ("arrow_shaft", "arrow_head"),
    "mushroom": ("mushroom_stem", "mushroom_cap")}
PART_NAMES = tuple(p for c in SHAPE_CLASSES for p in SHAPE_PARTS[c])


def make_parts(name: str, rng: np.random.Generator) -> list:
    """The open3d TriangleMeshes of class ``name`` with random proportions (before scale/rotation).

    Returns:
        list of (part name from :data:`SHAPE_PARTS`, TriangleMesh); a part may repeat (table legs).
    """
    import open3d as o3d

    g = o3d.geometry.TriangleMesh
    u = rng.uniform
    if name == "box":
        return [("box", g.create_box(u(0.5, 1.5), u(0.5, 1.5), u(0.5, 1.5)))]
    if name == "sphere":
        return [("sphere", g.create_sphere(radius=1.0, resolution=16))]
    if name == "cylinder":
        return [("cylinder", g.create_cylinder(radius=u(0.3, 0.7), height=u(1.0, 2.5), resolution=24))]
    if name == "cone":
        return [("cone", g.create_cone(radius=u(0.4, 0.9), height=u(1.0, 2.0), resolution=24))]
    if name == "torus":
        return [("torus", g.create_torus(torus_radius=1.0, tube_radius=u(0.15, 0.45), radial_resolution=24,
                                         tubular_resolution=12))]
    if name == "capsule":  # cylinder capped by two spheres of its radius
        r, h = u(0.3, 0.5), u(1.0, 2.0)
        return [("capsule_body", g.create_cylinder(radius=r, height=h, resolution=24)),
                ("capsule_cap", g.create_sphere(radius=r, resolution=12).translate((0, 0, h / 2))),
                ("capsule_cap", g.create_sphere(radius=r, resolution=12).translate((0, 0, -h / 2)))]
    if name == "table":  # thin top on four legs
        w, d, h, t = u(1.2, 2.0), u(0.8, 1.4), u(0.6, 1.2), u(0.05, 0.12)
        parts = [("table_top", g.create_box(w, d, t).translate((-w / 2, -d / 2, h)))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                leg = g.create_cylinder(radius=0.05, height=h, resolution=8)
                parts.append(("table_leg", leg.translate((sx * (w / 2 - 0.1), sy * (d / 2 - 0.1), h / 2))))
        return parts
    if name == "snowman":  # two stacked spheres
        r1, r2 = u(0.6, 0.9), u(0.3, 0.55)
        return [("snowman_body", g.create_sphere(radius=r1, resolution=16)),
                ("snowman_head", g.create_sphere(radius=r2, resolution=12).translate((0, 0, r1 + 0.8 * r2)))]
    if name == "arrow":  # shaft with a cone head
        r, h = u(0.08, 0.15), u(1.2, 2.0)
        shaft = g.create_cylinder(radius=r, height=h, resolution=12).translate((0, 0, h / 2))
        head = g.create_cone(radius=u(2.5, 4.0) * r, height=u(0.4, 0.7), resolution=24).translate((0, 0, h))
        return [("arrow_shaft", shaft), ("arrow_head", head)]
    if name == "mushroom":  # stem under a flattened cap
        r, h, cap = u(0.12, 0.25), u(0.6, 1.2), u(0.6, 1.0)
        stem = g.create_cylinder(radius=r, height=h, resolution=12).translate((0, 0, h / 2))
        c = g.create_sphere(radius=cap, resolution=16)
        v = np.asarray(c.vertices) * np.array([1.0, 1.0, u(0.3, 0.5)])
        c.vertices = o3d.utility.Vector3dVector(v + np.array([0.0, 0.0, h]))
        return [("mushroom_stem", stem), ("mushroom_cap", c)]
    raise ValueError(f"unknown shape {name!r}; known: {SHAPE_CLASSES}")


def make_mesh(name: str, rng: np.random.Generator):
    """One open3d TriangleMesh of class ``name`` (its parts concatenated, in order)."""
    parts = make_parts(name, rng)
    m = parts[0][1]
    for _, part in parts[1:]:
        m += part
    return m


def _parts_arrays(parts: list):
    """Concatenate parts -> vertices (V, 3) float64, triangles (T, 3) int64, triangle part id (T,) int64."""
    vs, ts, ids, offset = [], [], [], 0
    for part_name, mesh in parts:
        v, t = _mesh_arrays(mesh)
        vs.append(v)
        ts.append(t + offset)
        ids.append(np.full(len(t), PART_NAMES.index(part_name), dtype=np.int64))
        offset += len(v)
    return np.concatenate(vs), np.concatenate(ts), np.concatenate(ids)


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, num_points: int, rng: np.random.Generator,
                   return_triangles: bool = False):
    """Area-weighted uniform samples on a triangle mesh.

    Args:
        vertices: (V, 3) float; triangles: (T, 3) int vertex indices.

    Returns:
        (num_points, 3) float64 points on the surface, and with ``return_triangles`` also the
        (num_points,) int64 index of the triangle each point lies on.
    """
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    tri = rng.choice(len(triangles), num_points, p=area / area.sum())
    # Uniform barycentric coordinates by reflecting the unit square onto the triangle.
    r1, r2 = rng.random(num_points), rng.random(num_points)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    points = a[tri] + r1[:, None] * (b - a)[tri] + r2[:, None] * (c - a)[tri]
    return (points, tri) if return_triangles else points


def make_shape(name: str, num_points: int, rng: np.random.Generator, noise: float = 0.01,
               scale=(0.7, 1.4), rotate: bool = True, return_parts: bool = False):
    """One instance of class ``name``: (num_points, 3) float32 points in the unit sphere, and with
    ``return_parts`` also the (num_points,) int64 part id (index into :data:`PART_NAMES`) of every point."""
    v, t, part_of_triangle = _parts_arrays(make_parts(name, rng))
    p, tri = sample_surface(v, t, num_points, rng, return_triangles=True)
    p = p * rng.uniform(*scale, size=3)
    if rotate:
        p = p @ random_rotation(rng).T
    p = normalize_unit_sphere(p)
    p = normalize_unit_sphere(p + rng.normal(scale=noise, size=p.shape))
    return (p, part_of_triangle[tri]) if return_parts else p


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


@DATASETS.register_module()
class SyntheticShapeParts(Dataset):
    """Part segmentation on the synthetic shapes: every point labelled with its part (:data:`PART_NAMES`).

    Same instances as :class:`SyntheticShapes` for the same arguments (same generator per instance).
    No augmentation: rotations are already uniform and part labels must follow the points exactly.

    Items: ``points`` (num_points, 3) float32, ``label`` int object class, ``point_labels``
    (num_points,) int64 part id.
    """

    def __init__(self, num_samples: int = 500, num_points: int = 512, split: str = "train", seed: int = 0,
                 noise: float = 0.01, scale=(0.7, 1.4), rotate: bool = True):
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {sorted(_SPLIT_IDS)}, got {split!r}")
        self.classes = PART_NAMES
        self.metainfo = dict(classes=PART_NAMES, object_classes=SHAPE_CLASSES)
        self.labels = np.arange(num_samples) % len(SHAPE_CLASSES)
        samples = [make_shape(SHAPE_CLASSES[lbl], num_points, np.random.default_rng([seed, _SPLIT_IDS[split], i]),
                              noise, scale, rotate, return_parts=True) for i, lbl in enumerate(self.labels)]
        self.points = np.stack([s[0] for s in samples]) if samples else np.zeros((0, num_points, 3), np.float32)
        self.point_labels = np.stack([s[1] for s in samples]) if samples else np.zeros((0, num_points), np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = object_item(self.points[i], self.labels[i])
        item["point_labels"] = torch.from_numpy(self.point_labels[i])
        return item
