#include <channels/layers/redis.hpp>

#include "redis/layer_impl.hpp"

namespace channels {

RedisChannelLayer::RedisChannelLayer(RedisLayerOptions options)
    : impl_(std::make_shared<detail::RedisLayerImpl>(std::move(options))) {
  detail::RedisLayerImpl::start(impl_);
}

RedisChannelLayer::~RedisChannelLayer() { impl_->shutdown(); }

std::string RedisChannelLayer::new_channel(std::string_view prefix) { return impl_->new_channel(prefix); }
void RedisChannelLayer::send(std::string_view channel, Message msg, Completion done) {
  impl_->send(channel, msg, std::move(done));
}
void RedisChannelLayer::group_add(std::string_view group, std::string_view channel, Completion done) {
  impl_->group_add(group, channel, std::move(done));
}
void RedisChannelLayer::group_discard(std::string_view group, std::string_view channel, Completion done) {
  impl_->group_discard(group, channel, std::move(done));
}
void RedisChannelLayer::group_send(std::string_view group, Message msg, GroupCompletion done) {
  impl_->group_send(group, msg, std::move(done));
}
std::shared_ptr<Inbox> RedisChannelLayer::attach(std::string_view channel) { return impl_->attach(channel); }
void RedisChannelLayer::detach(std::string_view channel) { impl_->detach(channel); }
MessagePtr RedisChannelLayer::receive_nowait(std::string_view channel) { return impl_->receive_nowait(channel); }
LayerStats RedisChannelLayer::stats() const { return impl_->stats(); }
const LayerOptions& RedisChannelLayer::options() const { return impl_->options.layer; }
RedisLayerStats RedisChannelLayer::redis_stats() const { return impl_->redis_stats(); }
const std::string& RedisChannelLayer::client_prefix() const { return impl_->client_prefix; }
bool RedisChannelLayer::connected() const { return impl_->connected(); }

}  // namespace channels
