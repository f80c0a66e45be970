#include <boost/asio/ssl/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <channels/detail/consumer_access.hpp>
#include <channels/http_consumer.hpp>
#include <channels/log.hpp>
#include <channels/origin_validator.hpp>
#include <channels/websocket_consumer.hpp>

#include "consumer_link.hpp"
#include "sessions.hpp"

namespace channels::detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(const Request& req, http::field f, std::string_view token) {
  auto [first, last] = req.equal_range(f);
  for (auto it = first; it != last; ++it)
    if (http::token_list(it->value()).exists(token)) return true;
  return false;
}

// A request that means to open a WebSocket, well formed or not: it is
// answered as a handshake (400/426 with a reason), never routed as plain HTTP.
bool wants_websocket(const Request& req) {
  return has_token(req, http::field::upgrade, "websocket") || req.count(http::field::sec_websocket_key) ||
         req.count(http::field::sec_websocket_version);
}

// 16 bytes in base64: 22 characters of the alphabet (the last of them
// carrying 2 bits, so one of A, Q, g, w), then "==" (RFC 6455 4.2.1).
bool valid_key(std::string_view key) {
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (alphabet.find(key[i]) == std::string_view::npos) return false;
  return std::string_view("AQgw").find(key[21]) != std::string_view::npos;
}

// Why a WebSocket upgrade request is unacceptable, or empty if it is fine.
// Checked before routing so that no consumer sees a broken handshake.
std::pair<http::status, std::string> check_upgrade(const Request& req) {
  if (req.method() != http::verb::get)
    return {http::status::bad_request, "a WebSocket handshake must use GET"};
  if (req.version() < 11)
    return {http::status::bad_request, "a WebSocket handshake needs HTTP/1.1"};
  if (!has_token(req, http::field::upgrade, "websocket"))
    return {http::status::bad_request, "a WebSocket handshake needs the header Upgrade: websocket"};
  if (!has_token(req, http::field::connection, "upgrade"))
    return {http::status::bad_request, "a WebSocket handshake needs the header Connection: Upgrade"};
  if (req.count(http::field::sec_websocket_version) != 1 || req[http::field::sec_websocket_version] != "13")
    return {http::status::upgrade_required, "unsupported Sec-WebSocket-Version: this server speaks 13"};
  if (req.count(http::field::sec_websocket_key) != 1 || !valid_key(trim(req[http::field::sec_websocket_key])))
    return {http::status::bad_request,
            "missing or malformed Sec-WebSocket-Key (it must be 16 random bytes in base64)"};
  return {http::status::ok, {}};
}

class HttpSession;

class HttpResponder final : public HttpTransport {
 public:
  explicit HttpResponder(std::weak_ptr<HttpSession> s) : session_(std::move(s)) {}
  void respond(HttpResponse response) override;

 private:
  std::weak_ptr<HttpSession> session_;
};

