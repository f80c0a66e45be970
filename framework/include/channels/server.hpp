#pragma once
// The protocol server: HTTP/1.1 and WebSocket on one port (Boost.Beast),
// an io_context on N threads and one strand per connection.

#include <cstdint>
#include <memory>
#include <string>

#include <channels/layer.hpp>
#include <channels/routing.hpp>
#include <channels/server_options.hpp>

namespace channels {

namespace detail {
struct ServerImpl;
}

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t websockets_open = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t send_queue_drops = 0;
  /// Requests and handshakes refused by max_connections (503) or
  /// max_connections_per_ip (429).
  std::uint64_t connections_refused = 0;
};

class Server {
 public:
  Server(ServerOptions options, ApplicationPtr app, std::shared_ptr<ChannelLayer> layer);
  ~Server();  // shuts down if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts the threads. Throws std::system_error if the address
  /// cannot be bound (the message names it).
  void start();
  /// The port bound (useful with port 0).
  std::uint16_t port() const;

  /// Graceful stop: no new connections, every WebSocket closed with 1001,
  /// up to drain_timeout for them to finish, then the threads end. Safe from
  /// any thread, and more than once.
  void shutdown();
  /// Blocks until the server has stopped.
  void wait();
  /// start(), then serve until SIGINT or SIGTERM, then shutdown(). Returns 0.
  int run();

  ServerStats stats() const;
  /// Every counter in Prometheus' text format: what the metrics endpoint
  /// (ServerOptions::metrics_path) serves, for hosts that expose it their way.
  std::string metrics_text() const;
  ChannelLayer& channel_layer() const;

 private:
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace channels
