#include <channels/server.hpp>

#include <csignal>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <channels/log.hpp>

#include "server_impl.hpp"

namespace channels {

namespace detail {

// SO_REUSEPORT in Asio's socket option form (Asio has no name for it).
using reuse_port_option = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// Linux grows a process's table of file descriptors by doubling it, and in a
// process with more than one thread each growth waits for an RCU grace period:
// 10-25 ms here during which the accepting thread does nothing, at 256, 512,
// 1,024... connections (a handshake p99 ten times the single-threaded floor's
// in a burst of 10,000 connects). Taking a descriptor at the top of the range
// once, before the first connection, grows the table to its final size in one
// step. At most 65,536 slots (8 bytes each, kernel memory).
void grow_descriptor_table(int fd, std::size_t connections) {
  constexpr std::size_t spare = 64, most = 65'536;
  std::size_t top = std::min(connections + spare, most);
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    top = std::min<std::size_t>(top, static_cast<std::size_t>(r.rlim_cur));
  if (top < 2) return;
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(top - 1));
  if (high >= 0) ::close(high);
}

}  // namespace

ServerImpl::ServerImpl(net::io_context* h, ServerOptions o, ApplicationPtr a, std::shared_ptr<ChannelLayer> l)
    : options(std::move(o)), app(std::move(a)), layer(std::move(l)), host(h) {
  unsigned n = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  options.threads = n;
  if (options.max_connections == 0) {
    // Past the open-file limit accept() fails and the client learns nothing:
    // stop a little before it (room for logs, Redis, static files) and say 503.
    rlimit r{};
    constexpr std::size_t reserve = 64;
    std::size_t files = ::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY
                            ? static_cast<std::size_t>(r.rlim_cur)
                            : std::size_t{1} << 20;
    options.max_connections = files > 2 * reserve ? files - reserve : files / 2;
  }
  if (!host) ioc.emplace(static_cast<int>(n));
  if (!options.access_log.empty()) {
    spdlog::sink_ptr sink;
    if (options.access_log == "-")
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    else
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.access_log, /*truncate=*/false);
    // Not registered with spdlog: each server has its own, no global state.
    access_log = std::make_shared<spdlog::logger>("access", std::move(sink));
    access_log->set_pattern("%Y-%m-%d %H:%M:%S.%e %v");
    access_log->flush_on(spdlog::level::info);  // a line is there when the request is done
  }
}

spdlog::logger& ServerImpl::access() { return access_log ? *access_log : log(); }

ServerImpl::~ServerImpl() {
  if (!threads.empty()) {
    begin_shutdown();
    join();
  }
  if (host && started) {
    begin_shutdown();
    std::unique_lock lock(mutex);
    if (!finished) {
      if (host->get_executor().running_in_this_thread()) {
        // Waiting here would wait for this very thread: freeing the server
        // under its connections is worse than stopping.
        log().critical("an embedded Server was destroyed on its io_context's thread before it had "
                       "stopped: complete async_shutdown() first, then destroy it");
        std::terminate();
      }
      if (host->stopped()) {
        // Nobody runs the host's io_context any more: run it here until the
        // connections have closed, since their handlers refer to this server.
        lock.unlock();
        host->restart();
        for (;;) {
          {
            std::lock_guard l(mutex);
            if (finished) break;
          }
          host->run_one_for(std::chrono::milliseconds(10));
        }
        host->stop();  // as the host left it
      } else {
        finished_cv.wait(lock, [this] { return finished; });
      }
    }
  }
  // Sessions still queued in the io_context are destroyed here, while the rest
  // of this object is alive for them to unregister.
  acceptor.reset();
  drain_timer.reset();
  idle_timer.reset();
  work.reset();
  ioc.reset();
}

void ServerImpl::start() {
  boost::system::error_code ec;
  auto address = net::ip::make_address(options.bind, ec);
  if (ec)
    throw std::system_error(ec, fmt::format("server.bind '{}' is not an IP address (write one "
                                            "like 127.0.0.1, 0.0.0.0 or ::1)",
                                            options.bind));
  if (!options.tls_cert.empty() || !options.tls_key.empty()) load_tls();
  tcp::endpoint ep(address, options.port);
  acceptor.emplace(net::make_strand(context()));
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec && options.reuse_port) acceptor->set_option(reuse_port_option(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::system_error(ec, fmt::format("cannot listen on {}:{} (is another server running "
                                            "there? choose another with --port{})",
                                            options.bind, options.port,
                                            options.reuse_port ? ", or give every process on it --reuse-port"
                                                               : ", or share it with --reuse-port in every process"));
  bound_port = acceptor->local_endpoint().port();
  grow_descriptor_table(acceptor->native_handle(), options.max_connections);
  started = true;
  accepting = true;
  if (host) {
    // The host runs its io_context, and keeps it running.
    do_accept();
    start_idle_sweep();
    log().info("serving on {}://{}:{}/ on the application's io_context", tls_context ? "https" : "http",
               options.bind, bound_port);
    return;
  }
  work.emplace(ioc->get_executor());
  do_accept();
  start_idle_sweep();
  for (unsigned i = 0; i < options.threads; ++i)
    threads.emplace_back([this] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          // A handler let an exception escape: log it and keep serving.
          log().error("unhandled exception in a server thread: {}", e.what());
        }
      }
    });
  log().info("serving on {}://{}:{}/ with {} thread{}", tls_context ? "https" : "http", options.bind, bound_port, options.threads,
             options.threads == 1 ? "" : "s");
}

