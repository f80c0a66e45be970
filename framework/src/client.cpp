#include <channels/client.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

namespace channels {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct WebsocketClient::Impl {
  net::io_context ioc{1};
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  Options options;
  bool open = false;
  int close_code = 0;
  std::string close_reason;
  // A receive() that timed out leaves its read running; the next one waits for it.
  bool reading = false;
  bool read_done = false;
  boost::system::error_code read_ec;

  // Runs the io_context until `done` or the deadline; false on timeout.
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (ioc.stopped()) ioc.restart();
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  void require_open() const {
    if (!open)
      throw std::system_error(make_error_code(net::error::not_connected),
                              "WebsocketClient: the connection is not open");
  }

  void write(std::string_view data, bool binary) {
    require_open();
    ws->binary(binary);
    boost::system::error_code ec;
    bool done = false;
    ws->async_write(net::buffer(data.data(), data.size()), [&](boost::system::error_code e, std::size_t) {
      ec = e, done = true;
    });
    if (!run_until([&] { return done; }, options.timeout))
      throw std::system_error(make_error_code(net::error::timed_out), "WebsocketClient: send timed out");
    if (ec) {
      // The server may have closed with a reason while we were writing (1009
      // for a message too big): its close frame can still be read.
      if (!reading) {
        reading = true;
        read_done = false;
        ws->async_read(buffer, [this](boost::system::error_code e, std::size_t) {
          read_ec = e;
          read_done = true;
        });
      }
      run_until([&] { return read_done; }, std::chrono::milliseconds(500));
      reading = false;
      mark_closed(read_done && read_ec ? read_ec : ec);
      throw std::system_error(ec, "WebsocketClient: send failed, the connection is closed (close code " +
                                      std::to_string(close_code) + ")");
    }
  }

  void mark_closed(const boost::system::error_code& ec) {
    open = false;
    if (ec == websocket::error::closed) {
      close_code = ws->reason().code ? static_cast<int>(ws->reason().code) : 1005;
      close_reason = std::string(ws->reason().reason.c_str());
    } else if (close_code == 0) {
      close_code = 1006;
    }
  }
};

WebsocketClient::WebsocketClient() : impl_(std::make_unique<Impl>()) {}
WebsocketClient::~WebsocketClient() {
  if (impl_ && impl_->ws) {
    boost::system::error_code ec;
    beast::get_lowest_layer(*impl_->ws).socket().close(ec);
  }
}
WebsocketClient::WebsocketClient(WebsocketClient&&) noexcept = default;
WebsocketClient& WebsocketClient::operator=(WebsocketClient&&) noexcept = default;

HandshakeResult WebsocketClient::connect(std::string_view url) { return connect(url, Options{}); }

HandshakeResult WebsocketClient::connect(std::string_view url, Options options) {
  HandshakeResult result;
  auto& d = *impl_;
  d.options = options;
  d.open = false;
  d.close_code = 0;
  std::string_view rest = url;
  if (rest.substr(0, 5) == "ws://") {
    rest.remove_prefix(5);
  } else {
    result.error = fmt::format("unsupported URL '{}': use ws://host:port/path", url);
    return result;
  }
  auto slash = rest.find('/');
  std::string hostport(rest.substr(0, slash));
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host = hostport, port = "80";
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:8000
    auto end = hostport.find(']');
    host = hostport.substr(1, end - 1);
    if (end != std::string::npos && end + 1 < hostport.size() && hostport[end + 1] == ':')
      port = hostport.substr(end + 2);
  } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }

  d.ws.emplace(d.ioc);
  d.buffer.clear();
  d.reading = d.read_done = false;
  auto& stream = beast::get_lowest_layer(*d.ws);
  bool done = false;
  boost::system::error_code ec;

  tcp::resolver resolver(d.ioc);
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host, port, [&](boost::system::error_code e, tcp::resolver::results_type r) {
    ec = e, endpoints = std::move(r), done = true;
  });
  if (!d.run_until([&] { return done; }, options.timeout) || ec) {
    result.error = ec ? ec.message() : "timed out resolving " + host;
    return result;
  }
  done = false;
  stream.expires_after(options.timeout);
  stream.async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) { ec = e, done = true; });
  d.run_until([&] { return done; }, options.timeout + std::chrono::seconds(1));
  if (!done || ec) {
    result.error = ec ? ec.message() : "timed out connecting";
    return result;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  stream.expires_never();
  d.ws->set_option(websocket::stream_base::timeout{options.timeout, websocket::stream_base::none(), false});
  d.ws->read_message_max(options.max_message_bytes);
  d.ws->auto_fragment(false);
  d.ws->set_option(websocket::stream_base::decorator([options](websocket::request_type& req) {
    for (auto& [k, v] : options.headers) req.set(k, v);
    if (!options.subprotocols.empty()) {
      std::string joined;
      for (auto& p : options.subprotocols) joined += (joined.empty() ? "" : ", ") + p;
      req.set(http::field::sec_websocket_protocol, joined);
    }
  }));
  websocket::response_type res;
  done = false;
  d.ws->async_handshake(res, hostport, target, [&](boost::system::error_code e) { ec = e, done = true; });
  d.run_until([&] { return done; }, options.timeout + std::chrono::seconds(1));
  result.status = static_cast<int>(res.result_int());
  if (!done || ec) {
    result.error = ec ? ec.message() : "timed out in the handshake";
    return result;
  }
  result.accepted = true;
  result.subprotocol = std::string(res[http::field::sec_websocket_protocol]);
  d.open = true;
  return result;
}

