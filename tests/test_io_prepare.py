"""pc3d.io.prepare: column map, intensity scale, units, axes, ground plane and range checks explain
themselves; --align-ground moves the real Ouster scans' ground (z = -1.9 m) to the simulator's (z = 0)."""
import numpy as np
import pytest

from pc3d.io import InputSpec, PointCloudError, RawCloud, make_transform, prepare_points

RANGE = [-40.96, -40.96, -2.0, 40.96, 40.96, 4.0]


def _scene(seed=0, n_ground=20000, n_walls=4000, ground_z=0.0, tilt_deg=0.0):
    """A synthetic street: a ground plane at ``ground_z`` (tilted about x by ``tilt_deg``) and two walls."""
    rng = np.random.default_rng(seed)
    g = np.column_stack([rng.uniform(-30, 30, (n_ground, 2)), rng.normal(0, 0.02, n_ground)])
    t = np.radians(tilt_deg)
    g[:, 2] += g[:, 1] * np.tan(t)
    walls = np.column_stack([rng.uniform(-30, 30, n_walls), np.where(rng.random(n_walls) < 0.5, -12, 12),
                             rng.uniform(0, 6, n_walls)])
    xyz = np.concatenate([g, walls]) + [0, 0, ground_z]
    inten = rng.uniform(0, 1, len(xyz))
    return np.column_stack([xyz, inten]).astype(np.float32)


def _cloud(pts, fields=("x", "y", "z", "intensity")):
    return RawCloud(np.asarray(pts, np.float32), tuple(fields), "scene.bin")


def test_clean_scene_passes_silently():
    pts = _scene()
    out, rep = prepare_points(_cloud(pts), InputSpec(point_cloud_range=RANGE))
    assert rep.warnings == []
    assert out.shape == (len(pts), 5)
    np.testing.assert_allclose(out[:, :4], pts, atol=1e-6)
    assert (out[:, 4] == 0).all() and rep.filled == ["elongation"]
    assert abs(rep.ground.height) < 0.05 and rep.ground.tilt_deg < 0.5


def test_ground_offset_and_tilt_are_reported_and_aligned():
    pts = _scene(ground_z=-1.9, tilt_deg=5.0)
    spec = InputSpec(point_cloud_range=RANGE)
    _, rep = prepare_points(_cloud(pts), spec)
    (msg,) = rep.warnings
    assert "scene.bin: the ground is at z = -1.90 m with a tilt of 5.0 deg" in msg
    assert "trained with the ground at z = +0.00 m" in msg and "--align-ground" in msg and "--translate 0 0 1.90" in msg
    out, rep = prepare_points(_cloud(pts), spec, align_ground=True)
    assert rep.warnings == []
    assert abs(rep.ground_after.height) < 0.03 and rep.ground_after.tilt_deg < 0.3
    # A rigid transform: distances between points are unchanged.
    i, j = np.arange(0, len(pts), 97), np.arange(5, len(pts), 97)[: len(np.arange(0, len(pts), 97))]
    np.testing.assert_allclose(np.linalg.norm(out[i, :3] - out[j, :3], axis=1),
                               np.linalg.norm(pts[i, :3] - pts[j, :3], axis=1), atol=1e-3)
    np.testing.assert_allclose(rep.transform[:3, :3] @ rep.transform[:3, :3].T, np.eye(3), atol=1e-9)


def test_translate_option_levels_the_ground_like_the_warning_says():
    pts = _scene(ground_z=-1.9)
    _, rep = prepare_points(_cloud(pts), InputSpec(), transform=make_transform(translate=(0, 0, 1.9)))
    assert rep.warnings == [] and abs(rep.ground.height) < 0.05


