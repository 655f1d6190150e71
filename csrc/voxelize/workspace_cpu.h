// Per-thread scratch memory for the CPU voxelizer, reused across calls.
//
// Why: the voxelizer runs once per frame on ~100k-200k points and needs ~5 MB of scratch. Fresh
// allocations of that size come from mmap and page-fault on first touch, which measured ~30% of the
// whole op on a 100k-point scan. Buffers up to kMaxCachedBytes are kept per thread; larger requests
// (huge inputs) get a one-off allocation freed with the Workspace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>

namespace pc3d {
namespace voxelize {

class Workspace {
 public:
  static constexpr size_t kMaxCachedBytes = size_t(64) << 20;

  explicit Workspace(size_t bytes) {
    bytes += 64;  // room for the first alignment
    if (bytes > kMaxCachedBytes) {
      oneoff_.reset(new char[bytes]);
      base_ = oneoff_.get();
    } else {
      thread_local std::unique_ptr<char[]> cached;
      thread_local size_t capacity = 0;
      if (capacity < bytes) {
        cached.reset();
        cached.reset(new char[bytes]);
        capacity = bytes;
      }
      base_ = cached.get();
    }
    size_ = bytes;
  }

  // n uninitialised elements of T, 64-byte aligned (a cache line: chunks never share one).
  template <typename T>
  T* take(int64_t n) {
    offset_ = (offset_ + 63) & ~size_t(63);
    T* p = reinterpret_cast<T*>(base_ + offset_);
    offset_ += sizeof(T) * static_cast<size_t>(n > 0 ? n : 0);
    if (offset_ > size_) throw std::bad_alloc();  // a sizing bug, never an out-of-bounds write
    return p;
  }

  // Bytes to request for arrays of these byte sizes (each gets up to 63 bytes of alignment).
  static size_t bytes_for(std::initializer_list<size_t> sizes) {
    size_t total = 0;
    for (size_t s : sizes) total += s + 64;
    return total;
  }

 private:
  std::unique_ptr<char[]> oneoff_;
  char* base_ = nullptr;
  size_t size_ = 0;
  size_t offset_ = 0;
};

}  // namespace voxelize
}  // namespace pc3d
