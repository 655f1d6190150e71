"""Triangle-mesh primitives (plain numpy) and the accumulator the ray caster consumes.

Every primitive returns ``(vertices (V, 3) float64, faces (F, 3) int64)`` in a local frame; ``place``
moves them by a yaw and a translation. ``MeshBuilder`` concatenates all parts of a scene into one
triangle soup plus per-face surface attributes (reflectivity, extra dropout, retro-reflection, object
id), so the sensor model casts every ray against one open3d geometry and looks attributes up by
primitive id. Face winding is irrelevant: the ray caster hits both sides.
"""
import functools

import numpy as np

# Faces of a hexahedron whose corners are ordered bottom (0-3, CCW seen from above) then top (4-7).
_HEX_FACES = np.array([
    [0, 2, 1], [0, 3, 2],  # bottom
    [4, 5, 6], [4, 6, 7],  # top
    [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],  # sides
    [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7],
], dtype=np.int64)
HEX_TOP_FACES = np.array([2, 3])  # indices into _HEX_FACES of the top face (roofs are paint, not glass)
HEX_FRONT_FACES = np.array([10, 11])  # the +x face (corners 3, 0, 4, 7): windscreens


def hexahedron(x0, x1, y0, y1, z0, z1, top_x=None, top_y=None):
    """An axis-aligned box from (x0, y0, z0) to (x1, y1, z1), optionally with a smaller top face.

    ``top_x``/``top_y`` = (lo, hi) extents of the top face (a tapered cabin or windscreen slope).
    Returns vertices (8, 3) and faces (12, 3); faces 2-3 are the top.
    """
    tx0, tx1 = top_x if top_x is not None else (x0, x1)
    ty0, ty1 = top_y if top_y is not None else (y0, y1)
    v = np.array([[x1, y1, z0], [x0, y1, z0], [x0, y0, z0], [x1, y0, z0],
                  [tx1, ty1, z1], [tx0, ty1, z1], [tx0, ty0, z1], [tx1, ty0, z1]], dtype=np.float64)
    return v, _HEX_FACES.copy()


@functools.lru_cache(maxsize=None)
def _cylinder_topology(segments):
    """Unit-circle (cos, sin) (segments, 2) and faces of a capped ``segments``-sided cylinder."""
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    i = np.arange(segments)
    j = (i + 1) % segments
    n = segments
    sides = np.concatenate([np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)])
    caps = np.concatenate([np.stack([np.full(n, 2 * n), j, i], 1), np.stack([np.full(n, 2 * n + 1), n + i, n + j], 1)])
    return np.stack([np.cos(a), np.sin(a)], 1), np.concatenate([sides, caps])


def cylinder(p0, p1, radius, segments=8, radius_y=None):
    """A capped cylinder from point ``p0`` to ``p1`` (3-vectors) with ``segments`` sides.

    ``radius_y`` makes the cross-section elliptical (a torso wider across the shoulders): the
    second cross-section axis is scaled to it. Returns vertices (2 * segments + 2, 3), faces.
    """
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    ax, ay, az = (p1 - p0) / np.sqrt(((p1 - p0) ** 2).sum())
    # Cross-section basis u, w perpendicular to the axis. The reference vector is world +y (or +x
    # when the axis is nearly +y), so that elliptical torsos widen sideways.
    if abs(ay) < 0.9:  # u = y_hat x axis, w = axis x u
        u = np.array([az, 0.0, -ax])
    else:  # u = x_hat x axis
        u = np.array([0.0, -az, ay])
    u /= np.sqrt((u ** 2).sum())
    w = np.array([ay * u[2] - az * u[1], az * u[0] - ax * u[2], ax * u[1] - ay * u[0]])
    circle, faces = _cylinder_topology(segments)
    ring = circle[:, :1] * (u * radius) + circle[:, 1:] * (w * (radius_y or radius))
    return np.concatenate([p0 + ring, p1 + ring, p0[None], p1[None]]), faces


_PHI = (1 + 5 ** 0.5) / 2
_ICO_V = np.array([[-1, _PHI, 0], [1, _PHI, 0], [-1, -_PHI, 0], [1, -_PHI, 0], [0, -1, _PHI], [0, 1, _PHI],
                   [0, -1, -_PHI], [0, 1, -_PHI], [_PHI, 0, -1], [_PHI, 0, 1], [-_PHI, 0, -1], [-_PHI, 0, 1]])
_ICO_V = _ICO_V / np.linalg.norm(_ICO_V, axis=1, keepdims=True)
_ICO_F = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                   [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                   [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], dtype=np.int64)


def ellipsoid(center, radii):
    """A 20-face icosahedral ellipsoid (heads, bushes, tree crowns). ``radii``: (rx, ry, rz)."""
    return np.asarray(center, dtype=np.float64) + _ICO_V * np.asarray(radii, dtype=np.float64), _ICO_F.copy()


def place(vertices, yaw, translation):
    """Rotate local ``vertices`` (V, 3) by ``yaw`` about +z, then translate by (3,). Returns (V, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return vertices @ rot.T + np.asarray(translation, dtype=np.float64)


def heightfield(xs, ys, z):
    """A grid mesh over the node coordinates ``xs`` (nx,) x ``ys`` (ny,) with heights ``z`` (nx, ny)."""
    nx, ny = len(xs), len(ys)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    v = np.stack([gx, gy, z], -1).reshape(-1, 3)
    i = (np.arange(nx - 1)[:, None] * ny + np.arange(ny - 1)[None, :]).ravel()
    f = np.concatenate([np.stack([i, i + ny, i + ny + 1], 1), np.stack([i, i + ny + 1, i + 1], 1)])
    return v, f


def _per_face(value, n, dtype):
    if np.ndim(value) == 0:
        return np.full(n, value, dtype=dtype)
    return np.asarray(value, dtype=dtype).reshape(n)


class MeshBuilder:
    """Accumulates scene parts into one triangle soup with per-face surface attributes.

    Attributes per face (arrays built by ``build``):
        reflectivity (F,) float32 in [0, 1]: diffuse albedo at the LiDAR wavelength.
        dropout (F,) float32: extra probability that a return from this face is lost (glass, foliage).
        retro (F,) bool: retro-reflector (plates, signs): bright and nearly angle-independent.
        object_id (F,) int32: index of the labelled object the face belongs to, -1 for background.
    """

    def __init__(self):
        self._parts = []
        self._nv = 0

    def add(self, vertices, faces, reflectivity, dropout=0.0, retro=False, object_id=-1):
        """Add one part. ``reflectivity``/``dropout`` are scalars or per-face arrays (F,)."""
        faces = np.asarray(faces, dtype=np.int64)
        nf = len(faces)
        self._parts.append((
            np.asarray(vertices, dtype=np.float64),
            faces + self._nv,
            _per_face(reflectivity, nf, np.float32),
            _per_face(dropout, nf, np.float32),
            _per_face(retro, nf, bool),
            np.full(nf, object_id, dtype=np.int32),
        ))
        self._nv += len(vertices)

    def build(self):
        """Returns a dict: vertices (V, 3) float32, faces (F, 3) uint32 and the per-face arrays above."""
        cols = list(zip(*self._parts))
        return {
            "vertices": np.concatenate(cols[0]).astype(np.float32),
            "faces": np.concatenate(cols[1]).astype(np.uint32),
            "reflectivity": np.concatenate(cols[2]),
            "dropout": np.concatenate(cols[3]),
            "retro": np.concatenate(cols[4]),
            "object_id": np.concatenate(cols[5]),
        }
