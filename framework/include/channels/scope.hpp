#pragma once
// The scope of one connection, as in ASGI: what the router and the consumer
// know about it before the first message.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <channels/message.hpp>

namespace channels {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};

/// Arguments captured by the route that matched: positional `args` (groups
/// without a name) and named `kwargs` (`<int:id>` lands as a JSON number,
/// every other converter as a string).
struct UrlRoute {
  std::vector<std::string> args;
  Json kwargs = Json::object();
};

struct Scope {
  std::string type;          // "http" or "websocket"
  std::string http_version = "1.1";
  std::string method;        // HTTP only: "GET", "POST"...
  std::string scheme;        // "http", "https", "ws" or "wss"
  std::string path;          // decoded, starts with '/'
  std::string raw_path;      // as received, still percent-encoded
  std::string query_string;  // after '?', still encoded
  std::string root_path;
  /// Header names lower-cased, values as received, in order (repeats kept).
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> subprotocols;  // websocket only, as offered
  Endpoint client;
  Endpoint server;
  UrlRoute url_route;
  /// What the enclosing URLRouters have not matched yet (no leading '/');
  /// unset until the first URLRouter sees the connection.
  std::optional<std::string> path_remaining;
  /// Anything middleware wants to add (a user, a session...).
  Json extensions = Json::object();

  /// First header of that name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  /// A URL kwarg as text ("" if the route has no such kwarg).
  std::string kwarg(std::string_view name) const;
  /// One query parameter, percent-decoded (first occurrence).
  std::optional<std::string> query(std::string_view name) const;
};

/// Percent-decoding for paths and query strings ('+' is a space only in
/// queries). Bytes that do not form valid UTF-8 become U+FFFD, as with
/// Python's unquote() in Django Channels.
std::string percent_decode(std::string_view in, bool plus_is_space = false);

}  // namespace channels
