#include <channels/auth/middleware.hpp>

#include <channels/denier.hpp>
#include <channels/http_consumer.hpp>
#include <channels/log.hpp>

namespace channels::auth {

namespace {

// The HTTP counterpart of WebsocketDenier.
struct HttpDenier final : HttpConsumer {
  void on_request(const HttpRequest&) override {
    send_response(401, "401 Unauthorized: sign in, or send a valid token\n",
                  {{"Content-Type", "text/plain; charset=utf-8"}, {"WWW-Authenticate", "Bearer"}});
  }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> cookie(const Scope& scope, std::string_view name) {
  for (const auto& [k, v] : scope.headers) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      auto pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) return std::string(trim(pair.substr(eq + 1)));
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> take_token(Scope& scope, const TokenSources& sources) {
  if (sources.subprotocol) {
    auto& offered = scope.subprotocols;
    for (std::size_t i = 0; i + 1 < offered.size(); ++i) {
      if (offered[i] != token_subprotocol) continue;
      std::string token = offered[i + 1];
      // Out of the scope, so that no consumer echoes the token back.
      offered.erase(offered.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      scope.extensions["subprotocol"] = std::string(token_subprotocol);
      return token;
    }
  }
  if (sources.authorization) {
    if (auto h = scope.header("authorization")) {
      auto v = trim(*h);
      if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) return std::string(trim(v.substr(7)));
    }
  }
  if (!sources.cookie.empty())
    if (auto c = cookie(scope, sources.cookie)) return c;
  if (!sources.query.empty())
    if (auto q = scope.query(sources.query)) return q;
  return std::nullopt;
}

AuthMiddleware::AuthMiddleware(ApplicationPtr app, Authenticate authenticate, AuthOptions options)
    : app_(std::move(app)), authenticate_(std::move(authenticate)), options_(options) {}

std::unique_ptr<Consumer> AuthMiddleware::route(Scope& scope) const {
  std::optional<Json> user;
  try {
    user = authenticate_(scope);
  } catch (const std::exception& e) {
    log().error("authentication for {} threw: {}; treating the client as not signed in", scope.path, e.what());
  }
  scope.extensions["user"] = user ? std::move(*user) : Json(nullptr);
  if (!scope.extensions["user"].is_null() || !options_.required) return app_->route(scope);
  if (scope.type == "websocket") return std::make_unique<WebsocketDenier>();
  return std::make_unique<HttpDenier>();
}

}  // namespace channels::auth
