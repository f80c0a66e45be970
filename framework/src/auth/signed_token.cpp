#include <channels/auth/signed_token.hpp>

#include <openssl/crypto.h>  // CRYPTO_memcmp

#include <channels/log.hpp>

#include "../crypto.hpp"

namespace channels::auth {

namespace {

// Without '=' padding: '=' may not appear in a subprotocol name.
std::string encode(std::string_view data) {
  auto s = detail::base64url_encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::optional<std::string> decode(std::string_view text) {
  std::string padded(text);
  if (padded.find('=') != std::string::npos) return std::nullopt;
  padded.append((4 - padded.size() % 4) % 4, '=');
  return detail::base64url_decode(padded);
}

std::int64_t unix_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string sign_token(Json claims, std::string_view secret, std::chrono::seconds ttl, Clock::time_point now) {
  if (!claims.is_object()) throw std::invalid_argument("sign_token: the claims must be a JSON object");
  if (secret.size() < 16) throw std::invalid_argument("sign_token: use a secret of at least 16 random bytes");
  claims["exp"] = unix_seconds(now + ttl);
  auto body = encode(claims.dump());
  return body + "." + encode(detail::hmac_sha256(secret, body));
}

TokenCheck verify_token(std::string_view token, std::string_view secret, Clock::time_point now) {
  TokenCheck r;
  auto dot = token.rfind('.');
  if (dot == std::string_view::npos) {
    r.error = "malformed token (expected PAYLOAD.SIGNATURE)";
    return r;
  }
  auto body = token.substr(0, dot);
  auto mac = decode(token.substr(dot + 1));
  auto expected = detail::hmac_sha256(secret, body);
  if (!mac || mac->size() != expected.size() || CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0) {
    r.error = "bad signature (tampered, or signed with another secret)";
    return r;
  }
  auto json = decode(body);
  Json claims = json ? Json::parse(*json, nullptr, false) : Json();
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number_integer()) {
    r.error = "malformed claims (a JSON object with an integer \"exp\" is required)";
    return r;
  }
  if (claims["exp"].get<std::int64_t>() <= unix_seconds(now)) {
    r.error = "expired";
    return r;
  }
  r.claims = std::move(claims);
  return r;
}

Authenticate signed_token_auth(std::string secret, TokenSources sources) {
  return [secret = std::move(secret), sources = std::move(sources)](Scope& scope) -> std::optional<Json> {
    auto token = take_token(scope, sources);
    if (!token) return std::nullopt;
    auto check = verify_token(*token, secret);
    if (!check) {
      log().info("{} {}: token refused: {}", scope.client.host, scope.path, check.error);
      return std::nullopt;
    }
    return check.claims;
  };
}

}  // namespace channels::auth
