#pragma once
// Authentication middleware, as Channels' AuthMiddleware: wraps an
// application, finds out who is connecting before any consumer exists, and
// puts the user in scope().extensions["user"] (null for nobody). With
// `required`, nobody gets 403 (WebSocket) or 401 (HTTP) instead.
//
//   auto app = std::make_shared<channels::auth::AuthMiddleware>(router,
//       channels::auth::signed_token_auth(secret), {.required = true});
//
// Any Authenticate works: look a session cookie up in a store, check an API
// key, call out to a token service... It runs on the connection's strand
// before routing, so keep it quick.

#include <functional>
#include <optional>
#include <string>

#include <channels/routing.hpp>

namespace channels::auth {

/// The user for this handshake (any JSON: {"id": 7, "name": "ann"}), or
/// nullopt when credentials are missing or invalid.
using Authenticate = std::function<std::optional<Json>(Scope& scope)>;

struct AuthOptions {
  /// Refuse unauthenticated connections (403 for a WebSocket, 401 for HTTP).
  /// Off: they reach the consumer with a null user, which decides.
  bool required = false;
};

class AuthMiddleware final : public Application {
 public:
  AuthMiddleware(ApplicationPtr app, Authenticate authenticate, AuthOptions options = {});
  std::unique_ptr<Consumer> route(Scope& scope) const override;

 private:
  ApplicationPtr app_;
  Authenticate authenticate_;
  AuthOptions options_;
};

/// The subprotocol a browser offers before its token, as in
/// `new WebSocket(url, ["access_token", token])`: the middleware takes the
/// token out of scope().subprotocols and the server answers "access_token"
/// when the consumer accepts without naming one (a browser fails a handshake
/// whose answer names none of its offers).
inline constexpr std::string_view token_subprotocol = "access_token";

/// Where a token may come from, tried in this order.
struct TokenSources {
  bool subprotocol = true;             // ["access_token", TOKEN]
  bool authorization = true;           // Authorization: Bearer TOKEN
  std::string cookie = "token";        // Cookie: token=TOKEN ("" to skip)
  std::string query = "token";         // ?token=TOKEN (ends up in access logs; "" to skip)
};

/// The token in the handshake, if any (removing it from the subprotocols).
std::optional<std::string> take_token(Scope& scope, const TokenSources& sources = {});

}  // namespace channels::auth
