#pragma once
// Origin checks for WebSockets, as Channels' OriginValidator: a browser sends
// the page's origin with every WebSocket handshake, and cookies ride along,
// so any site could open a socket in the name of a logged-in user unless the
// server checks where the page came from (cross-site WebSocket hijacking).
//
//   auto app = std::make_shared<OriginValidator>(router,
//       std::vector<std::string>{"example.com", "*.example.com", "https://app.example.com:8443"});
//
// Patterns, as in Channels (Django's ALLOWED_HOSTS syntax) plus globs:
//   "*"                        any origin, and a missing one
//   "example.com"              that host, any scheme and port
//   ".example.com"             example.com and every subdomain
//   "*.example.com"            every subdomain, not example.com itself
//   "https://example.com:8443" that scheme, host and port (default ports filled in)
// A connection whose Origin matches none, or has none (unless "*" is listed
// or allow_missing is set), is refused with 403 before its consumer exists.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <channels/routing.hpp>

namespace channels {

/// True if `origin` (the Origin header, if any) matches one of `patterns`.
/// A missing Origin passes only with "*" or `allow_missing` (non-browser
/// clients send none; browsers always do, so CSWSH protection holds).
bool origin_allowed(std::optional<std::string_view> origin, const std::vector<std::string>& patterns,
                    bool allow_missing = false);

class OriginValidator final : public Application {
 public:
  OriginValidator(ApplicationPtr app, std::vector<std::string> allowed_origins, bool allow_missing = false);
  /// WebSocket scopes only; HTTP passes through untouched.
  std::unique_ptr<Consumer> route(Scope& scope) const override;

 private:
  ApplicationPtr app_;
  std::vector<std::string> allowed_;
  bool allow_missing_;
};

}  // namespace channels
