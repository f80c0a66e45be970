#pragma once
// Signed tokens: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part)),
// with an expiry ("exp", Unix seconds) that is always checked. The claims are
// readable by anyone, not secret: put a user id in them, never a password.
//
//   auto token = channels::auth::sign_token({{"user", "ann"}}, secret, std::chrono::hours(1));
//   auto app = std::make_shared<channels::auth::AuthMiddleware>(router,
//       channels::auth::signed_token_auth(secret), {.required = true});
//
// Every character of a token is allowed in a subprotocol, a header, a cookie
// and a query string, so a browser can send it with
// `new WebSocket(url, ["access_token", token])`.

#include <chrono>
#include <string>
#include <string_view>

#include <channels/auth/middleware.hpp>
#include <channels/message.hpp>

namespace channels::auth {

using Clock = std::chrono::system_clock;

/// Signs `claims` (a JSON object) with an "exp" `ttl` from `now`.
std::string sign_token(Json claims, std::string_view secret, std::chrono::seconds ttl, Clock::time_point now = Clock::now());

struct TokenCheck {
  std::optional<Json> claims;  // set when valid
  std::string error;           // otherwise: malformed, bad signature or expired
  explicit operator bool() const { return claims.has_value(); }
};

/// Checks the signature (in constant time) and the expiry.
TokenCheck verify_token(std::string_view token, std::string_view secret, Clock::time_point now = Clock::now());

/// An Authenticate for AuthMiddleware: the user is the claims of a valid
/// token found by take_token(). Refusals are logged with the reason.
Authenticate signed_token_auth(std::string secret, TokenSources sources = {});

}  // namespace channels::auth
