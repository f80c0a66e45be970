#pragma once
// Private to the server: when coalesced writes leave.
//
// A connection's queued frames leave together in one write, but a group
// fan-out hands a member one message per turn of the event loop (the sender's
// frames are read one per turn, and every member gets its share in between).
// Flushing at the end of the turn would write one frame per syscall. So the
// flush waits in a window: the window is flushed on the first turn in which
// the loop ran nothing new (a quiet loop: no delay). On a busy loop, a
// connection leaves the window on the second turn in which it got no new
// frame (a closed-loop echo waits two turns), or after `max_delay`, or at
// once with more than `max_bytes` waiting. Under a fan-out, where a member
// gets a frame every turn, its frames of several turns share one write.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace channels::detail {

/// Something with queued bytes to write; flush() hops onto its own strand.
class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void flush() = 0;
  /// Counts the frames queued so far (read from any thread).
  std::atomic<std::uint64_t> frames{0};
};

class FlushWindow {
 public:
  static constexpr std::chrono::microseconds max_delay{2000};
  static constexpr std::size_t max_bytes = 64 * 1024;

  /// Adds `target` (not yet in a window) to this thread's window, opening
  /// one on `ex` if needed.
  static void add(std::shared_ptr<Flushable> target, const boost::asio::any_io_executor& ex);

  /// A frame was queued on a connection already waiting in a window: the
  /// window stays open one more turn (up to max_delay).
  static void note_more() { more_.fetch_add(1, std::memory_order_relaxed); }

 private:
  struct Window;
  static void check(const std::shared_ptr<Window>& w);
  static std::atomic<std::uint64_t> more_;
  static thread_local std::weak_ptr<Window> current_;
};

}  // namespace channels::detail
