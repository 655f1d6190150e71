"""Simulator speed: seconds to generate one Waymo-like frame (target: well under a second)."""
from pc3d.benchmark.harness import Case

SUITE = "simulator"


def cases():
    from pc3d.datasets.simulator import simulate_frame

    counter = iter(range(10**6))
    # A new seed per call: every repeat builds and ray-casts a different scene.
    yield Case(suite=SUITE, name="simulate_frame 64x2650 rays", impl_name="pc3d simulator (open3d raycast)",
               impl=lambda: simulate_frame(next(counter)), repeats=5, warmup=1)
