#pragma once
// Private to the server: the stream under every session, plain TCP or TLS
// over TCP, chosen per listening port at run time. One type means one code
// path for the HTTP and WebSocket sessions (no template per transport): each
// I/O call branches once on `tls_` and hands the same handler to the stream
// that applies. A plain connection carries no TLS state at all.

#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace channels::detail {

class ServerStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  // Beast's wrapper coalesces the header and payload of a frame into one TLS record.
  using Tls = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  /// Plain TCP.
  explicit ServerStream(boost::beast::tcp_stream tcp) : tcp_(std::in_place, std::move(tcp)) {}
  /// TLS over TCP: the handshake is the caller's first operation.
  ServerStream(boost::beast::tcp_stream tcp, boost::asio::ssl::context& context)
      : tls_(std::make_unique<Tls>(std::move(tcp), context)) {}

  ServerStream(ServerStream&&) noexcept = default;
  ServerStream& operator=(ServerStream&&) noexcept = default;

  bool is_tls() const { return tls_ != nullptr; }
  Tls& tls() { return *tls_; }

  /// The TCP stream underneath (timeouts, the socket, close). Beast's
  /// get_lowest_layer() finds it through here. Not after drop_timeouts().
  boost::beast::tcp_stream& next_layer() { return tls_ ? tls_->next_layer() : *tcp_; }
  const boost::beast::tcp_stream& next_layer() const { return tls_ ? tls_->next_layer() : *tcp_; }

  /// The socket, whatever is above it.
  boost::asio::ip::tcp::socket& socket() { return socket_ ? *socket_ : next_layer().socket(); }

  /// Plain TCP only: keeps the bare socket and drops the TCP stream's
  /// timeout machinery (three timers, about half a kilobyte), for a
  /// connection that keeps its own deadlines: a WebSocket that frames
  /// itself. Over TLS it changes nothing.
  void drop_timeouts() {
    if (tls_ || !tcp_) return;
    socket_.emplace(tcp_->release_socket());
    tcp_.reset();
  }

  executor_type get_executor() { return socket().get_executor(); }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto&& h, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::forward<decltype(h)>(h));
          else if (socket_)
            socket_->async_read_some(b, std::forward<decltype(h)>(h));
          else
            tcp_->async_read_some(b, std::forward<decltype(h)>(h));
        },
        handler, buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto&& h, const ConstBuffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::forward<decltype(h)>(h));
          else if (socket_)
            socket_->async_write_some(b, std::forward<decltype(h)>(h));
          else
            tcp_->async_write_some(b, std::forward<decltype(h)>(h));
        },
        handler, buffers);
  }

  /// Writes what the kernel takes right now, without waiting: plain TCP
  /// only (a TLS record cannot be half written and resumed this way), so
  /// over TLS it writes nothing and the caller goes asynchronous. Returns
  /// the bytes written; `ec` is set for a broken connection, never for a
  /// full socket buffer.
  template <class ConstBuffers>
  std::size_t try_write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    ec = {};
    if (tls_) return 0;
    auto& socket = this->socket();
    if (!socket.non_blocking()) {
      socket.non_blocking(true, ec);
      if (ec) return 0;
    }
    std::size_t n = socket.write_some(buffers, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) ec = {};
    return n;
  }

  // The WebSocket closing handshake ends with a teardown (close_notify first
  // over TLS); Beast finds these by argument-dependent lookup.
  friend void teardown(boost::beast::role_type role, ServerStream& s, boost::system::error_code& ec) {
    using boost::beast::websocket::teardown;
    if (s.tls_)
      teardown(role, *s.tls_, ec);
    else if (s.socket_)
      teardown(role, *s.socket_, ec);
    else
      teardown(role, *s.tcp_, ec);
  }

  template <class Handler>
  friend void async_teardown(boost::beast::role_type role, ServerStream& s, Handler&& handler) {
    using boost::beast::websocket::async_teardown;
    if (s.tls_)
      async_teardown(role, *s.tls_, std::forward<Handler>(handler));
    else if (s.socket_)
      async_teardown(role, *s.socket_, std::forward<Handler>(handler));
    else
      async_teardown(role, *s.tcp_, std::forward<Handler>(handler));
  }

 private:
  std::optional<boost::beast::tcp_stream> tcp_;  // plain only
  std::optional<boost::asio::ip::tcp::socket> socket_;  // plain, after drop_timeouts()

  std::unique_ptr<Tls> tls_;
};

}  // namespace channels::detail