void ServerImpl::load_tls() {
  if (options.tls_cert.empty() || options.tls_key.empty())
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "TLS needs both a certificate and a key (tls: {cert: FILE, key: FILE} in routing.yaml, "
                            "or --cert FILE --key FILE)");
  tls_context.emplace(net::ssl::context::tls_server);
  // TLS 1.2 and later only; OpenSSL's defaults choose the ciphers.
  tls_context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                           net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                           net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
  boost::system::error_code ec;
  tls_context->use_certificate_chain_file(options.tls_cert, ec);
  if (ec)
    throw std::system_error(ec, fmt::format("cannot load the TLS certificate chain from '{}' (a PEM file, "
                                            "certificate first, then intermediates)",
                                            options.tls_cert));
  tls_context->use_private_key_file(options.tls_key, net::ssl::context::pem, ec);
  if (ec)
    throw std::system_error(ec, fmt::format("cannot load the TLS private key from '{}' (a PEM file, "
                                            "without a passphrase, matching the certificate)",
                                            options.tls_key));
}

void ServerImpl::start_idle_sweep() {
  if (options.idle_timeout <= std::chrono::milliseconds::zero()) return;
  idle_timer.emplace(net::make_strand(context()));
  sweeping = true;
  arm_idle_sweep();
}

void ServerImpl::arm_idle_sweep() {
  idle_timer->expires_after(options.idle_timeout / 2);
  idle_timer->async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return end_idle_sweep();
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(mutex);
      sessions.collect(live);
    }
    for (auto& s : live) s->idle_check();
    arm_idle_sweep();
  });
}

void ServerImpl::stop_idle_sweep() {
  if (!idle_timer) return;
  net::post(idle_timer->get_executor(), [this] {
    idle_timer->cancel();
    end_idle_sweep();
  });
}

// Two things end the sweep, in either order on its strand: its last tick
// (cancelled, or one that saw the shutdown) and stop_idle_sweep()'s cancel.
// The second to come is the last to touch the server.
void ServerImpl::end_idle_sweep() {
  if (++sweep_ends == 2) sweeping = false;
}

void ServerImpl::do_accept() {
  // Each connection gets its own strand: its consumer code never runs on two
  // threads at once.
  acceptor->async_accept(Strand(net::any_io_executor(context().get_executor())),
                         [this](boost::system::error_code ec, tcp::socket socket) {
                           if (ec == net::error::operation_aborted || stopping) {
                             accepting = false;  // the last time this handler refers to the server
                             return;
                           }
                           if (ec) {
                             // Out of file descriptors and the like: keep accepting.
                             log().warn("accept failed: {}", ec.message());
                           } else {
                             ++connections_accepted;
                             // Writes are coalesced by the session; Nagle would
                             // only add a round trip of delay to each batch.
                             boost::system::error_code ignored;
                             socket.set_option(tcp::no_delay(true), ignored);
                             start_http_session(*this, std::move(socket));
                           }
                           do_accept();
                         });
}

ServerImpl::Admission ServerImpl::add(Session* s, std::weak_ptr<Session> w, const std::string& client) {
  std::lock_guard lock(mutex);
  std::size_t from_client = sessions.add(s->slot, std::move(w), client);
  if (sessions.size() > options.max_connections) return Admission::server_full;
  if (options.max_connections_per_ip && from_client > options.max_connections_per_ip)
    return Admission::client_full;
  return Admission::ok;
}

void ServerImpl::remove(Session* s) {
  std::lock_guard lock(mutex);
  sessions.remove(s->slot);
}

void ServerImpl::hand_over(Session* from, Session* to, std::weak_ptr<Session> w) {
  std::lock_guard lock(mutex);
  sessions.hand_over(from->slot, to->slot, std::move(w));
}

std::size_t ServerImpl::session_count() {
  std::lock_guard lock(mutex);
  return sessions.size();
}

