"""From a file's columns to a model's input: column map, units, axes, intensity scale, ground plane.

A model only sees what it was trained with: the simulator's frame has the ground near z = 0 and
intensities in [0, 1], a sensor-frame Ouster scan has the ground near z = -1.9 m and may carry
intensities in 0-255 or 0-65535. :func:`prepare_points` turns a :class:`~pc3d.io.formats.RawCloud`
into the ``(N, C)`` rows the model reads and says, in :class:`PrepareReport.warnings`, what looks
wrong and what to pass instead:

- non-finite rows (dropped, counted per field);
- coordinates that look like millimetres (``scale=0.001``);
- a cloud whose smallest-spread axis is not z (``axes=...``: which axis is up);
- a missing intensity field (filled with 0; name the column with ``columns=``);
- a ground plane (open3d RANSAC) higher/lower or more tilted than the model's training data
  (``align_ground=True`` levels it and puts it at the trained height);
- fewer than 1% of the points inside the model's ``point_cloud_range``.

An empty cloud (before or after dropping bad rows) raises :class:`~pc3d.io.formats.PointCloudError`.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .formats import PointCloudError, RawCloud, parse_columns

INTENSITY_MODES = ("unit", "raw", "tanh")


@dataclass
class InputSpec:
    """What a model was trained on.

    Attributes:
        columns: the model's input columns in order (``x, y, z`` then point features).
        intensity: ``'unit'`` intensities in [0, 1]; ``'raw'`` the sensor's scale up to
            ``intensity_max`` (e.g. nuScenes' 0-255); ``'tanh'`` ``tanh`` of the raw value (OpenPCDet's
            Waymo configs).
        intensity_max: the largest intensity of ``'raw'`` (ignored otherwise).
        point_cloud_range: [x0, y0, z0, x1, y1, z1] the model detects in (None: no range check).
        ground_z: height of the ground under the origin in the training frames (metres).
        ground_tolerance: ground height offsets up to this many metres are not reported.
        tilt_tolerance_deg: ground tilts up to this many degrees are not reported.
    """

    columns: Tuple[str, ...] = ("x", "y", "z", "intensity", "elongation")
    intensity: str = "unit"
    intensity_max: float = 1.0
    point_cloud_range: Optional[Sequence[float]] = None
    ground_z: float = 0.0
    ground_tolerance: float = 0.3
    tilt_tolerance_deg: float = 3.0

    def __post_init__(self):
        self.columns = parse_columns(self.columns)
        if self.intensity not in INTENSITY_MODES:
            raise ValueError(f"intensity must be one of {INTENSITY_MODES}, got {self.intensity!r}")


# Per dataset type: the frame and intensity scale of its training data (a config's ``point_input``
# dict overrides any of these).
DATASET_SPECS = {
    "SyntheticDataset": dict(intensity="unit", ground_z=0.0),  # simulator ego frame: ground at z = 0
    "CustomDataset": dict(intensity="unit", ground_z=0.0),
    "WaymoDataset": dict(intensity="raw", intensity_max=1.0, ground_z=0.0),  # vehicle frame
    "NuScenesDataset": dict(columns=("x", "y", "z", "intensity", "time"), intensity="raw", intensity_max=255.0,
                            ground_z=-1.84),  # LiDAR frame, sensor about 1.84 m above the road
    # Indoor scans with colour (r, g, b in [0, 1] after IndoorNormalizeColor); ScanNet's aligned frame has the
    # floor at z = 0.
    "ScanNetDataset": dict(columns=("x", "y", "z", "r", "g", "b"), intensity="unit", ground_z=0.0),
}
COLOUR_COLUMNS = ("r", "g", "b")


def input_spec_from_config(cfg) -> InputSpec:
    """The :class:`InputSpec` of a detector config: the dataset type's entry of :data:`DATASET_SPECS`
    (``tanh_intensity=True`` datasets use ``'tanh'``), the column count of ``model.voxel_encoder.in_channels``,
    ``point_cloud_range``, then the config's own ``point_input = dict(...)`` on top."""
    def get(c, key, default=None):
        return c.get(key, default) if hasattr(c, "get") else default

    ds = get(get(cfg, "test_dataloader", {}) or get(cfg, "val_dataloader", {}) or {}, "dataset", {}) or {}
    kw = dict(DATASET_SPECS.get(get(ds, "type", ""), {}))
    if get(ds, "tanh_intensity", False):
        kw["intensity"] = "tanh"
    cols = tuple(kw.pop("columns", InputSpec.columns))
    enc = get(get(cfg, "model", {}) or {}, "voxel_encoder", {}) or {}
    n_in = get(enc, "in_channels")
    if isinstance(n_in, int) and n_in >= 3:
        cols = cols[:n_in] + tuple(f"feature_{j}" for j in range(len(cols), n_in))
    kw["columns"] = cols
    pcr = get(cfg, "point_cloud_range")
    if pcr is not None:
        kw["point_cloud_range"] = list(pcr)
    kw.update(dict(get(cfg, "point_input", {}) or {}))
    return InputSpec(**kw)


