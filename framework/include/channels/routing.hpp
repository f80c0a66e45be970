#pragma once
// Routing, as in Channels: applications nest. ProtocolTypeRouter picks one by
// scope type ("http", "websocket"); URLRouter matches Django path()/re_path()
// patterns, puts their kwargs in the scope and hands the rest of the path to
// the next router; at the leaves, a ConsumerApp builds one consumer.
//
//   auto app = std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
//     {"websocket", std::make_shared<URLRouter>(std::vector{
//         path("ws/chat/<str:room_name>/", as_app<ChatConsumer>()),
//     })},
//   });

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <channels/consumer.hpp>
#include <channels/scope.hpp>

namespace channels {

class Application {
 public:
  virtual ~Application() = default;
  /// Routes a connection: records what it matched in the scope and returns
  /// the consumer that will own the connection, or null if nothing matches
  /// (the server answers 404).
  virtual std::unique_ptr<Consumer> route(Scope& scope) const = 0;
};
using ApplicationPtr = std::shared_ptr<const Application>;

using ConsumerFactory = std::function<std::unique_ptr<Consumer>()>;

/// A leaf: builds a new consumer for every connection (Channels' as_asgi()).
class ConsumerApp final : public Application {
 public:
  ConsumerApp(ConsumerFactory make, RouteOptions options = {});
  std::unique_ptr<Consumer> route(Scope& scope) const override;

 private:
  ConsumerFactory make_;
  std::shared_ptr<const RouteOptions> options_;
};

template <class C>
ApplicationPtr as_app(RouteOptions options = {}) {
  return std::make_shared<ConsumerApp>([] { return std::make_unique<C>(); }, std::move(options));
}

class ProtocolTypeRouter final : public Application {
 public:
  using Map = std::map<std::string, ApplicationPtr, std::less<>>;
  explicit ProtocolTypeRouter(Map apps) : apps_(std::move(apps)) {}
  std::unique_ptr<Consumer> route(Scope& scope) const override;

 private:
  Map apps_;
};

/// A compiled route pattern. path() uses Django's syntax, `<conv:name>` with
/// the converters str, int, slug, uuid and path; re_path() takes a regular
/// expression with Python's named groups `(?P<name>...)`. Throws ConfigError
/// for a bad pattern.
class PathPattern {
 public:
  enum class Kind { path, re_path };
  PathPattern(Kind kind, std::string_view pattern, bool endpoint);
  ~PathPattern();
  PathPattern(PathPattern&&) noexcept;
  PathPattern& operator=(PathPattern&&) noexcept;

  struct Match {
    std::size_t consumed = 0;  // characters of the path matched
    std::vector<std::string> args;
    Json kwargs = Json::object();
  };
  /// Matches the start of `path` (no leading '/'); an endpoint must match all of it.
  std::optional<Match> match(std::string_view path) const;
  const std::string& source() const { return source_; }
  Kind kind() const { return kind_; }

 private:
  struct Impl;
  Kind kind_;
  std::string source_;
  std::unique_ptr<Impl> impl_;
};

struct Route {
  std::shared_ptr<const PathPattern> pattern;
  ApplicationPtr app;
};

/// path("chat/<str:room>/", app): a nested URLRouter matches as a prefix,
/// anything else must match the whole remaining path.
Route path(std::string_view pattern, ApplicationPtr app);
Route re_path(std::string_view pattern, ApplicationPtr app);

class URLRouter final : public Application {
 public:
  explicit URLRouter(std::vector<Route> routes) : routes_(std::move(routes)) {}
  std::unique_ptr<Consumer> route(Scope& scope) const override;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace channels
