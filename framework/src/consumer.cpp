#include <channels/consumer.hpp>

#include <stdexcept>

#include <boost/asio/post.hpp>
#include <boost/core/demangle.hpp>

#include <channels/errors.hpp>
#include <channels/log.hpp>

namespace channels {

ChannelLayer& Consumer::channel_layer() const {
  if (!layer_)
    throw std::logic_error(
        "this consumer has no channel layer yet: the layer is attached when the connection "
        "starts, so use it from on_connect() on, not from the constructor");
  return *layer_;
}

const Json& Consumer::options() const {
  static const Json empty = Json::object();
  return route_options_ ? route_options_->options : empty;
}

std::filesystem::path Consumer::resolve_path(std::string_view relative) const {
  std::filesystem::path p(relative);
  if (p.is_absolute() || !route_options_) return p;
  return route_options_->base_dir / p;
}

void Consumer::group_add(std::string_view group) {
  channel_layer().group_add(group, channel_name_);
  groups_.emplace(group);
}

void Consumer::group_add(std::string_view group, std::function<void(std::error_code)> joined) {
  if (!strand_) throw std::logic_error("group_add with a completion needs a connection: call it from on_connect() on");
  // The layer completes on its own thread, maybe after this consumer is
  // gone: hop to the strand, and only while the connection lives.
  channel_layer().group_add(group, channel_name_,
                            [strand = *strand_, owner = owner_, joined = std::move(joined)](std::error_code ec) {
                              boost::asio::post(strand, [owner, joined, ec] {
                                if (auto alive = owner.lock()) joined(ec);
                              });
                            });
  groups_.emplace(group);
}

void Consumer::group_discard(std::string_view group, ChannelLayer::Completion done) {
  channel_layer().group_discard(group, channel_name_, std::move(done));
  if (auto it = groups_.find(group); it != groups_.end()) groups_.erase(it);
}

void Consumer::group_send(std::string_view group, Message msg, ChannelLayer::GroupCompletion done) {
  channel_layer().group_send(group, std::move(msg), std::move(done));
}

void Consumer::post_to_strand(std::function<void()> fn) {
  if (!strand_) return;
  boost::asio::post(*strand_, [owner = owner_, fn = std::move(fn)] {
    if (auto alive = owner.lock()) fn();
  });
}

std::function<void(std::function<void()>)> Consumer::strand_poster() const {
  if (!strand_) return [](std::function<void()>) {};
  return [strand = *strand_, owner = owner_](std::function<void()> fn) {
    boost::asio::post(strand, [owner, fn = std::move(fn)] {
      if (auto alive = owner.lock()) fn();
    });
  };
}

void Consumer::handle(std::string_view type, Handler fn) {
  std::string name = handler_name(type);
  if (name.empty())
    throw std::invalid_argument("a handler's message type must not be empty or start with '_' (got '" +
                                std::string(type) + "')");
  handlers_[std::move(name)] = std::move(fn);
}

void Consumer::dispatch(const Message& msg) {
  auto type = message_type(msg);
  bool named = !type.empty() && type.front() != '_';  // as handler_name() says
  auto it = named ? handlers_.find(type) : handlers_.end();
  if (it == handlers_.end()) {
    on_unknown_message(msg);
    return;
  }
  it->second(msg);
}

void Consumer::on_unknown_message(const Message& msg) {
  auto type = message_type(msg);
  // The Redis layer's notice after an outage: only consumers that resync
  // their clients need to handle it.
  if (type == "layer.reconnected") {
    log().debug("{} on channel {}: no handler, ignored", type, channel_name_);
    return;
  }
  log().error(
      "no handler for message type '{}' on consumer {} (channel {}, path {}): register one with "
      "handle(\"{}\", ...) in the consumer's constructor; the message was dropped",
      type.empty() ? "<missing>" : std::string(type), boost::core::demangle(typeid(*this).name()), channel_name_, scope_.path,
      type.empty() ? "some.type" : std::string(type));
}

}  // namespace channels
