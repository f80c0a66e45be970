#pragma once
// The server's settings (routing.yaml `server:`), with safe defaults.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace channels {

/// What to do with a message for a client whose send queue is full (a client
/// that does not read): close it, or drop the message and count it.
enum class SendQueuePolicy { close, drop };

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8000;        // 0 picks a free port (see Server::port())
  unsigned threads = 0;             // 0: one per hardware thread
  std::size_t max_header_bytes = 16 * 1024;   // beyond: HTTP 431
  std::size_t max_body_bytes = 1024 * 1024;   // beyond: HTTP 413
  std::chrono::milliseconds handshake_timeout{10'000};   // whole request, or the upgrade
  std::chrono::milliseconds http_keepalive_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};        // silent WebSocket peer: closed
  bool keepalive_pings = true;     // ping after half the idle timeout
  std::size_t max_message_bytes = 1024 * 1024;  // beyond: close 1009
  /// Bytes waiting to be written per connection (payloads plus a small
  /// per-message overhead). A burst fits; a client that stops reading does not.
  std::size_t send_queue_max_bytes = 4 * 1024 * 1024;
  SendQueuePolicy send_queue_policy = SendQueuePolicy::close;  // close: 1008
  std::chrono::milliseconds drain_timeout{5'000};  // on SIGINT/SIGTERM
  /// Path of the Prometheus text endpoint, like "/metrics"; empty: off.
  /// It answers any client that reaches the port: expose it only behind a
  /// proxy that keeps it private.
  std::string metrics_path;
  /// Access log: empty for the framework's log (stderr), "-" for stdout, or
  /// a file to append to. One line per HTTP request and per WebSocket
  /// connect, refusal and disconnect.
  std::string access_log;
  /// Prefix the app is mounted under behind a proxy (scope.root_path).
  std::string root_path;
  /// Trust X-Forwarded-For / X-Forwarded-Proto for scope.client and
  /// scope.scheme: only behind a proxy that sets them (anyone else could).
  bool proxy_headers = false;
};

}  // namespace channels
