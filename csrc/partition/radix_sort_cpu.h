// Parallel stable LSD radix argsort for non-negative integer keys, used by the CPU partitioners.
// Stable means equal keys keep their input order, which the partitions' definitions rely on.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pc3d {
namespace partition {

inline int bit_length(uint64_t v) {
  int b = 0;
  while (v) { ++b; v >>= 1; }
  return b;
}

// perm[i] = input index of the i-th smallest key (ties by input index); sorted[i] = that key when
// sorted is not null. Every key must be < 2^bits.
inline void radix_argsort(const uint64_t* keys, int64_t n, int bits, int64_t* perm, uint64_t* sorted) {
  if (n <= 0) return;
  if (n < 512 || bits == 0) {  // small inputs: a comparison sort beats building histograms
    for (int64_t i = 0; i < n; ++i) perm[i] = i;
    if (bits > 0) std::stable_sort(perm, perm + n, [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
    if (sorted) for (int64_t i = 0; i < n; ++i) sorted[i] = keys[perm[i]];
    return;
  }
  const int passes = (bits + 10) / 11;
  const int width = (bits + passes - 1) / passes;  // balanced digit width, <= 11 bits
  const int64_t radix = int64_t(1) << width;
  const uint64_t mask = uint64_t(radix - 1);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n / 100000));
  const int64_t chunk_len = (n + chunks - 1) / chunks;
  std::vector<int64_t> hist(chunks * radix);
  std::vector<uint64_t> kbuf_a(n), kbuf_b(n);
  std::vector<int64_t> ibuf(n);
  const uint64_t* kin = keys;
  const int64_t* iin = nullptr;  // nullptr = identity (first pass)
  // Ping-pong between perm and ibuf; a copy at the end puts the result into perm.
  int64_t* idx_bufs[2] = {perm, ibuf.data()};
  uint64_t* key_bufs[2] = {kbuf_a.data(), kbuf_b.data()};
  int out_sel = 0;
  int done = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = pass * width;
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t* h = hist.data() + c * radix;
        std::fill(h, h + radix, 0);
        const int64_t e = std::min(n, (c + 1) * chunk_len);
        for (int64_t i = c * chunk_len; i < e; ++i) ++h[(kin[i] >> shift) & mask];
      }
    });
    int64_t running = 0;
    bool trivial = false;
    for (int64_t d = 0; d < radix; ++d) {
      int64_t total = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t t = hist[c * radix + d];
        hist[c * radix + d] = running;
        running += t;
        total += t;
      }
      if (total == n) trivial = true;  // every key has this digit: the pass would not move anything
    }
    if (trivial && pass + 1 < passes) continue;  // keep the current buffers (last pass always writes perm)
    uint64_t* kout = key_bufs[done % 2];
    int64_t* iout = idx_bufs[out_sel];
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t* h = hist.data() + c * radix;
        const int64_t e = std::min(n, (c + 1) * chunk_len);
        for (int64_t i = c * chunk_len; i < e; ++i) {
          const int64_t pos = h[(kin[i] >> shift) & mask]++;
          kout[pos] = kin[i];
          iout[pos] = iin ? iin[i] : i;
        }
      }
    });
    kin = kout;
    iin = iout;
    ++done;
    out_sel ^= 1;
  }
  if (iin != perm) std::copy(iin, iin + n, perm);
  if (sorted) std::copy(kin, kin + n, sorted);
}

}  // namespace partition
}  // namespace pc3d
