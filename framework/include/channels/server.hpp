#pragma once
// The protocol server: HTTP/1.1 and WebSocket on one port (Boost.Beast),
// an io_context on N threads and one strand per connection. Or, embedded,
// on an io_context the host application owns and runs.

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>

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
  /// A server with its own io_context on options.threads threads.
  Server(ServerOptions options, ApplicationPtr app, std::shared_ptr<ChannelLayer> layer);
  /// An embedded server: it runs on `host`, which the application owns and
  /// runs on its own threads; options.threads is ignored and the server
  /// starts no thread. `host` must outlive the server. Several servers (each
  /// with its own port and layer) can share one io_context or have their own.
  Server(boost::asio::io_context& host, ServerOptions options, ApplicationPtr app,
         std::shared_ptr<ChannelLayer> layer);
  /// Shuts down if still running. Embedded, it waits for the connections to
  /// close, so the host's io_context must still be running on another thread
  /// (or be stopped: then the destructor runs it until they are closed).
  /// Prefer async_shutdown() and destroy the server once it has completed.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts the threads (embedded: only binds and accepts). Throws std::system_error if the address
  /// cannot be bound (the message names it).
  void start();
  /// The port bound (useful with port 0).
  std::uint16_t port() const;

  /// Graceful stop: no new connections, every WebSocket closed with 1001,
  /// up to drain_timeout for them to finish, then the threads end. Safe from
  /// any thread, and more than once. Embedded, the host's io_context keeps
  /// running; call this from a thread that is not running it (it blocks
  /// until the connections are closed), or use async_shutdown().
  void shutdown();
  /// Blocks until the server has stopped. Embedded, throws std::logic_error
  /// on a thread running the host's io_context (it would wait for itself).
  void wait();
  /// The same graceful stop, without blocking: the completion (an Asio
  /// completion token: a callback, use_awaitable, use_future) runs once the
  /// last connection is gone and the acceptor is closed, on the handler's
  /// associated executor, or else on the host's io_context (embedded) or
  /// the server thread that finished the drain. Then no server code runs any
  /// more, and the Server may be destroyed.
  template <class CompletionToken>
  auto async_shutdown(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) { initiate_shutdown(std::move(handler)); }, token);
  }
  /// start(), then serve until SIGINT or SIGTERM, then shutdown(). Returns 0.
  /// Not for an embedded server (std::logic_error): the host runs its
  /// io_context and decides when to stop.
  int run();

  ServerStats stats() const;
  /// Every counter in Prometheus' text format: what the metrics endpoint
  /// (ServerOptions::metrics_path) serves, for hosts that expose it their way.
  std::string metrics_text() const;
  ChannelLayer& channel_layer() const;

 private:
  void initiate_shutdown(boost::asio::any_completion_handler<void()> handler);
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace channels