@dataclass
class GroundPlane:
    """A plane ``normal . p + d = 0`` (unit normal, pointing up).

    Attributes:
        normal: (3,) float64 unit normal with a positive z component.
        d: plane offset.
        height: z of the plane under the origin (x = y = 0), metres.
        tilt_deg: angle between the normal and +z, degrees.
        inlier_fraction: share of the points the plane was fitted to that lie on it.
    """

    normal: np.ndarray
    d: float
    height: float
    tilt_deg: float
    inlier_fraction: float

    def to_dict(self) -> Dict[str, object]:
        return {"normal": [round(float(v), 6) for v in self.normal], "d": round(float(self.d), 6),
                "height": round(float(self.height), 4), "tilt_deg": round(float(self.tilt_deg), 3),
                "inlier_fraction": round(float(self.inlier_fraction), 4)}


def estimate_ground(xyz: np.ndarray, max_range: float = 40.0, distance: float = 0.15, max_tilt_deg: float = 20.0,
                    max_points: int = 60000, seed: int = 0) -> Optional[GroundPlane]:
    """The ground plane of a cloud: the largest plane (open3d ``segment_plane``, RANSAC) within
    ``max_tilt_deg`` of horizontal among the points within ``max_range`` metres (horizontally).

    Args:
        xyz: (N, 3) metres, z up.
        distance: RANSAC inlier distance (metres).
        max_points: a regular subsample of at most this many points is fitted (speed).

    Returns:
        the plane, or None when no near-horizontal plane holds at least 5% of the points.
    """
    import open3d as o3d

    pts = np.asarray(xyz, np.float64)
    pts = pts[np.hypot(pts[:, 0], pts[:, 1]) <= max_range]
    if len(pts) > max_points:
        pts = pts[:: int(np.ceil(len(pts) / max_points))]
    if len(pts) < 50:
        return None
    o3d.utility.random.seed(seed)
    remaining = pts
    for _ in range(4):  # a wall or a façade may be the biggest plane: keep looking for a horizontal one
        if len(remaining) < 50:
            break
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(remaining))
        model, inliers = pc.segment_plane(distance_threshold=distance, ransac_n=3, num_iterations=200)
        a, b, c, d = (float(v) for v in model)
        norm = np.sqrt(a * a + b * b + c * c)
        normal, d = np.array([a, b, c]) / norm, d / norm
        if normal[2] < 0:
            normal, d = -normal, -d
        tilt = float(np.degrees(np.arccos(np.clip(normal[2], -1.0, 1.0))))
        if len(inliers) < 0.05 * len(pts):
            break
        if tilt <= max_tilt_deg:
            return GroundPlane(normal, d, -d / normal[2], tilt, len(inliers) / len(pts))
        remaining = np.delete(remaining, np.asarray(inliers), axis=0)
    return None


def ground_alignment(plane: GroundPlane, ground_z: float) -> np.ndarray:
    """4 x 4 rigid transform that turns ``plane`` into the horizontal plane z = ``ground_z`` (rotation about
    the axis normal x z, the smallest that levels it, then a shift along z)."""
    n = np.asarray(plane.normal, np.float64)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(n, z), float(n @ z)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    rot = np.eye(3) + vx + vx @ vx / (1.0 + c)  # Rodrigues' formula for the rotation taking n to z
    t = np.eye(4)
    t[:3, :3] = rot
    t[2, 3] = ground_z + plane.d  # after rotating, the plane is z = -d
    return t


