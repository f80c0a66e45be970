#pragma once
// The server's settings (routing.yaml `server:`), with safe defaults.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace channels {

/// What to do with a message for a client whose send queue is full (a client
/// that does not read): close it, or drop the message and count it.
///   close            close with 1008 (Policy Violation): the client is treated
///                    as misbehaving, and should not simply come back
///   close_try_again  close with 1013 (Try Again Later): the condition is
///                    temporary (a slow link, a burst, a tab in the
///                    background), and a client that reconnects after a
///                    back-off is welcome; what it missed is gone either way
///   drop             keep the connection, drop the new message (counted)
enum class SendQueuePolicy { close, drop, close_try_again };

/// permessage-deflate (RFC 7692), used when enabled here and the client offers
/// it. Each compressing connection holds a zlib deflate state of
/// 2^(window_bits+2) + 2^(mem_level+9) bytes and an inflate window of 32 KiB
/// (clients pick their own window unless they offer to be bounded): the
/// defaults, like Python websockets', cost about 80 KiB per connection.
struct DeflateOptions {
  bool enabled = false;
  int window_bits = 12;        // 9..15: the server's LZ77 window, 2^bits bytes
  int mem_level = 5;           // 1..9: zlib's memLevel (hash table size)
  int compression_level = 6;   // 0..9: zlib's level (1 fastest, 9 smallest)
  std::size_t min_bytes = 0;   // smaller messages are sent uncompressed
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8000;        // 0 picks a free port (see Server::port())
  /// SO_REUSEPORT (Linux): several processes listen on the same port and
  /// the kernel spreads new connections over them, one process per core
  /// with no proxy in front; they share groups through the Redis layer.
  /// Every process on the port must set it.
  bool reuse_port = false;
  unsigned threads = 0;             // 0: one per hardware thread
  std::size_t max_header_bytes = 16 * 1024;   // beyond: HTTP 431
  std::size_t max_body_bytes = 1024 * 1024;   // beyond: HTTP 413
  std::chrono::milliseconds handshake_timeout{10'000};   // whole request, or the upgrade
  std::chrono::milliseconds http_keepalive_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};        // silent WebSocket peer: closed
  bool keepalive_pings = true;     // ping after half the idle timeout
  std::size_t max_message_bytes = 1024 * 1024;  // beyond: close 1009
  /// Bytes waiting per connection behind the write in progress (payloads
  /// plus a small per-message overhead). A burst fits; a client that stops
  /// reading does not. With the write in progress (at most one earlier
  /// queue's worth), a connection holds at most about twice this.
  std::size_t send_queue_max_bytes = 4 * 1024 * 1024;
  SendQueuePolicy send_queue_policy = SendQueuePolicy::close;  // close: 1008, close_try_again: 1013
  std::chrono::milliseconds drain_timeout{5'000};  // on SIGINT/SIGTERM
  /// Connections (HTTP and WebSocket) served at once; beyond, a request or
  /// handshake gets 503 with Retry-After. 0: the open-file limit less a
  /// reserve, so the server answers 503 instead of failing accept().
  std::size_t max_connections = 0;
  /// Connections from one client address; beyond: 429 with Retry-After.
  /// 0: no limit (behind a proxy every client has the proxy's address).
  std::size_t max_connections_per_ip = 0;
  /// Seconds a refused client is told to wait (the Retry-After header).
  std::chrono::seconds retry_after{5};
  /// Origins allowed to open a WebSocket (patterns as in OriginValidator:
  /// "example.com", ".example.com", "*.example.com", "https://host:port",
  /// "*"); others get 403 before routing. Empty: no check.
  std::vector<std::string> allowed_origins;
  /// Let a handshake without Origin through (non-browser clients send none;
  /// browsers always do). Channels refuses it unless "*" is listed.
  bool allow_missing_origin = false;
  /// PEM files for https:// and wss:// (routing.yaml `tls: {cert, key}`).
  /// Both empty: plain TCP. The key must not have a passphrase.
  std::string tls_cert;
  std::string tls_key;
  DeflateOptions permessage_deflate;  // off unless enabled
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
