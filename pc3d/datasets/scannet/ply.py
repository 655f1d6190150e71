"""A small PLY reader/writer (numpy only) for ScanNet's ``*_vh_clean_2.ply`` meshes.

ScanNet meshes are ``binary_little_endian`` with a ``vertex`` element (float x, y, z, uchar red,
green, blue, alpha) followed by a ``face`` element (``list uchar int vertex_indices``). The reader
handles ascii and both binary byte orders, any scalar vertex properties, and elements before or after
the vertex element (fixed-size ones are skipped by size; list-valued ones are walked row by row).
Every defect (bad header, missing property, truncated data, non-finite coordinates) raises
``ValueError`` naming the file and the element/property.
"""
from pathlib import Path

import numpy as np

# PLY scalar type names (both spellings) -> numpy type code.
PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
             "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
             "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


class _Element:
    def __init__(self, name, count):
        self.name, self.count = name, count
        self.props = []  # (name, type code) or (name, (count type code, item type code)) for lists

    @property
    def is_list(self):
        return any(isinstance(t, tuple) for _, t in self.props)


def _parse_header(f, path):
    first = f.readline()
    if first.strip() != b"ply":
        raise ValueError(f"{path}: not a PLY file (first line {first[:20]!r}, expected b'ply')")
    fmt, elements = None, []
    while True:
        line = f.readline()
        if not line:
            raise ValueError(f"{path}: PLY header has no 'end_header' line (file truncated?)")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            if len(words) < 2 or words[1] not in FORMATS:
                raise ValueError(f"{path}: unsupported PLY format line {line.strip()!r}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise ValueError(f"{path}: malformed PLY element line {line.strip()!r}")
            elements.append(_Element(words[1], int(words[2])))
        elif words[0] == "property":
            if not elements:
                raise ValueError(f"{path}: PLY property before any element: {line.strip()!r}")
            if len(words) == 5 and words[1] == "list":
                if words[2] not in PLY_TYPES or words[3] not in PLY_TYPES:
                    raise ValueError(f"{path}: unknown PLY list type in {line.strip()!r}")
                elements[-1].props.append((words[4], (PLY_TYPES[words[2]], PLY_TYPES[words[3]])))
            elif len(words) == 3 and words[1] in PLY_TYPES:
                elements[-1].props.append((words[2], PLY_TYPES[words[1]]))
            else:
                raise ValueError(f"{path}: malformed or unknown PLY property {line.strip()!r}")
        else:
            raise ValueError(f"{path}: unexpected PLY header line {line.strip()!r}")
    if fmt is None:
        raise ValueError(f"{path}: PLY header has no 'format' line")
    return fmt, elements


def _skip_binary(f, el, order, path):
    """Moves past a binary element: fixed-size rows by seeking, list rows one by one."""
    if not el.is_list:
        size = el.count * np.dtype([(n, order + t) for n, t in el.props]).itemsize
        if len(f.read(size)) != size:
            raise ValueError(f"{path}: PLY element {el.name!r} is truncated")
        return
    for _ in range(el.count):
        for name, t in el.props:
            if isinstance(t, tuple):
                cnt_t, item_t = np.dtype(order + t[0]), np.dtype(order + t[1])
                raw = f.read(cnt_t.itemsize)
                if len(raw) != cnt_t.itemsize:
                    raise ValueError(f"{path}: PLY element {el.name!r} property {name!r} is truncated")
                n = int(np.frombuffer(raw, cnt_t)[0])
                if len(f.read(n * item_t.itemsize)) != n * item_t.itemsize:
                    raise ValueError(f"{path}: PLY element {el.name!r} property {name!r} is truncated")
            elif len(f.read(np.dtype(t).itemsize)) != np.dtype(t).itemsize:
                raise ValueError(f"{path}: PLY element {el.name!r} property {name!r} is truncated")


def read_ply_vertices(path, required=("x", "y", "z")):
    """Reads the ``vertex`` element of a PLY file.

    Args:
        path: the .ply file. required: vertex properties that must be present.
    Returns:
        dict property name -> (V,) array of the property's PLY type (e.g. x float32, red uint8).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PLY file not found")
    with open(path, "rb") as f:
        fmt, elements = _parse_header(f, path)
        names = [e.name for e in elements]
        if "vertex" not in names:
            raise ValueError(f"{path}: PLY file has no 'vertex' element (elements: {names})")
        vertex = elements[names.index("vertex")]
        if vertex.is_list:
            raise ValueError(f"{path}: PLY 'vertex' element has list properties, expected scalars only")
        missing = [p for p in required if p not in [n for n, _ in vertex.props]]
        if missing:
            raise ValueError(f"{path}: PLY 'vertex' element lacks properties {missing} "
                             f"(has {[n for n, _ in vertex.props]})")
        if fmt == "ascii":
            data = _read_ascii_vertices(f, elements, vertex, path)
        else:
            order = FORMATS[fmt]
            for el in elements[:names.index("vertex")]:
                _skip_binary(f, el, order, path)
            dtype = np.dtype([(n, order + t) for n, t in vertex.props])
            raw = f.read(dtype.itemsize * vertex.count)
            if len(raw) != dtype.itemsize * vertex.count:
                raise ValueError(f"{path}: PLY 'vertex' element is truncated: {len(raw) // dtype.itemsize} of "
                                 f"{vertex.count} vertices present")
            arr = np.frombuffer(raw, dtype)
            data = {n: arr[n].astype(np.dtype(t)) for n, t in vertex.props}  # native byte order
    for p in ("x", "y", "z"):
        if p in data and not np.isfinite(data[p]).all():
            raise ValueError(f"{path}: PLY vertex property {p!r} has non-finite values")
    return data


def _read_ascii_vertices(f, elements, vertex, path):
    for el in elements:
        if el is vertex:
            break
        for i in range(el.count):  # ascii rows of earlier elements: one line each
            if not f.readline():
                raise ValueError(f"{path}: PLY element {el.name!r} is truncated at row {i}")
    rows = []
    for i in range(vertex.count):
        line = f.readline()
        words = line.split()
        if len(words) != len(vertex.props):
            # a last line without its newline is a cut file, not a malformed row
            what = f"is truncated at row {i}" if not line.endswith(b"\n") else f"row {i} has {len(words)} values"
            raise ValueError(f"{path}: PLY 'vertex' element {what} (expected {vertex.count} rows of "
                             f"{len(vertex.props)} values)")
        rows.append(words)
    table = np.array(rows, dtype=np.float64).reshape(vertex.count, len(vertex.props))
    return {n: table[:, j].astype(np.dtype(t)) for j, (n, t) in enumerate(vertex.props)}


def write_ply(path, xyz, rgb, faces=None, binary=True):
    """Writes a ScanNet-style PLY mesh.

    Args:
        xyz: (V, 3) float -> stored as float32 x, y, z. rgb: (V, 3) uint8 red, green, blue (alpha 255).
        faces: (F, 3) int vertex indices or None. binary: little-endian binary (ScanNet) or ascii.
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    rgb = np.asarray(rgb, dtype=np.uint8)
    faces = np.zeros((0, 3), np.int32) if faces is None else np.asarray(faces, dtype=np.int32)
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment pc3d simulated room",
              f"element vertex {len(xyz)}", "property float x", "property float y", "property float z",
              "property uchar red", "property uchar green", "property uchar blue", "property uchar alpha",
              f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            v = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                          ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
            v["x"], v["y"], v["z"] = xyz.T
            v["red"], v["green"], v["blue"] = rgb.T
            v["alpha"] = 255
            f.write(v.tobytes())
            fc = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
            fc["n"], fc["i"] = 3, faces
            f.write(fc.tobytes())
        else:
            # repr-exact float32 text so the ascii and binary files hold the same numbers
            lines = [f"{x!r} {y!r} {z!r} {r} {g} {b} 255" for (x, y, z), (r, g, b) in
                     zip(xyz.astype(np.float32).tolist(), rgb.tolist())]
            lines += [f"3 {a} {b} {c}" for a, b, c in faces.tolist()]
            f.write(("\n".join(lines) + ("\n" if lines else "")).encode("ascii"))
