#pragma once
// Private to the server: the HTTP and WebSocket sessions.

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

/// Takes over an upgraded connection: runs on_connect, then the handshake
/// (or its refusal), then the WebSocket.
void start_websocket_session(ServerImpl& server, ServerStream stream, Request req, Scope scope,
                             std::unique_ptr<Consumer> consumer);

/// An access-log line, as daphne writes them.
void log_access(const Scope& scope, int status, std::size_t bytes);

}  // namespace channels::detail
