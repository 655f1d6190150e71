// Value checks of (M, 7) boxes for the CPU kernels: one sequential pass, raising ValueError (via
// TORCH_CHECK_VALUE) with the argument name, shape and offending row. Done here rather than with torch
// reductions in Python because those open an OpenMP region each, which costs far more than the check
// on a busy machine. (The Python face runs the equivalent check for other devices.)
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>
#include <string>

namespace pc3d {
namespace boxes {

template <typename scalar_t>
std::string format_row(const scalar_t* v, int count) {
  std::ostringstream os;
  os << "[";
  for (int k = 0; k < count; ++k) os << (k ? ", " : "") << static_cast<double>(v[k]);
  os << "]";
  return os.str();
}

// boxes: contiguous (M, 7). Finite everywhere, sizes dx, dy, dz >= 0.
template <typename scalar_t>
void check_box_values(const at::Tensor& boxes, const char* name) {
  const scalar_t* p = boxes.data_ptr<scalar_t>();
  const int64_t m = boxes.size(0);
  for (int64_t j = 0; j < m; ++j) {
    const scalar_t* b = p + 7 * j;
    bool finite = true;
    for (int k = 0; k < 7; ++k) finite = finite && std::isfinite(b[k]);
    TORCH_CHECK_VALUE(finite, name, " (", m, ", 7) has a non-finite value (NaN/inf), first in row ", j, ": ",
                      format_row(b, 7));
    TORCH_CHECK_VALUE(b[3] >= 0 && b[4] >= 0 && b[5] >= 0, name, " (", m,
                      ", 7) has a negative size (dx, dy, dz) in row ", j, ": ", format_row(b + 3, 3));
  }
}

}  // namespace boxes
}  // namespace pc3d