class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(ServerImpl& server, ServerStream stream)
      : server_(server), stream_(std::move(stream)), strand_(strand_of(stream_.get_executor())) {}

  ~HttpSession() override {
    finish_consumer();
    server_.remove(this);
  }

  void start() {
    boost::system::error_code ec;
    auto remote = tcp_layer().socket().remote_endpoint(ec);
    if (!ec) client_ = remote.address().to_string();
    admission_ = server_.add(this, weak_from_this(), client_);
    if (server_.stopping) return;
    if (stream_.is_tls()) {
      // The TLS handshake counts against the same deadline as the request.
      tcp_layer().expires_after(server_.options.handshake_timeout);
      stream_.tls().async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](
                                                                       boost::system::error_code ec) {
        self->on_tls_handshake(ec);
      });
      return;
    }
    read(server_.options.handshake_timeout);
  }

  void shutdown() override {
    net::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      // Idle between requests: close now. Busy: close after the response.
      if (!self->consumer_) {
        boost::system::error_code ec;
        self->tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
        self->tcp_layer().close();
      }
    });
  }

  void abort() override {
    net::post(strand_, [self = shared_from_this()] { self->tcp_layer().close(); });
  }

  void respond(HttpResponse r) {
    response_timer_.reset();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(request_.version());
    res->result(static_cast<unsigned>(r.status));
    res->set(http::field::server, "cppchannels");
    for (auto& [k, v] : r.headers) res->insert(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(request_.keep_alive() && !stopping_);
    res->prepare_payload();
    write(std::move(res));
  }

 private:
  void read(std::chrono::milliseconds timeout) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    tcp_layer().expires_after(timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_tls_handshake(boost::system::error_code ec) {
    if (!ec) {
      read(server_.options.handshake_timeout);
      return;
    }
    if (ec.category() == net::error::get_ssl_category() && ERR_GET_REASON(ec.value()) == SSL_R_HTTP_REQUEST) {
      // Plain HTTP on the TLS port: say so in plain text rather than just hang up.
      log().info("{}: plain HTTP on the TLS port, answering 400", client_);
      static const std::string answer = [] {
        std::string body = "400 Bad Request: this port speaks TLS; use https:// or wss://\n";
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
               "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      net::async_write(tcp_layer(), net::buffer(answer),
                       [self = shared_from_this()](boost::system::error_code, std::size_t) { self->close(); });
      return;
    }
    log().debug("{}: TLS handshake failed: {}", client_, ec.message());
    close();
  }

  beast::tcp_stream& tcp_layer() { return stream_.next_layer(); }

  void on_read(boost::system::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof || ec == net::error::connection_reset) {
      close();
      return;
    }
    if (ec) {
      // Malformed or oversized: say which, then close.
      http::status st = http::status::bad_request;
      std::string why = "400 Bad Request: " + ec.message() + "\n";
      if (ec == http::error::header_limit) {
        st = http::status::request_header_fields_too_large;
        why = "431 Request Header Fields Too Large\n";
      } else if (ec == http::error::body_limit) {
        st = http::status::payload_too_large;
        why = "413 Payload Too Large\n";
      }
      request_ = {};
      request_.version(11);
      stopping_ = true;
      simple_response(st, why);
      return;
    }
    request_ = parser_->release();
    ++server_.http_requests;
    started_ = std::chrono::steady_clock::now();
    if (admission_ != ServerImpl::Admission::ok) {
      refuse_over_limit();
      return;
    }
    if (!server_.options.metrics_path.empty() && !wants_websocket(request_) &&
        request_.target().substr(0, request_.target().find('?')) == server_.options.metrics_path) {
      serve_metrics();
      return;
    }
    if (wants_websocket(request_)) {
      upgrade();
      return;
    }
    dispatch_http();
  }

  // Over max_connections (503: the server is full, try later, maybe another
  // instance) or over max_connections_per_ip (429: this client holds too
  // many; 503 would tell a load balancer the whole server is unwell).
  void refuse_over_limit() {
    auto refused = ++server_.connections_refused;
    bool full = admission_ == ServerImpl::Admission::server_full;
    auto status = full ? http::status::service_unavailable : http::status::too_many_requests;
    std::string why =
        full ? fmt::format("503 Service Unavailable: the server is at its limit of {} connections; retry later\n",
                           server_.options.max_connections)
             : fmt::format("429 Too Many Requests: {} already has {} connections open here (the limit per "
                           "address); close one or retry later\n",
                           client_, server_.options.max_connections_per_ip);
    Scope scope = make_scope(request_, stream_, beast::websocket::is_upgrade(request_) ? "websocket" : "http");
    log_access(server_, scope, static_cast<int>(status), why.size(), std::chrono::steady_clock::now() - started_);
    // Rate-limited: a flood of refusals must not become a flood of warnings.
    if (refused == 1 || refused % 1000 == 0)
      log().warn("connection limit reached, {} refused so far; last: {}", refused, why.substr(0, why.size() - 1));
    stopping_ = true;
    auto res = make_text(status, std::move(why));
    res->set(http::field::retry_after, std::to_string(server_.options.retry_after.count()));
    write(std::move(res));
  }

  void upgrade() {
    Scope scope = make_scope(request_, stream_, "websocket");
    apply_server_options(scope, server_.options);
    auto [status, why] = check_upgrade(request_);
    if (!why.empty()) {
      server_.metrics.failed(HandshakeFailure::bad_request);
      log_access(server_, scope, static_cast<int>(status), why.size(), std::chrono::steady_clock::now() - started_);
      stopping_ = true;
      auto res = make_text(status, why + "\n");
      if (status == http::status::upgrade_required) res->set(http::field::sec_websocket_version, "13");
      write(std::move(res));
      return;
    }
    const auto& allowed = server_.options.allowed_origins;
    if (!allowed.empty() && !origin_allowed(scope.header("origin"), allowed, server_.options.allow_missing_origin)) {
      auto origin = scope.header("origin");
      std::string why = origin ? fmt::format("403 Forbidden: Origin '{}' may not open a WebSocket here "
                                             "(server.allowed_origins)\n", *origin)
                               : std::string("403 Forbidden: a WebSocket handshake needs an Origin header here\n");
      log_access(server_, scope, 403, why.size(), std::chrono::steady_clock::now() - started_);
      log().warn("refusing the WebSocket for {} from {}: {}", scope.path, scope.client.host,
                 why.substr(15, why.size() - 16));
      stopping_ = true;
      write(make_text(http::status::forbidden, std::move(why)));
      return;
    }
    std::unique_ptr<Consumer> consumer;
    try {
      consumer = server_.app->route(scope);
    } catch (const std::exception& e) {
      log().error("routing {} failed: {}", scope.path, e.what());
    }
    if (!dynamic_cast<WebsocketConsumer*>(consumer.get())) {
      server_.metrics.failed(HandshakeFailure::not_found);
      log_access(server_, scope, 404, 0, std::chrono::steady_clock::now() - started_);
      stopping_ = true;
      write(make_text(http::status::not_found, "404 Not Found: no WebSocket route for " + scope.path + "\n"));
      return;
    }
    // The WebSocket session owns the socket from here on.
    tcp_layer().expires_never();
    // Bytes the client sent after the request without waiting for the 101
    // (RFC 6455 4.1 says it must wait): the WebSocket session reads them
    // first rather than lose them.
    std::string early(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    start_websocket_session(server_, this, std::move(stream_), std::move(request_), std::move(scope),
                            std::move(consumer), std::move(early));
  }

  void dispatch_http() {
    Scope scope = make_scope(request_, stream_, "http");
    apply_server_options(scope, server_.options);
    std::unique_ptr<Consumer> consumer;
    try {
      consumer = server_.app->route(scope);
    } catch (const std::exception& e) {
      log().error("routing {} failed: {}", scope.path, e.what());
    }
    auto* http_consumer = dynamic_cast<HttpConsumer*>(consumer.get());
    if (!http_consumer) {
      log_access(server_, scope, 404, 0, std::chrono::steady_clock::now() - started_);
      simple_response(http::status::not_found, "404 Not Found\n");
      return;
    }
    consumer.release();
    consumer_.reset(http_consumer);
    scope_ = scope;
    ConsumerAccess::bind(*consumer_, std::move(scope), server_.layer, strand_);
    ConsumerAccess::set_owner(*consumer_, weak_from_this());
    ConsumerAccess::set_transport(*consumer_, std::make_shared<HttpResponder>(weak_from_this()));
    link_.open(*consumer_, server_.layer, strand_, weak_from_this(), [this](const Message& m) {
      guarded([&] { ConsumerAccess::dispatch(*consumer_, m); });
    });
    // A consumer that never answers gets the client a 504, not a hang.
    response_timer_.emplace(strand_);
    response_timer_->expires_after(server_.options.handshake_timeout);
    // The timer also keeps this session alive while the consumer works.
    response_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->consumer_ || self->consumer_->responded()) return;
      log().error("{} {}: the consumer did not respond within {} ms", self->scope_.method,
                  self->scope_.path, self->server_.options.handshake_timeout.count());
      self->consumer_->send_response(504, "504 Gateway Timeout\n", {{"Content-Type", "text/plain"}});
    });
    HttpRequest req{std::string(request_.method_string()), std::move(request_.body())};
    guarded([&] { consumer_->on_request(req); });
  }

  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      log().error("consumer for {} {} threw: {}", scope_.method, scope_.path, e.what());
      if (consumer_ && !consumer_->responded())
        consumer_->send_response(500, "500 Internal Server Error\n", {{"Content-Type", "text/plain"}});
    }
  }

  std::shared_ptr<http::response<http::string_body>> make_text(http::status st, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(st, request_.version() ? request_.version() : 11);
    res->set(http::field::server, "cppchannels");
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->body() = std::move(body);
    res->keep_alive(request_.keep_alive() && !stopping_);
    res->prepare_payload();
    return res;
  }

  // The Prometheus endpoint: answered here, before routing, so no route can
  // shadow it and no consumer is built for a scrape.
  void serve_metrics() {
    Scope scope = make_scope(request_, stream_, "http");
    auto res = std::make_shared<http::response<http::string_body>>(http::status::ok, request_.version());
    res->set(http::field::server, "cppchannels");
    res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res->body() = prometheus_text(server_);
    res->keep_alive(request_.keep_alive() && !stopping_);
    res->prepare_payload();
    log_access(server_, scope, 200, res->body().size(), std::chrono::steady_clock::now() - started_);
    write(std::move(res));
  }

  void simple_response(http::status st, std::string body) { write(make_text(st, std::move(body))); }

  void write(std::shared_ptr<http::response<http::string_body>> res) {
    if (consumer_)
      log_access(server_, scope_, res->result_int(), res->body().size(), std::chrono::steady_clock::now() - started_);
    tcp_layer().expires_after(server_.options.handshake_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](boost::system::error_code ec, std::size_t) {
                        self->finish_consumer();
                        if (ec || !res->keep_alive() || self->stopping_) {
                          self->close();
                          return;
                        }
                        self->read(self->server_.options.http_keepalive_timeout);
                      });
  }

  void finish_consumer() {
    if (!consumer_) return;
    link_.close(*consumer_);
    consumer_.reset();
    response_timer_.reset();
  }

  void close() {
    boost::system::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    tcp_layer().close();
  }

  ServerImpl& server_;
  ServerStream stream_;
  Strand strand_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Scope scope_;
  std::unique_ptr<HttpConsumer> consumer_;
  ConsumerLink link_;
  std::optional<net::steady_timer> response_timer_;
  bool stopping_ = false;
  std::string client_;
  ServerImpl::Admission admission_ = ServerImpl::Admission::ok;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

