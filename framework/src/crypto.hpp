#pragma once
// Private to the framework: the OpenSSL primitives that signed tokens
// (auth) and Fernet (the Redis layer's encryption) share.

#include <optional>
#include <string>
#include <string_view>

namespace channels::detail {

/// The 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// URL-safe base64 with '=' padding, as Python's urlsafe_b64encode.
std::string base64url_encode(std::string_view data);
/// The bytes, or nullopt for text that is not padded URL-safe base64.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace channels::detail