def test_millimetres_and_out_of_range_are_explained():
    pts = _scene()
    pts[:, :3] *= 1000
    _, rep = prepare_points(_cloud(pts), InputSpec(point_cloud_range=RANGE), estimate_ground_plane=False)
    text = "\n".join(rep.warnings)
    assert "look like millimetres; pass --scale 0.001" in text
    assert "of the points lie inside the model's range" in text
    out, rep = prepare_points(_cloud(pts), InputSpec(point_cloud_range=RANGE), scale=0.001)
    _, metres = prepare_points(_cloud(_scene()), InputSpec(point_cloud_range=RANGE), estimate_ground_plane=False)
    assert rep.warnings == [] and metres.in_range_fraction > 0.9
    assert rep.in_range_fraction == pytest.approx(metres.in_range_fraction)
    np.testing.assert_allclose(out[:, :3], pts[:, :3] / 1000, atol=1e-4)


def test_y_up_cloud_is_detected_and_the_suggested_axes_fix_it():
    pts = _scene(ground_z=-1.8)
    y_up = pts.copy()
    y_up[:, 1], y_up[:, 2] = pts[:, 2], -pts[:, 1]  # y up, z towards the viewer
    _, rep = prepare_points(_cloud(y_up), InputSpec(), estimate_ground_plane=False)
    (msg,) = rep.warnings
    assert "z does not look up" in msg and "y is likely up" in msg
    axes = msg.split("pass --axes ")[1].split(" ")[0]
    out, rep = prepare_points(_cloud(y_up), InputSpec(), transform=make_transform(axes=axes))
    assert rep.warnings == [f"scene.bin: the ground is at z = {rep.ground.height:+.2f} m with a tilt of "
                            f"{rep.ground.tilt_deg:.1f} deg; the model was trained with the ground at z = +0.00 m: "
                            f"pass --align-ground (align_ground=True) or --translate 0 0 {-rep.ground.height:.2f}"]
    assert rep.ground.height == pytest.approx(-1.8, abs=0.05)  # the original frame's ground again


def test_intensity_scales_and_missing_intensity():
    pts = _scene()
    spec = InputSpec()
    raw = pts.copy()
    raw[:, 3] = np.round(pts[:, 3] * 255)
    out, rep = prepare_points(_cloud(raw), spec, estimate_ground_plane=False)
    assert rep.intensity_scale == 255.0
    np.testing.assert_allclose(out[:, 3], raw[:, 3] / 255, atol=1e-6)
    sixteen = pts.copy()
    sixteen[:, 3] = np.round(pts[:, 3] * 40000)
    _, rep = prepare_points(_cloud(sixteen), spec, estimate_ground_plane=False)
    assert rep.intensity_scale == 65535.0
    out, _ = prepare_points(_cloud(raw), InputSpec(intensity="tanh"), estimate_ground_plane=False)
    np.testing.assert_allclose(out[:, 3], np.tanh(raw[:, 3] / 255), atol=1e-6)
    out, _ = prepare_points(_cloud(raw), InputSpec(intensity="raw", intensity_max=255.0), estimate_ground_plane=False)
    np.testing.assert_allclose(out[:, 3], raw[:, 3], atol=1e-3)
    out, rep = prepare_points(_cloud(pts[:, :3], ("x", "y", "z")), spec, estimate_ground_plane=False)
    (msg,) = rep.warnings
    assert "scene.bin: no intensity field (fields: x,y,z): filled with 0" in msg and "--columns" in msg
    assert (out[:, 3] == 0).all()
    flat = pts.copy()
    flat[:, 3] = 0.5
    _, rep = prepare_points(_cloud(flat), spec, estimate_ground_plane=False)
    assert any("every intensity is 0.5" in w for w in rep.warnings)


def test_ring_read_as_elongation_is_flagged():
    pts = np.column_stack([_scene(), np.arange(len(_scene())) % 128]).astype(np.float32)
    _, rep = prepare_points(_cloud(pts, ("x", "y", "z", "intensity", "elongation")), InputSpec(),
                            estimate_ground_plane=False)
    assert any("'elongation' reaches 127" in w and "x,y,z,intensity,ring" in w for w in rep.warnings)


