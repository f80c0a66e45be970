#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <channels/detail/consumer_access.hpp>
#include <channels/http_consumer.hpp>
#include <channels/log.hpp>
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

// Why a WebSocket upgrade request is unacceptable, or empty if it is fine.
// Checked before routing so that no consumer sees a broken handshake.
std::pair<http::status, std::string> check_upgrade(const Request& req) {
  if (req.method() != http::verb::get)
    return {http::status::bad_request, "a WebSocket handshake must use GET"};
  if (req.version() < 11)
    return {http::status::bad_request, "a WebSocket handshake needs HTTP/1.1"};
  auto version = req[http::field::sec_websocket_version];
  if (version != "13")
    return {http::status::upgrade_required, "unsupported Sec-WebSocket-Version: this server speaks 13"};
  auto key = trim(req[http::field::sec_websocket_key]);
  // 16 random bytes in base64 are 24 characters ending in "==".
  if (key.size() != 24 || key.substr(22) != "==")
    return {http::status::bad_request, "missing or malformed Sec-WebSocket-Key"};
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
  HttpSession(ServerImpl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)), strand_(strand_of(stream_.get_executor())) {}

  ~HttpSession() override {
    finish_consumer();
    server_.remove(this);
  }

  void start() {
    server_.add(this, weak_from_this());
    if (server_.stopping) return;
    read(server_.options.handshake_timeout);
  }

  void shutdown() override {
    net::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      // Idle between requests: close now. Busy: close after the response.
      if (!self->consumer_) {
        boost::system::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      }
    });
  }

  void abort() override {
    net::post(strand_, [self = shared_from_this()] { self->stream_.close(); });
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
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

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
    if (!server_.options.metrics_path.empty() && !beast::websocket::is_upgrade(request_) &&
        request_.target().substr(0, request_.target().find('?')) == server_.options.metrics_path) {
      serve_metrics();
      return;
    }
    if (beast::websocket::is_upgrade(request_)) {
      upgrade();
      return;
    }
    dispatch_http();
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
    stream_.expires_never();
    if (buffer_.size())
      log().debug("{} bytes after the upgrade request were sent early; the client is not waiting for 101",
                  buffer_.size());
    start_websocket_session(server_, std::move(stream_), std::move(request_), std::move(scope),
                            std::move(consumer));
    server_.remove(this);
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
    stream_.expires_after(server_.options.handshake_timeout);
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
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  ServerImpl& server_;
  beast::tcp_stream stream_;
  Strand strand_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Scope scope_;
  std::unique_ptr<HttpConsumer> consumer_;
  ConsumerLink link_;
  std::optional<net::steady_timer> response_timer_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

void HttpResponder::respond(HttpResponse response) {
  if (auto s = session_.lock()) s->respond(std::move(response));
}

}  // namespace

Scope make_scope(const Request& req, const beast::tcp_stream& stream, std::string type) {
  Scope s;
  bool ws = type == "websocket";
  s.type = std::move(type);
  s.scheme = ws ? "ws" : "http";
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
  auto remote = stream.socket().remote_endpoint(ec);
  if (!ec) s.client = {remote.address().to_string(), remote.port()};
  auto local = stream.socket().local_endpoint(ec);
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
  std::make_shared<HttpSession>(server, std::move(socket))->start();
}

}  // namespace channels::detail
