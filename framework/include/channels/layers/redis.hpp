#pragma once
// RedisChannelLayer: channels_redis 4's RedisChannelLayer, on the wire. A
// cppchannels process and a Django Channels process on one Redis share
// groups and channels both ways: the same keys (sorted sets), the same
// msgpack messages with their 12-byte random prefix and __asgi_channel__,
// the same capacity, expiry, Lua scripts, sharding and encryption.
//
// How a message reaches a consumer here: every consumer channel of this
// process is "specific.<process>!<local>", and all of them share one Redis
// key, "asgispecific.<process>!". One receive loop per process (per host)
// pops that key and hands each message to the inbox of the channel(s) named
// in its __asgi_channel__; a group message addressed to many local members
// is decoded once and shared by all of them.
//
// Nothing blocks: hiredis' async API runs on the layer's own I/O thread
// (Asio), and every call returns at once. Completions run on that thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <channels/layer.hpp>

namespace channels {

namespace detail {
class RedisLayerImpl;
}

struct RedisLayerOptions {
  /// capacity, expiry, group_expiry (whole seconds: Redis TTLs are) and the
  /// per-consumer buffer.
  LayerOptions layer;
  /// redis://[[user]:password@]host[:port][/db], one per shard.
  std::vector<std::string> hosts{"redis://localhost:6379"};
  /// Prepended to every key, as channels_redis' `prefix`.
  std::string prefix = "asgi";
  /// channels_redis' channel_capacity: {glob pattern, capacity}, the first
  /// pattern matching the full channel name wins.
  std::vector<std::pair<std::string, std::size_t>> channel_capacity;
  /// channels_redis' symmetric_encryption_keys: encrypt with the first,
  /// decrypt with any. Empty: no encryption.
  std::vector<std::string> symmetric_encryption_keys;

  /// How long a blocking pop waits before it is issued again (channels_redis'
  /// brpop_timeout).
  std::chrono::seconds block_timeout{5};
  /// No reply within this: the connection is dropped and opened again.
  std::chrono::milliseconds command_timeout{5'000};
  std::chrono::milliseconds connect_timeout{5'000};
  /// Reconnect delays: doubled from retry_min up to retry_max.
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{5'000};
};

/// What only the Redis layer counts (LayerStats has the rest).
struct RedisLayerStats {
  std::uint64_t received = 0;           // members popped from Redis
  std::uint64_t malformed = 0;          // members that did not decode: logged and skipped
  std::uint64_t dropped_unavailable = 0;  // sends and group members lost to a Redis that was down
  std::uint64_t reconnects = 0;         // connections that came back after a failure
};

class RedisChannelLayer final : public ChannelLayer {
 public:
  /// Starts connecting in the background and returns at once: a Redis that
  /// is down now is retried with back-off (and logged), never fatal.
  /// Throws ConfigError for bad hosts or options.
  explicit RedisChannelLayer(RedisLayerOptions options);
  /// Flushes what is in flight (up to a second), then closes.
  ~RedisChannelLayer() override;

  std::string new_channel(std::string_view prefix = "specific") override;
  void send(std::string_view channel, Message msg, Completion done = {}) override;
  void group_add(std::string_view group, std::string_view channel, Completion done = {}) override;
  void group_discard(std::string_view group, std::string_view channel, Completion done = {}) override;
  void group_send(std::string_view group, Message msg, GroupCompletion done = {}) override;
  std::shared_ptr<Inbox> attach(std::string_view channel) override;
  void detach(std::string_view channel) override;
  MessagePtr receive_nowait(std::string_view channel) override;
  LayerStats stats() const override;
  const LayerOptions& options() const override;

  RedisLayerStats redis_stats() const;
  /// The 32 hex digits that name this process in its channel names.
  const std::string& client_prefix() const;
  /// True when every connection (commands and receive loops) is up.
  bool connected() const;

 private:
  std::shared_ptr<detail::RedisLayerImpl> impl_;
};

}  // namespace channels
