// floor: the plain Boost.Beast server that cppchannels builds on, serving the
// chat app's three WebSocket routes with nothing in between. It is the floor
// of the benchmarks: what Beast itself costs, without consumers, a channel
// layer or routing.yaml.
//
//   ws/echo/          every frame back as it came (text stays text)
//   room/<group>/     every text frame to every member of the group, as text
//   ws/chat/<room>/   {"message": m} in; {"message": m} to every member
//
// Written the way Beast's websocket chat-multi example is: one strand per
// connection, a set of sessions per room under a mutex, and fan-out of one
// shared_ptr<const std::string> posted to each member, which queues it and
// writes it with one async_write per message.
//
// usage: floor [--bind 127.0.0.1] [--port 8001] [--threads 1]

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <sys/resource.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

class WsSession;

// Rooms and their members, shared by every thread.
class Rooms {
 public:
  void join(const std::string& room, WsSession* s) {
    std::lock_guard lock(mutex_);
    rooms_[room].insert(s);
  }
  void leave(const std::string& room, WsSession* s) {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return;
    it->second.erase(s);
    if (it->second.empty()) rooms_.erase(it);
  }
  // Sends one shared message to every member (chat-multi's send()).
  void broadcast(const std::string& room, const std::shared_ptr<const std::string>& msg);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::unordered_set<WsSession*>> rooms_;
};

enum class Route { echo, room, chat };

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, Rooms& rooms, Route route, std::string room)
      : ws_(std::move(socket)), rooms_(rooms), route_(route), room_(std::move(room)) {}

  ~WsSession() {
    if (!room_.empty()) rooms_.leave(room_, this);
  }

  void run(http::request<http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "floor"); }));
    // Joined before the handshake's answer, as a Channels consumer's
    // group_add() in connect(): nothing sent after the 101 is missed.
    // Messages that arrive before the handshake is done wait in the queue.
    if (route_ != Route::echo) rooms_.join(room_, this);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  // From any thread: queue on this session's strand.
  void send(std::shared_ptr<const std::string> msg, bool text = true) {
    net::post(ws_.get_executor(), [self = shared_from_this(), msg = std::move(msg), text]() mutable {
      self->on_send(std::move(msg), text);
    });
  }

 private:
  void on_accept(error_code ec) {
    if (ec) return;
    accepted_ = true;
    if (!queue_.empty()) write_front();
    read();
  }

  void read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec) return;  // closed or failed: the session ends with its last handler
    auto data = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    switch (route_) {
      case Route::echo:
        on_send(std::make_shared<const std::string>(std::move(data)), ws_.got_text());
        break;
      case Route::room:
        if (ws_.got_text()) rooms_.broadcast(room_, std::make_shared<const std::string>(std::move(data)));
        break;
      case Route::chat: {
        auto in = nlohmann::json::parse(data, nullptr, false);
        if (in.is_object()) {
          auto it = in.find("message");
          if (it != in.end() && it->is_string()) {
            nlohmann::json out = {{"message", *it}};
            rooms_.broadcast(room_, std::make_shared<const std::string>(out.dump()));
            break;
          }
        }
        on_send(std::make_shared<const std::string>(R"({"error": "expected {\"message\": \"some text\"}"})"), true);
        break;
      }
    }
    read();
  }

  void on_send(std::shared_ptr<const std::string> msg, bool text) {
    queue_.push_back({std::move(msg), text});
    if (queue_.size() > 1 || !accepted_) return;  // a write is in progress, or the handshake
    write_front();
  }

  void write_front() {
    ws_.text(queue_.front().text);
    ws_.async_write(net::buffer(*queue_.front().msg),
                    beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    if (ec) return;
    queue_.pop_front();
    if (!queue_.empty()) write_front();
  }

  struct Out {
    std::shared_ptr<const std::string> msg;
    bool text;
  };

  websocket::stream<beast::tcp_stream> ws_;
  Rooms& rooms_;
  Route route_;
  std::string room_;
  beast::flat_buffer buffer_;
  std::deque<Out> queue_;
  bool accepted_ = false;
};

void Rooms::broadcast(const std::string& room, const std::shared_ptr<const std::string>& msg) {
  // Copies weak pointers under the lock, sends outside it (as chat-multi).
  std::vector<std::weak_ptr<WsSession>> members;
  {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return;
    members.reserve(it->second.size());
    for (auto* s : it->second) members.emplace_back(s->weak_from_this());
  }
  for (auto& w : members)
    if (auto s = w.lock()) s->send(msg);
}

// Matches a route: "/ws/echo/", "/room/<g>/", "/ws/chat/<room>/"; the name
// must be a valid Channels group name character set.
bool route_of(std::string_view target, Route& route, std::string& room) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  auto name_ok = [](std::string_view n) {
    if (n.empty() || n.size() > 90) return false;
    for (char c : n)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
  };
  auto segment = [&](std::string_view prefix, std::string& out) {
    if (target.substr(0, prefix.size()) != prefix || target.back() != '/') return false;
    auto name = target.substr(prefix.size(), target.size() - prefix.size() - 1);
    if (!name_ok(name)) return false;
    out = std::string(name);
    return true;
  };
  if (target == "/ws/echo/") {
    route = Route::echo;
    room.clear();
    return true;
  }
  if (segment("/room/", room)) {
    route = Route::room;
    return true;
  }
  if (segment("/ws/chat/", room)) {
    route = Route::chat;
    room = "chat_" + room;
    return true;
  }
  return false;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Rooms& rooms) : stream_(std::move(socket)), rooms_(rooms) {}

  void run() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(1024 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec) return;
    auto req = parser_->release();
    Route route;
    std::string room;
    if (websocket::is_upgrade(req)) {
      if (route_of(req.target(), route, room)) {
        stream_.expires_never();
        std::make_shared<WsSession>(stream_.release_socket(), rooms_, route, std::move(room))->run(std::move(req));
        return;
      }
    }
    auto res = std::make_shared<http::response<http::string_body>>(http::status::not_found, req.version());
    res->set(http::field::server, "floor");
    res->set(http::field::content_type, "text/plain");
    res->body() = "404 Not Found\n";
    res->keep_alive(req.keep_alive());
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      if (!ec && res->keep_alive()) self->read();
    });
  }

  beast::tcp_stream stream_;
  Rooms& rooms_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint ep, Rooms& rooms) : ioc_(ioc), acceptor_(net::make_strand(ioc)), rooms_(rooms) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void run() { accept(); }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }
  void on_accept(error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(std::move(socket), rooms_)->run();
    } else if (ec == net::error::operation_aborted) {
      return;
    }
    accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Rooms& rooms_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  int port = 8001;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("usage: floor [--bind ADDR] [--port N] [--threads N]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "floor: %s needs a value\n", a.c_str());
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--bind") bind = v;
    else if (a == "--port") port = std::atoi(v.c_str());
    else if (a == "--threads") threads = std::max(1, std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "floor: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  try {
    net::io_context ioc(threads);
    Rooms rooms;
    auto listener = std::make_shared<Listener>(ioc, tcp::endpoint(net::ip::make_address(bind), static_cast<unsigned short>(port)), rooms);
    listener->run();
    std::fprintf(stderr, "floor: serving on %s:%u with %d thread%s\n", bind.c_str(), listener->port(), threads,
                 threads == 1 ? "" : "s");
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](error_code, int) { ioc.stop(); });
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "floor: %s\n", e.what());
    return 1;
  }
  return 0;
}
