#pragma once
// RedisPubSubChannelLayer: channels_redis 4's RedisPubSubChannelLayer on
// the wire. Nothing is stored in Redis: send() is PUBLISH on the channel's
// own name, group_send() is PUBLISH on "<prefix>__group__<group>", and each
// process SUBSCRIBEs to its consumers' channels and to the groups they
// joined. Messages are bare msgpack (no random prefix, no
// __asgi_channel__, no encryption).
//
// Like channels_redis' pub/sub layer: what is published while nobody is
// subscribed is lost, there is no capacity or expiry in Redis, and group
// membership lives only in the memory of each process. Unlike it, the
// queues in this process are bounded (capacity / consumer_buffer), a group
// message is decoded once for all local members, and after Redis comes
// back every subscription is renewed and consumers hear
// {"type": "layer.reconnected"}.

#include <memory>

#include <channels/layer.hpp>
#include <channels/layers/redis.hpp>

namespace channels {

namespace detail {
class RedisPubSubLayerImpl;
}

class RedisPubSubChannelLayer final : public ChannelLayer {
 public:
  /// Uses hosts, prefix, the timeouts and, for local queues only, capacity
  /// and consumer_buffer. channels_redis' pub/sub layer ignores expiry,
  /// group_expiry, channel_capacity and symmetric_encryption_keys; so does
  /// this one (and says so in the log).
  explicit RedisPubSubChannelLayer(RedisLayerOptions options);
  ~RedisPubSubChannelLayer() override;

  /// "<prefix><prefix argument>.<32 hex>", subscribed at once, as channels_redis.
  std::string new_channel(std::string_view prefix = "specific") override;
  /// PUBLISH; never channel_full (Redis keeps nothing), unavailable if down.
  void send(std::string_view channel, Message msg, Completion done = {}) override;
  /// `channel` must come from this layer's new_channel(), as in channels_redis.
  /// `done` runs once Redis has confirmed this process' subscription to
  /// the group (a PUBLISH after that reaches it), or with unavailable.
  void group_add(std::string_view group, std::string_view channel, Completion done = {}) override;
  void group_discard(std::string_view group, std::string_view channel, Completion done = {}) override;
  /// `delivered` counts the processes subscribed to the group (what PUBLISH
  /// returns), not their members.
  void group_send(std::string_view group, Message msg, GroupCompletion done = {}) override;
  std::shared_ptr<Inbox> attach(std::string_view channel) override;
  void detach(std::string_view channel) override;
  /// The first call on a channel not made here subscribes to it.
  MessagePtr receive_nowait(std::string_view channel) override;
  LayerStats stats() const override;
  const LayerOptions& options() const override;

  RedisLayerStats redis_stats() const;
  bool connected() const;

 private:
  std::shared_ptr<detail::RedisPubSubLayerImpl> impl_;
};

}  // namespace channels
