"""Spinning-LiDAR model: Waymo-like top LiDAR geometry, ray casting, noise, dropout, intensity, elongation.

Geometry: ``num_beams`` beams whose elevations span ``elevation_deg`` (denser near the horizon, as on
Waymo's top LiDAR), ``azimuth_steps`` columns per revolution starting at a random per-frame offset,
sensor origin at (0, 0, ``height``) of the ego frame (the ego frame's origin is on the ground under the
sensor). Every ray is cast against the scene mesh with open3d's ``RaycastingScene`` (Embree).

Per return:
- range noise: Gaussian with sigma = ``noise_base + noise_per_m * range``, along the ray;
- dropout: a return is kept with probability ``(1 - dropout) * (1 - face dropout) * p_detect`` where
  ``p_detect = 1 - exp(-E / e0)`` and ``E = reflectivity * cos(incidence) / (range / 50 m)^2`` is the
  received energy (dark, grazing or far surfaces vanish first, as on a real sensor);
- intensity = tanh(1.6 * reflectivity * cos(incidence)^0.8 * (1 + 5 % noise)), retro-reflectors
  ignore the incidence: values in [0, 1), like the tanh-squashed Waymo intensity OpenPCDet uses;
- elongation = tanh of a pulse-stretch model: grows at grazing incidence and at depth discontinuities
  (mixed returns at object edges, detected on the range image), plus a little noise; in [0, 1).
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LidarConfig:
    height: float = 1.9
    num_beams: int = 64
    elevation_deg: tuple = (-17.6, 2.4)
    azimuth_steps: int = 2650
    max_range: float = 75.0
    noise_base: float = 0.012
    noise_per_m: float = 0.0003
    dropout: float = 0.02
    detect_e0: float = 0.01


def beam_elevations(cfg):
    """(num_beams,) float64 beam elevations in radians, ascending, first = lowest = ``elevation_deg[0]``.

    Spacing is quadratic in the beam index: finest at the top (near the horizon, where far objects are),
    about 2.6x coarser at the bottom.
    """
    lo, hi = np.deg2rad(cfg.elevation_deg[0]), np.deg2rad(cfg.elevation_deg[1])
    t = np.linspace(0.0, 1.0, cfg.num_beams)
    frac = 0.55 * t + 0.45 * t ** 2  # 0 at the top beam, 1 at the bottom one
    return np.sort(hi - (hi - lo) * frac)


def ray_directions(cfg, azimuth_offset=0.0):
    """(num_beams, azimuth_steps, 3) float64 unit ray directions (range-image layout)."""
    el = beam_elevations(cfg)[:, None]
    az = azimuth_offset + np.arange(cfg.azimuth_steps) * (2 * np.pi / cfg.azimuth_steps)
    az = az[None, :]
    return np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)), -1)


def _depth_edges(t_hit):
    """(B, A) bool: the return sits at a depth discontinuity (a neighbour in azimuth or elevation is
    > 0.5 m away or missing), where the real sensor's pulse mixes two surfaces."""
    t = np.where(np.isfinite(t_hit), t_hit, 1e4)
    edge = np.zeros(t.shape, dtype=bool)
    for shift, axis in ((1, 1), (-1, 1), (1, 0), (-1, 0)):
        nb = np.roll(t, shift, axis=axis)
        if axis == 0:  # no wrap-around between the top and bottom beams
            nb[0 if shift == 1 else -1] = t[0 if shift == 1 else -1]
        edge |= np.abs(nb - t) > np.maximum(0.5, 0.02 * t)
    return edge


def scan(mesh, cfg, rng):
    """Casts one revolution against ``mesh`` (a ``MeshBuilder.build()`` dict).

    Returns:
        points: (N, 5) float32 [x, y, z, intensity, elongation], ego frame, range-image order
            (beam-major, lowest beam first).
        object_id: (N,) int32 the labelled object each return hit, -1 for background.
    """
    import open3d as o3d  # ~1.5 s import: only when simulating

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(mesh["vertices"]), o3d.core.Tensor(mesh["faces"]))
    dirs = ray_directions(cfg, rng.uniform(0, 2 * np.pi / cfg.azimuth_steps))
    B, A = dirs.shape[:2]
    origin = np.array([0.0, 0.0, cfg.height])
    rays = np.concatenate([np.broadcast_to(origin, (B * A, 3)), dirs.reshape(-1, 3)], 1).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    t_hit = hit["t_hit"].numpy().reshape(B, A).astype(np.float64)
    prim = hit["primitive_ids"].numpy().reshape(-1)
    edges = _depth_edges(t_hit).reshape(-1)
    t_flat = t_hit.reshape(-1)
    valid = np.isfinite(t_flat) & (t_flat <= cfg.max_range)
    idx = np.nonzero(valid)[0]
    t, face, d = t_flat[idx], prim[idx].astype(np.int64), dirs.reshape(-1, 3)[idx]
    normal = hit["primitive_normals"].numpy()[idx].astype(np.float64)
    cos = np.abs(np.einsum("nd,nd->n", d, normal)) / np.maximum(np.linalg.norm(normal, axis=1), 1e-9)
    cos = np.clip(cos, 1e-3, 1.0)
    refl = mesh["reflectivity"][face].astype(np.float64)
    retro = mesh["retro"][face]
    eff = np.where(retro, refl, refl * cos)
    # Draw every random number for every candidate return in a fixed order: bit-identical per seed.
    u_keep = rng.random(len(idx))
    noise = rng.standard_normal(len(idx))
    i_noise = rng.standard_normal(len(idx))
    e_noise = np.abs(rng.standard_normal(len(idx)))
    energy = eff / (t / 50.0) ** 2
    p_keep = (1 - cfg.dropout) * (1 - mesh["dropout"][face]) * (1 - np.exp(-energy / cfg.detect_e0))
    r = t + noise * (cfg.noise_base + cfg.noise_per_m * t)
    keep = (u_keep < p_keep) & (r <= cfg.max_range) & (r > 0)
    xyz = origin + d * r[:, None]
    intensity = np.tanh(1.6 * np.where(retro, refl, refl * cos ** 0.8) * (1 + 0.05 * i_noise).clip(0.5))
    elong = np.tanh(0.35 * (1 - cos) ** 2 + 0.3 * edges[idx] + 0.02 * e_noise)
    pts = np.concatenate([xyz, intensity[:, None], elong[:, None]], 1)[keep].astype(np.float32)
    return pts, mesh["object_id"][face][keep].astype(np.int32)