void HttpResponder::respond(HttpResponse response) {
  if (auto s = session_.lock()) s->respond(std::move(response));
}

}  // namespace

Scope make_scope(const Request& req, const ServerStream& stream, std::string type) {
  Scope s;
  bool ws = type == "websocket";
  s.type = std::move(type);
  s.scheme = stream.is_tls() ? (ws ? "wss" : "https") : (ws ? "ws" : "http");
  s.method = std::string(req.method_string());
  s.http_version = req.version() == 10 ? "1.0" : "1.1";
  std::string_view target = req.target();
  auto q = target.find('?');
  s.raw_path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) s.query_string = std::string(target.substr(q + 1));
  s.path = percent_decode(s.raw_path);
  if (s.path.empty() || s.path.front() != '/') s.path.insert(s.path.begin(), '/');
  for (const auto& field : req) {
    s.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
    if (ws && field.name() == http::field::sec_websocket_protocol) {
      std::string_view v = field.value();
      while (!v.empty()) {
        auto comma = v.find(',');
        auto p = trim(v.substr(0, comma));
        if (!p.empty()) s.subprotocols.emplace_back(p);
        v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
      }
    }
  }
  boost::system::error_code ec;
  auto remote = stream.next_layer().socket().remote_endpoint(ec);
  if (!ec) s.client = {remote.address().to_string(), remote.port()};
  auto local = stream.next_layer().socket().local_endpoint(ec);
  if (!ec) s.server = {local.address().to_string(), local.port()};
  return s;
}

