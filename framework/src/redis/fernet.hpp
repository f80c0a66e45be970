#pragma once
// Fernet tokens (the cryptography package's format) with channels_redis' key
// derivation, so encrypted messages read the same on both sides. Private to
// the Redis layer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace channels::redis {

/// channels_redis' MultiFernet over `symmetric_encryption_keys`: each key
/// (UTF-8 text) becomes the Fernet key urlsafe_b64encode(SHA-256(key));
/// encryption uses the first, decryption tries each in order.
class MultiFernet {
 public:
  explicit MultiFernet(const std::vector<std::string>& keys);

  /// A token: base64url(0x80 | timestamp | IV | AES-128-CBC(data) | HMAC-SHA256).
  std::string encrypt(std::string_view data) const;
  std::string encrypt_at(std::string_view data, std::int64_t now, std::string_view iv) const;

  /// The plain text, or nullopt with `error` set: not a token, signed with
  /// none of the keys, or older than `ttl_seconds` (channels_redis passes
  /// expiry + 10).
  std::optional<std::string> decrypt(std::string_view token, std::int64_t ttl_seconds, std::string& error) const;
  std::optional<std::string> decrypt_at(std::string_view token, std::int64_t ttl_seconds, std::int64_t now,
                                        std::string& error) const;

 private:
  struct Key {
    std::string signing;     // 16 bytes
    std::string encryption;  // 16 bytes
  };
  std::vector<Key> keys_;
};

}  // namespace channels::redis
