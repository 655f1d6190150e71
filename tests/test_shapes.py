"""Synthetic shape set: determinism, normalisation, and the geometry of the generated classes."""
import numpy as np
import pytest

pytest.importorskip("open3d", reason="open3d is not installed (pip install open3d-cpu)")

from pc3d.datasets.object_points import normalize_unit_sphere, random_rotation  # noqa: E402
from pc3d.datasets.shapes import SHAPE_CLASSES, SyntheticShapes, make_shape, sample_surface  # noqa: E402


def test_items_are_normalised_and_labelled():
    ds = SyntheticShapes(num_samples=20, num_points=256, split="train", seed=3)
    assert len(ds) == 20 and ds.metainfo["classes"] == SHAPE_CLASSES
    for i in (0, 7, 19):
        item = ds[i]
        p = item["points"].numpy()
        assert p.shape == (256, 3) and p.dtype == np.float32
        assert item["label"] == i % 10
        assert np.abs(p.mean(0)).max() < 0.05  # centred (noise added after centring moves it a little)
        assert np.linalg.norm(p, axis=1).max() == pytest.approx(1.0, abs=1e-5)


def test_generation_is_deterministic_and_per_instance():
    a = SyntheticShapes(num_samples=12, num_points=128, seed=1)
    b = SyntheticShapes(num_samples=5, num_points=128, seed=1)  # instance i does not depend on the set size
    np.testing.assert_array_equal(a.points[:5], b.points)
    c = SyntheticShapes(num_samples=5, num_points=128, seed=2)
    v = SyntheticShapes(num_samples=5, num_points=128, seed=1, split="val")
    assert not np.allclose(a.points[:5], c.points) and not np.allclose(a.points[:5], v.points)


def test_augment_changes_points_but_keeps_contract():
    ds = SyntheticShapes(num_samples=2, num_points=128, augment=True)
    p1, p2 = ds[0]["points"].numpy(), ds[0]["points"].numpy()
    assert not np.allclose(p1, p2)
    assert np.linalg.norm(p1, axis=1).max() == pytest.approx(1.0, abs=1e-5)


def _clean(name, n=2000, seed=0):
    return make_shape(name, n, np.random.default_rng(seed), noise=0.0, scale=(1.0, 1.0), rotate=False)


def test_primitive_geometry():
    sphere = _clean("sphere")
    r = np.linalg.norm(sphere, axis=1)
    assert r.min() > 0.9  # all on the (coarsely tessellated) sphere
    torus = _clean("torus")
    assert np.linalg.norm(torus[:, :2], axis=1).min() > 0.2  # the hole
    assert np.abs(torus[:, 2]).max() < 0.5  # flat ring in z
    box = _clean("box")
    # Every box point lies on a face: one coordinate at its extreme.
    centre, half = (box.max(0) + box.min(0)) / 2, (box.max(0) - box.min(0)) / 2
    assert (np.abs(box - centre) / half).max(1).min() > 0.999
    table = _clean("table")
    # Most of the area is the top: the points concentrate at the highest z.
    assert (table[:, 2] > table[:, 2].max() - 0.15).mean() > 0.7


def test_sample_surface_is_area_weighted():
    # Two triangles, the second 3x the area: about 3/4 of the samples land on it.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 5], [3, 0, 5], [0, 1, 5]], dtype=float)
    t = np.array([[0, 1, 2], [3, 4, 5]])
    p = sample_surface(v, t, 4000, np.random.default_rng(0))
    assert 0.72 < (p[:, 2] > 2.5).mean() < 0.78
    low = p[p[:, 2] < 2.5]
    assert (low[:, 0] >= 0).all() and (low[:, 1] >= 0).all() and (low[:, 0] + low[:, 1] <= 1 + 1e-9).all()


def test_helpers_validate_and_rotate():
    q = random_rotation(np.random.default_rng(0))
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(q) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="points"):
        normalize_unit_sphere(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="split"):
        SyntheticShapes(num_samples=1, split="dev")
    with pytest.raises(ValueError, match="unknown classes"):
        SyntheticShapes(num_samples=1, classes=("box", "teapot"))


def test_part_labels_follow_the_parts():
    from pc3d.datasets.shapes import PART_NAMES, SHAPE_PARTS, SyntheticShapeParts

    ds = SyntheticShapeParts(num_samples=10, num_points=400, seed=4)
    cls = SyntheticShapes(num_samples=10, num_points=400, seed=4)
    np.testing.assert_array_equal(ds.points, cls.points)  # same instances as the classification set
    for i in range(10):
        item = ds[i]
        name = SHAPE_CLASSES[item["label"]]
        got = {PART_NAMES[j] for j in np.unique(item["point_labels"].numpy())}
        assert got == set(SHAPE_PARTS[name]), name
    # Geometry: an unrotated table's top points are above its leg points.
    p, parts = make_shape("table", 2000, np.random.default_rng(0), noise=0.0, scale=(1, 1), rotate=False,
                          return_parts=True)
    top, leg = PART_NAMES.index("table_top"), PART_NAMES.index("table_leg")
    assert p[parts == top, 2].min() > p[parts == leg, 2].mean()
