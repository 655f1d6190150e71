// Geometry shared by the CPU and CUDA box kernels: upright boxes (x, y, z, dx, dy, dz, heading), box
// centre, heading = yaw about +z from +x, counter-clockwise. Everything is computed in double, whatever
// the input dtype, so that IoUs agree with the Waymo reference (which works in double) to ~1e-12.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define PC3D_HD __host__ __device__ __forceinline__
#else
#define PC3D_HD inline
#endif

namespace pc3d {
namespace boxes {

// A box reduced to what the kernels need. Half sizes, so that "inside" is |local| <= half.
struct Box {
  double x, y, z;     // centre
  double hx, hy, hz;  // half sizes (>= 0, validated by the Python face)
  double c, s;        // cos(heading), sin(heading)
  double area;        // dx * dy (BEV area, from the full sizes as Waymo does)
  double volume;      // dx * dy * dz
  double radius;      // circumscribed circle of the BEV rectangle, for cheap rejection
};

template <typename scalar_t>
PC3D_HD Box make_box(const scalar_t* b) {
  Box r;
  r.x = static_cast<double>(b[0]);
  r.y = static_cast<double>(b[1]);
  r.z = static_cast<double>(b[2]);
  const double dx = static_cast<double>(b[3]);
  const double dy = static_cast<double>(b[4]);
  const double dz = static_cast<double>(b[5]);
  const double h = static_cast<double>(b[6]);
  r.hx = 0.5 * dx;  // exact: halving never rounds
  r.hy = 0.5 * dy;
  r.hz = 0.5 * dz;
  r.c = cos(h);
  r.s = sin(h);
  r.area = dx * dy;
  r.volume = dx * dy * dz;
  r.radius = sqrt(r.hx * r.hx + r.hy * r.hy);
  return r;
}

// Closed containment test: a point on a face counts as inside (|local| <= half size on every axis).
// Non-finite coordinates compare false and are therefore in no box.
PC3D_HD bool point_in_box(double px, double py, double pz, const Box& b) {
  if (!(fabs(pz - b.z) <= b.hz)) return false;
  const double dx = px - b.x;
  const double dy = py - b.y;
  // Rotate the offset by -heading into the box frame.
  const double lx = b.c * dx + b.s * dy;
  const double ly = -b.s * dx + b.c * dy;
  return fabs(lx) <= b.hx && fabs(ly) <= b.hy;
}

// Sutherland-Hodgman step: keep the part of polygon `in` (n vertices) where sign * p[axis] <= bound.
// The clip lines are axis-aligned (we work in box A's frame), so the new vertex gets the clip
// coordinate exactly and only the other coordinate is interpolated. A convex n-gon gives <= n + 1
// vertices. Returns the new vertex count.
PC3D_HD int clip_half_plane(const double* in_x, const double* in_y, int n, double* out_x,
                            double* out_y, int axis, double sign, double bound) {
  int m = 0;
  for (int i = 0; i < n; ++i) {
    const int j = (i + 1 == n) ? 0 : i + 1;
    const double pi = axis == 0 ? in_x[i] : in_y[i];
    const double pj = axis == 0 ? in_x[j] : in_y[j];
    const double fi = bound - sign * pi;  // >= 0: inside
    const double fj = bound - sign * pj;
    const bool in_i = fi >= 0.0;
    const bool in_j = fj >= 0.0;
    if (in_i) {
      out_x[m] = in_x[i];
      out_y[m] = in_y[i];
      ++m;
    }
    if (in_i != in_j) {
      // fi and fj have opposite signs with one strictly negative, so fi - fj != 0.
      const double t = fi / (fi - fj);
      if (axis == 0) {
        out_x[m] = sign * bound;
        out_y[m] = in_y[i] + t * (in_y[j] - in_y[i]);
      } else {
        out_x[m] = in_x[i] + t * (in_x[j] - in_x[i]);
        out_y[m] = sign * bound;
      }
      ++m;
    }
  }
  return m;
}

// Exact area of the intersection of the BEV rectangles of a and b (up to double rounding).
// b is expressed in a's frame, then clipped by a's four sides. Parallel, identical, touching and
// contained rectangles need no special case: clipping only ever divides by a nonzero difference.
PC3D_HD double intersection_area_bev(const Box& a, const Box& b) {
  const double ox = b.x - a.x;
  const double oy = b.y - a.y;
  const double rr = a.radius + b.radius;
  if (ox * ox + oy * oy > rr * rr) return 0.0;  // circumscribed circles apart
  if (a.area <= 0.0 || b.area <= 0.0) return 0.0;
  // b's centre and orientation in a's frame.
  const double cx = a.c * ox + a.s * oy;
  const double cy = -a.s * ox + a.c * oy;
  const double c = b.c * a.c + b.s * a.s;  // cos(hb - ha)
  const double s = b.s * a.c - b.c * a.s;  // sin(hb - ha)
  // b's corners, counter-clockwise. 4 + 4 clips give at most 8 vertices; 9 leaves headroom.
  double px[9], py[9], qx[9], qy[9];
  const double ex_x = c * b.hx, ex_y = s * b.hx;   // half-length axis
  const double ey_x = -s * b.hy, ey_y = c * b.hy;  // half-width axis
  px[0] = cx + ex_x + ey_x; py[0] = cy + ex_y + ey_y;
  px[1] = cx - ex_x + ey_x; py[1] = cy - ex_y + ey_y;
  px[2] = cx - ex_x - ey_x; py[2] = cy - ex_y - ey_y;
  px[3] = cx + ex_x - ey_x; py[3] = cy + ex_y - ey_y;
  int n = 4;
  n = clip_half_plane(px, py, n, qx, qy, 0, 1.0, a.hx);
  if (n < 3) return 0.0;
  n = clip_half_plane(qx, qy, n, px, py, 0, -1.0, a.hx);
  if (n < 3) return 0.0;
  n = clip_half_plane(px, py, n, qx, qy, 1, 1.0, a.hy);
  if (n < 3) return 0.0;
  n = clip_half_plane(qx, qy, n, px, py, 1, -1.0, a.hy);
  if (n < 3) return 0.0;
  // Shoelace about the first vertex (small coordinates, less cancellation).
  double twice = 0.0;
  for (int i = 1; i + 1 < n; ++i) {
    twice += (px[i] - px[0]) * (py[i + 1] - py[0]) - (px[i + 1] - px[0]) * (py[i] - py[0]);
  }
  const double area = 0.5 * twice;
  const double cap = a.area < b.area ? a.area : b.area;
  return area <= 0.0 ? 0.0 : (area > cap ? cap : area);
}

PC3D_HD double clamp_iou(double inter, double uni) {
  if (!(uni > 0.0)) return 0.0;  // both boxes degenerate: IoU 0, never NaN
  const double v = inter / uni;
  return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

PC3D_HD double iou_bev(const Box& a, const Box& b) {
  const double inter = intersection_area_bev(a, b);
  return clamp_iou(inter, a.area + b.area - inter);
}

// 3D IoU of upright boxes: BEV intersection x z-overlap over the union of volumes (Waymo's definition).
PC3D_HD double iou_3d(const Box& a, const Box& b) {
  const double top = fmin(a.z + a.hz, b.z + b.hz);
  const double bottom = fmax(a.z - a.hz, b.z - b.hz);
  const double dz = top - bottom;
  if (!(dz > 0.0)) return 0.0;
  const double inter = intersection_area_bev(a, b) * dz;
  return clamp_iou(inter, a.volume + b.volume - inter);
}

// NMS decision shared by the CPU and CUDA kernels so that both keep exactly the same boxes: b is
// suppressed by a when IoU > threshold. IoU <= min(area) / max(area), so when that bound is already
// <= threshold the exact IoU is skipped (it is the common case among boxes of different sizes).
PC3D_HD bool nms_suppresses(const Box& a, const Box& b, double threshold) {
  const double lo = a.area < b.area ? a.area : b.area;
  const double hi = a.area < b.area ? b.area : a.area;
  if (!(lo > threshold * hi)) return false;
  return iou_bev(a, b) > threshold;
}

}  // namespace boxes
}  // namespace pc3d