void WebsocketClient::send(std::string_view text) { impl_->write(text, false); }
void WebsocketClient::send_bytes(std::string_view bytes) { impl_->write(bytes, true); }

std::optional<ClientMessage> WebsocketClient::receive(std::chrono::milliseconds timeout) {
  auto& d = *impl_;
  if (!d.ws || (!d.open && !d.reading)) return std::nullopt;
  if (!d.reading) {
    d.reading = true;
    d.read_done = false;
    d.ws->async_read(d.buffer, [&d](boost::system::error_code e, std::size_t) {
      d.read_ec = e;
      d.read_done = true;
    });
  }
  if (!d.run_until([&] { return d.read_done; }, timeout)) return std::nullopt;
  d.reading = false;
  if (d.read_ec) {
    d.mark_closed(d.read_ec);
    return std::nullopt;
  }
  ClientMessage m{!d.ws->got_text(), beast::buffers_to_string(d.buffer.data())};
  d.buffer.consume(d.buffer.size());
  return m;
}

void WebsocketClient::close(int code, std::string_view reason) {
  auto& d = *impl_;
  if (!d.open) return;
  boost::system::error_code ec;
  bool done = false;
  d.ws->async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                    [&](boost::system::error_code e) { ec = e, done = true; });
  d.run_until([&] { return done; }, d.options.timeout);
  // The server's close frame is read by the close operation (or a pending read).
  d.run_until([&] { return !d.reading || d.read_done; }, d.options.timeout);
  d.open = false;
  if (d.close_code == 0) d.close_code = d.ws->reason().code ? static_cast<int>(d.ws->reason().code) : code;
}

void WebsocketClient::abort() {
  auto& d = *impl_;
  if (!d.ws) return;
  boost::system::error_code ec;
  beast::get_lowest_layer(*d.ws).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(*d.ws).socket().close(ec);
  d.open = false;
  if (d.close_code == 0) d.close_code = 1006;
  // Let a pending read see the cancellation before anything else runs.
  d.run_until([&] { return !d.reading || d.read_done; }, std::chrono::seconds(1));
  d.reading = false;
}

bool WebsocketClient::is_open() const { return impl_->open; }
int WebsocketClient::close_code() const { return impl_->close_code; }
std::string WebsocketClient::close_reason() const { return impl_->close_reason; }

}  // namespace channels