def test_nan_rows_dropped_and_empty_clouds_refused():
    pts = _scene()
    pts[:10, 0] = np.nan
    pts[10:15, 3] = np.inf
    out, rep = prepare_points(_cloud(pts), InputSpec(), estimate_ground_plane=False)
    assert len(out) == len(pts) - 15 and rep.num_dropped == 15
    assert "dropped 15 of" in rep.warnings[0] and "'x': 10" in rep.warnings[0] and "'intensity': 5" in rep.warnings[0]
    with pytest.raises(PointCloudError, match="scene.bin: the point cloud is empty"):
        prepare_points(_cloud(np.zeros((0, 4))), InputSpec())
    with pytest.raises(PointCloudError, match=r"scene.bin: no finite point \(all 3 have NaN/inf in \['x'\]\)"):
        prepare_points(_cloud(np.array([[np.nan, 0, 0, 0]] * 3, np.float32)), InputSpec())


def test_transform_validation():
    with pytest.raises(PointCloudError, match="axes 'x,y,y'"):
        make_transform(axes="x,y,y")
    with pytest.raises(PointCloudError, match="not a rotation"):
        make_transform(axes="x,y,-z")
    with pytest.raises(PointCloudError, match="not a rotation"):
        make_transform(matrix=np.diag([2.0, 1, 1, 1]))
    t = make_transform(rotate_deg=(0, 0, 90), translate=(1, 2, 3))
    np.testing.assert_allclose(t[:3, :3] @ [1, 0, 0] + t[:3, 3], [1, 3, 3], atol=1e-12)


def test_spec_from_configs():
    from mmengine.config import Config

    from conftest import ROOT
    from pc3d.io import input_spec_from_config

    spec = input_spec_from_config(Config.fromfile(str(ROOT / "configs" / "centerpoint" / "centerpoint_pillar_synthetic.py")))
    assert spec.columns == ("x", "y", "z", "intensity", "elongation") and spec.intensity == "unit"
    assert spec.ground_z == 0.0 and spec.point_cloud_range == RANGE
    cfg = Config(dict(test_dataloader=dict(dataset=dict(type="WaymoDataset", tanh_intensity=True)),
                      model=dict(voxel_encoder=dict(in_channels=4)), point_input=dict(ground_z=0.3)))
    spec = input_spec_from_config(cfg)
    assert spec.intensity == "tanh" and spec.columns == ("x", "y", "z", "intensity") and spec.ground_z == 0.3


def test_simulator_frames_have_the_ground_the_spec_says(tmp_path):
    """The synthetic InputSpec's ground height is what the simulator's frames show."""
    from pc3d.datasets.simulator import simulate_frame
    from pc3d.io import estimate_ground

    frame = simulate_frame(7, frame_id="g")
    plane = estimate_ground(frame["points"][:, :3])
    assert plane.height == pytest.approx(InputSpec().ground_z, abs=0.1)
    assert plane.tilt_deg < InputSpec().tilt_tolerance_deg


def test_real_scans_ground_is_found_and_aligned(real_scans):
    spec = InputSpec(point_cloud_range=RANGE)
    for name, pts in sorted(real_scans.items()):
        cloud = RawCloud(pts.numpy(), ("x", "y", "z", "intensity", "ring"), name)
        _, rep = prepare_points(cloud, spec)
        assert rep.ground is not None and -2.3 < rep.ground.height < -1.5, (name, rep.ground)
        assert any("--align-ground" in w for w in rep.warnings), name
        out, rep = prepare_points(cloud, spec, align_ground=True)
        assert abs(rep.ground_after.height) < 0.1 and rep.ground_after.tilt_deg < 1.0, (name, rep.ground_after)
        assert rep.warnings == [] and rep.in_range_fraction > rep.num_read * 0 + 0.3
