#pragma once
// The channel layer: how consumers talk to each other across connections and
// processes. The same interface as Channels' layers (send, group_add,
// group_discard, group_send, new_channel); backends plug in behind it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <channels/inbox.hpp>
#include <channels/message.hpp>

namespace channels {

/// Settings shared by every backend, with Channels' defaults.
struct LayerOptions {
  /// Messages waiting per channel that nobody is reading (Channels' capacity).
  std::size_t capacity = 100;
  /// Messages buffered per connected consumer between arrival and its
  /// handlers (a bound against overload; reached only if the server cannot
  /// keep up for a long time).
  std::size_t consumer_buffer = 65536;
  std::chrono::milliseconds expiry{60'000};           // a message's life in a channel
  std::chrono::milliseconds group_expiry{86'400'000}; // a membership's life
};

/// What a group_send did: how many member channels took the message, and
/// how many were full (dropped for that member only, as Channels does).
struct GroupSendResult {
  std::size_t delivered = 0;
  std::size_t dropped = 0;
};

struct LayerStats {
  std::uint64_t messages_sent = 0;     // send() + one per group_send member
  std::uint64_t dropped_full = 0;      // channel at capacity
  std::uint64_t dropped_expired = 0;   // not read within expiry
  std::uint64_t dropped_no_channel = 0;
  /// Gauges, where the backend knows them (the in-memory layer does; the
  /// Redis layers report 0: the groups live in Redis, shared by processes).
  std::uint64_t groups = 0;
  std::uint64_t group_members = 0;
};

/// Errors a send can report back to its sender.
enum class LayerError {
  ok = 0,
  channel_full = 1,   // the channel is at capacity: the message was dropped
  unavailable = 2,    // the backend cannot be reached
};
std::error_code make_error_code(LayerError e);

class ChannelLayer {
 public:
  using Completion = std::function<void(std::error_code)>;
  using GroupCompletion = std::function<void(GroupSendResult)>;

  virtual ~ChannelLayer() = default;

  /// A fresh, process-unique channel name, "<prefix>.<random>" (or, for
  /// backends that route by process, "<prefix>.<process>!<random>").
  virtual std::string new_channel(std::string_view prefix = "specific") = 0;

  /// Sends to one channel. `done` gets channel_full if it was dropped.
  /// Completions may run before the call returns, on the calling thread.
  virtual void send(std::string_view channel, Message msg, Completion done = {}) = 0;

  virtual void group_add(std::string_view group, std::string_view channel, Completion done = {}) = 0;
  virtual void group_discard(std::string_view group, std::string_view channel, Completion done = {}) = 0;

  /// Sends one message to every member of a group. It is encoded and stored
  /// once and shared by all members; a full member is skipped and counted.
  virtual void group_send(std::string_view group, Message msg, GroupCompletion done = {}) = 0;

  /// Makes `inbox` the local queue of `channel` (from new_channel()): messages
  /// for it land there, and its wake-up tells the reader. One reader per channel.
  virtual std::shared_ptr<Inbox> attach(std::string_view channel) = 0;
  virtual void detach(std::string_view channel) = 0;

  /// Reads one message of a channel without waiting (null if none): for code
  /// that is not a consumer, like a worker or a test.
  virtual MessagePtr receive_nowait(std::string_view channel) = 0;

  virtual LayerStats stats() const = 0;
  virtual const LayerOptions& options() const = 0;
};

/// Channels' name rules, so names travel unchanged to Django Channels:
/// ASCII letters, digits, '-', '_' and '.', shorter than 100 characters;
/// a channel may end in '!' and a process-local part.
bool valid_channel_name(std::string_view name);
bool valid_group_name(std::string_view name);
/// Throw InvalidName with a message that says what is allowed.
void require_channel_name(std::string_view name);
void require_group_name(std::string_view name);

}  // namespace channels

template <>
struct std::is_error_code_enum<channels::LayerError> : std::true_type {};
