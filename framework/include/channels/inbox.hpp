#pragma once
// The queue behind one channel in this process, with an expiry per message
// and a wake-up for whoever reads it.
//
// Two bounds, as in channels_redis: `capacity` bounds what waits for a
// channel nobody is reading (there, the Redis list); once a consumer is
// attached it takes each message as it arrives, into a local buffer bounded
// by `live_capacity` (which channels_redis leaves unbounded), so a burst is
// not lost to the few microseconds a consumer waits for its strand.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <channels/detail/block_queue.hpp>
#include <channels/message.hpp>

namespace channels {

class Inbox {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Inbox(std::size_t capacity, std::size_t live_capacity = 0)
      : capacity_(capacity), live_capacity_(std::max(capacity, live_capacity)) {}

  /// Queues a message. False if the inbox is full (`capacity` without a
  /// reader, `live_capacity` with one): the message is dropped for this
  /// channel (Channels' semantics: a full channel never blocks a sender).
  bool push(MessagePtr msg, Clock::time_point now);

  /// Takes every queued message that has not expired, oldest first. Expired
  /// ones are counted and discarded.
  std::vector<MessagePtr> take_all(Clock::time_point now, std::chrono::milliseconds expiry);
  /// The same, appended to `out` (a reader reusing one vector allocates nothing).
  void take_all(std::vector<MessagePtr>& out, Clock::time_point now, std::chrono::milliseconds expiry);

  /// Takes the oldest unexpired message, or null.
  MessagePtr take_one(Clock::time_point now, std::chrono::milliseconds expiry);

  /// Drops messages older than `expiry` without a reader; returns how many.
  std::size_t drop_expired(Clock::time_point now, std::chrono::milliseconds expiry);

  /// Called, outside the lock, each time a push finds the inbox empty: the
  /// reader then drains it with take_all(). Set it once, before the inbox is shared.
  void on_wake(std::function<void()> wake);
  void clear_wake();

  std::size_t size() const;
  /// Gives back the block an empty queue keeps: a connection that goes
  /// quiet holds nothing for messages.
  /// Called at the idle check, not on every drain: steady traffic would then
  /// allocate a block for each message.
  void trim();
  /// Bytes the queue holds for messages, queued or not.
  std::size_t held_bytes() const;
  bool empty() const { return size() == 0; }
  std::size_t capacity() const { return capacity_; }
  std::uint64_t dropped_full() const { return dropped_full_.load(std::memory_order_relaxed); }
  std::uint64_t dropped_expired() const { return dropped_expired_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    MessagePtr msg;
    Clock::time_point at;
  };
  std::size_t drop_expired_locked(Clock::time_point now, std::chrono::milliseconds expiry);

  const std::size_t capacity_;
  const std::size_t live_capacity_;
  mutable std::mutex mutex_;
  // Blocks of 16 messages: a burst takes blocks as it grows and a drain
  // gives them back (all but one), so nothing queued is ever moved. A
  // devector doubled and copied the queue as a burst grew, then kept the
  // room: in a room of 1,000 the blocks deliver about 1.6x as many messages
  // a second (no copies, no page faults of fresh memory for larger arrays).
  detail::BlockQueue<Entry, 16> queue_;
  // Shared so that push() takes a reference under the lock rather than a
  // copy of the function (which allocates for all but the smallest).
  std::shared_ptr<const std::function<void()>> wake_;
  std::atomic<std::uint64_t> dropped_full_{0};
  std::atomic<std::uint64_t> dropped_expired_{0};
};

}  // namespace channels
