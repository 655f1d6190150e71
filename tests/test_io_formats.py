"""pc3d.io readers and writers: every format round-trips, the real Ouster scans survive PCD/PLY/LAS/bags,
and bad files give a PointCloudError naming the file and the field (fuzzed with hypothesis)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT

FIELDS = ("x", "y", "z", "intensity", "ring")
FILE_CASES = [(".bin", None), (".npy", None), (".npz", None), (".pcd", "ascii"), (".pcd", "binary"),
              (".pcd", "binary_compressed"), (".ply", "ascii"), (".ply", "binary"), (".las", None), (".laz", None)]
NEEDS = {".pcd": "pypcd4", ".ply": "plyfile", ".las": "laspy", ".laz": "lazrs"}


def _cloud(n=300, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(-50, 50, (n, 2)), rng.uniform(-2, 3, n), rng.uniform(0, 1, n),
                           rng.integers(0, 128, n)]).astype(np.float32)
    return pts


@pytest.mark.parametrize("ext,encoding", FILE_CASES)
def test_round_trip(tmp_path, ext, encoding):
    if ext in NEEDS:
        pytest.importorskip(NEEDS[ext])
    from pc3d.io import read_points, write_points

    pts = _cloud()
    if ext in (".las", ".laz"):
        pts[:, 3] = np.round(pts[:, 3] * 65535)  # LAS intensities are 16-bit integers
    path = write_points(tmp_path / f"c{ext}", pts, FIELDS, encoding=encoding or "binary")
    cloud = read_points(path, columns=",".join(FIELDS))
    assert cloud.points.dtype == np.float32 and cloud.source == str(path)
    for j, f in enumerate(FIELDS):
        # LAS stores millimetre integers, ASCII PCD prints 1 ulp short now and then; the rest is exact.
        tol = 6e-4 if ext in (".las", ".laz") and j < 3 else (1e-6 if encoding == "ascii" else 0.0)
        np.testing.assert_allclose(cloud.column(f), pts[:, j], atol=tol, rtol=0, err_msg=f"{ext} {f}")
    if ext == ".pcd":
        assert cloud.meta["encoding"] == encoding


def test_real_scans_through_pcd_ply_and_laz(real_scans, tmp_path):
    pytest.importorskip("pypcd4")
    pytest.importorskip("plyfile")
    pytest.importorskip("lazrs")
    from pc3d.io import read_points, write_points

    name, pts = sorted(real_scans.items())[0]
    pts = pts.numpy()
    for ext, enc in ((".pcd", "binary_compressed"), (".ply", "binary"), (".npz", None)):
        path = write_points(tmp_path / f"{name}{ext}", pts, FIELDS, encoding=enc or "binary")
        cloud = read_points(path, columns=",".join(FIELDS))  # names the plain .npz array's columns only
        assert cloud.fields == FIELDS
        np.testing.assert_array_equal(cloud.points, pts)
    las = pts.copy()
    las[:, 3] = np.round(las[:, 3] * 255)
    cloud = read_points(write_points(tmp_path / f"{name}.laz", las, FIELDS))
    np.testing.assert_allclose(cloud.column("z"), pts[:, 2], atol=6e-4)
    np.testing.assert_array_equal(cloud.column("ring"), pts[:, 4])


@pytest.mark.parametrize("kind", ["ros1", "ros2"])
def test_bag_round_trip_one_frame_per_message(tmp_path, kind):
    pytest.importorskip("rosbags")
    from pc3d.io import read_frames, write_bag

    frames = [_cloud(100, 1), _cloud(250, 2), _cloud(7, 3)]
    path = write_bag(tmp_path / ("scan.bag" if kind == "ros1" else "scan_bag"), frames, FIELDS)
    got = list(read_frames(path))
    assert len(got) == 3
    for k, (g, f) in enumerate(zip(got, frames)):
        assert g.fields == FIELDS and g.source.endswith(f"#/points[{k}]")
        np.testing.assert_array_equal(g.points, f)
        assert g.timestamp == (k + 1) * 100_000_000


def test_structured_npy_and_aliases(tmp_path):
    from pc3d.io import read_points

    arr = np.zeros(5, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f8"), ("reflectivity", "<u2"), ("label", "U3")])
    arr["x"] = np.arange(5)
    arr["reflectivity"] = 200
    np.save(tmp_path / "s.npy", arr)
    cloud = read_points(tmp_path / "s.npy")
    assert cloud.fields == ("x", "y", "z", "intensity")  # string fields are not point features
    np.testing.assert_array_equal(cloud.column("intensity"), 200)


def test_unknown_extension_and_missing_file(tmp_path):
    from pc3d.io import PointCloudError, read_points

    (tmp_path / "a.xyz").write_text("1 2 3\n")
    with pytest.raises(PointCloudError, match=r"a\.xyz: unknown point-cloud extension '\.xyz'"):
        read_points(tmp_path / "a.xyz")
    with pytest.raises(PointCloudError, match="nope.bin: no such file"):
        read_points(tmp_path / "nope.bin")


def test_bin_with_the_wrong_row_size_names_the_counts_that_fit(tmp_path):
    from pc3d.io import PointCloudError, read_points

    _cloud(12).tofile(tmp_path / "five.bin")  # 60 floats: 5 columns (also 3, 4, 6)
    _cloud(7).tofile(tmp_path / "seven.bin")  # 35 floats: only 5 or 7 fit
    with pytest.raises(PointCloudError, match=r"seven.bin: 140 bytes is not a whole number of 4-float32 rows "
                                              r"\(x,y,z,intensity\); column counts that fit: \[5, 7\]"):
        read_points(tmp_path / "seven.bin")
    (tmp_path / "odd.bin").write_bytes(b"\0" * 10)
    with pytest.raises(PointCloudError, match="odd.bin: .*truncated or not float32 rows"):
        read_points(tmp_path / "odd.bin")
    with pytest.raises(PointCloudError, match="must name x, y and z"):
        read_points(tmp_path / "five.bin", columns="a,b,c,d,e")
    with pytest.raises(PointCloudError, match=r"names \['x'\] twice"):
        read_points(tmp_path / "five.bin", columns="x,x,y,z,i")


def test_bad_headers_and_bags(tmp_path):
    pytest.importorskip("pypcd4")
    pytest.importorskip("rosbags")
    from pc3d.io import PointCloudError, read_frames, read_points, write_bag, write_points

    (tmp_path / "bad.pcd").write_bytes(b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4\nDATA binary\n")
    with pytest.raises(PointCloudError, match="bad.pcd: not a readable PCD file"):
        read_points(tmp_path / "bad.pcd")
    good = write_points(tmp_path / "t.pcd", _cloud(50), FIELDS, encoding="binary").read_bytes()
    (tmp_path / "trunc.pcd").write_bytes(good[:-100])
    with pytest.raises(PointCloudError, match="trunc.pcd"):
        read_points(tmp_path / "trunc.pcd")
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat garbage\n")
    with pytest.raises(PointCloudError, match="bad.ply: not a readable PLY file"):
        read_points(tmp_path / "bad.ply")
    np.save(tmp_path / "flat.npy", np.zeros(10, np.float32))
    with pytest.raises(PointCloudError, match=r"flat.npy: the array must be an \(N, C\) numeric array"):
        read_points(tmp_path / "flat.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 4)), b=np.zeros((3, 4)))
    with pytest.raises(PointCloudError, match=r"two.npz: no array 'points' \(arrays: \['a', 'b'\]\)"):
        read_points(tmp_path / "two.npz")
    bag = write_bag(tmp_path / "talk.bag", [], FIELDS, extra_topics=["/chatter"])
    with pytest.raises(PointCloudError, match=r"talk.bag: no sensor_msgs/PointCloud2 topic .*/chatter"):
        list(read_frames(bag))
    (tmp_path / "junk.bag").write_bytes(b"#ROSBAG V2.0\n" + b"\x01" * 64)
    with pytest.raises(PointCloudError, match="junk.bag: not a readable ROS bag"):
        list(read_frames(tmp_path / "junk.bag"))


def test_truncated_pointcloud2_message_is_named():
    pytest.importorskip("rosbags")
    from types import SimpleNamespace

    from pc3d.io import PointCloudError
    from pc3d.io.rosbag import pointcloud2_to_cloud

    fields = [SimpleNamespace(name=n, offset=4 * j, datatype=7, count=1) for j, n in enumerate("xyz")]
    msg = SimpleNamespace(point_step=12, width=10, height=1, row_step=120, is_bigendian=False, fields=fields,
                          data=np.zeros(100, np.uint8), header=None)
    with pytest.raises(PointCloudError, match=r"bag#/p\[3\]: PointCloud2 has 100 data bytes.*need 120"):
        pointcloud2_to_cloud(msg, "bag#/p[3]")


def test_import_is_light():
    code = "import sys, pc3d.io; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not [m for m in ("open3d", "pypcd4", "plyfile", "laspy", "rosbags", "plotly", "torch") if m in loaded]


# ------------------------------------------------------------------------------------------------ fuzzing
def _valid_bytes(ext, tmp_path):
    from pc3d.io import write_points

    enc = {".pcd": "binary_compressed", ".ply": "binary"}.get(ext, "binary")
    return write_points(tmp_path / f"seed{ext}", _cloud(20), FIELDS, encoding=enc).read_bytes()


@pytest.mark.parametrize("ext", [".bin", ".npy", ".npz", ".pcd", ".ply", ".las", ".laz", ".bag"])
def test_fuzz_readers_raise_only_point_cloud_errors(tmp_path, ext):
    """Random bytes and randomly corrupted valid files: a reader returns a consistent cloud or raises
    PointCloudError naming the file; nothing else escapes."""
    for mod in {".pcd": ["pypcd4"], ".ply": ["plyfile"], ".las": ["laspy"], ".laz": ["laspy", "lazrs"],
                ".bag": ["rosbags"]}.get(ext, []):
        pytest.importorskip(mod)
    from pc3d.io import PointCloudError, read_frames, write_bag

    if ext == ".bag":
        seed = write_bag(tmp_path / "seed.bag", [_cloud(20)], FIELDS).read_bytes()
    else:
        seed = _valid_bytes(ext, tmp_path)
    target = tmp_path / f"fuzz{ext}"

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.one_of(
        st.binary(max_size=600),
        st.tuples(st.integers(0, len(seed) - 1), st.binary(min_size=1, max_size=16)).map(
            lambda t: seed[:t[0]] + t[1] + seed[t[0] + len(t[1]):]),
        st.integers(0, len(seed) - 1).map(lambda n: seed[:n])))
    def check(data):
        target.write_bytes(data)
        try:
            clouds = list(read_frames(target, columns="x,y,z,intensity,ring" if ext in (".bin", ".npy") else None))
        except PointCloudError as e:
            assert str(target) in str(e)
            return
        for c in clouds:
            assert c.points.dtype == np.float32 and c.points.ndim == 2
            assert c.points.shape[1] == len(c.fields) and {"x", "y", "z"} <= set(c.fields)

    check()
