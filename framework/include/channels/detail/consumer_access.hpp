#pragma once
// How the server (and test communicators) wire a consumer to its connection.
// Not for apps.

#include <memory>
#include <string>

#include <channels/consumer.hpp>
#include <channels/detail/transport.hpp>
#include <channels/http_consumer.hpp>
#include <channels/websocket_consumer.hpp>

namespace channels::detail {

struct ConsumerAccess {
  static void bind(Consumer& c, Scope scope, std::shared_ptr<ChannelLayer> layer, Strand strand) {
    c.scope_ = std::move(scope);
    c.layer_ = std::move(layer);
    c.strand_.emplace(std::move(strand));
  }
  static void set_owner(Consumer& c, std::weak_ptr<void> owner) { c.owner_ = std::move(owner); }
  static void set_route_options(Consumer& c, std::shared_ptr<const RouteOptions> o) {
    c.route_options_ = std::move(o);
  }
  static void set_channel_name(Consumer& c, std::string name) { c.channel_name_ = std::move(name); }
  static void dispatch(Consumer& c, const Message& m) { c.dispatch(m); }
  /// Groups the consumer still belongs to; the server leaves them for it.
  static std::set<std::string, std::less<>> take_groups(Consumer& c) {
    return std::exchange(c.groups_, {});
  }
  static void set_transport(WebsocketConsumer& c, std::shared_ptr<WebsocketTransport> t) {
    c.transport_ = std::move(t);
  }
  static void set_transport(HttpConsumer& c, std::shared_ptr<HttpTransport> t) {
    c.transport_ = std::move(t);
  }
  static void mark_closed(WebsocketConsumer& c) { c.closing_ = true; }
  static SendStatus send_frame(WebsocketConsumer& c, std::shared_ptr<const std::string> payload, bool binary) {
    return c.send_frame(std::move(payload), binary);
  }
};

}  // namespace channels::detail
