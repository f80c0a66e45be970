#pragma once
// One entry of channel_layer.hosts: where a Redis server is and how to log in.
// Private to the Redis layer.

#include <cstdint>
#include <string>
#include <string_view>

namespace channels::redis {

struct Endpoint {
  std::string host = "localhost";
  std::uint16_t port = 6379;
  std::string username;  // Redis 6 ACL user; empty: AUTH with the password only
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT after connecting, if not 0

  /// The URL without the password, for log lines.
  std::string display() const;
};

/// Parses redis://[[user]:password@]host[:port][/db], the form channels_redis
/// takes in "hosts" (redis-py's from_url). Throws ConfigError saying what to
/// write instead for anything else (rediss://, unix://, a bare host).
Endpoint parse_url(std::string_view url);

}  // namespace channels::redis
