#include <channels/server.hpp>

#include <csignal>

#include <sys/resource.h>

#include <boost/asio/strand.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <channels/log.hpp>

#include "server_impl.hpp"

namespace channels {

namespace detail {

ServerImpl::ServerImpl(ServerOptions o, ApplicationPtr a, std::shared_ptr<ChannelLayer> l)
    : options(std::move(o)), app(std::move(a)), layer(std::move(l)) {
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
  ioc.emplace(static_cast<int>(n));
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
  // Sessions still queued in the io_context are destroyed here, while the rest
  // of this object is alive for them to unregister.
  acceptor.reset();
  drain_timer.reset();
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
  acceptor.emplace(net::make_strand(*ioc));
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::system_error(ec, fmt::format("cannot listen on {}:{} (is another server running "
                                            "there? choose another with --port)",
                                            options.bind, options.port));
  bound_port = acceptor->local_endpoint().port();
  work.emplace(ioc->get_executor());
  do_accept();
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

void ServerImpl::do_accept() {
  // Each connection gets its own strand: its consumer code never runs on two
  // threads at once.
  acceptor->async_accept(Strand(net::any_io_executor(ioc->get_executor())),
                         [this](boost::system::error_code ec, tcp::socket socket) {
                           if (ec == net::error::operation_aborted || stopping) return;
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
  auto [it, fresh] = sessions.try_emplace(s, Entry{std::move(w), client});
  std::size_t from_client = 0;
  if (fresh && !client.empty()) from_client = ++per_client[client];
  // An upgrade hands its connection from the HTTP session to a WebSocket
  // session: for a moment both are registered, which errs on the safe side.
  if (sessions.size() > options.max_connections) return Admission::server_full;
  if (options.max_connections_per_ip && from_client > options.max_connections_per_ip)
    return Admission::client_full;
  return Admission::ok;
}

void ServerImpl::remove(Session* s) {
  std::lock_guard lock(mutex);
  auto it = sessions.find(s);
  if (it == sessions.end()) return;
  if (!it->second.client.empty()) {
    auto c = per_client.find(it->second.client);
    if (c != per_client.end() && --c->second == 0) per_client.erase(c);
  }
  sessions.erase(it);
}

std::size_t ServerImpl::session_count() {
  std::lock_guard lock(mutex);
  return sessions.size();
}

void ServerImpl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  if (!acceptor || threads.empty()) return;  // never started
  net::post(acceptor->get_executor(), [this] {
    boost::system::error_code ec;
    acceptor->close(ec);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex);
    for (auto& [_, e] : sessions)
      if (auto s = e.session.lock()) live.push_back(std::move(s));
  }
  log().info("shutting down: closing {} connection{} (drain timeout {} ms)", live.size(),
             live.size() == 1 ? "" : "s", options.drain_timeout.count());
  for (auto& s : live) s->shutdown();
  // Poll until every session is gone or the drain timeout passes, then stop.
  // After the drain timeout, whatever is left is cut, and given a moment to
  // run its on_disconnect before the threads stop.
  auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  auto hard_deadline = deadline + std::chrono::seconds(1);
  drain_timer.emplace(*ioc);
  auto poll = std::make_shared<std::function<void()>>();
  auto aborted = std::make_shared<bool>(false);
  *poll = [this, deadline, hard_deadline, poll, aborted] {
    auto now = std::chrono::steady_clock::now();
    if (session_count() && now >= deadline && !*aborted) {
      *aborted = true;
      log().warn("drain timeout: cutting {} connection(s) still open", session_count());
      std::vector<std::shared_ptr<Session>> left;
      {
        std::lock_guard lock(mutex);
        for (auto& [_, e] : sessions)
          if (auto s = e.session.lock()) left.push_back(std::move(s));
      }
      for (auto& s : left) s->abort();
    }
    if (session_count() == 0 || now >= hard_deadline) {
      work.reset();
      ioc->stop();
      *poll = nullptr;  // break the self-reference
      return;
    }
    drain_timer->expires_after(std::chrono::milliseconds(10));
    drain_timer->async_wait([poll](boost::system::error_code) {
      if (*poll) (*poll)();
    });
  };
  net::post(*ioc, [poll] { (*poll)(); });
}

void ServerImpl::join() {
  for (auto& t : threads)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  threads.clear();
  stopped = true;
}

}  // namespace detail

Server::Server(ServerOptions options, ApplicationPtr app, std::shared_ptr<ChannelLayer> layer)
    : impl_(std::make_unique<detail::ServerImpl>(std::move(options), std::move(app), std::move(layer))) {}

Server::~Server() = default;

void Server::start() { impl_->start(); }
std::uint16_t Server::port() const { return impl_->bound_port; }

void Server::shutdown() {
  impl_->begin_shutdown();
  wait();
}

void Server::wait() { impl_->join(); }

int Server::run() {
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