void apply_server_options(Scope& s, const ServerOptions& o) {
  s.root_path = o.root_path;
  if (!o.proxy_headers) return;
  for (const auto& [name, value] : s.headers) {
    if (name == "x-forwarded-for") {
      // "client, proxy1, proxy2": the first one is the client (as daphne reads it).
      auto client = trim(std::string_view(value).substr(0, value.find(',')));
      if (!client.empty()) s.client = {std::string(client), 0};
    } else if (name == "x-forwarded-proto") {
      auto proto = lower(trim(std::string_view(value).substr(0, value.find(','))));
      bool secure = proto == "https" || proto == "wss";
      if (s.type == "websocket") s.scheme = secure ? "wss" : "ws";
      else s.scheme = secure ? "https" : "http";
    }
  }
}

void log_access(ServerImpl& server, const Scope& scope, int status, std::size_t bytes,
                std::chrono::steady_clock::duration took) {
  server.access().info("{}:{} - \"{} {}{}{} HTTP/{}\" {} {} {:.1f}ms", scope.client.host, scope.client.port,
                       scope.method, scope.raw_path, scope.query_string.empty() ? "" : "?", scope.query_string,
                       scope.http_version, status, bytes, millis(took));
}

void start_http_session(ServerImpl& server, tcp::socket socket) {
  beast::tcp_stream tcp(std::move(socket));
  if (server.tls_context)
    std::make_shared<HttpSession>(server, ServerStream(std::move(tcp), *server.tls_context))->start();
  else
    std::make_shared<HttpSession>(server, ServerStream(std::move(tcp)))->start();
}

}  // namespace channels::detail
