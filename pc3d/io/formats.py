"""Point-cloud files in and out: one :class:`RawCloud` (named float32 columns) per frame.

Formats and the library each uses (the optional ones are imported only when such a file is read):

=====================  ======================================  ==============================
extension              reader                                  extra (pip package)
=====================  ======================================  ==============================
``.bin``               numpy: float32 rows, ``columns`` given   (none)
``.npy`` / ``.npz``    numpy (plain (N, C) or structured)      (none)
``.pcd``               pypcd4 (ascii, binary, binary_compr.)   ``pypcd4``
``.ply``               plyfile (ascii and binary)              ``plyfile``
``.las`` / ``.laz``    laspy (+ lazrs for .laz)                ``laspy``, ``lazrs``
``.bag`` / ROS 2 bag   rosbags (no ROS install needed)         ``rosbags`` (see ``rosbag.py``)
=====================  ======================================  ==============================

Every reader returns float32 columns with their names as the file has them (``x, y, z`` first, then
``intensity`` and any other per-point field); :func:`pc3d.io.prepare.prepare_points` maps them to the
model's input columns. Unreadable input raises :class:`PointCloudError` naming the file and what is wrong.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

# The column names of a .bin file when none are given: KITTI's layout (x, y, z, reflectance).
DEFAULT_BIN_COLUMNS = ("x", "y", "z", "intensity")
# Alternative spellings of the fields a model reads (a file's field name -> pc3d's name).
FIELD_ALIASES = {"reflectance": "intensity", "reflectivity": "intensity", "i": "intensity",
                 "intensities": "intensity", "remission": "intensity", "ring": "ring", "t": "time",
                 "timestamp": "time", "time_lag": "time", "elongations": "elongation",
                 "red": "r", "green": "g", "blue": "b"}
POINT_EXTENSIONS = (".bin", ".npy", ".npz", ".pcd", ".ply", ".las", ".laz")
BAG_EXTENSIONS = (".bag", ".db3", ".mcap")


class PointCloudError(ValueError):
    """A point-cloud file that cannot be read or used as it is; the message names the file and the fix."""


@dataclass
class RawCloud:
    """One frame as read from a file.

    Attributes:
        points: (N, F) float32, one column per entry of ``fields``.
        fields: F column names (``x, y, z`` among them; lower case, common aliases mapped, e.g.
            ``reflectance`` -> ``intensity``).
        source: the file (``path`` or ``path#topic[index]`` for a bag message), for messages.
        timestamp: nanoseconds when the file format has one (bags), else None.
        meta: anything else the reader learnt (e.g. the PCD encoding, LAS scales).
    """

    points: np.ndarray
    fields: Tuple[str, ...]
    source: str
    timestamp: Optional[int] = None
    meta: Dict[str, object] = field(default_factory=dict)

    def column(self, name: str) -> Optional[np.ndarray]:
        """(N,) float32 column ``name`` or None when the file has no such field."""
        return self.points[:, self.fields.index(name)] if name in self.fields else None


def parse_columns(columns) -> Optional[Tuple[str, ...]]:
    """``"x,y,z,intensity,ring"`` or a sequence of names -> tuple of lower-case names (None stays None).
    ``_`` or ``skip`` names a column to ignore."""
    if columns is None:
        return None
    names = [c.strip().lower() for c in (columns.split(",") if isinstance(columns, str) else columns)]
    if not names or any(not n for n in names):
        raise PointCloudError(f"column map {columns!r} has an empty name: give e.g. 'x,y,z,intensity'")
    dup = sorted({n for n in names if names.count(n) > 1 and n not in ("_", "skip")})
    if dup:
        raise PointCloudError(f"column map {columns!r} names {dup} twice")
    if not {"x", "y", "z"} <= set(names):
        raise PointCloudError(f"column map {columns!r} must name x, y and z")
    return tuple(names)


def _canonical(name: str) -> str:
    n = str(name).strip().lower()
    return FIELD_ALIASES.get(n, n)


def _from_columns(path, arrays: Sequence[Tuple[str, np.ndarray]], meta=None) -> RawCloud:
    """Named 1-D arrays (one per field; multi-count fields are split ``name_0, name_1, ...``) -> RawCloud."""
    names, cols = [], []
    for name, a in arrays:
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            continue  # strings / objects are not point features
        a = a.reshape(len(a), int(np.prod(a.shape[1:], dtype=np.int64)))
        for j in range(a.shape[1]):
            names.append(_canonical(name) if a.shape[1] == 1 else f"{_canonical(name)}_{j}")
            cols.append(a[:, j].astype(np.float32))
    seen = set()
    for n in names:
        if n in seen:
            raise PointCloudError(f"{path}: field {n!r} appears twice (after mapping aliases)")
        seen.add(n)
    missing = [c for c in ("x", "y", "z") if c not in names]
    if missing:
        raise PointCloudError(f"{path}: no field {', '.join(missing)} (fields: {names}); a point file needs x, y, z")
    n = len(cols[0]) if cols else 0
    pts = np.stack(cols, 1) if cols else np.zeros((0, 3), np.float32)
    return RawCloud(pts.reshape(n, len(names)), tuple(names), str(path), meta=dict(meta or {}))


def _structured_to_cloud(path, arr: np.ndarray, meta=None) -> RawCloud:
    return _from_columns(path, [(n, arr[n]) for n in arr.dtype.names], meta)


def _plain_to_cloud(path, arr: np.ndarray, columns, what: str) -> RawCloud:
    if arr.dtype.names is not None:
        return _structured_to_cloud(path, arr.reshape(-1))
    if arr.dtype.kind not in "biuf" or arr.ndim != 2:
        raise PointCloudError(f"{path}: {what} must be an (N, C) numeric array or a structured array with "
                              f"fields x, y, z, got dtype {arr.dtype} shape {arr.shape}")
    names = columns or DEFAULT_BIN_COLUMNS[:arr.shape[1]] + tuple(f"extra_{j}" for j in range(4, arr.shape[1]))
    if len(names) != arr.shape[1]:
        raise PointCloudError(f"{path}: {what} has {arr.shape[1]} columns but the column map names "
                              f"{len(names)} ({','.join(names)}): pass --columns with {arr.shape[1]} names")
    if arr.shape[1] < 3:
        raise PointCloudError(f"{path}: {what} has {arr.shape[1]} columns; x, y, z need at least 3")
    return _from_columns(path, [(n, arr[:, j]) for j, n in enumerate(names) if n not in ("_", "skip")])


def read_bin(path, columns=None) -> RawCloud:
    """Raw little-endian float32 rows (KITTI / OpenPCDet ``.bin``). ``columns`` names each row's values
    (default ``x, y, z, intensity``); a file size that is not a whole number of rows is an error that
    names the column counts that would fit."""
    names = parse_columns(columns) or DEFAULT_BIN_COLUMNS
    width = len(names)
    size = Path(path).stat().st_size
    if size % 4:
        raise PointCloudError(f"{path}: {size} bytes is not a whole number of float32 values: the file is "
                              f"truncated or not float32 rows")
    data = np.fromfile(path, dtype="<f4")
    if data.size % width:
        fits = [c for c in range(3, 9) if data.size % c == 0]
        raise PointCloudError(
            f"{path}: {size} bytes is not a whole number of {width}-float32 rows ({','.join(names)}); "
            + (f"column counts that fit: {fits}: pass --columns with one of them (e.g. x,y,z,intensity,ring)"
               if fits else "the file is truncated or not float32 rows"))
    return _plain_to_cloud(path, data.reshape(-1, width), names, "the .bin rows")


def read_npy(path, columns=None) -> RawCloud:
    """``.npy``: an (N, C) array (``columns`` names its columns; default x, y, z, intensity, ...) or a
    structured array with named fields."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy's header parser also raises SyntaxError / TokenError on garbage
        raise PointCloudError(f"{path}: not a readable .npy file ({type(e).__name__}: {str(e)[:300]})") from e
    return _plain_to_cloud(path, arr, parse_columns(columns), "the array")


def read_npz(path, columns=None, key: Optional[str] = None) -> RawCloud:
    """``.npz``: the array ``key`` (default ``points``, or the only array in the file), as :func:`read_npy`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            name = key or ("points" if "points" in files else (files[0] if len(files) == 1 else None))
            if name is None or name not in files:
                raise PointCloudError(f"{path}: no array {key or 'points'!r} (arrays: {files}); "
                                      f"name the points array 'points'")
            arr = z[name]
    except PointCloudError:
        raise
    except Exception as e:  # zipfile / numpy header errors of all kinds on a damaged file
        raise PointCloudError(f"{path}: not a readable .npz file ({type(e).__name__}: {str(e)[:300]})") from e
    return _plain_to_cloud(path, arr, parse_columns(columns), f"array {name!r}")


def read_pcd(path, columns=None) -> RawCloud:
    """PCL ``.pcd`` (ascii, binary and binary_compressed) through pypcd4; fields keep their names
    (``intensity``, ``ring``, ``t``, ...). ``columns`` is ignored (the file names its fields)."""
    try:
        from pypcd4 import PointCloud
    except ImportError as e:
        raise ImportError("reading .pcd files needs pypcd4: pip install pypcd4") from e
    try:
        pc = PointCloud.from_path(path)
        arr = pc.pc_data
        encoding = str(getattr(pc.metadata.data, "value", pc.metadata.data))
    except Exception as e:  # pypcd4 raises ValueError, pydantic errors, lzf errors, ...: all mean a bad file
        raise PointCloudError(f"{path}: not a readable PCD file ({type(e).__name__}: {str(e)[:300]})") from e
    if arr.dtype.names is None:
        raise PointCloudError(f"{path}: PCD data without named fields")
    if len(arr) != pc.metadata.points:
        raise PointCloudError(f"{path}: PCD header says {pc.metadata.points} points, the data has {len(arr)}")
    return _structured_to_cloud(path, arr, meta={"encoding": encoding})


def read_ply(path, columns=None) -> RawCloud:
    """``.ply`` (ascii or binary) through plyfile: the ``vertex`` element's properties."""
    try:
        from plyfile import PlyData
    except ImportError as e:
        raise ImportError("reading .ply files needs plyfile: pip install plyfile") from e
    try:
        ply = PlyData.read(str(path))
        names = [e.name for e in ply.elements]
        if "vertex" not in names:
            raise PointCloudError(f"{path}: PLY file without a 'vertex' element (elements: {names})")
        arr = np.asarray(ply["vertex"].data)
    except PointCloudError:
        raise
    except Exception as e:  # plyfile raises PlyHeaderParseError, ValueError, struct/EOF errors on bad files
        raise PointCloudError(f"{path}: not a readable PLY file ({type(e).__name__}: {str(e)[:300]})") from e
    return _structured_to_cloud(path, arr, meta={"format": "ascii" if ply.text else "binary"})


def read_las(path, columns=None) -> RawCloud:
    """``.las`` / ``.laz`` through laspy (``.laz`` needs the lazrs backend): x, y, z in the file's units
    (scaled), ``intensity`` as stored (0-65535), then the other standard and extra dimensions."""
    try:
        import laspy
    except ImportError as e:
        raise ImportError("reading .las/.laz files needs laspy (and lazrs for .laz): pip install laspy lazrs") from e
    _check_las_header(path)
    try:
        las = laspy.read(str(path))
        arrays = [("x", np.asarray(las.x)), ("y", np.asarray(las.y)), ("z", np.asarray(las.z))]
        for dim in las.point_format.dimension_names:
            if dim.lower() in ("x", "y", "z"):
                continue
            arrays.append((dim, np.asarray(las[dim])))
    except Exception as e:  # laspy raises LaspyException, ValueError, lazrs errors on bad files
        raise PointCloudError(f"{path}: not a readable LAS/LAZ file ({type(e).__name__}: {str(e)[:300]})") from e
    return _from_columns(path, arrays, meta={"las_version": str(las.header.version)})


def _check_las_header(path):
    """Refuses a LAS/LAZ header whose counts cannot fit the file (laspy would loop over billions of
    variable-length records of a corrupt header before failing)."""
    head = Path(path).read_bytes()[:227]
    if len(head) < 104 or head[:4] != b"LASF":
        raise PointCloudError(f"{path}: not a LAS/LAZ file (no 'LASF' signature or a header shorter than 104 bytes)")
    header_size, offset, n_vlrs = (int(v) for v in (np.frombuffer(head, "<u2", 1, 94)[0],
                                                    np.frombuffer(head, "<u4", 1, 96)[0],
                                                    np.frombuffer(head, "<u4", 1, 100)[0]))
    size = Path(path).stat().st_size
    if header_size < 104 or offset < header_size or offset > size or n_vlrs * 54 > offset - header_size:
        raise PointCloudError(f"{path}: corrupt LAS header (header size {header_size}, point data offset {offset}, "
                              f"{n_vlrs} variable-length records, file size {size})")


READERS = {".bin": read_bin, ".npy": read_npy, ".npz": read_npz, ".pcd": read_pcd, ".ply": read_ply,
           ".las": read_las, ".laz": read_las}


def is_bag(path) -> bool:
    """A ROS 1 ``.bag`` file, or a ROS 2 bag (a folder with ``metadata.yaml``, or its .db3/.mcap file)."""
    p = Path(path)
    return p.suffix.lower() in BAG_EXTENSIONS or (p.is_dir() and (p / "metadata.yaml").is_file())


def read_points(path, columns=None) -> RawCloud:
    """Reads one point-cloud file (any extension of :data:`READERS`).

    Args:
        path: the file.
        columns: column map, e.g. ``"x,y,z,intensity,ring"``: the meaning of each float of a ``.bin`` row or
            of each column of a plain ``.npy`` / ``.npz`` array. Self-describing formats (structured
            arrays, PCD, PLY, LAS, bags) keep their own field names (common aliases such as
            ``reflectivity`` -> ``intensity`` mapped) and ignore it.

    Raises:
        PointCloudError: unknown extension, missing or unreadable file, wrong column count.
    """
    p = Path(path)
    if is_bag(p):
        raise PointCloudError(f"{p}: a bag holds many frames: read it with pc3d.io.read_frames")
    reader = READERS.get(p.suffix.lower())
    if reader is None:
        raise PointCloudError(f"{p}: unknown point-cloud extension {p.suffix!r}; known: "
                              f"{', '.join(POINT_EXTENSIONS + BAG_EXTENSIONS)}")
    if not p.is_file():
        raise PointCloudError(f"{p}: no such file")
    return reader(p, columns)


def read_frames(path, columns=None, topic: Optional[str] = None) -> Iterator[RawCloud]:
    """Frames of ``path``: one for a point file, one per ``sensor_msgs/PointCloud2`` message for a bag
    (``topic`` picks one topic when the bag has several)."""
    if is_bag(path):
        from .rosbag import read_bag

        yield from read_bag(path, topic=topic, columns=columns)
    else:
        yield read_points(path, columns)


def expand_inputs(inputs: Sequence) -> list:
    """Files and folders -> the point files (sorted, per folder) and bags to read; a folder that is a ROS 2
    bag stays one input. Raises PointCloudError for a path that does not exist or a folder without any."""
    out = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise PointCloudError(f"{p}: no such file or folder")
        if p.is_dir() and not is_bag(p):
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in POINT_EXTENSIONS + (".bag",) or is_bag(f))
            if not found:
                raise PointCloudError(f"{p}: folder without point-cloud files ({', '.join(POINT_EXTENSIONS)}) or bags")
            out += found
        else:
            out.append(p)
    return out