def axes_matrix(axes: str) -> np.ndarray:
    """``"x,-z,y"`` (new x, y, z as signed old axes) -> 3 x 3 rotation; e.g. a y-up cloud becomes z-up
    with ``"x,-z,y"``. Raises PointCloudError unless it is a proper rotation (a permutation with signs and
    determinant +1)."""
    parts = [a.strip().lower() for a in str(axes).split(",")]
    m = np.zeros((3, 3))
    try:
        if len(parts) != 3:
            raise ValueError
        for row, part in enumerate(parts):
            sign = -1.0 if part.startswith("-") else 1.0
            m[row, "xyz".index(part.lstrip("+-"))] = sign
    except ValueError:
        raise PointCloudError(f"axes {axes!r}: give the new x, y, z as signed old axes, e.g. 'x,-z,y'") from None
    if not np.isclose(np.linalg.det(m), 1.0):
        raise PointCloudError(f"axes {axes!r} is not a rotation (each of x, y, z once, determinant +1): "
                              f"e.g. 'x,-z,y' or 'y,-x,z'")
    return m


def make_transform(axes: Optional[str] = None, translate: Optional[Sequence[float]] = None,
                   rotate_deg: Optional[Sequence[float]] = None, matrix=None) -> np.ndarray:
    """The 4 x 4 rigid transform sensor -> model frame: ``matrix`` (4 x 4) if given, else the axes
    permutation, then the rotation ``rotate_deg = (roll, pitch, yaw)`` (about x, y, z, applied in that
    order), then the translation (e.g. ``(0, 0, sensor_height)`` moves a sensor-frame cloud up so that the
    ground is at z = 0)."""
    if matrix is not None:
        t = np.asarray(matrix, np.float64)
        if t.shape != (4, 4) or not np.isfinite(t).all() or not np.allclose(t[3], [0, 0, 0, 1]):
            raise PointCloudError(f"transform must be a finite 4 x 4 rigid matrix with last row 0 0 0 1, "
                                  f"got {t.tolist()}")
        if not np.allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-4):
            raise PointCloudError("transform's 3 x 3 part is not a rotation (rows not orthonormal)")
        return t
    t = np.eye(4)
    if axes:
        t[:3, :3] = axes_matrix(axes)
    if rotate_deg is not None:
        r, p, y = np.radians(np.asarray(rotate_deg, np.float64).reshape(3))
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        t[:3, :3] = rz @ ry @ rx @ t[:3, :3]
    if translate is not None:
        t[:3, 3] = np.asarray(translate, np.float64).reshape(3)
    return t


@dataclass
class PrepareReport:
    """What :func:`prepare_points` did and noticed.

    Attributes:
        source: the input (file or bag message).
        warnings: human-readable problems, each naming the input and what to pass.
        num_read / num_dropped: points read and non-finite rows dropped.
        in_range_fraction: share of the prepared points inside the model's range (None: no range).
        transform: 4 x 4 applied to x, y, z (input frame -> model frame; ground alignment included).
        ground: the ground plane found in the model frame before alignment (None: not estimated / none).
        intensity_scale: the intensity divisor used ('unit' / 'raw' targets), None without intensity.
        filled: model columns the input did not have (filled with 0).
        colour_scale: the divisor of the r, g, b columns (255 / 65535; None when already in [0, 1] or absent).
    """

    source: str
    warnings: List[str] = field(default_factory=list)
    num_read: int = 0
    num_dropped: int = 0
    in_range_fraction: Optional[float] = None
    transform: np.ndarray = field(default_factory=lambda: np.eye(4))
    ground: Optional[GroundPlane] = None
    ground_after: Optional[GroundPlane] = None
    intensity_scale: Optional[float] = None
    filled: List[str] = field(default_factory=list)
    colour_scale: Optional[float] = None

    def warn(self, msg: str):
        self.warnings.append(f"{self.source}: {msg}")

    def to_dict(self) -> Dict[str, object]:
        return {"source": self.source, "warnings": list(self.warnings), "num_read": self.num_read,
                "num_dropped": self.num_dropped, "in_range_fraction": self.in_range_fraction,
                "transform": np.round(self.transform, 6).tolist(),
                "ground": self.ground.to_dict() if self.ground else None,
                "ground_after": self.ground_after.to_dict() if self.ground_after else None,
                "intensity_scale": self.intensity_scale, "colour_scale": self.colour_scale,
                "filled_columns": list(self.filled)}


