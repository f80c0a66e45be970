#pragma once
// Consumers by name, so routing.yaml can refer to them. Registration is an
// explicit call from main(): static-initialisation tricks are dropped by the
// linker when a consumer lives in a static library.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <channels/http_consumer.hpp>
#include <channels/routing.hpp>
#include <channels/websocket_consumer.hpp>

namespace channels {

enum class ConsumerKind { websocket, http };

class Registry {
 public:
  struct Entry {
    ConsumerKind kind;
    ConsumerFactory make;
  };

  /// The framework's own consumers (channels.StaticFiles) are always there.
  Registry();

  template <class C>
  Registry& add(std::string name) {
    static_assert(std::is_base_of_v<WebsocketConsumer, C> || std::is_base_of_v<HttpConsumer, C>,
                  "a registered consumer derives from WebsocketConsumer or HttpConsumer");
    constexpr auto kind =
        std::is_base_of_v<WebsocketConsumer, C> ? ConsumerKind::websocket : ConsumerKind::http;
    return add(std::move(name), kind, [] { return std::make_unique<C>(); });
  }
  Registry& add(std::string name, ConsumerKind kind, ConsumerFactory make);

  const Entry* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace channels