# --------------------------------------------------------------------------------------------- writers
def write_points(path, points, fields: Sequence[str] = ("x", "y", "z", "intensity"), encoding: str = "binary"):
    """Writes (N, F) float32 ``points`` with column names ``fields`` to ``path``, format by extension
    (``.bin`` raw rows, ``.npy``, ``.npz`` as ``points``, ``.pcd`` with ``encoding`` ascii / binary /
    binary_compressed, ``.ply`` ascii or binary, ``.las`` / ``.laz`` with millimetre scales and the
    ``intensity`` field as the LAS intensity (rounded to an integer) and the others as extra dimensions).
    Returns the path."""
    p = Path(path)
    pts = np.asarray(points, np.float32)
    fields = tuple(fields)
    if pts.ndim != 2 or pts.shape[1] != len(fields):
        raise ValueError(f"points must be (N, {len(fields)}) for fields {fields}, got {pts.shape}")
    p.parent.mkdir(parents=True, exist_ok=True)
    ext = p.suffix.lower()
    if ext == ".bin":
        pts.astype("<f4").tofile(p)
    elif ext == ".npy":
        np.save(p, pts)
    elif ext == ".npz":
        np.savez(p, points=pts)
    elif ext == ".pcd":
        from pypcd4 import Encoding, PointCloud

        pc = PointCloud.from_points(pts, fields, [np.float32] * len(fields))
        pc.save(p, encoding=Encoding(encoding))
    elif ext == ".ply":
        from plyfile import PlyData, PlyElement

        arr = np.empty(len(pts), dtype=[(f, "<f4") for f in fields])
        for j, f in enumerate(fields):
            arr[f] = pts[:, j]
        PlyData([PlyElement.describe(arr, "vertex")], text=(encoding == "ascii")).write(str(p))
    elif ext in (".las", ".laz"):
        import laspy

        header = laspy.LasHeader(point_format=3, version="1.2")
        header.scales = np.array([0.001, 0.001, 0.001])
        header.offsets = np.floor(pts[:, :3].min(0)) if len(pts) else np.zeros(3)
        extra = [f for f in fields if f not in ("x", "y", "z", "intensity")]
        for f in extra:
            header.add_extra_dim(laspy.ExtraBytesParams(name=f, type=np.float32))
        las = laspy.LasData(header)
        las.x, las.y, las.z = (pts[:, fields.index(c)].astype(np.float64) for c in ("x", "y", "z"))
        if "intensity" in fields:
            las.intensity = np.clip(np.round(pts[:, fields.index("intensity")]), 0, 65535).astype(np.uint16)
        for f in extra:
            las[f] = pts[:, fields.index(f)]
        las.write(str(p))
    else:
        raise PointCloudError(f"{p}: cannot write extension {p.suffix!r} (known: {', '.join(POINT_EXTENSIONS)})")
    return p