def _intensity_scale(values: np.ndarray) -> float:
    """The full scale of recorded intensities: 1 (already [0, 1]), 255 (8 bit), 65535 (16 bit, LAS) or,
    beyond, the 99.9th percentile."""
    top = float(np.max(values)) if len(values) else 0.0
    for scale in (1.0, 255.0, 65535.0):
        if top <= scale * 1.0001:
            return scale
    return float(np.percentile(values, 99.9))


def in_range_mask(xyz: np.ndarray, pc_range: Sequence[float]) -> np.ndarray:
    r = np.asarray(pc_range, np.float64)
    return ((xyz >= r[:3]) & (xyz < r[3:])).all(1)


def prepare_points(cloud: RawCloud, spec: InputSpec, transform=None, scale: Optional[float] = None,
                   intensity_scale: Optional[float] = None, align_ground: bool = False,
                   estimate_ground_plane: bool = True) -> Tuple[np.ndarray, PrepareReport]:
    """The model's input rows of one frame, and what was done and noticed.

    Args:
        cloud: from :func:`pc3d.io.read_points` / :func:`pc3d.io.read_frames`.
        spec: the model's :class:`InputSpec` (:func:`input_spec_from_config`).
        transform: 4 x 4 sensor -> model frame applied to x, y, z (:func:`make_transform`), or None.
        scale: multiplies x, y, z first (0.001 for millimetres).
        intensity_scale: the recorded intensities' full scale (None: guessed as 1, 255 or 65535).
        align_ground: level the estimated ground plane and move it to ``spec.ground_z``.
        estimate_ground_plane: estimate (and check) the ground (needs open3d).

    Returns:
        ``points (N, len(spec.columns))`` float32 in the model frame, and a :class:`PrepareReport`.

    Raises:
        PointCloudError: no points, or no finite point.
    """
    rep = PrepareReport(source=cloud.source)
    pts = np.asarray(cloud.points, np.float32)
    rep.num_read = len(pts)
    if len(pts) == 0:
        raise PointCloudError(f"{cloud.source}: the point cloud is empty (0 points)")
    used = [j for j, f in enumerate(cloud.fields) if f in spec.columns]
    bad = ~np.isfinite(pts[:, used]).all(1)
    if bad.any():
        per_field = {cloud.fields[j]: int((~np.isfinite(pts[:, j])).sum()) for j in used
                     if not np.isfinite(pts[:, j]).all()}
        rep.num_dropped = int(bad.sum())
        rep.warn(f"dropped {rep.num_dropped} of {len(pts)} points with NaN/inf values (per field: {per_field})")
        pts = pts[~bad]
        if len(pts) == 0:
            raise PointCloudError(f"{cloud.source}: no finite point (all {rep.num_read} have NaN/inf in "
                                  f"{sorted(per_field)})")
    xyz = pts[:, [cloud.fields.index(c) for c in ("x", "y", "z")]].astype(np.float64)
    if scale is not None:
        xyz *= float(scale)
    dist = np.hypot(xyz[:, 0], xyz[:, 1])
    if scale is None and np.median(dist) > 300.0:
        rep.warn(f"median horizontal distance {np.median(dist):.0f} m: the coordinates look like millimetres; "
                 f"pass --scale 0.001 (scale=0.001)")
    t = np.eye(4) if transform is None else np.asarray(transform, np.float64)
    xyz = xyz @ t[:3, :3].T + t[:3, 3]
    spread = np.percentile(xyz, 95, axis=0) - np.percentile(xyz, 5, axis=0)
    flat_axis = int(np.argmin(spread))
    if flat_axis != 2 and spread[2] > 2.0 * spread[flat_axis] and spread[2] > 5.0:
        up = "xyz"[flat_axis]
        # The up axis of a LiDAR scan has the smallest spread; most returns (the ground) lie below the sensor.
        sign = "" if np.median(xyz[:, flat_axis]) < 0 else "-"
        others = [a for a in "xyz" if a != up]
        hint = _axes_hint(up, sign, others)
        rep.warn(f"z does not look up: the spread (5-95%) is x {spread[0]:.1f} m, y {spread[1]:.1f} m, "
                 f"z {spread[2]:.1f} m, so {up} is likely up; pass --axes {hint} (axes='{hint}')")
    if estimate_ground_plane:
        rep.ground = estimate_ground(xyz)
        if rep.ground is None:
            rep.warn("no ground plane found (no near-horizontal plane holds 5% of the points): the height "
                     "of the cloud could not be checked")
        else:
            g = rep.ground
            off = spec.ground_z - g.height
            if (abs(off) > spec.ground_tolerance or g.tilt_deg > spec.tilt_tolerance_deg) and not align_ground:
                rep.warn(f"the ground is at z = {g.height:+.2f} m with a tilt of {g.tilt_deg:.1f} deg; the model was "
                         f"trained with the ground at z = {spec.ground_z:+.2f} m: pass --align-ground "
                         f"(align_ground=True) or --translate 0 0 {off:.2f}")
            if align_ground:
                a = ground_alignment(g, spec.ground_z)
                xyz = xyz @ a[:3, :3].T + a[:3, 3]
                t = a @ t
                rep.ground_after = estimate_ground(xyz)
    elif align_ground:
        raise ValueError("align_ground needs estimate_ground_plane=True")
    rep.transform = t
    out = np.zeros((len(pts), len(spec.columns)), np.float32)
    out[:, :3] = xyz
    for j, name in enumerate(spec.columns[3:], start=3):
        col = cloud.fields.index(name) if name in cloud.fields else None
        if col is None:
            rep.filled.append(name)
            if name == "intensity":
                rep.warn(f"no intensity field (fields: {','.join(cloud.fields)}): filled with 0, which the model "
                         f"never saw in training; if a column is the intensity, name it: --columns "
                         f"{','.join(cloud.fields[:3] + ('intensity',) + cloud.fields[3:])} (or whichever it is)")
            continue
        values = pts[:, col].astype(np.float64)
        if name == "elongation" and len(values) and float(np.max(np.abs(values))) > 10.0:
            rep.warn(f"'elongation' reaches {np.max(np.abs(values)):g} where pulse elongations stay below ~2: it "
                     f"looks like a ring / beam index or a time; name the columns, e.g. --columns "
                     f"x,y,z,intensity,ring")
        if name == "intensity":
            values = _normalise_intensity(values, spec, intensity_scale, rep)
        if name in COLOUR_COLUMNS:
            values = _normalise_colour(values, name, rep)
        out[:, j] = values
    if spec.point_cloud_range is not None:
        rep.in_range_fraction = float(in_range_mask(xyz, spec.point_cloud_range).mean())
        if rep.in_range_fraction < 0.01:
            rep.warn(f"only {100 * rep.in_range_fraction:.2f}% of the points lie inside the model's range "
                     f"{list(spec.point_cloud_range)}: check the units (--scale), the axes (--axes) and the "
                     f"sensor position (--translate)")
    return out, rep


