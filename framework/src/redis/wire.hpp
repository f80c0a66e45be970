#pragma once
// channels_redis 4's storage format, as plain functions: key names, host
// sharding, scores, capacity patterns, the stored member (12 random bytes,
// then msgpack, maybe encrypted) and the Lua scripts. Private to the Redis
// layer; every rule here is quoted from channels_redis so both sides agree.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <channels/message.hpp>

namespace channels::redis {

class MultiFernet;

/// The reserved key that names the receiving channel(s) inside a message:
/// a string after send(), a list after group_send().
inline constexpr std::string_view asgi_channel_key = "__asgi_channel__";

/// Bytes in front of every stored member. They keep members of a sorted set
/// distinct (two equal messages would otherwise collapse into one); readers
/// drop them unread.
inline constexpr std::size_t random_prefix_bytes = 12;

/// "specific.<process>!<local>" -> "specific.<process>!" (up to and with the
/// first '!'); a name without '!' is its own non-local name.
std::string_view non_local_name(std::string_view channel);
inline bool is_process_local(std::string_view channel) { return channel.find('!') != std::string_view::npos; }

/// prefix + non-local name, with no separator ("asgispecific.<P>!").
std::string channel_key(std::string_view prefix, std::string_view channel);
/// "<prefix>:group:<group>" (with a separator, unlike channel keys).
std::string group_key(std::string_view prefix, std::string_view group);

/// channels_redis' _consistent_hash: crc32 of the UTF-8 value, low 12 bits,
/// scaled to the number of hosts in double precision (integer arithmetic
/// picks another host for some host counts).
std::size_t consistent_hash(std::string_view value, std::size_t hosts);

/// A score as Python's repr(float) writes it (shortest text that reads back
/// to the same double).
std::string score_text(double seconds);

/// fnmatch-style pattern ('*', '?', '[abc]', '[!abc]'), matched against the
/// whole name, as channels_redis compiles channel_capacity keys.
bool glob_match(std::string_view pattern, std::string_view name);

/// msgpack of a message (a JSON object; binary values become msgpack bin).
std::string pack(const Message& message);
/// The same msgpack map with one more entry at its end. Lets a group_send
/// encode the message once and add each destination's __asgi_channel__
/// without packing the message again.
std::string pack_with(std::string_view packed_map, std::string_view key, const Json& value);

/// 12 random bytes + body (the body encrypted first if `crypter` is set).
std::string make_member(std::string_view body, const MultiFernet* crypter);

struct Decoded {
  Message message;          // without __asgi_channel__
  Json channels;            // __asgi_channel__ as found: a string, a list, or null if absent
};

/// Reads one stored member. On failure returns nullopt and says why in
/// `error` (too short, wrong key, expired token, not msgpack, not a map,
/// invalid UTF-8...), so the caller can log it and go on.
std::optional<Decoded> read_member(std::string_view member, const MultiFernet* crypter, std::int64_t ttl_seconds,
                                   std::string& error);

/// A bare msgpack message, as the pub/sub layer publishes it (no prefix,
/// no encryption); the same checks and __asgi_channel__ handling.
std::optional<Decoded> read_body(std::string_view body, std::string& error);

/// True if every string and key in `j` is valid UTF-8 (msgpack's str type
/// promises it, and Python refuses a message otherwise).
bool valid_utf8(const Json& j);

/// channels_redis' Lua scripts, byte for byte.
/// KEYS: channel keys; ARGV: messages, capacities, now, expiry. Returns how
/// many keys were at capacity (their message was not stored).
extern const std::string_view group_send_script;
/// ARGV[1]: channel key, ARGV[2]: its "$inflight" backup. Puts back what an
/// interrupted receive had taken out.
extern const std::string_view restore_script;

}  // namespace channels::redis
