#include "fernet.hpp"

#include "../crypto.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace channels::redis {

using detail::base64url_decode;
using detail::base64url_encode;
using detail::hmac_sha256;

namespace {

constexpr unsigned char version = 0x80;
constexpr std::int64_t max_clock_skew = 60;  // seconds, as cryptography's Fernet
constexpr std::size_t iv_bytes = 16, hmac_bytes = 32, header_bytes = 1 + 8 + iv_bytes;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::optional<std::string> aes_128_cbc(bool encrypt, std::string_view key, std::string_view iv, std::string_view in) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) return std::nullopt;
  auto* k = reinterpret_cast<const unsigned char*>(key.data());
  auto* v = reinterpret_cast<const unsigned char*>(iv.data());
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_128_cbc(), nullptr, k, v, encrypt ? 1 : 0) != 1) return std::nullopt;
  std::string out(in.size() + 32, '\0');
  int n1 = 0, n2 = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_CipherUpdate(ctx.get(), o, &n1, reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) != 1)
    return std::nullopt;
  if (EVP_CipherFinal_ex(ctx.get(), o + n1, &n2) != 1) return std::nullopt;  // PKCS7 padding
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

MultiFernet::MultiFernet(const std::vector<std::string>& keys) {
  if (keys.empty()) throw std::invalid_argument("MultiFernet needs at least one key");
  for (const auto& k : keys) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(k.data()), k.size(), digest);
    // Fernet(urlsafe_b64encode(digest)) decodes the same 32 bytes again:
    // the first half signs, the second half encrypts.
    keys_.push_back({std::string(reinterpret_cast<char*>(digest), 16), std::string(reinterpret_cast<char*>(digest) + 16, 16)});
  }
}

std::string MultiFernet::encrypt(std::string_view data) const {
  std::string iv(iv_bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(iv.data()), static_cast<int>(iv.size())) != 1)
    throw std::runtime_error("no random bytes for a Fernet IV (OpenSSL RAND_bytes failed)");
  return encrypt_at(data, unix_now(), iv);
}

std::string MultiFernet::encrypt_at(std::string_view data, std::int64_t now, std::string_view iv) const {
  const Key& key = keys_.front();
  std::string token;
  token += static_cast<char>(version);
  for (int shift = 56; shift >= 0; shift -= 8) token += static_cast<char>((static_cast<std::uint64_t>(now) >> shift) & 0xFF);
  token.append(iv);
  auto cipher = aes_128_cbc(true, key.encryption, iv, data);
  if (!cipher) throw std::runtime_error("AES-128-CBC encryption failed");
  token += *cipher;
  token += hmac_sha256(key.signing, token);
  return base64url_encode(token);
}

std::optional<std::string> MultiFernet::decrypt(std::string_view token, std::int64_t ttl, std::string& error) const {
  return decrypt_at(token, ttl, unix_now(), error);
}

std::optional<std::string> MultiFernet::decrypt_at(std::string_view text, std::int64_t ttl, std::int64_t now,
                                                   std::string& error) const {
  auto raw = base64url_decode(text);
  if (!raw || raw->size() < header_bytes + hmac_bytes || static_cast<unsigned char>((*raw)[0]) != version ||
      (raw->size() - header_bytes - hmac_bytes) % 16 != 0) {
    error = "not a Fernet token (is symmetric_encryption_keys set on one side only?)";
    return std::nullopt;
  }
  std::uint64_t ts = 0;
  for (int i = 1; i <= 8; ++i) ts = (ts << 8) | static_cast<unsigned char>((*raw)[i]);
  std::string_view signed_part(raw->data(), raw->size() - hmac_bytes);
  std::string_view mac(raw->data() + raw->size() - hmac_bytes, hmac_bytes);
  for (const auto& key : keys_) {
    std::string expected = hmac_sha256(key.signing, signed_part);
    if (CRYPTO_memcmp(expected.data(), mac.data(), hmac_bytes) != 0) continue;
    auto t = static_cast<std::int64_t>(ts);
    if (t + ttl < now) {
      error = "an encrypted message older than expiry + 10 s";
      return std::nullopt;
    }
    if (now + max_clock_skew < t) {
      error = "an encrypted message from more than 60 s in the future (check the clocks)";
      return std::nullopt;
    }
    auto plain = aes_128_cbc(false, key.encryption, raw->substr(9, iv_bytes),
                             signed_part.substr(header_bytes));
    if (!plain) {
      error = "a Fernet token whose padding is wrong";
      return std::nullopt;
    }
    return plain;
  }
  error = "a Fernet token signed with none of symmetric_encryption_keys";
  return std::nullopt;
}

}  // namespace channels::redis
