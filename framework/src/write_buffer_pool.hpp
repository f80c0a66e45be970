#pragma once
// Private to the server: the buffers small frames are copied into before a
// gathered write, shared by the connections of one thread.
//
// A connection needs its copy buffer only from the first frame it queues
// until the write that carries it completes, which for a client that reads
// is the same turn of the loop. Kept per connection, each buffer grew by
// doubling through the connection's first burst (a reallocation and a copy
// of what it held for every doubling, in fresh memory that page-faulted in:
// a tenth of the server's time with 10,000 connections in rooms of 5), and
// then stayed with the connection, unused, until it closed. Taken from here
// and given back once written, a burst across thousands of connections
// reuses a few buffers that are already grown and in cache, and a quiet
// connection holds none.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace channels::detail {

class WriteBufferPool {
 public:
  /// Buffers kept per thread; more are freed when given back.
  static constexpr std::size_t max_buffers = 16;
  /// A buffer a burst grew beyond this is freed rather than kept.
  static constexpr std::size_t max_capacity = 64 * 1024;

  /// An empty buffer, grown by an earlier user if the pool has one.
  static std::string take() {
    auto& pool = buffers();
    if (pool.empty()) return {};
    std::string s = std::move(pool.back());
    pool.pop_back();
    return s;
  }

  /// Takes `s`'s memory (leaving `s` empty and without any) for the next take().
  static void give(std::string& s) noexcept {
    std::string mine = std::move(s);
    s = std::string();  // a moved-from string is only valid, not promised empty
    if (mine.capacity() <= small_capacity || mine.capacity() > max_capacity) return;
    auto& pool = buffers();
    if (pool.size() >= max_buffers) return;
    mine.clear();
    pool.push_back(std::move(mine));  // capacity reserved below: cannot throw
  }

  /// Bytes of the buffers this thread keeps.
  static std::size_t held_bytes() noexcept {
    std::size_t n = 0;
    for (const auto& s : buffers()) n += s.capacity() + 1;
    return n;
  }

 private:
  // What a std::string holds without an allocation: nothing to keep.
  static constexpr std::size_t small_capacity = 15;

  static std::vector<std::string>& buffers() noexcept {
    thread_local std::vector<std::string> pool = [] {
      std::vector<std::string> v;
      v.reserve(max_buffers);
      return v;
    }();
    return pool;
  }
};

}  // namespace channels::detail
