#include "redis_url.hpp"

#include <charconv>

#include <fmt/format.h>

#include <channels/errors.hpp>

namespace channels::redis {

namespace {

[[noreturn]] void bad(std::string_view url, std::string_view why) {
  throw ConfigError(fmt::format("channel_layer.hosts: '{}' {}; write a URL like redis://127.0.0.1:6379 "
                                "or redis://:password@host:6379/0",
                                url, why));
}

// %xx escapes, as redis-py unquotes user names and passwords.
std::string unquote(std::string_view s, std::string_view url) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size() || std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr != s.data() + i + 3)
      bad(url, "has a '%' that is not followed by two hex digits");
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

}  // namespace

std::string Endpoint::display() const {
  std::string auth = password.empty() ? std::string{} : (username.empty() ? ":***@" : username + ":***@");
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}{}:{}/{}", auth, v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

Endpoint parse_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (url.rfind("rediss://", 0) == 0) bad(url, "uses TLS (rediss://), which this build does not support");
  if (url.rfind("unix://", 0) == 0) bad(url, "is a Unix socket, which this build does not support");
  if (url.rfind(scheme, 0) != 0) bad(url, "is not a redis:// URL");
  Endpoint ep;
  std::string_view rest = url.substr(scheme.size());
  if (auto q = rest.find('?'); q != std::string_view::npos) bad(url, "has query options, which are not supported");
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = auth.find(':'); colon != std::string_view::npos) {
      ep.username = unquote(auth.substr(0, colon), url);
      ep.password = unquote(auth.substr(colon + 1), url);
    } else {
      ep.password = unquote(auth, url);  // redis://secret@host: redis-py reads it as the password too
    }
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) bad(url, "has a '[' without ']' around an IPv6 address");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad(url, "has something other than ':port' after the IPv6 address");
      port = after.substr(1);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!host.empty()) ep.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535)
      bad(url, fmt::format("has port '{}', which is not a number from 1 to 65535", port));
    ep.port = static_cast<std::uint16_t>(p);
  }
  if (!path.empty()) {
    int db = 0;
    auto [ptr, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc{} || ptr != path.data() + path.size() || db < 0)
      bad(url, fmt::format("has '/{}' where a database number belongs", path));
    ep.db = db;
  }
  return ep;
}

}  // namespace channels::redis
