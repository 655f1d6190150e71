"""Simulated ScanNet reconstruction of a furnished room: a coloured vertex cloud with segments, annotation
and a non-identity axis alignment, plus the ground truth the round-trip tests compare with.

Vertices are the primitives' mesh vertices plus area-uniform samples on their triangles (what a
densely re-meshed reconstruction looks like; faces on the floor's underside are never seen and get no
samples). Segments are ~0.35 m patches of one object (ScanNet's over-segmentation never crosses an
object either), with random non-consecutive ids like ScanNet's.
"""
import numpy as np

from .sim_furniture import COLOURS
from .sim_rooms import layout_room

SEGMENT_CELL = 0.35  # metres
UNANNOTATED_STRUCTURE = 0.04  # fraction of wall/floor segments annotators left unlabelled


def sample_parts(parts, density, rng, drop_bottom=False):
    """Mesh vertices and surface samples of an object's parts.

    Returns:
        xyz (V + S, 3) float64 (the parts' vertices first), faces (F, 3) int64 into xyz, shade (V + S,)
        float64 in [0.8, 1] (brighter on upward faces, as if lit from above).
    """
    verts, faces, off = [], [], 0
    for v, f in parts:
        verts.append(np.asarray(v, np.float64))
        faces.append(np.asarray(f, np.int64) + off)
        off += len(v)
    verts, faces = np.concatenate(verts), np.concatenate(faces)
    tri = verts[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    nz = np.abs(cross[:, 2]) / np.maximum(2 * area, 1e-12)
    ok = area > 1e-9
    if drop_bottom:
        ok &= ~((nz > 0.99) & (tri[:, :, 2].max(1) < 0.005))
    idx = np.flatnonzero(ok)
    n = int(rng.poisson(area[idx].sum() * density)) if len(idx) else 0
    pick = rng.choice(idx, n, p=area[idx] / area[idx].sum()) if n else np.zeros(0, np.int64)
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    t = tri[pick]
    samples = (1 - r1)[:, None] * t[:, 0] + (r1 * (1 - r2))[:, None] * t[:, 1] + (r1 * r2)[:, None] * t[:, 2]
    shade = np.concatenate([np.ones(len(verts)), 0.8 + 0.2 * nz[pick]])
    return np.concatenate([verts, samples]), faces, shade


def _colours(label, xyz, shade, rng):
    base = np.asarray(COLOURS.get(label or "box", (128, 128, 128)), np.float64) + rng.normal(0, 18, 3)
    c = base[None] * shade[:, None] + rng.normal(0, 6, (len(xyz), 3))
    if label == "floor":  # wooden boards
        c += 12 * np.sin(2 * np.pi * xyz[:, :1] / 0.15)
    return np.clip(np.round(c), 0, 255).astype(np.uint8)


def random_alignment(rng):
    """ScanNet's axisAlignment (aligned = M @ raw): a yaw about z (never a multiple of 90 deg) and a shift."""
    yaw = rng.uniform(0.1, 1.4) * rng.choice([-1, 1]) + rng.integers(4) * np.pi / 2
    m = np.eye(4)
    m[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    m[:3, 3] = rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(-0.1, 0.1)
    return m


def simulate_room(seed, density=400.0):
    """One simulated ScanNet scan.

    Returns dict:
        raw_xyz (N, 3) float32 vertex xyz in the scanner's (unaligned) frame, as written to the PLY
        rgb (N, 3) uint8, faces (F, 3) int64, seg_indices (N,) int64 segment id per vertex
        seg_groups list of {id, objectId, segments, label} (the annotated objects), axis_align (4, 4)
        scene_type str, and the truth in the aligned frame:
        xyz (N, 3) float64, point_label (N,) object raw category or None (unannotated), point_instance
        (N,) int64 objectId + 1 (0 = unannotated), boxes list of (objectId, raw category, (6,) float64
        [cx, cy, cz, dx, dy, dz] = AABB of the object's placed mesh vertices) for every annotated object.
    """
    rng = np.random.default_rng(seed)
    objects, size, height, scene_type = layout_room(rng)
    xyz, rgb, faces, obj_of, off = [], [], [], [], 0
    for k, obj in enumerate(objects):
        p, f, shade = sample_parts(obj["parts"], density, rng, obj.get("drop_bottom", False))
        xyz.append(p)
        rgb.append(_colours(obj["label"], p, shade, rng))
        faces.append(f + off)
        obj_of.append(np.full(len(p), k))
        off += len(p)
    xyz, rgb, faces, obj_of = map(np.concatenate, (xyz, rgb, faces, obj_of))
    # segments: one object's points in one SEGMENT_CELL cell
    cell = np.floor(xyz / SEGMENT_CELL).astype(np.int64)
    _, local = np.unique(np.column_stack([obj_of, cell]), axis=0, return_inverse=True)
    local = local.reshape(-1)
    seg_ids = np.sort(rng.choice(10 ** 7, local.max() + 1, replace=False))
    seg_indices = seg_ids[local]
    seg_obj = np.zeros(len(seg_ids), np.int64)
    seg_obj[local] = obj_of
    groups, boxes = [], []
    point_instance = np.zeros(len(xyz), np.int64)
    for k, obj in enumerate(objects):
        if obj["label"] is None:
            continue
        segs = np.flatnonzero(seg_obj == k)
        if obj["label"] in ("wall", "floor"):
            segs = segs[rng.random(len(segs)) >= UNANNOTATED_STRUCTURE]
        object_id = len(groups)
        groups.append({"id": object_id, "objectId": object_id, "segments": seg_ids[segs].tolist(),
                       "label": obj["label"]})
        point_instance[np.isin(local, segs)] = object_id + 1
        v = np.concatenate([p[0] for p in obj["parts"]])
        lo, hi = v.min(0), v.max(0)
        boxes.append((object_id, obj["label"], np.concatenate([(lo + hi) / 2, hi - lo])))
    labels = np.array([o["label"] for o in objects], dtype=object)
    point_label = np.where(point_instance > 0, labels[obj_of], None)
    align = random_alignment(rng)
    inv = np.linalg.inv(align)
    raw = (xyz @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)
    return {"raw_xyz": raw, "rgb": rgb, "faces": faces, "seg_indices": seg_indices, "seg_groups": groups,
            "axis_align": align, "scene_type": scene_type, "size": size, "height": height, "xyz": xyz,
            "point_label": point_label, "point_instance": point_instance, "boxes": boxes}