def _normalise_colour(values: np.ndarray, name: str, rep: PrepareReport) -> np.ndarray:
    """A colour channel to [0, 1], the scale indoor models read: 8-bit (<= 255) and 16-bit (<= 65535) values are
    divided by their full scale; values already in [0, 1] stay."""
    top = float(np.max(values)) if len(values) else 0.0
    if top <= 1.0:
        return values
    full = 255.0 if top <= 255.0 else 65535.0
    rep.colour_scale = full
    return values / full


def _axes_hint(up: str, sign: str, others: List[str]) -> str:
    """An ``axes`` string that makes signed axis ``up`` the new z and keeps a right-handed frame."""
    a, b = others
    for cand in ((a, b), (b, a)):
        for sa, sb in (("", ""), ("", "-"), ("-", ""), ("-", "-")):
            s = f"{sa}{cand[0]},{sb}{cand[1]},{sign}{up}"
            try:
                axes_matrix(s)
                return s
            except PointCloudError:
                continue
    return f"{a},{b},{sign}{up}"


def _normalise_intensity(values: np.ndarray, spec: InputSpec, given: Optional[float], rep: PrepareReport):
    if given is not None and given <= 0:
        raise ValueError(f"intensity_scale must be > 0, got {given}")
    src = float(given) if given is not None else _intensity_scale(values)
    rep.intensity_scale = src
    if len(values) > 1 and float(np.ptp(values)) == 0.0:
        rep.warn(f"every intensity is {values[0]:g}: the field carries no information (is it the intensity?)")
    unit = np.clip(values / src, 0.0, 1.0) if src > 0 else values
    if spec.intensity == "unit":
        return unit
    if spec.intensity == "raw":
        return unit * spec.intensity_max
    return np.tanh(unit)