void ServerImpl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  if (!started) {  // never started: nothing to drain
    finish();
    return;
  }
  net::post(acceptor->get_executor(), [this] {
    boost::system::error_code ec;
    acceptor->close(ec);
  });
  stop_idle_sweep();
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex);
    sessions.collect(live);
  }
  log().info("shutting down: closing {} connection{} (drain timeout {} ms)", live.size(),
             live.size() == 1 ? "" : "s", options.drain_timeout.count());
  for (auto& s : live) s->shutdown();
  // Poll until every session is gone or the drain timeout passes, then stop.
  // After the drain timeout, whatever is left is cut, and given a moment to
  // run its on_disconnect before the threads stop.
  auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  auto hard_deadline = deadline + std::chrono::seconds(1);
  drain_timer.emplace(context());
  auto poll = std::make_shared<std::function<void()>>();
  auto aborted = std::make_shared<bool>(false);
  auto late = std::make_shared<bool>(false);
  *poll = [this, deadline, hard_deadline, poll, aborted, late] {
    auto now = std::chrono::steady_clock::now();
    if (session_count() && now >= deadline && !*aborted) {
      *aborted = true;
      log().warn("drain timeout: cutting {} connection(s) still open", session_count());
      std::vector<std::shared_ptr<Session>> left;
      {
        std::lock_guard lock(mutex);
        sessions.collect(left);
      }
      for (auto& s : left) s->abort();
    }
    bool drained = session_count() == 0 && !accepting && !sweeping;
    if (drained || (!host && now >= hard_deadline)) {
      // Embedded, the host's io_context outlives the server: it stops only
      // once nothing in that io_context refers to it any more.
      auto* self = this;  // the captures go with the next line
      *poll = nullptr;    // break the self-reference
      self->finish();
      return;
    }
    if (host && now >= hard_deadline && !*late) {
      *late = true;
      log().warn("{} connection(s) still closing after the drain timeout; waiting for them", session_count());
    }
    drain_timer->expires_after(std::chrono::milliseconds(10));
    drain_timer->async_wait([poll](boost::system::error_code) {
      if (*poll) (*poll)();
    });
  };
  net::post(context(), [poll] { (*poll)(); });
}

namespace {
// Never inline (the caller may hold a lock or be inside the server): via the
// host's io_context, then on the handler's own executor if it has one.
void complete_on(net::io_context& host, net::any_completion_handler<void()> h) {
  net::post(host, [h = std::move(h)]() mutable { net::dispatch(std::move(h)); });
}
}  // namespace

void ServerImpl::finish() {
  // Embedded, a waiting destructor may free this object as soon as
  // `finished` is seen: after the lock, only locals are used.
  auto* h = host;
  std::vector<net::any_completion_handler<void()>> done;
  {
    std::lock_guard lock(mutex);
    finished = true;
    done.swap(on_stopped);
    finished_cv.notify_all();
  }
  if (h) {
    for (auto& d : done) complete_on(*h, std::move(d));
    return;
  }
  // On a server thread, before the threads stop: a handler without an
  // executor of its own runs right here.
  for (auto& d : done) net::dispatch(std::move(d));
  work.reset();
  if (ioc) ioc->stop();
}

void ServerImpl::when_stopped(net::any_completion_handler<void()> h) {
  {
    std::lock_guard lock(mutex);
    if (!finished) {
      on_stopped.push_back(std::move(h));
      return;
    }
  }
  if (host)
    complete_on(*host, std::move(h));
  else
    net::dispatch(std::move(h));
}

void ServerImpl::join() {
  if (host) {
    if (host->get_executor().running_in_this_thread())
      throw std::logic_error("Server::wait() or shutdown() called on a thread running the host's io_context: "
                             "it would wait for itself; use async_shutdown() there");
    std::unique_lock lock(mutex);
    finished_cv.wait(lock, [this] { return finished; });
    stopped = true;
    return;
  }
  for (auto& t : threads)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  threads.clear();
  stopped = true;
}

}  // namespace detail

Server::Server(ServerOptions options, ApplicationPtr app, std::shared_ptr<ChannelLayer> layer)
    : impl_(std::make_unique<detail::ServerImpl>(nullptr, std::move(options), std::move(app), std::move(layer))) {}

Server::Server(boost::asio::io_context& host, ServerOptions options, ApplicationPtr app,
               std::shared_ptr<ChannelLayer> layer)
    : impl_(std::make_unique<detail::ServerImpl>(&host, std::move(options), std::move(app), std::move(layer))) {}

Server::~Server() = default;

void Server::start() { impl_->start(); }
std::uint16_t Server::port() const { return impl_->bound_port; }

void Server::shutdown() {
  impl_->begin_shutdown();
  wait();
}

void Server::wait() { impl_->join(); }

void Server::initiate_shutdown(boost::asio::any_completion_handler<void()> handler) {
  impl_->when_stopped(std::move(handler));
  impl_->begin_shutdown();
}

int Server::run() {
  if (impl_->host)
    throw std::logic_error("Server::run() is for a server with its own threads: an embedded server is "
                           "started with start() and served by running the host's io_context");
  start();
  boost::asio::signal_set signals(*impl_->ioc, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    log().info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    impl_->begin_shutdown();
  });
  wait();
  return 0;
}

ServerStats Server::stats() const {
  ServerStats s;
  s.connections_accepted = impl_->connections_accepted;
  s.websockets_open = impl_->websockets_open;
  s.http_requests = impl_->http_requests;
  s.send_queue_drops = impl_->send_queue_drops;
  s.connections_refused = impl_->connections_refused;
  return s;
}

ChannelLayer& Server::channel_layer() const { return *impl_->layer; }

std::string Server::metrics_text() const { return detail::prometheus_text(*impl_); }

}  // namespace channels
