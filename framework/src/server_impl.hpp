#pragma once
// Private to the server: what every session shares.

#include <atomic>
#include <cassert>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/logger.h>

#include <channels/executor.hpp>
#include <channels/server.hpp>

#include "metrics.hpp"
#include "session_table.hpp"

namespace channels::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;

/// A live connection, as the server sees it for shutdown.
class Session {
 public:
  virtual ~Session() = default;
  /// Posted on the session's strand when the server stops: finish what is
  /// in flight and close (WebSockets with 1001).
  virtual void shutdown() = 0;
  /// Posted when the drain timeout has passed: cut the connection now (the
  /// consumer still gets on_disconnect).
  virtual void abort() = 0;
  /// Called (off the session's strand) every half idle timeout: a WebSocket
  /// that reads its own frames checks whether its peer went silent.
  virtual void idle_check() {}

  SessionSlot slot;  // in ServerImpl::sessions
};

struct ServerImpl {
  /// `host` null: the server owns its io_context and threads.
  ServerImpl(net::io_context* host, ServerOptions o, ApplicationPtr a, std::shared_ptr<ChannelLayer> l);
  ~ServerImpl();

  void start();
  void begin_shutdown();
  void join();
  /// The io_context everything runs on: the host's, or the server's own.
  net::io_context& context() { return host ? *host : *ioc; }
  /// Runs `h` once the server has stopped (at once if it has).
  void when_stopped(net::any_completion_handler<void()> h);
  /// The drain is over: no session, no accept in flight.
  void finish();

  void do_accept();
  /// One timer for every connection's idle timeout (a pending timer per
  /// connection costs about 350 bytes): each half timeout, every session's
  /// idle_check().
  void start_idle_sweep();
  void arm_idle_sweep();
  void stop_idle_sweep();
  void end_idle_sweep();
  void load_tls();
  /// Whether a new connection fits under max_connections and
  /// max_connections_per_ip (it counts itself).
  enum class Admission { ok, server_full, client_full };
  /// Registers a live connection; `client` is its address, for the per-IP count.
  Admission add(Session* s, std::weak_ptr<Session> w, const std::string& client = {});
  void remove(Session* s);
  /// An upgrade: the WebSocket session `to` takes the HTTP session's place
  /// and its count in one step, so that a connection is never counted twice
  /// (which refused a client's next connection at its per-address limit)
  /// nor missing.
  void hand_over(Session* from, Session* to, std::weak_ptr<Session> w);
  std::size_t session_count();

  ServerOptions options;
  ApplicationPtr app;
  std::shared_ptr<ChannelLayer> layer;

  net::io_context* host = nullptr;  // embedded: the application's io_context
  std::optional<net::io_context> ioc;  // otherwise, the server's own
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> drain_timer;
  std::optional<net::steady_timer> idle_timer;  // on its own strand
  std::atomic<bool> sweeping{false};  // the idle sweep may still touch the server
  int sweep_ends = 0;                 // on idle_timer's strand: see end_idle_sweep()
  std::optional<net::ssl::context> tls_context;  // set when options name a certificate
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;

  std::mutex mutex;
  SessionTable sessions;  // under mutex
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  bool started = false;
  // Embedded: the server may only be destroyed once its last handler has
  // run, since the host's io_context outlives it. The accept loop and the
  // sessions are its only handlers that refer to it.
  std::atomic<bool> accepting{false};
  bool finished = false;  // under mutex
  std::condition_variable finished_cv;
  std::vector<net::any_completion_handler<void()>> on_stopped;  // under mutex

  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> websockets_open{0};
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> send_queue_drops{0};
  std::atomic<std::uint64_t> connections_refused{0};
  Metrics metrics;
  /// Where access lines go (ServerOptions::access_log); this server's own.
  std::shared_ptr<spdlog::logger> access_log;
  spdlog::logger& access();
};

/// The strand a connection's socket was accepted on.
inline Strand strand_of(const net::any_io_executor& ex) {
  const Strand* s = ex.target<Strand>();
  assert(s && "sockets are accepted on a channels::Strand");
  return *s;
}

/// Starts serving one accepted TCP connection (HTTP first, maybe upgraded).
void start_http_session(ServerImpl& server, tcp::socket socket);

}  // namespace channels::detail
