#include "wire.hpp"

#include <cmath>
#include <random>

#include <boost/crc.hpp>
#include <fmt/format.h>

#include "fernet.hpp"
#include "../utf8.hpp"

namespace channels::redis {

std::string_view non_local_name(std::string_view channel) {
  auto bang = channel.find('!');
  return bang == std::string_view::npos ? channel : channel.substr(0, bang + 1);
}

std::string channel_key(std::string_view prefix, std::string_view channel) {
  std::string key(prefix);
  key += non_local_name(channel);
  return key;
}

std::string group_key(std::string_view prefix, std::string_view group) {
  return fmt::format("{}:group:{}", prefix, group);
}

std::size_t consistent_hash(std::string_view value, std::size_t hosts) {
  if (hosts <= 1) return 0;
  boost::crc_32_type crc;  // zlib's CRC-32, as binascii.crc32
  crc.process_bytes(value.data(), value.size());
  double big = static_cast<double>(crc.checksum() & 0xFFFu);
  double divisor = 4096.0 / static_cast<double>(hosts);
  auto index = static_cast<std::size_t>(big / divisor);
  return index < hosts ? index : hosts - 1;
}

std::string score_text(double seconds) { return fmt::format("{}", seconds); }

namespace {

// One '[...]' class at pattern[i] ('[' itself). Sets `end` past the ']' and
// returns whether `c` is in it; returns nullopt if there is no closing ']'
// (then fnmatch treats the '[' as a literal).
std::optional<bool> match_class(std::string_view p, std::size_t i, char c, std::size_t& end) {
  std::size_t j = i + 1;
  bool negate = false;
  if (j < p.size() && p[j] == '!') negate = true, ++j;
  std::size_t first = j;
  if (j < p.size() && p[j] == ']') ++j;  // a ']' right after '[' or '[!' is literal
  while (j < p.size() && p[j] != ']') ++j;
  if (j >= p.size()) return std::nullopt;
  bool in = false;
  for (std::size_t k = first; k < j; ++k) {
    if (k + 2 < j && p[k + 1] == '-') {
      if (p[k] <= c && c <= p[k + 2]) in = true;
      k += 2;
    } else if (p[k] == c) {
      in = true;
    }
  }
  end = j + 1;
  return in != negate;
}

bool glob_from(std::string_view p, std::size_t pi, std::string_view s, std::size_t si) {
  while (pi < p.size()) {
    char pc = p[pi];
    if (pc == '*') {
      while (pi < p.size() && p[pi] == '*') ++pi;
      if (pi == p.size()) return true;
      for (std::size_t k = si; k <= s.size(); ++k)
        if (glob_from(p, pi, s, k)) return true;
      return false;
    }
    if (si == s.size()) return false;
    if (pc == '?') {
      ++pi, ++si;
      continue;
    }
    if (pc == '[') {
      std::size_t end = 0;
      if (auto in = match_class(p, pi, s[si], end)) {
        if (!*in) return false;
        pi = end, ++si;
        continue;
      }
    }
    if (pc != s[si]) return false;
    ++pi, ++si;
  }
  return si == s.size();
}

void put_map_header(std::string& out, std::size_t n) {
  if (n <= 15) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(0xde);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(0xdf);
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view name) { return glob_from(pattern, 0, name, 0); }

std::string pack(const Message& message) {
  std::string out;
  Json::to_msgpack(message, nlohmann::detail::output_adapter<char>(out));
  return out;
}

std::string pack_with(std::string_view packed, std::string_view key, const Json& value) {
  if (packed.empty()) throw std::invalid_argument("pack_with: empty msgpack");
  auto b = static_cast<unsigned char>(packed[0]);
  std::size_t n, header;
  if ((b & 0xF0) == 0x80) {
    n = b & 0x0F, header = 1;
  } else if (b == 0xde && packed.size() >= 3) {
    n = (static_cast<std::size_t>(static_cast<unsigned char>(packed[1])) << 8) | static_cast<unsigned char>(packed[2]);
    header = 3;
  } else if (b == 0xdf && packed.size() >= 5) {
    n = 0;
    for (int k = 1; k <= 4; ++k) n = (n << 8) | static_cast<unsigned char>(packed[k]);
    header = 5;
  } else {
    throw std::invalid_argument("pack_with: not a msgpack map");
  }
  std::string out;
  out.reserve(packed.size() + key.size() + 128);
  put_map_header(out, n + 1);
  out.append(packed.substr(header));
  out += pack(Json(std::string(key)));
  out += pack(value);
  return out;
}

std::string make_member(std::string_view body, const MultiFernet* crypter) {
  // Python draws these from random.getrandbits(96); any value works as long
  // as equal messages get different ones.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string member(random_prefix_bytes, '\0');
  std::uint64_t a = rng(), b = rng();
  for (std::size_t i = 0; i < 8; ++i) member[i] = static_cast<char>((a >> (8 * i)) & 0xFF);
  for (std::size_t i = 8; i < random_prefix_bytes; ++i) member[i] = static_cast<char>((b >> (8 * (i - 8))) & 0xFF);
  if (crypter)
    member += crypter->encrypt(body);
  else
    member.append(body);
  return member;
}

bool valid_utf8(const Json& j) {
  switch (j.type()) {
    case Json::value_t::string: return detail::is_utf8(j.get_ref<const std::string&>());
    case Json::value_t::array:
      for (const auto& v : j)
        if (!valid_utf8(v)) return false;
      return true;
    case Json::value_t::object:
      for (const auto& [k, v] : j.items())
        if (!detail::is_utf8(k) || !valid_utf8(v)) return false;
      return true;
    default: return true;
  }
}

std::optional<Decoded> read_member(std::string_view member, const MultiFernet* crypter, std::int64_t ttl_seconds,
                                   std::string& error) {
  if (member.size() <= random_prefix_bytes) {
    error = fmt::format("{} bytes, fewer than the 12-byte prefix and a body", member.size());
    return std::nullopt;
  }
  std::string_view body = member.substr(random_prefix_bytes);
  std::string plain;
  if (crypter) {
    auto d = crypter->decrypt(body, ttl_seconds, error);
    if (!d) return std::nullopt;
    plain = std::move(*d);
    body = plain;
  }
  return read_body(body, error);
}

std::optional<Decoded> read_body(std::string_view body, std::string& error) {
  Decoded out;
  try {
    // strict: one object and nothing after it, as msgpack.unpackb insists.
    out.message = Json::from_msgpack(body.begin(), body.end(), true, true);
  } catch (const Json::exception& e) {
    error = fmt::format("not msgpack ({})", e.what());
    return std::nullopt;
  }
  if (!out.message.is_object()) {
    error = fmt::format("a msgpack {}, not a map", out.message.type_name());
    return std::nullopt;
  }
  if (!valid_utf8(out.message)) {
    error = "a string that is not valid UTF-8";
    return std::nullopt;
  }
  if (auto it = out.message.find(std::string(asgi_channel_key)); it != out.message.end()) {
    out.channels = std::move(*it);
    out.message.erase(it);
  }
  return out;
}

const std::string_view group_send_script = R"(
                local over_capacity = 0
                local current_time = ARGV[#ARGV - 1]
                local expiry = ARGV[#ARGV]
                for i=1,#KEYS do
                    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
                        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
                        redis.call('EXPIRE', KEYS[i], expiry)
                    else
                        over_capacity = over_capacity + 1
                    end
                end
                return over_capacity
            )";

const std::string_view restore_script = R"(
            local backed_up = redis.call('ZRANGE', ARGV[2], 0, -1, 'WITHSCORES')
            for i = #backed_up, 1, -2 do
                redis.call('ZADD', ARGV[1], backed_up[i], backed_up[i - 1])
            end
            redis.call('DEL', ARGV[2])
        )";

}  // namespace channels::redis
