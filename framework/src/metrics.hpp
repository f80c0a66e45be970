#pragma once
// Private to the server: the counters behind the Prometheus endpoint
// (routing.yaml `server.metrics_path`) and Server::metrics_text().
// Plain relaxed atomics: a scrape reads a consistent-enough snapshot
// without taking any lock on the I/O path.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include <channels/layer.hpp>

namespace channels::detail {

/// Why a WebSocket handshake did not end in an open connection.
enum class HandshakeFailure {
  bad_request,  // not a valid upgrade (method, version, key)
  not_found,    // no WebSocket route for the path
  refused,      // the consumer closed before accept (403)
  timeout,      // the consumer neither accepted nor closed in time (403)
  error,        // the consumer threw while connecting (500)
  shutdown,     // the server was stopping (503)
  io_error,     // the handshake itself failed on the wire
  count_
};
std::string_view to_string(HandshakeFailure f);

struct Metrics {
  using Counter = std::atomic<std::uint64_t>;
  Counter ws_messages_in{0};
  Counter ws_bytes_in{0};
  Counter ws_messages_out{0};
  Counter ws_bytes_out{0};
  Counter ws_connects{0};
  Counter ws_disconnects{0};
  std::array<Counter, static_cast<std::size_t>(HandshakeFailure::count_)> handshake_failures{};

  void failed(HandshakeFailure f) {
    handshake_failures[static_cast<std::size_t>(f)].fetch_add(1, std::memory_order_relaxed);
  }
};

struct ServerImpl;
/// The Prometheus text exposition (format 0.0.4) of everything the server
/// and its layer count.
std::string prometheus_text(const ServerImpl& server);

}  // namespace channels::detail
