#pragma once
// Private to the server: the HTTP and WebSocket sessions.

#include <chrono>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <channels/consumer.hpp>

#include "server_impl.hpp"
#include "server_stream.hpp"

namespace channels::detail {

namespace beast = boost::beast;
namespace http = beast::http;
using Request = http::request<http::string_body>;

/// Fills what every scope has from the request and the socket.
Scope make_scope(const Request& req, const ServerStream& stream, std::string type);

/// Takes over an upgraded connection from the HTTP session `from` (and its
/// place in the server's connection counts): runs on_connect, then the
/// handshake (or its refusal), then the WebSocket. `early` is what the
/// client sent after the upgrade request without waiting for the answer.
void start_websocket_session(ServerImpl& server, Session* from, ServerStream stream, Request req, Scope scope,
                             std::unique_ptr<Consumer> consumer, std::string early);

/// root_path, and the client and scheme from a trusted proxy's headers.
void apply_server_options(Scope& scope, const ServerOptions& options);

/// An access-log line, as daphne writes them, with how long it took.
void log_access(ServerImpl& server, const Scope& scope, int status, std::size_t bytes,
                std::chrono::steady_clock::duration took = {});
/// Milliseconds, for access lines.
inline double millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace channels::detail
