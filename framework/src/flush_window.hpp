#pragma once
// Private to the server: when coalesced writes leave.
//
// A connection's queued frames leave together in one write. Two kinds of
// sends know when their batch is complete and do not wait here: replies to
// what the connection read (CorkedStream flushes them when Beast goes back to
// the socket) and what handlers send for a drain of layer messages (flushed
// after the drain, see delivery_window.hpp). The rest (sends from timers,
// from other threads, from coroutine consumers resuming later) may come one
// per turn of the event loop, and flushing at the end of each turn would
// write one frame per syscall. So the flush waits in a window: the window is
// flushed on the first turn in which the loop ran nothing new (a quiet loop:
// no delay). On a busy loop, a connection leaves the window on the second
// turn in which it got no new frame, or after `max_delay`, or at once with
// more than `max_bytes` waiting.
//
// Why `max_delay` is 50 ms and not a couple: it was measured when group
// deliveries still came through here, one frame per member per turn; a turn
// of a fan-out to 1,000 members takes several milliseconds, so a 2 ms bound
// flushed every member after each turn, one frame per write (21k
// deliveries/s; 50k at 20 ms; 113k at 50 ms, with the burst's p99 latency
// falling from 9.4 s to 1.7 s). Only a connection that got a new frame in
// every busy turn waits that long; a quiet loop still flushes at once.

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
  static constexpr std::chrono::microseconds max_delay{50000};
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
